import type { Fill } from '../venue/index.js';

/** An order as the comparison sees it: the venue's id, what it was for, and how it ended. */
export interface ComparedOrder {
  readonly clientOrderId: string;
  /** The step it was decided on. */
  readonly step: number;
  readonly symbol: string;
  readonly side: string;
  readonly quantity: number;
  /** `filled`, `accepted` (never filled), `rejected`… */
  readonly status: string;
}

/** A fill as the comparison sees it: the venue's, its side as any text (as the API answers it). */
export type ComparedFill = Readonly<Omit<Fill, 'side'>> & { readonly side: string };

/** Where a run's account ended. */
export interface ComparedPortfolio {
  readonly finalCash: number;
  readonly finalEquity: number;
  readonly openPositions: ReadonlyArray<{ readonly symbol: string; readonly quantity: number }>;
  readonly trades: number;
}

/** What a run did: its orders (any order), its fills in the order the venue made them, its account at the end. */
export interface RunOutcome {
  readonly orders: readonly ComparedOrder[];
  readonly fills: readonly ComparedFill[];
  /** `null` when the run left no final report (it did not end). */
  readonly portfolio: ComparedPortfolio | null;
}

/** An id that occurs more often than it should. */
export interface DuplicateId {
  readonly clientOrderId: string;
  /** Where: the list of orders or of fills. */
  readonly in: 'orders' | 'fills';
  readonly expected: number;
  readonly actual: number;
}

/** The first place where the run differs from the fault-free one. */
export interface Difference {
  readonly what: 'order' | 'fill' | 'portfolio';
  /** Its index in the list (orders by step then id; fills in the venue's order); 0 for the portfolio. */
  readonly index: number;
  readonly expected: unknown;
  readonly actual: unknown;
  /** In words, naming the order. */
  readonly detail: string;
}

/** What {@link compareRuns} found. */
export interface Comparison {
  readonly ordersExpected: number;
  readonly ordersActual: number;
  /** Orders of the fault-free run that the run does not have (by client order id). */
  readonly lost: readonly ComparedOrder[];
  /** Ids found more often than in the fault-free run, in the orders or in the fills. */
  readonly duplicatedById: readonly DuplicateId[];
  /** Orders under an id the fault-free run does not have, for a step, symbol, side and quantity it ordered fewer times. */
  readonly duplicatedByContent: readonly ComparedOrder[];
  /** Orders under an id the fault-free run does not have, that repeat none of its orders. */
  readonly unexpected: readonly ComparedOrder[];
  readonly ordersIdentical: boolean;
  readonly fillsIdentical: boolean;
  readonly portfolioIdentical: boolean;
  /** Orders, fills and portfolio all identical. */
  readonly identical: boolean;
  readonly firstDifference: Difference | null;
}

/**
 * Compares a run with the fault-free run of the same spec: orders lost, orders duplicated (by client
 * order id, and by content under another id), and whether the orders, the fills (in order, to the
 * cent) and the final portfolio are identical; the first difference names the order. Pure.
 */
export function compareRuns(expected: RunOutcome, actual: RunOutcome): Comparison {
  const expectedIds = countBy(expected.orders, (order) => order.clientOrderId);
  const actualIds = countBy(actual.orders, (order) => order.clientOrderId);
  const lost = distinct(expected.orders).filter((order) => !actualIds.has(order.clientOrderId));
  const duplicatedById = [...excess(expectedIds, actualIds, 'orders'), ...excess(countBy(expected.fills, (fill) => fill.clientOrderId), countBy(actual.fills, (fill) => fill.clientOrderId), 'fills')];
  // Under an id of their own: the ones repeating an expected order's content (beyond its count) are duplicates.
  const foreign = distinct(actual.orders).filter((order) => !expectedIds.has(order.clientOrderId));
  const room = countBy(distinct(expected.orders), contentOf);
  for (const order of distinct(actual.orders)) if (expectedIds.has(order.clientOrderId)) room.set(contentOf(order), (room.get(contentOf(order)) ?? 0) - 1);
  const duplicatedByContent: ComparedOrder[] = [];
  const unexpected: ComparedOrder[] = [];
  for (const order of foreign) {
    const key = contentOf(order);
    const left = room.get(key) ?? 0;
    room.set(key, left - 1);
    if (expected.orders.some((candidate) => contentOf(candidate) === key) && left <= 0) duplicatedByContent.push(order);
    else unexpected.push(order);
  }
  const orderDifference = firstOrderDifference(sortOrders(expected.orders), sortOrders(actual.orders));
  const fillDifference = firstFillDifference(expected.fills, actual.fills);
  const portfolioDifference = samePortfolio(expected.portfolio, actual.portfolio)
    ? null
    : { what: 'portfolio' as const, index: 0, expected: expected.portfolio, actual: actual.portfolio, detail: portfolioDetail(expected.portfolio, actual.portfolio) };
  const ordersIdentical = orderDifference === null;
  const fillsIdentical = fillDifference === null;
  const portfolioIdentical = portfolioDifference === null;
  return {
    ordersExpected: expected.orders.length,
    ordersActual: actual.orders.length,
    lost,
    duplicatedById,
    duplicatedByContent,
    unexpected,
    ordersIdentical,
    fillsIdentical,
    portfolioIdentical,
    identical: ordersIdentical && fillsIdentical && portfolioIdentical,
    firstDifference: orderDifference ?? fillDifference ?? portfolioDifference,
  };
}

/**
 * The orders of a run, each with its final status: `filled` once a fill names it (the status the
 * venue answered at submission otherwise: `accepted`, `rejected`…), as the control plane stores them.
 */
export function withFillStatus(orders: readonly ComparedOrder[], fills: readonly Pick<ComparedFill, 'clientOrderId'>[]): ComparedOrder[] {
  const filled = new Set(fills.map((fill) => fill.clientOrderId));
  return orders.map((order) => (filled.has(order.clientOrderId) ? { ...order, status: 'filled' } : order));
}

function contentOf(order: ComparedOrder): string {
  return JSON.stringify([order.step, order.symbol, order.side, order.quantity]);
}

function countBy<T>(items: readonly T[], key: (item: T) => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return counts;
}

/** The first order of each id, in list order. */
function distinct(orders: readonly ComparedOrder[]): ComparedOrder[] {
  const seen = new Set<string>();
  return orders.filter((order) => !seen.has(order.clientOrderId) && seen.add(order.clientOrderId) !== undefined);
}

function excess(expected: ReadonlyMap<string, number>, actual: ReadonlyMap<string, number>, where: DuplicateId['in']): DuplicateId[] {
  return [...actual]
    .filter(([id, count]) => count > Math.max(1, expected.get(id) ?? 0))
    .map(([clientOrderId, count]) => ({ clientOrderId, in: where, expected: expected.get(clientOrderId) ?? 0, actual: count }));
}

function sortOrders(orders: readonly ComparedOrder[]): ComparedOrder[] {
  return [...orders].sort((a, b) => a.step - b.step || (a.clientOrderId < b.clientOrderId ? -1 : a.clientOrderId > b.clientOrderId ? 1 : 0));
}

function describeOrder(order: ComparedOrder | undefined): string {
  return order === undefined ? 'nothing' : `${order.clientOrderId} (step ${order.step}, ${order.side} ${order.quantity} ${order.symbol}, ${order.status})`;
}

function firstOrderDifference(expected: readonly ComparedOrder[], actual: readonly ComparedOrder[]): Difference | null {
  for (let index = 0; index < Math.max(expected.length, actual.length); index++) {
    const [want, got] = [expected[index], actual[index]];
    if (want !== undefined && got !== undefined && JSON.stringify(pickOrder(want)) === JSON.stringify(pickOrder(got))) continue;
    return { what: 'order', index, expected: want ?? null, actual: got ?? null, detail: `order ${index} (by step, then id): expected ${describeOrder(want)}, got ${describeOrder(got)}` };
  }
  return null;
}

function pickOrder(order: ComparedOrder): ComparedOrder {
  const { clientOrderId, step, symbol, side, quantity, status } = order;
  return { clientOrderId, step, symbol, side, quantity, status };
}

function pickFill(fill: ComparedFill): ComparedFill {
  const { clientOrderId, symbol, side, quantity, price, fee, timeMs } = fill;
  return { clientOrderId, symbol, side, quantity, price, fee, timeMs };
}

function describeFill(fill: ComparedFill | undefined): string {
  return fill === undefined ? 'nothing' : `${fill.clientOrderId} (${fill.side} ${fill.quantity} ${fill.symbol} @ ${fill.price}, fee ${fill.fee})`;
}

function firstFillDifference(expected: readonly ComparedFill[], actual: readonly ComparedFill[]): Difference | null {
  for (let index = 0; index < Math.max(expected.length, actual.length); index++) {
    const [want, got] = [expected[index], actual[index]];
    if (want !== undefined && got !== undefined && JSON.stringify(pickFill(want)) === JSON.stringify(pickFill(got))) continue;
    return { what: 'fill', index, expected: want ?? null, actual: got ?? null, detail: `fill ${index}: expected ${describeFill(want)}, got ${describeFill(got)}` };
  }
  return null;
}

function normalPortfolio(portfolio: ComparedPortfolio | null): string {
  if (portfolio === null) return 'null';
  const positions = [...portfolio.openPositions].filter((position) => position.quantity !== 0).sort((a, b) => (a.symbol < b.symbol ? -1 : 1));
  return JSON.stringify({ finalCash: portfolio.finalCash, finalEquity: portfolio.finalEquity, trades: portfolio.trades, positions });
}

function samePortfolio(expected: ComparedPortfolio | null, actual: ComparedPortfolio | null): boolean {
  return normalPortfolio(expected) === normalPortfolio(actual);
}

function portfolioDetail(expected: ComparedPortfolio | null, actual: ComparedPortfolio | null): string {
  if (actual === null) return 'the run left no final report (it did not end)';
  return `final portfolio: expected ${normalPortfolio(expected)}, got ${normalPortfolio(actual)}`;
}
