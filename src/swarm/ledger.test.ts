import { describe, expect, it } from 'vitest';
import type { IntentPayload } from '../agent/index.js';
import type { Fill } from '../venue/index.js';
import { StepLedger } from './ledger.js';

const buy: IntentPayload = { strategy: 'sma', symbol: 'AAA', side: 'buy', quantity: 1, type: 'market', intent: 'enter-long' };

function ledgerOnClock(entry?: string): { ledger: StepLedger; at: (ms: number) => void } {
  let now = 0;
  const ledger = new StepLedger({ deciders: 2, ...(entry === undefined ? {} : { entry }), now: () => now });
  return { ledger, at: (ms) => (now = ms) };
}

describe('StepLedger', () => {
  it('measures bar → signal, signal → decision, bar → order, order → fill and bar → fill on its clock', () => {
    const { ledger, at } = ledgerOnClock();
    at(100);
    ledger.published(0);
    at(103);
    ledger.signal('a', 0, [buy]);
    at(104);
    ledger.signal('b', 0, []);
    at(106);
    expect(ledger.ordersArrived(0)).toBe(true);
    ledger.accepted('order-1', 0);
    at(107);
    expect(ledger.decision('a', 0, 'd1')).toBe(true);
    at(108);
    ledger.decision('b', 0, 'd1');
    at(109);
    ledger.filled([{ clientOrderId: 'order-1' } as Fill, { clientOrderId: 'not-ours' } as Fill]);
    const latency = ledger.latency();
    expect(latency.barToSignal).toMatchObject({ count: 2, min: 3, max: 4 });
    expect(latency.signalToDecision).toMatchObject({ count: 1, p50: 3 });
    expect(latency.barToOrder).toMatchObject({ count: 1, p50: 6 });
    expect(latency.orderToFill).toMatchObject({ count: 1, p50: 3 });
    expect(latency.barToFill).toMatchObject({ count: 1, p50: 9 });
    expect(latency.stepRound).toBeNull();
    expect(latency.allDecided).toMatchObject({ count: 1, p50: 8 });
    // A fill is counted once.
    ledger.filled([{ clientOrderId: 'order-1' } as Fill]);
    expect(ledger.latency().orderToFill?.count).toBe(1);
  });

  it('does not count the ring entry forwarding a step as a signal', () => {
    const { ledger, at } = ledgerOnClock('collector');
    ledger.published(0);
    at(2);
    ledger.signal('collector', 0, []);
    expect(ledger.latency().barToSignal).toBeNull();
  });

  it('a step is done at its first orders, or at the first decision of a live decider when it has none', () => {
    const { ledger } = ledgerOnClock();
    const live = new Set(['a', 'b']);
    const isLive = (id: string): boolean => live.has(id);
    expect(ledger.done(0, ['a', 'b'], isLive)).toBe(false);
    ledger.decision('c', 0, 'x');
    expect(ledger.done(0, ['a', 'b'], isLive)).toBe(false);
    live.delete('b');
    ledger.decision('b', 0, 'x');
    expect(ledger.done(0, ['a', 'b'], isLive)).toBe(false);
    ledger.decision('a', 0, 'x');
    expect(ledger.done(0, ['a', 'b'], isLive)).toBe(true);
    expect(ledger.done(1, ['a', 'b'], isLive)).toBe(false);
    expect(ledger.ordersArrived(1)).toBe(true);
    expect(ledger.ordersArrived(1)).toBe(false);
    expect(ledger.done(1, ['a', 'b'], isLive)).toBe(true);
  });

  it('compares every later decision of a step with its first, ignoring repeats', () => {
    const { ledger } = ledgerOnClock();
    expect(ledger.decision('a', 0, 'same')).toBe(true);
    ledger.decision('b', 0, 'same');
    ledger.decision('c', 0, 'other');
    expect(ledger.decision('c', 0, 'other')).toBe(false);
    ledger.decision('a', 1, 'x');
    expect(ledger.agreement()).toEqual({ compared: 2, agreed: 1, rate: 0.5 });
    expect(ledger.decidedSteps).toBe(2);
    // A step whose orders reached the venue was decided, even when its decider died before it said so.
    ledger.ordersArrived(2);
    ledger.ordersArrived(1);
    expect(ledger.decidedSteps).toBe(3);
    ledger.duplicate();
    expect(ledger.duplicateOrders).toBe(1);
  });

  it('tells who sent a signal or a decision of a step (whom a stalled step waits for)', () => {
    const { ledger } = ledgerOnClock();
    ledger.signal('a', 3, [buy]);
    ledger.output('hub', 3);
    ledger.signal('b', 4, []);
    expect([...ledger.outputsOf(3)]).toEqual(['a', 'hub']);
    expect([...ledger.outputsOf(5)]).toEqual([]);
  });

  it('gives a restarted agent the signals of the agents it listens to', () => {
    const { ledger } = ledgerOnClock();
    const sell: IntentPayload = { ...buy, side: 'sell', intent: 'exit-long' };
    ledger.signal('a', 0, [buy]);
    ledger.signal('b', 0, [sell]);
    ledger.signal('c', 0, [buy, buy]);
    expect(ledger.signalsOf(0, new Set(['a', 'b']))).toEqual([buy, sell]);
    expect(ledger.signalsOf(1, new Set(['a']))).toEqual([]);
  });

  it('forgets the steps before a floor, keeps counting the steps decided, ignores what comes late for them, and keeps the publication time of an order not filled yet', () => {
    const { ledger, at } = ledgerOnClock();
    for (let index = 0; index < 1_000; index++) {
      at(index * 10);
      ledger.published(index);
      ledger.signal('a', index, [buy]);
      ledger.decision('a', index, 'd');
      if (index === 5) {
        ledger.ordersArrived(5);
        ledger.accepted('resting', 5);
      }
      ledger.forget(index - 9);
      expect(ledger.heldSteps).toBeLessThanOrEqual(11);
    }
    expect(ledger.decidedSteps).toBe(1_000);
    expect(ledger.signalsOf(989, new Set(['a']))).toEqual([]);
    expect(ledger.signalsOf(990, new Set(['a']))).toEqual([buy]);
    // A decision of a forgotten step is not counted again, nor compared.
    expect(ledger.decision('b', 3, 'other')).toBe(false);
    expect(ledger.ordersArrived(4)).toBe(false);
    expect(ledger.decidedSteps).toBe(1_000);
    expect(ledger.agreement().compared).toBe(0);
    at(20_000);
    ledger.filled([{ clientOrderId: 'resting' } as Fill]);
    expect(ledger.latency().barToFill).toMatchObject({ count: 1, p50: 20_000 - 50 });
  });

  it('gives percentiles over the last 10,000 latencies of a kind, and count, min, max and mean over all', () => {
    const { ledger, at } = ledgerOnClock();
    for (let index = 0; index < 25_000; index++) {
      at(index * 100);
      ledger.published(index);
      // 1 ms for the first 15,000 steps, then 5 ms.
      at(index * 100 + (index < 15_000 ? 1 : 5));
      ledger.ordersArrived(index);
      ledger.forget(index);
    }
    expect(ledger.latency().barToOrder).toEqual({ count: 25_000, p50: 5, p95: 5, p99: 5, min: 1, max: 5, mean: (15_000 * 1 + 10_000 * 5) / 25_000 });
  });
});
