import type { Bar } from '../market/index.js';
import type { DecisionRejection } from '../decision/index.js';
import type { StrategyIntent } from '../strategy/index.js';
import type { OrderStatus } from '../venue/index.js';
import type { TradingSession } from './session.js';

/** One deciding agent's orders for a time step, as the venue of a swarm receives them. */
export interface OrdersRequest {
  /** The time step the orders were decided on. */
  readonly index: number;
  /** The intents the decision pipeline approved, in order. */
  readonly approved: readonly StrategyIntent[];
  /** What the pipeline refused. */
  readonly rejected: readonly DecisionRejection[];
  /** The deciding agent's epoch (fencing, see `PaperVenue.admitEpoch`); absent: not fenced. */
  readonly epoch?: number;
}

/** The venue's answer to one order of an {@link OrdersRequest}. */
export interface OrderAnswer {
  readonly clientOrderId: string;
  readonly status: OrderStatus;
  /** Set when the venue refused: a stable code (the venue's `RejectReason`). */
  readonly reason?: string;
}

/**
 * Who keeps the books of a run's orders (a swarm's step ledger): told when a step's orders arrive and
 * what the venue answered, to time them and count repeats.
 */
export interface OrderBooks {
  /** Orders of step `index` arrived. @returns true the first time for the step. */
  ordersArrived(index: number): boolean;
  /** The venue took order `clientOrderId`, decided on step `index`. */
  accepted(clientOrderId: string, index: number): void;
  /** The venue answered an order `duplicate`. */
  duplicate(): void;
}

/**
 * The order gateway a swarm serves over the bus: submits one deciding agent's approved intents of
 * step `request.index` to the session's venue, as decided on `step` (that step's bars), and answers
 * each order's status in the request's order. Every decider of a mesh sends the same orders: the
 * venue answers the repeats `duplicate`, and the pipeline's refusals are recorded with the step's
 * first request only (`books` tells which one is first). With `source` (the deciding agent's role)
 * and the request's `epoch`, a request from an epoch the venue has fenced off changes nothing and
 * is answered `fenced`.
 */
export function submitOrders(session: TradingSession, request: OrdersRequest, step: readonly Bar[], books: OrderBooks, source?: string): OrderAnswer[] | 'fenced' {
  const { index, approved, rejected, epoch } = request;
  if (source !== undefined && epoch !== undefined && !session.venue.admitEpoch(source, epoch)) return 'fenced';
  if (books.ordersArrived(index)) session.reject(rejected, index);
  return session.submit(approved, index, step).map(({ clientOrderId, result }) => {
    if (result.status === 'duplicate') books.duplicate();
    else if (result.status === 'accepted') books.accepted(clientOrderId, index);
    return { clientOrderId, status: result.status, ...(result.reason === undefined ? {} : { reason: result.reason }) };
  });
}
