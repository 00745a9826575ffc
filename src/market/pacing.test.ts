import { describe, expect, it } from 'vitest';
import { ManualClock } from '../core/index.js';
import { type Bar, type Feed, type FeedStep, type Pacer, PacerWaitAbortedError, openArrayFeed, pace, positionAfter } from './index.js';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const DAY = 86_400_000;

function bar(symbol: string, timeMs: number): Bar {
  return { symbol, timeMs, open: 10, high: 11, low: 9, close: 10, volume: 1 };
}

/** One symbol at these times (ms). */
function feedAt(times: readonly number[]): Feed {
  return openArrayFeed(times.map((timeMs) => bar('AAA', timeMs)));
}

/** A minute apart, `count` of them. */
function minutes(count: number): Feed {
  return feedAt(Array.from({ length: count }, (_, i) => i * MINUTE));
}

/** Lets promise callbacks run (a turn of the event loop; no time passes on any clock). */
function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A promise's state, seen after a flush. */
async function stateOf<T>(promise: Promise<T>): Promise<{ settled: false } | { settled: true; value: T }> {
  let outcome: { settled: false } | { settled: true; value: T } = { settled: false };
  promise.then(
    (value) => (outcome = { settled: true, value }),
    () => undefined,
  );
  await flush();
  return outcome;
}

/** A feed whose reads wait until the test hands them steps, as bars published on a bus would. */
function manualFeed(): { feed: Feed; deliver: (steps: readonly FeedStep[]) => void; reads: number } {
  let pending: ((steps: readonly FeedStep[]) => void) | undefined;
  let closed = false;
  const state = {
    reads: 0,
    deliver: (steps: readonly FeedStep[]): void => {
      pending?.(steps);
      pending = undefined;
    },
    feed: {
      symbols: ['AAA'],
      stepCount: null,
      get closed() {
        return closed;
      },
      position: () => ({ step: 0, lastTimeMs: null }),
      read: (): Promise<readonly FeedStep[]> => {
        state.reads += 1;
        return new Promise((resolve) => (pending = resolve));
      },
      close: (): Promise<void> => {
        closed = true;
        state.deliver([]);
        return Promise.resolve();
      },
    } satisfies Feed,
  };
  return state;
}

describe('pace, lockstep', () => {
  it('hands out every step as soon as it is asked for, in order, reading the feed in batches', async () => {
    const feed = minutes(10);
    let reads = 0;
    const counted: Feed = {
      symbols: feed.symbols,
      stepCount: feed.stepCount,
      closed: false,
      position: () => feed.position(),
      read: (maxSteps) => {
        reads += 1;
        return feed.read(maxSteps);
      },
      close: () => feed.close(),
    };
    const clock = new ManualClock();
    const pacer = pace(counted, { clock, batchSteps: 4 });
    expect(pacer.config).toEqual({ mode: 'lockstep', speed: null, maxLagMs: null, batchSteps: 4 });
    const indexes: number[] = [];
    for await (const step of pacer) indexes.push(step.index);
    expect(indexes).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // 4 + 4 + 2, then the empty read that says the feed has ended.
    expect(reads).toBe(4);
    expect(await pacer.next()).toBeNull();
    expect(reads).toBe(4);
    expect(clock.pendingTimers).toBe(0);
    expect(clock.now()).toBe(0);
  });

  it('waits for a feed that has nothing yet, and keeps what arrives while a caller gave up', async () => {
    const manual = manualFeed();
    const pacer = pace(manual.feed, { clock: new ManualClock() });
    const controller = new AbortController();
    const first = pacer.next({ signal: controller.signal });
    expect(await stateOf(first)).toEqual({ settled: false });
    const reason = new Error('stopping the wait');
    controller.abort(reason);
    await expect(first).rejects.toMatchObject({ name: 'PacerWaitAbortedError', step: 0, cause: reason, retryable: true });
    const step = Object.freeze({ index: 0, timeMs: 0, bars: Object.freeze([bar('AAA', 0)]) });
    manual.deliver([step]);
    expect(await pacer.next()).toBe(step);
    // The read the aborted call started served the next call: the feed was read once.
    expect(manual.reads).toBe(1);
    expect(pacer.position()).toEqual({ step: 1, lastTimeMs: 0 });
    const waiting = pacer.next();
    await flush();
    await pacer.close();
    expect(await waiting).toBeNull();
    expect(manual.feed.closed).toBe(true);
  });
});

describe('pace, realtime', () => {
  /** Advances the clock and lets the pacer's continuations run. */
  async function advance(clock: ManualClock, ms: number): Promise<void> {
    clock.advance(ms);
    await flush();
  }

  it('follows the data spacing divided by speed: minute bars at speed 60 come a second apart', async () => {
    const clock = new ManualClock(5_000);
    const pacer = pace(minutes(4), { clock, pacing: { mode: 'realtime', speed: 60 } });
    expect(pacer.config).toEqual({ mode: 'realtime', speed: 60, maxLagMs: 1000, batchSteps: 64 });
    expect((await pacer.next())?.index).toBe(0);
    const second = pacer.next();
    expect(await stateOf(second)).toEqual({ settled: false });
    await advance(clock, 999);
    expect(await stateOf(second)).toEqual({ settled: false });
    await advance(clock, 1);
    expect((await second)?.index).toBe(1);
    expect(clock.now()).toBe(6_000);
    const third = pacer.next();
    await advance(clock, 1000);
    expect((await third)?.index).toBe(2);
    const fourth = pacer.next();
    await advance(clock, 1000);
    expect((await fourth)?.index).toBe(3);
    expect(await pacer.next()).toBeNull();
    expect(clock.pendingTimers).toBe(0);
  });

  it('keeps the data\'s own gaps: a weekend of daily bars takes three times a weekday', async () => {
    // Thursday, Friday, Monday, Tuesday; a day of data a second.
    const thursday = Date.UTC(2024, 0, 4);
    const clock = new ManualClock();
    const pacer = pace(feedAt([thursday, thursday + DAY, thursday + 4 * DAY, thursday + 5 * DAY]), { clock, pacing: { mode: 'realtime', speed: DAY / SECOND } });
    const times: number[] = [];
    const consumer = (async () => {
      for await (const _step of pacer) times.push(clock.now());
    })();
    await flush();
    for (let i = 0; i < 6; i++) await advance(clock, SECOND);
    await consumer;
    expect(times).toEqual([0, 1000, 4000, 5000]);
  });

  it('does not let the time a consumer takes per step add up', async () => {
    const clock = new ManualClock();
    const pacer = pace(minutes(4), { clock, pacing: { mode: 'realtime', speed: 60 } });
    await pacer.next();
    // The consumer spends 300 ms on each step before asking for the next: steps still come at 1 s, 2 s, 3 s.
    const times: number[] = [];
    for (let i = 1; i < 4; i++) {
      await advance(clock, 300);
      const next = pacer.next();
      await advance(clock, 700);
      expect((await next)?.index).toBe(i);
      times.push(clock.now());
    }
    expect(times).toEqual([1000, 2000, 3000]);
  });

  it('hands a consumer late by up to maxLagMs the late steps at once, until it has caught up', async () => {
    const clock = new ManualClock();
    const pacer = pace(minutes(5), { clock, pacing: { mode: 'realtime', speed: 60, maxLagMs: 2500 } });
    await pacer.next();
    // 2.5 s late: steps due at 1 s and 2 s come at once, the one due at 3 s when it is due.
    await advance(clock, 2500);
    expect((await pacer.next())?.index).toBe(1);
    expect((await pacer.next())?.index).toBe(2);
    const third = pacer.next();
    expect(await stateOf(third)).toEqual({ settled: false });
    await advance(clock, 500);
    expect((await third)?.index).toBe(3);
    expect(clock.now()).toBe(3000);
  });

  it.each<[string, number | undefined, number]>([
    // Step 1 was due 9 s before it was asked for: it comes at once, and the schedule starts again from it.
    ['after a pause longer than maxLagMs (1000 by default), rather than rushing through the steps it missed', undefined, 10_000],
    // With maxLagMs 0 any lateness starts it again: each step is spaced from the one handed out before it.
    ['after any lateness with maxLagMs 0', 0, 1300],
  ])('starts the schedule again from a late step %s', async (_name, maxLagMs, lateMs) => {
    const clock = new ManualClock();
    const pacer = pace(minutes(3), { clock, pacing: { mode: 'realtime', speed: 60, ...(maxLagMs === undefined ? {} : { maxLagMs }) } });
    await pacer.next();
    await advance(clock, lateMs);
    expect((await pacer.next())?.index).toBe(1);
    const next = pacer.next();
    await advance(clock, 999);
    expect(await stateOf(next)).toEqual({ settled: false });
    await advance(clock, 1);
    expect((await next)?.index).toBe(2);
    expect(clock.now()).toBe(lateMs + 1000);
  });

  it('gives up a wait when its signal aborts, clearing the timer and keeping the step for the next call, at its time', async () => {
    const clock = new ManualClock();
    const pacer = pace(minutes(3), { clock, pacing: { mode: 'realtime', speed: 60 } });
    await pacer.next();
    const controller = new AbortController();
    const waiting = pacer.next({ signal: controller.signal });
    await flush();
    expect(clock.pendingTimers).toBe(1);
    controller.abort(new Error('operator stop'));
    await expect(waiting).rejects.toThrow(PacerWaitAbortedError);
    await expect(waiting).rejects.toThrow('waiting for step 1 was aborted; no step was handed out, and the next call gets step 1, at its time');
    expect(clock.pendingTimers).toBe(0);
    expect(pacer.position()).toEqual({ step: 1, lastTimeMs: 0 });
    await expect(pacer.next({ signal: controller.signal })).rejects.toThrow(PacerWaitAbortedError);
    const again = pacer.next();
    await advance(clock, 1000);
    expect(await again).toMatchObject({ index: 1, timeMs: MINUTE });
  });

  it('ends waiting calls with null when closed, and closes the feed', async () => {
    const clock = new ManualClock();
    const feed = minutes(3);
    const pacer = pace(feed, { clock, pacing: { mode: 'realtime', speed: 60 } });
    await pacer.next();
    const waiting = pacer.next();
    const queued = pacer.next();
    await flush();
    await pacer.close();
    expect(await waiting).toBeNull();
    expect(await queued).toBeNull();
    expect(await pacer.next()).toBeNull();
    expect(pacer.closed).toBe(true);
    expect(feed.closed).toBe(true);
    expect(clock.pendingTimers).toBe(0);
    await pacer.close();
  });
});

describe('pace', () => {
  it('serves calls made together one after the other', async () => {
    const clock = new ManualClock();
    const pacer = pace(minutes(3), { clock, pacing: { mode: 'realtime', speed: 60 } });
    const calls = [pacer.next(), pacer.next(), pacer.next()];
    await advance(2000);
    expect((await Promise.all(calls)).map((step) => step?.index)).toEqual([0, 1, 2]);

    async function advance(ms: number): Promise<void> {
      for (let t = 0; t < ms; t += 500) {
        await flush();
        clock.advance(500);
      }
      await flush();
    }
  });

  it('says where the steps handed out end, not the steps read ahead, and a feed resumed there goes on', async () => {
    const pacer = pace(minutes(10), { clock: new ManualClock(), batchSteps: 8 });
    const seen: FeedStep[] = [];
    for await (const step of pacer) {
      seen.push(step);
      if (seen.length === 3) break;
    }
    // Leaving the loop does not close the pacer.
    expect(pacer.closed).toBe(false);
    expect(pacer.position()).toEqual(positionAfter(seen[2] as FeedStep));
    const resumed = openArrayFeed(Array.from({ length: 10 }, (_, i) => bar('AAA', i * MINUTE)), { from: pacer.position() });
    expect((await resumed.read(100)).map((step) => step.index)).toEqual([3, 4, 5, 6, 7, 8, 9]);
    expect((await pacer.next())?.index).toBe(3);
  });

  it('passes the feed\'s symbols and step count on', () => {
    const pacer: Pacer = pace(minutes(3), { clock: new ManualClock() });
    expect(pacer.symbols).toEqual(['AAA']);
    expect(pacer.stepCount).toBe(3);
  });

  it.each<[string, object, string]>([
    ['an unknown mode', { pacing: { mode: 'fast' } }, 'pacing.mode: must be "lockstep" or "realtime", got "fast"'],
    ['no speed', { pacing: { mode: 'realtime' } }, 'pacing.speed: must be a number > 0'],
    ['a zero speed', { pacing: { mode: 'realtime', speed: 0 } }, 'pacing.speed: must be a number > 0'],
    ['a negative lag', { pacing: { mode: 'realtime', speed: 1, maxLagMs: -1 } }, 'pacing.maxLagMs: must be a number of ms >= 0'],
    ['a fractional batch', { batchSteps: 1.5 }, 'batchSteps: must be a whole number from 1 to 100000, got 1.5'],
    ['no clock', { clock: undefined }, 'clock: must be a Clock'],
  ])('refuses %s, naming the field', (_name, change, message) => {
    expect(() => pace(minutes(2), { clock: new ManualClock(), ...change })).toThrow(message);
  });
});
