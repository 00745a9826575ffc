import { describe, expect, it } from 'vitest';
import { InvalidInputError, ManualClock } from '../core/index.js';
import { RateLimitWaitAbortedError, isRateLimitWaitAbortedError } from './errors.js';
import {
  HEALTH,
  RateLimiter,
  TokenBucket,
  compileRateLimiterOptions,
  type RateLimitKind,
  type RateLimiterOptions,
  type TokenBucketOptions,
} from './ratelimit.js';

interface Tracked {
  state: 'pending' | 'resolved' | 'rejected';
  error: unknown;
}

/** Records how a promise settled, so a test can look after flushing microtasks. */
function track(promise: Promise<void>): Tracked {
  const tracked: Tracked = { state: 'pending', error: undefined };
  promise.then(
    () => {
      tracked.state = 'resolved';
    },
    (error: unknown) => {
      tracked.state = 'rejected';
      tracked.error = error;
    },
  );
  return tracked;
}

async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

function states(tracked: readonly Tracked[]): string[] {
  return tracked.map((t) => t.state);
}

function emptyBucket(clock: ManualClock, options: Omit<TokenBucketOptions, 'initialState'>): TokenBucket {
  return new TokenBucket(clock, { ...options, initialState: { available: 0, updatedAtMs: clock.now(), pausedUntilMs: 0 } });
}

function invalidField(action: () => unknown): string {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidInputError);
    const field = (error as InvalidInputError).field;
    expect((error as Error).message.startsWith(`${field}: `)).toBe(true);
    return field;
  }
  throw new Error('expected an InvalidInputError');
}

describe('TokenBucket refill', () => {
  it.each([
    { elapsedMs: 0, expected: 0 },
    { elapsedMs: 50, expected: 0.5 },
    { elapsedMs: 100, expected: 1 },
    { elapsedMs: 130, expected: 1.3 },
    { elapsedMs: 250, expected: 2.5 },
    { elapsedMs: 999, expected: 9.99 },
    { elapsedMs: 1000, expected: 10 },
    { elapsedMs: 5000, expected: 10 },
  ])('capacity 10, 1 token per 100 ms, empty: after $elapsedMs ms holds $expected', ({ elapsedMs, expected }) => {
    const clock = new ManualClock(10_000);
    const bucket = emptyBucket(clock, { capacity: 10, tokens: 1, intervalMs: 100 });
    clock.advance(elapsedMs);
    expect(bucket.available).toBe(expected);
  });

  it.each([
    { name: 'operations 40,000 / 60 s', capacity: 40_000, tokens: 40_000, intervalMs: 60_000, elapsedMs: 3, expected: 2 },
    { name: 'operations 40,000 / 60 s', capacity: 40_000, tokens: 40_000, intervalMs: 60_000, elapsedMs: 30_000, expected: 20_000 },
    { name: 'operations 40,000 / 60 s', capacity: 40_000, tokens: 40_000, intervalMs: 60_000, elapsedMs: 90_000, expected: 40_000 },
    { name: 'lifecycle 20,000 / 30 s', capacity: 20_000, tokens: 20_000, intervalMs: 30_000, elapsedMs: 3, expected: 2 },
    { name: 'lifecycle 20,000 / 30 s', capacity: 20_000, tokens: 20_000, intervalMs: 30_000, elapsedMs: 15_000, expected: 10_000 },
    { name: 'creation 5 / s', capacity: 5, tokens: 5, intervalMs: 1000, elapsedMs: 200, expected: 1 },
    { name: 'creation 5 / s', capacity: 5, tokens: 5, intervalMs: 1000, elapsedMs: 300, expected: 1.5 },
  ])('$name, empty: after $elapsedMs ms holds $expected', ({ capacity, tokens, intervalMs, elapsedMs, expected }) => {
    const clock = new ManualClock();
    const bucket = emptyBucket(clock, { capacity, tokens, intervalMs });
    clock.advance(elapsedMs);
    expect(bucket.available).toBe(expected);
  });

  it('starts full, grants up to capacity, then one more exactly at the refill point', () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(clock, { capacity: 3, tokens: 1, intervalMs: 1000 });
    expect([bucket.tryTake(), bucket.tryTake(), bucket.tryTake(), bucket.tryTake()]).toEqual([true, true, true, false]);
    clock.advance(999);
    expect(bucket.tryTake()).toBe(false);
    clock.advance(1);
    expect(bucket.tryTake()).toBe(true);
    expect(bucket.available).toBe(0);
    expect(bucket.grantedTokens).toBe(4);
  });

  it('grants fractional requests and keeps the fractional remainder', () => {
    const clock = new ManualClock();
    const bucket = emptyBucket(clock, { capacity: 2, tokens: 1, intervalMs: 1000 });
    clock.advance(750);
    expect(bucket.tryTake(0.5)).toBe(true);
    expect(bucket.available).toBe(0.25);
    expect(bucket.tryTake(0.5)).toBe(false);
    expect(bucket.msUntilAvailable(0.5)).toBe(250);
  });

  it('reports ms until available, counting queued demand and rounding up to whole ms', () => {
    const clock = new ManualClock();
    const bucket = emptyBucket(clock, { capacity: 5, tokens: 1, intervalMs: 1000 });
    expect(bucket.msUntilAvailable(1)).toBe(1000);
    expect(bucket.msUntilAvailable(2.5)).toBe(2500);
    clock.advance(400);
    expect(bucket.msUntilAvailable()).toBe(600);
    void track(bucket.take(2));
    expect(bucket.msUntilAvailable(1)).toBe(2600);
    const thirds = emptyBucket(clock, { capacity: 1, tokens: 3, intervalMs: 1000 });
    expect(thirds.msUntilAvailable(1)).toBe(334);
  });

  it('refuses requests that are not positive or exceed capacity, naming n', () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(clock, { capacity: 2, tokens: 1, intervalMs: 1000 });
    expect(invalidField(() => bucket.tryTake(0))).toBe('n');
    expect(invalidField(() => bucket.tryTake(Number.NaN))).toBe('n');
    expect(invalidField(() => bucket.msUntilAvailable(3))).toBe('n');
    expect(invalidField(() => bucket.take(-1))).toBe('n');
  });

  it.each([
    { options: { capacity: 0, tokens: 1, intervalMs: 1000 }, field: 'capacity' },
    { options: { capacity: 1, tokens: Number.POSITIVE_INFINITY, intervalMs: 1000 }, field: 'tokens' },
    { options: { capacity: 1, tokens: 1, intervalMs: -5 }, field: 'intervalMs' },
    { options: { capacity: 1, tokens: 1, intervalMs: 1000, initialState: { available: 2, updatedAtMs: 0, pausedUntilMs: 0 } }, field: 'initialState.available' },
    { options: { capacity: 1, tokens: 1, intervalMs: 1000, initialState: { available: 1, updatedAtMs: Number.NaN, pausedUntilMs: 0 } }, field: 'initialState.updatedAtMs' },
  ])('rejects invalid options naming $field', ({ options, field }) => {
    expect(invalidField(() => new TokenBucket(new ManualClock(), options))).toBe(field);
  });
});

describe('TokenBucket waiters', () => {
  it('serves waiters first in, first out, each exactly when the refill covers it', async () => {
    const clock = new ManualClock();
    const bucket = emptyBucket(clock, { capacity: 2, tokens: 1, intervalMs: 1000 });
    const order: string[] = [];
    const a = track(bucket.take(2).then(() => void order.push(`a@${clock.now()}`)));
    const b = track(bucket.take(1).then(() => void order.push(`b@${clock.now()}`)));
    const c = track(bucket.take(1).then(() => void order.push(`c@${clock.now()}`)));
    const steps: [number, string[]][] = [
      [1999, ['pending', 'pending', 'pending']],
      [1, ['resolved', 'pending', 'pending']],
      [999, ['resolved', 'pending', 'pending']],
      [1, ['resolved', 'resolved', 'pending']],
      [1000, ['resolved', 'resolved', 'resolved']],
    ];
    for (const [advanceMs, expected] of steps) {
      clock.advance(advanceMs);
      await flush();
      expect(states([a, b, c])).toEqual(expected);
    }
    expect(order).toEqual(['a@2000', 'b@3000', 'c@4000']);
    expect(bucket.waiting).toBe(0);
    expect(clock.pendingTimers).toBe(0);
  });

  it('lets no one overtake the queue: a small tryTake fails while a larger take waits', async () => {
    const clock = new ManualClock();
    const bucket = emptyBucket(clock, { capacity: 3, tokens: 1, intervalMs: 1000 });
    clock.advance(1000);
    const big = track(bucket.take(3));
    expect(bucket.available).toBe(1);
    expect(bucket.tryTake(1)).toBe(false);
    clock.advance(2000);
    await flush();
    expect(big.state).toBe('resolved');
    expect(bucket.available).toBe(0);
  });

  it('rejects an aborted wait with a typed, retryable error and takes no tokens', async () => {
    const clock = new ManualClock();
    const bucket = emptyBucket(clock, { capacity: 2, tokens: 1, intervalMs: 1000, name: 'create' });
    const controller = new AbortController();
    const waiting = track(bucket.take(2, controller.signal));
    const behind = track(bucket.take(1));
    clock.advance(1500);
    controller.abort(new Error('client went away'));
    await flush();
    expect(waiting.state).toBe('rejected');
    const error = waiting.error as RateLimitWaitAbortedError;
    expect(error).toBeInstanceOf(RateLimitWaitAbortedError);
    expect(isRateLimitWaitAbortedError(error)).toBe(true);
    expect(error.name).toBe('RateLimitWaitAbortedError');
    expect(error.retryable).toBe(true);
    expect([error.bucket, error.requestedTokens, error.waitedMs]).toEqual(['create', 2, 1500]);
    expect((error.cause as Error).message).toBe('client went away');
    expect(error.message).toMatch(/aborted after 1500 ms; nothing was sent/);
    // The aborted head held up the next waiter, which the 1.5 tokens now cover.
    expect(behind.state).toBe('resolved');
    expect(bucket.available).toBe(0.5);
    expect(clock.pendingTimers).toBe(0);
  });

  it('rejects at once when the signal is already aborted', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(clock, { capacity: 1, tokens: 1, intervalMs: 1000 });
    const waiting = track(bucket.take(1, AbortSignal.abort()));
    await flush();
    expect(waiting.state).toBe('rejected');
    expect((waiting.error as RateLimitWaitAbortedError).waitedMs).toBe(0);
    expect(bucket.available).toBe(1);
  });

  it('ignores an abort after the tokens were granted', async () => {
    const clock = new ManualClock();
    const bucket = emptyBucket(clock, { capacity: 1, tokens: 1, intervalMs: 1000 });
    const controller = new AbortController();
    const waiting = track(bucket.take(1, controller.signal));
    clock.advance(1000);
    controller.abort();
    await flush();
    expect(waiting.state).toBe('resolved');
  });

  it('pauses grants until the given time while refill continues', async () => {
    const clock = new ManualClock();
    const bucket = emptyBucket(clock, { capacity: 5, tokens: 1, intervalMs: 1000 });
    bucket.pauseUntil(3000);
    bucket.pauseUntil(1000);
    expect(bucket.pausedUntilMs).toBe(3000);
    const waiting = track(bucket.take(2));
    expect(bucket.msUntilAvailable(1)).toBe(3000);
    clock.advance(2999);
    await flush();
    expect(waiting.state).toBe('pending');
    expect(bucket.tryTake(0.5)).toBe(false);
    clock.advance(1);
    await flush();
    expect(waiting.state).toBe('resolved');
    expect(bucket.available).toBe(1);
  });

  it('reschedules waiters when the rate changes', async () => {
    const clock = new ManualClock();
    const bucket = emptyBucket(clock, { capacity: 1, tokens: 1, intervalMs: 1000 });
    const waiting = track(bucket.take(1));
    clock.advance(500);
    bucket.setRate(0.25);
    expect(bucket.rate).toEqual({ tokens: 0.25, intervalMs: 1000 });
    clock.advance(1999);
    await flush();
    expect(waiting.state).toBe('pending');
    clock.advance(1);
    await flush();
    expect(waiting.state).toBe('resolved');
  });

  it('saves and restores its state through JSON', () => {
    const clock = new ManualClock(5000);
    const options = { capacity: 4, tokens: 2, intervalMs: 1000 };
    const original = new TokenBucket(clock, options);
    original.tryTake(3);
    original.pauseUntil(6000);
    clock.advance(250);
    const saved: unknown = JSON.parse(JSON.stringify(original));
    expect(saved).toEqual({ available: 1.5, updatedAtMs: 5250, pausedUntilMs: 6000 });
    const restored = new TokenBucket(clock, { ...options, initialState: saved as ReturnType<TokenBucket['toJSON']> });
    expect(restored.available).toBe(original.available);
    expect(restored.msUntilAvailable(4)).toBe(original.msUntilAvailable(4));
    expect(restored.msUntilAvailable(4)).toBe(1250);
    clock.advance(750);
    expect([restored.tryTake(3), original.tryTake(3)]).toEqual([true, true]);
    expect(restored.toJSON()).toEqual(original.toJSON());
  });

  it.each([1, 7, 42, 2024, 99_991])(
    'never grants more than capacity + rate × elapsed, and serves takes in order (seed %i)',
    async (seed) => {
      let state = seed >>> 0;
      const random = (): number => {
        state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
        return state / 2 ** 32;
      };
      const clock = new ManualClock();
      const capacity = 1 + Math.floor(random() * 10);
      const tokens = 1 + Math.floor(random() * 5);
      const intervalMs = 50 + Math.floor(random() * 950);
      const bucket = new TokenBucket(clock, { capacity, tokens, intervalMs });
      let granted = 0;
      let nextTicket = 0;
      const served: number[] = [];
      const controllers: AbortController[] = [];
      for (let step = 0; step < 400; step++) {
        const action = random();
        const n = Math.min(capacity, 0.25 + Math.floor(random() * capacity * 4) / 4);
        if (action < 0.35) {
          clock.advance(Math.floor(random() * intervalMs));
        } else if (action < 0.6) {
          if (bucket.tryTake(n)) granted += n;
        } else if (action < 0.9) {
          const ticket = nextTicket++;
          const controller = new AbortController();
          controllers.push(controller);
          bucket.take(n, controller.signal).then(
            () => {
              granted += n;
              served.push(ticket);
            },
            (error: unknown) => {
              expect(isRateLimitWaitAbortedError(error)).toBe(true);
            },
          );
        } else {
          controllers[Math.floor(random() * controllers.length)]?.abort();
        }
        await flush();
        const bound = capacity + (tokens * clock.now()) / intervalMs;
        expect(granted).toBeLessThanOrEqual(bound + 1e-6);
        expect(bucket.grantedTokens).toBeCloseTo(granted, 9);
      }
      expect(served).toEqual([...served].sort((x, y) => x - y));
      expect(served.length).toBeGreaterThan(0);
    },
  );
});

describe('compileRateLimiterOptions', () => {
  it('applies the documented defaults and freezes the result', () => {
    const config = compileRateLimiterOptions();
    expect(config).toEqual({ plan: 'hobby', creationPerSecond: 1, operationsPer60s: 40_000, lifecyclePer30s: 20_000 });
    expect(Object.isFrozen(config)).toBe(true);
    expect(compileRateLimiterOptions({ plan: 'pro' }).creationPerSecond).toBe(5);
    expect(compileRateLimiterOptions({ plan: 'pro', creationPerSecond: 2.5 }).creationPerSecond).toBe(2.5);
  });

  it.each([
    { options: { plan: 'enterprise' }, field: 'plan' },
    { options: { creationPerSecond: 0 }, field: 'creationPerSecond' },
    { options: { creationPerSecond: Number.NaN }, field: 'creationPerSecond' },
    { options: { operationsPer60s: 0 }, field: 'operationsPer60s' },
    { options: { operationsPer60s: 1.5 }, field: 'operationsPer60s' },
    { options: { lifecyclePer30s: -1 }, field: 'lifecyclePer30s' },
    { options: { lifecyclePer30s: '20000' }, field: 'lifecyclePer30s' },
  ])('rejects $options naming $field', ({ options, field }) => {
    expect(invalidField(() => compileRateLimiterOptions(options as unknown as RateLimiterOptions))).toBe(field);
    expect(invalidField(() => new RateLimiter(new ManualClock(), options as unknown as RateLimiterOptions))).toBe(field);
  });
});

describe('RateLimiter', () => {
  async function resolvedAt(limiter: RateLimiter, clock: ManualClock, kind: RateLimitKind, count: number, untilMs: number): Promise<number[]> {
    const times: number[] = [];
    for (let i = 0; i < count; i++) void limiter.acquire(kind).then(() => void times.push(clock.now()));
    await flush();
    while (clock.now() < untilMs) {
      clock.advance(1);
      await flush();
    }
    return times;
  }

  it('hobby: 3 creates take 2 s', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter(clock);
    expect(await resolvedAt(limiter, clock, 'create', 3, 3000)).toEqual([0, 1000, 2000]);
  });

  it('pro: 5 creates at once, then one every 200 ms', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter(clock, { plan: 'pro' });
    expect(await resolvedAt(limiter, clock, 'create', 8, 1000)).toEqual([0, 0, 0, 0, 0, 200, 400, 600]);
  });

  it.each([
    { kind: 'operation' as const, limit: 40_000, nextMs: 2 },
    { kind: 'lifecycle' as const, limit: 20_000, nextMs: 2 },
  ])('$kind: $limit calls at once, the next after $nextMs ms', ({ kind, limit, nextMs }) => {
    const clock = new ManualClock();
    const limiter = new RateLimiter(clock);
    let granted = 0;
    while (limiter.tryAcquire(kind)) granted++;
    expect(granted).toBe(limit);
    clock.advance(nextMs - 1);
    expect(limiter.tryAcquire(kind)).toBe(false);
    clock.advance(1);
    expect(limiter.tryAcquire(kind)).toBe(true);
  });

  it('moves the health score and creation rate by the documented constants', () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter(clock, { plan: 'pro' });
    const seen: [number, number][] = [];
    const record = (): void => {
      const health = limiter.health();
      seen.push([health.score, health.creationPerSecond]);
    };
    record();
    limiter.report('create', 'rate-limited');
    record();
    limiter.report('lifecycle', 'failed');
    record();
    limiter.report('create', 'ok');
    record();
    for (let i = 0; i < 8; i++) limiter.report('create', 'ok');
    record();
    limiter.report('create', 'ok');
    record();
    expect(seen).toEqual([
      [1, 5],
      [0.5, 2.5],
      [0.4375, 2.1875],
      [0.5, 2.5],
      [1, 5],
      [1, 5],
    ]);
    expect(HEALTH).toEqual({ initialScore: 1, rateLimitedFactor: 0.5, failedFactor: 0.875, successStep: 0.0625, minRateFactor: 0.05 });
  });

  it('never slows creation below 5% of the configured rate', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter(clock);
    for (let i = 0; i < 6; i++) limiter.report('create', 'rate-limited');
    expect(limiter.health()).toEqual({ score: 0.015625, creationPerSecond: 0.05 });
    const next = track(limiter.acquire('create'));
    clock.advance(19_999);
    await flush();
    expect(next.state).toBe('pending');
    clock.advance(1);
    await flush();
    expect(next.state).toBe('resolved');
  });

  it('slows a creation already waiting when a 429 arrives', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter(clock);
    expect(limiter.tryAcquire('create')).toBe(true);
    const next = track(limiter.acquire('create'));
    clock.advance(400);
    limiter.report('create', 'rate-limited');
    // Drained at 400 ms; at 0.5/s one token takes 2 s more.
    clock.advance(1999);
    await flush();
    expect(next.state).toBe('pending');
    clock.advance(1);
    await flush();
    expect(next.state).toBe('resolved');
  });

  it('pauses creation until Retry-After, then resumes at the reduced rate', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter(clock);
    expect(limiter.tryAcquire('create')).toBe(true);
    limiter.report('create', 'rate-limited', 3000);
    expect(limiter.snapshot().kinds.create.pausedUntilMs).toBe(3000);
    clock.advance(2999);
    expect(limiter.tryAcquire('create')).toBe(false);
    const first = track(limiter.acquire('create'));
    const second = track(limiter.acquire('create'));
    clock.advance(1);
    await flush();
    expect(states([first, second])).toEqual(['resolved', 'pending']);
    // The bucket (capacity 1) was full at 3000 ms; at 0.5/s the next token takes 2 s.
    clock.advance(1999);
    await flush();
    expect(second.state).toBe('pending');
    clock.advance(1);
    await flush();
    expect(second.state).toBe('resolved');
  });

  it('keeps operation reports out of the score but honours their 429s', () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter(clock);
    limiter.report('operation', 'rate-limited', 5000);
    limiter.report('operation', 'failed');
    limiter.report('operation', 'ok');
    expect(limiter.health()).toEqual({ score: 1, creationPerSecond: 1 });
    expect(limiter.tryAcquire('operation')).toBe(false);
    expect(limiter.tryAcquire('create')).toBe(true);
    clock.advance(5000);
    expect(limiter.tryAcquire('operation')).toBe(true);
  });

  it('rejects an aborted acquire with the kind in the error', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter(clock);
    limiter.tryAcquire('create');
    const controller = new AbortController();
    const waiting = track(limiter.acquire('create', controller.signal));
    clock.advance(300);
    controller.abort();
    await flush();
    expect(waiting.state).toBe('rejected');
    expect(waiting.error).toBeInstanceOf(RateLimitWaitAbortedError);
    expect((waiting.error as RateLimitWaitAbortedError).bucket).toBe('create');
    expect(limiter.snapshot().kinds.create.waiting).toBe(0);
  });

  it('rejects bad report and acquire arguments naming the field', () => {
    const limiter = new RateLimiter(new ManualClock());
    expect(invalidField(() => limiter.report('create', 'rate-limited', -1))).toBe('retryAfterMs');
    expect(invalidField(() => limiter.report('create', 'timeout' as 'ok'))).toBe('outcome');
    expect(invalidField(() => limiter.tryAcquire('delete' as RateLimitKind))).toBe('kind');
    expect(invalidField(() => limiter.acquire('delete' as RateLimitKind))).toBe('kind');
    expect(limiter.health().score).toBe(1);
  });

  it('snapshots health, levels, queues and counters', () => {
    const clock = new ManualClock(1000);
    const limiter = new RateLimiter(clock, { plan: 'pro', lifecyclePer30s: 10 });
    limiter.tryAcquire('create');
    limiter.tryAcquire('create');
    limiter.tryAcquire('lifecycle');
    limiter.report('create', 'ok');
    limiter.report('create', 'rate-limited', 2000);
    limiter.report('lifecycle', 'failed');
    void limiter.acquire('create');
    expect(limiter.snapshot()).toEqual({
      atMs: 1000,
      score: 0.4375,
      creationPerSecond: 2.1875,
      configuredCreationPerSecond: 5,
      kinds: {
        create: { available: 0, capacity: 5, waiting: 1, pausedUntilMs: 3000, granted: 2, ok: 1, rateLimited: 1, failed: 0 },
        operation: { available: 40_000, capacity: 40_000, waiting: 0, pausedUntilMs: 0, granted: 0, ok: 0, rateLimited: 0, failed: 0 },
        lifecycle: { available: 9, capacity: 10, waiting: 0, pausedUntilMs: 0, granted: 1, ok: 0, rateLimited: 0, failed: 1 },
      },
    });
  });

  it('saves and restores score and buckets through JSON', async () => {
    const clock = new ManualClock();
    const original = new RateLimiter(clock, { plan: 'pro' });
    for (let i = 0; i < 5; i++) original.tryAcquire('create');
    original.report('create', 'rate-limited', 1000);
    original.report('create', 'failed');
    original.tryAcquire('operation');
    const saved: unknown = JSON.parse(JSON.stringify(original));
    const restored = new RateLimiter(clock, { plan: 'pro' }, saved as ReturnType<RateLimiter['toJSON']>);
    expect(restored.health()).toEqual(original.health());
    expect(restored.toJSON()).toEqual(original.toJSON());
    expect(restored.snapshot().kinds.operation.available).toBe(39_999);
    const times: Record<string, number> = {};
    void original.acquire('create').then(() => void (times.original = clock.now()));
    void restored.acquire('create').then(() => void (times.restored = clock.now()));
    for (let i = 0; i < 1000; i++) {
      clock.advance(1);
      await flush();
    }
    // Paused until 1000 ms; at 5 × 0.4375 = 2.1875/s the first token is back at 457.14 ms, so 1000 ms.
    expect(times).toEqual({ original: 1000, restored: 1000 });
  });

  it('refuses a malformed saved state naming the field', () => {
    const clock = new ManualClock();
    const good = new RateLimiter(clock).toJSON();
    expect(invalidField(() => new RateLimiter(clock, {}, { ...good, score: 2 }))).toBe('initialState.score');
    const { lifecycle: _lifecycle, ...partial } = good.buckets;
    expect(invalidField(() => new RateLimiter(clock, {}, { score: 1, buckets: partial as typeof good.buckets }))).toBe(
      'initialState.buckets.lifecycle',
    );
  });
});
