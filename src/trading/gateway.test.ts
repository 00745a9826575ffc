import { describe, expect, it } from 'vitest';
import type { Bar } from '../market/index.js';
import type { DecisionRejection } from '../decision/index.js';
import type { StrategyIntent } from '../strategy/index.js';
import { clientOrderId } from '../venue/index.js';
import { type OrderBooks, type OrdersRequest, submitOrders } from './gateway.js';
import { TradingSession } from './session.js';

const STEP: readonly Bar[] = [{ symbol: 'AAA', timeMs: 0, open: 10, high: 11, low: 9, close: 10, volume: 1000 }];
const BUY: StrategyIntent = { strategy: 'sma', symbol: 'AAA', side: 'buy', quantity: 10, type: 'market', intent: 'enter-long' };
const UNKNOWN: StrategyIntent = { ...BUY, symbol: 'ZZZ' };
const REFUSED: DecisionRejection = { intent: { ...BUY, strategy: 'momentum' }, source: 'risk', reason: 'max-position', message: 'over the limit' };
const REQUEST: OrdersRequest = { index: 0, approved: [BUY, UNKNOWN], rejected: [REFUSED] };
const id = (intent: StrategyIntent): string => clientOrderId({ swarm: 't', role: intent.strategy, barIndex: 0, symbol: intent.symbol, intent: intent.intent });

/** Books that note every call, and take each step's first request as the first. */
function books(): OrderBooks & { calls: string[] } {
  const arrived = new Set<number>();
  const calls: string[] = [];
  return {
    calls,
    ordersArrived(index) {
      calls.push(`arrived ${index}`);
      if (arrived.has(index)) return false;
      arrived.add(index);
      return true;
    },
    accepted(orderId, index) {
      calls.push(`accepted ${orderId} ${index}`);
    },
    duplicate() {
      calls.push('duplicate');
    },
  };
}

describe('submitOrders', () => {
  it('submits in order, answers each status, and records the refusals of a step once though every decider sends them', () => {
    const session = new TradingSession({ swarm: 't', symbols: ['AAA'] });
    session.open(STEP);
    const ledger = books();
    expect(submitOrders(session, REQUEST, STEP, ledger)).toEqual([
      { clientOrderId: id(BUY), status: 'accepted' },
      { clientOrderId: id(UNKNOWN), status: 'rejected', reason: 'unknown-symbol' },
    ]);
    // A second decider of a mesh sends the same orders.
    expect(submitOrders(session, REQUEST, STEP, ledger)).toEqual([
      { clientOrderId: id(BUY), status: 'duplicate' },
      { clientOrderId: id(UNKNOWN), status: 'duplicate' },
    ]);
    expect(ledger.calls).toEqual(['arrived 0', `accepted ${id(BUY)} 0`, 'arrived 0', 'duplicate', 'duplicate']);
    const { rejections } = session.settle().report;
    expect(rejections.map(({ clientOrderId: orderId, source, reason }) => [orderId, source, reason])).toEqual([
      [id(REFUSED.intent), 'risk', 'max-position'],
      [id(UNKNOWN), 'venue', 'unknown-symbol'],
    ]);
  });

  it('answers a request from a fenced-off epoch `fenced` and changes nothing: the newer process submits the same orders after it', () => {
    const session = new TradingSession({ swarm: 't', symbols: ['AAA'] });
    session.open(STEP);
    const ledger = books();
    session.venue.admitEpoch('decider', 1);
    expect(submitOrders(session, { ...REQUEST, epoch: 0 }, STEP, ledger, 'decider')).toBe('fenced');
    expect(ledger.calls).toEqual([]);
    expect(submitOrders(session, { ...REQUEST, epoch: 1 }, STEP, ledger, 'decider')).toEqual([
      { clientOrderId: id(BUY), status: 'accepted' },
      { clientOrderId: id(UNKNOWN), status: 'rejected', reason: 'unknown-symbol' },
    ]);
    expect(session.settle().report.rejections).toHaveLength(2);
  });

  it('answers nothing for a request without approved intents, and still records its refusals', () => {
    const session = new TradingSession({ swarm: 't', symbols: ['AAA'] });
    session.open(STEP);
    expect(submitOrders(session, { index: 0, approved: [], rejected: [REFUSED] }, STEP, books())).toEqual([]);
    expect(session.settle().report.rejections).toHaveLength(1);
  });
});
