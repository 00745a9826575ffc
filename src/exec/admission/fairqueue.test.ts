import { describe, expect, it } from 'vitest';
import { InvalidInputError, ManualClock, SystemClock, TradeswarmError } from '../../core/index.js';
import { compileFairQueueOptions, FairQueue, type FairQueueOptions, type FairQueueRunOptions } from './fairqueue.js';
import { isQueueFullError, isQueueTimeoutError, QueueFullError, QueueTimeoutError } from '../errors.js';

interface Deferred<T> {
  readonly promise: Promise<T>;
  readonly resolve: (value: T) => void;
  readonly reject: (error: Error) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets every pending promise callback run (no timers, no real time). */
function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

type Outcome = { status: 'fulfilled'; value: string } | { status: 'rejected'; reason: unknown };

interface Task {
  readonly user: string;
  readonly deferred: Deferred<string>;
  readonly signal: AbortSignal;
}

/**
 * A queue on a manual clock whose tasks are deferred promises settled by the test. It counts running
 * tasks itself and records the highest counts seen at any task start.
 */
function setup(options: FairQueueOptions = {}) {
  const clock = new ManualClock();
  const queue = new FairQueue({ clock, ...options });
  const started: string[] = [];
  const running = new Map<string, Task>();
  const outcomes = new Map<string, Outcome>();
  const peak = { global: 0, perUser: 0 };

  const runningOf = (user: string): number => [...running.values()].filter((task) => task.user === user).length;

  /** Submits a task labelled `label`; its outcome lands in `outcomes`. */
  function submit(user: string, label: string, runOptions?: FairQueueRunOptions): void {
    const promise = queue.run(
      user,
      (signal) => {
        const task = { user, deferred: deferred<string>(), signal };
        started.push(label);
        running.set(label, task);
        peak.global = Math.max(peak.global, running.size);
        peak.perUser = Math.max(peak.perUser, runningOf(user));
        return task.deferred.promise;
      },
      runOptions,
    );
    void promise.then(
      (value) => outcomes.set(label, { status: 'fulfilled', value }),
      (reason: unknown) => outcomes.set(label, { status: 'rejected', reason }),
    );
  }

  function take(label: string): Task {
    const task = running.get(label);
    if (!task) throw new Error(`task ${label} is not running`);
    running.delete(label);
    return task;
  }

  async function complete(label: string): Promise<void> {
    take(label).deferred.resolve(`done ${label}`);
    await flush();
  }

  async function fail(label: string, error: Error): Promise<void> {
    take(label).deferred.reject(error);
    await flush();
  }

  return { clock, queue, started, running, outcomes, peak, runningOf, submit, complete, fail };
}

describe('FairQueue limits', () => {
  it('never runs more than concurrency tasks, nor more than perUserConcurrency for one user', async () => {
    const q = setup({ concurrency: 3, perUserConcurrency: 2 });
    for (const user of ['a', 'b', 'c', 'd']) {
      q.submit(user, `${user}1`);
      q.submit(user, `${user}2`);
    }
    await flush();
    const counts: number[] = [];
    while (q.running.size > 0) {
      expect(q.queue.stats().running).toBe(q.running.size);
      for (const user of ['a', 'b', 'c', 'd']) expect(q.runningOf(user)).toBeLessThanOrEqual(2);
      counts.push(q.running.size);
      const oldest = [...q.running.keys()][0] ?? '';
      await q.complete(oldest);
    }
    expect(counts).toEqual([3, 3, 3, 3, 3, 3, 2, 1]);
    expect(q.peak).toEqual({ global: 3, perUser: 2 });
    expect(q.started).toEqual(['a1', 'a2', 'b1', 'c1', 'd1', 'b2', 'c2', 'd2']);
    expect(q.outcomes.get('d2')).toEqual({ status: 'fulfilled', value: 'done d2' });
  });

  it('holds one user to perUserConcurrency even when global slots are free', async () => {
    const q = setup({ concurrency: 6, perUserConcurrency: 2 });
    for (let i = 1; i <= 5; i++) q.submit('a', `a${i}`);
    await flush();
    expect(q.started).toEqual(['a1', 'a2']);
    expect(q.queue.stats()).toMatchObject({ running: 2, waiting: 3 });
    await q.complete('a1');
    expect(q.started).toEqual(['a1', 'a2', 'a3']);
    expect(q.running.size).toBe(2);
    expect(q.peak.perUser).toBe(2);
  });
});

describe('FairQueue order', () => {
  it('alternates between users when one floods the queue', async () => {
    const q = setup({ concurrency: 1, perUserConcurrency: 1 });
    for (let i = 1; i <= 5; i++) q.submit('a', `a${i}`);
    q.submit('b', 'b1');
    q.submit('b', 'b2');
    while (q.running.size > 0) await q.complete([...q.running.keys()][0] ?? '');
    expect(q.started).toEqual(['a1', 'b1', 'a2', 'b2', 'a3', 'a4', 'a5']);
  });

  it("lets a user with 100 queued tasks delay another user's single task by at most one turn", async () => {
    const q = setup({ concurrency: 2, perUserConcurrency: 2 });
    for (let i = 1; i <= 100; i++) q.submit('flood', `f${i}`);
    q.submit('single', 's1');
    expect(q.started).toEqual(['f1', 'f2']);
    await q.complete('f1');
    expect(q.started).toEqual(['f1', 'f2', 's1']);
  });

  it('starts higher priority first, before round-robin between users', async () => {
    const q = setup({ concurrency: 1, perUserConcurrency: 1 });
    q.submit('a', 'a1');
    q.submit('b', 'b1');
    q.submit('a', 'a2-high', { priority: 5 });
    await q.complete('a1');
    expect(q.started).toEqual(['a1', 'a2-high']);
    await q.complete('a2-high');
    expect(q.started).toEqual(['a1', 'a2-high', 'b1']);
  });

  it("lets a user's higher-priority task pass its own older, lower-priority ones", async () => {
    const q = setup({ concurrency: 1, perUserConcurrency: 1 });
    q.submit('a', 'a1');
    q.submit('a', 'a2-low', { priority: -1 });
    q.submit('a', 'a3');
    q.submit('a', 'a4-high', { priority: 2 });
    while (q.running.size > 0) await q.complete([...q.running.keys()][0] ?? '');
    expect(q.started).toEqual(['a1', 'a4-high', 'a3', 'a2-low']);
  });

  it('runs one user’s tasks of equal priority first in, first out', async () => {
    const q = setup({ concurrency: 1, perUserConcurrency: 1 });
    for (let i = 1; i <= 4; i++) q.submit('a', `a${i}`);
    while (q.running.size > 0) await q.complete([...q.running.keys()][0] ?? '');
    expect(q.started).toEqual(['a1', 'a2', 'a3', 'a4']);
  });
});

describe('FairQueue busy errors', () => {
  it('refuses at once with a retryable QueueFullError when maxQueueLength tasks wait', async () => {
    const q = setup({ concurrency: 1, maxQueueLength: 2 });
    q.submit('a', 'a1');
    q.submit('a', 'a2');
    q.submit('b', 'b1');
    q.submit('c', 'c1');
    await flush();
    const error = (q.outcomes.get('c1') as { reason: unknown } | undefined)?.reason;
    expect(error).toBeInstanceOf(QueueFullError);
    expect(error).toBeInstanceOf(TradeswarmError);
    expect(isQueueFullError(error)).toBe(true);
    const full = error as QueueFullError;
    expect(full.retryable).toBe(true);
    expect(full.name).toBe('QueueFullError');
    // No task has completed yet: 1000 ms assumed × (2 waiting + 1) / concurrency 1.
    expect(full.retryAfterMs).toBe(3000);
    expect(full.maxQueueLength).toBe(2);
    expect(full.message).toMatch(/2 tasks are already waiting.*Retry in about 3000 ms/);
    expect(q.started).toEqual(['a1']);
    expect(q.queue.stats()).toMatchObject({ waiting: 2, rejectedFull: 1 });
  });

  it('estimates retryAfterMs from recent task durations and the queue depth', async () => {
    const q = setup({ concurrency: 2, perUserConcurrency: 1, maxQueueLength: 3 });
    q.submit('a', 'a1');
    q.submit('b', 'b1');
    q.clock.advance(300);
    await q.complete('a1');
    q.clock.advance(200);
    await q.complete('b1');
    // Durations 300 and 500 ms: mean 400.
    q.submit('a', 'a2');
    q.submit('a', 'a3');
    q.submit('a', 'a4');
    q.submit('a', 'a5');
    q.submit('a', 'a6');
    await flush();
    expect(q.started).toEqual(['a1', 'b1', 'a2']);
    const full = (q.outcomes.get('a6') as { reason: QueueFullError }).reason;
    // ceil(400 × (3 waiting + 1) / 2)
    expect(full.retryAfterMs).toBe(800);
  });

  it('does not refuse a task that can start at once, even when the queue is full', async () => {
    const q = setup({ concurrency: 3, perUserConcurrency: 1, maxQueueLength: 1 });
    q.submit('a', 'a1');
    q.submit('a', 'a2');
    q.submit('b', 'b1');
    await flush();
    expect(q.started).toEqual(['a1', 'b1']);
    expect(q.outcomes.has('b1')).toBe(false);
    expect(q.queue.stats()).toMatchObject({ running: 2, waiting: 1, rejectedFull: 0 });
  });

  it('withdraws a task that waited maxWaitMs with a retryable QueueTimeoutError, and not a millisecond before', async () => {
    const q = setup({ concurrency: 1, maxWaitMs: 1000 });
    q.submit('a', 'a1');
    q.submit('b', 'b1');
    q.clock.advance(999);
    await flush();
    expect(q.outcomes.has('b1')).toBe(false);
    expect(q.queue.stats().waiting).toBe(1);
    q.clock.advance(1);
    await flush();
    const error = (q.outcomes.get('b1') as { reason: unknown } | undefined)?.reason;
    expect(error).toBeInstanceOf(QueueTimeoutError);
    expect(isQueueTimeoutError(error)).toBe(true);
    const timeout = error as QueueTimeoutError;
    expect(timeout.retryable).toBe(true);
    expect(timeout.maxWaitMs).toBe(1000);
    // 1000 ms assumed × (0 others waiting + 1) / concurrency 1.
    expect(timeout.retryAfterMs).toBe(1000);
    expect(timeout.message).toMatch(/waited 1000 ms.*Retry in about 1000 ms/);
    expect(q.queue.stats()).toMatchObject({
      running: 1,
      waiting: 0,
      rejectedTimeout: 1,
      perUser: { a: { running: 1, waiting: 0 } },
    });
    await q.complete('a1');
    expect(q.started).toEqual(['a1']);
  });

  it('does not time out a task that started in time, however long it runs', async () => {
    const q = setup({ concurrency: 1, maxWaitMs: 1000 });
    q.submit('a', 'a1');
    q.submit('b', 'b1');
    q.clock.advance(600);
    await q.complete('a1');
    expect(q.started).toEqual(['a1', 'b1']);
    expect(q.clock.pendingTimers).toBe(0);
    q.clock.advance(5000);
    await q.complete('b1');
    expect(q.outcomes.get('b1')).toEqual({ status: 'fulfilled', value: 'done b1' });
    expect(q.queue.stats().rejectedTimeout).toBe(0);
  });
});

describe('FairQueue abort', () => {
  it('removes a waiting task when its signal aborts, rejecting with the reason', async () => {
    const q = setup({ concurrency: 1, maxWaitMs: 1000 });
    const controller = new AbortController();
    q.submit('a', 'a1');
    q.submit('b', 'b1', { signal: controller.signal });
    const reason = new Error('caller gave up');
    controller.abort(reason);
    await flush();
    expect(q.outcomes.get('b1')).toEqual({ status: 'rejected', reason });
    expect(q.queue.stats()).toMatchObject({ waiting: 0, perUser: { a: { running: 1, waiting: 0 } } });
    expect(q.clock.pendingTimers).toBe(0);
    await q.complete('a1');
    expect(q.started).toEqual(['a1']);
  });

  it('rejects at once, without running, when the signal is already aborted', async () => {
    const q = setup();
    const controller = new AbortController();
    controller.abort(new Error('too late'));
    q.submit('a', 'a1', { signal: controller.signal });
    await flush();
    expect(q.outcomes.get('a1')).toEqual({ status: 'rejected', reason: new Error('too late') });
    expect(q.started).toEqual([]);
  });

  it("aborts a running task's own signal and lets the task decide how to stop", async () => {
    const q = setup({ concurrency: 1 });
    const controller = new AbortController();
    q.submit('a', 'a1', { signal: controller.signal });
    q.submit('b', 'b1');
    const task = q.running.get('a1');
    expect(task?.signal.aborted).toBe(false);
    task?.signal.addEventListener('abort', () => task.deferred.resolve('stopped early'));
    const reason = new Error('stop');
    controller.abort(reason);
    await flush();
    expect(task?.signal.aborted).toBe(true);
    expect(task?.signal.reason).toBe(reason);
    expect(q.outcomes.get('a1')).toEqual({ status: 'fulfilled', value: 'stopped early' });
    expect(q.started).toEqual(['a1', 'b1']);
  });
});

describe('FairQueue failures, stats and idle', () => {
  it('frees the slots of a failing task and passes its error on', async () => {
    const q = setup({ concurrency: 1 });
    q.submit('a', 'a1');
    q.submit('a', 'a2');
    const boom = new Error('boom');
    await q.fail('a1', boom);
    expect(q.outcomes.get('a1')).toEqual({ status: 'rejected', reason: boom });
    expect(q.started).toEqual(['a1', 'a2']);
    expect(q.queue.stats()).toMatchObject({ running: 1, completed: 1 });
  });

  it('treats a task that throws synchronously like a failing one', async () => {
    const q = setup({ concurrency: 1 });
    const result = q.queue.run('a', () => {
      throw new Error('sync');
    });
    await expect(result).rejects.toThrow('sync');
    expect(q.queue.stats()).toMatchObject({ running: 0, waiting: 0, completed: 1, perUser: {} });
  });

  it('reports running, waiting and totals per user', async () => {
    const q = setup({ concurrency: 3, perUserConcurrency: 2, maxQueueLength: 3, maxWaitMs: 100 });
    q.submit('a', 'a1');
    q.submit('a', 'a2');
    q.submit('a', 'a3');
    q.submit('b', 'b1');
    q.submit('c', 'c1');
    q.submit('c', 'c2');
    await q.complete('a1');
    expect(q.queue.stats()).toEqual({
      concurrency: 3,
      perUserConcurrency: 2,
      running: 3,
      waiting: 2,
      perUser: { a: { running: 1, waiting: 1 }, b: { running: 1, waiting: 0 }, c: { running: 1, waiting: 1 } },
      completed: 1,
      rejectedFull: 0,
      rejectedTimeout: 0,
    });
    q.submit('d', 'd1');
    q.submit('d', 'd2');
    q.submit('d', 'd3');
    q.clock.advance(100);
    await flush();
    expect(q.queue.stats()).toMatchObject({ running: 3, waiting: 0, rejectedFull: 2, rejectedTimeout: 3, completed: 1 });
  });

  it('resolves onIdle once nothing runs or waits', async () => {
    const q = setup({ concurrency: 1 });
    await q.queue.onIdle();
    q.submit('a', 'a1');
    q.submit('a', 'a2');
    let idle = false;
    void q.queue.onIdle().then(() => (idle = true));
    await q.complete('a1');
    expect(idle).toBe(false);
    await q.complete('a2');
    expect(idle).toBe(true);
    expect(q.queue.stats()).toEqual({
      concurrency: 1,
      perUserConcurrency: 2,
      running: 0,
      waiting: 0,
      perUser: {},
      completed: 2,
      rejectedFull: 0,
      rejectedTimeout: 0,
    });
  });
});

describe('FairQueue options', () => {
  it('fills in documented defaults', () => {
    const config = compileFairQueueOptions();
    expect(config).toMatchObject({ concurrency: 6, perUserConcurrency: 2, maxQueueLength: 1000, maxWaitMs: 30_000 });
    expect(config.clock).toBeInstanceOf(SystemClock);
    expect(Object.isFrozen(config)).toBe(true);
    expect(compileFairQueueOptions({ maxQueueLength: Infinity, maxWaitMs: Infinity })).toMatchObject({
      maxQueueLength: Infinity,
      maxWaitMs: Infinity,
    });
  });

  it.each([
    ['concurrency', { concurrency: 0 }],
    ['concurrency', { concurrency: 1.5 }],
    ['concurrency', { concurrency: Number.NaN }],
    ['perUserConcurrency', { perUserConcurrency: 0 }],
    ['perUserConcurrency', { perUserConcurrency: Infinity }],
    ['maxQueueLength', { maxQueueLength: -1 }],
    ['maxQueueLength', { maxQueueLength: 2.5 }],
    ['maxWaitMs', { maxWaitMs: 0 }],
    ['maxWaitMs', { maxWaitMs: -10 }],
    ['maxWaitMs', { maxWaitMs: Number.NaN }],
  ] as const)('rejects an invalid %s (%o) naming the field', (field, options) => {
    let caught: unknown;
    try {
      new FairQueue(options);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidInputError);
    expect((caught as InvalidInputError).field).toBe(field);
    expect((caught as InvalidInputError).message).toMatch(new RegExp(`^${field}: must be`));
  });

  it('rejects an empty user and a non-finite priority', async () => {
    const queue = new FairQueue({ clock: new ManualClock() });
    await expect(queue.run('', () => Promise.resolve(1))).rejects.toMatchObject({ field: 'user' });
    await expect(queue.run('a', () => Promise.resolve(1), { priority: Number.NaN })).rejects.toMatchObject({
      field: 'priority',
    });
    expect(queue.stats()).toMatchObject({ running: 0, waiting: 0 });
  });
});

/** A tiny seeded linear congruential generator (Numerical Recipes constants). */
function lcg(seed: number): (below: number) => number {
  let state = seed >>> 0;
  return (below) => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    // The high bits: an LCG's low bits cycle with short periods.
    return Math.floor((state / 2 ** 32) * below);
  };
}

describe('FairQueue property: random users, priorities, completions and aborts', () => {
  it.each([
    { seed: 1, concurrency: 1, perUserConcurrency: 1, userCount: 3 },
    { seed: 2, concurrency: 2, perUserConcurrency: 1, userCount: 4 },
    { seed: 3, concurrency: 3, perUserConcurrency: 2, userCount: 5 },
    { seed: 42, concurrency: 4, perUserConcurrency: 2, userCount: 3 },
    { seed: 1234, concurrency: 2, perUserConcurrency: 2, userCount: 1 },
    { seed: 98_765, concurrency: 6, perUserConcurrency: 2, userCount: 5 },
  ])(
    'keeps every limit and runs every task exactly once (seed $seed, $concurrency/$perUserConcurrency, $userCount users)',
    async ({ seed, concurrency, perUserConcurrency, userCount }) => {
      const random = lcg(seed);
      const users = ['u0', 'u1', 'u2', 'u3', 'u4'].slice(0, userCount);
      const q = setup({ concurrency, perUserConcurrency, maxQueueLength: Infinity, maxWaitMs: Infinity });
      const submitted: string[] = [];
      const controllers = new Map<string, AbortController>();
      const aborted = new Set<string>();

      const checkInvariants = (): void => {
        const stats = q.queue.stats();
        expect(stats.running).toBe(q.running.size);
        expect(stats.running).toBeLessThanOrEqual(concurrency);
        for (const [user, counts] of Object.entries(stats.perUser)) {
          expect(counts.running).toBe(q.runningOf(user));
          expect(counts.running).toBeLessThanOrEqual(perUserConcurrency);
          // Work-conserving: nobody waits while a global slot and one of their own are free.
          if (counts.waiting > 0 && stats.running < concurrency) expect(counts.running).toBe(perUserConcurrency);
        }
      };

      for (let step = 0; step < 300; step++) {
        const action = random(10);
        if (action < 5) {
          const label = `t${submitted.length}`;
          const controller = new AbortController();
          controllers.set(label, controller);
          submitted.push(label);
          q.submit(users[random(users.length)] ?? 'u0', label, { priority: random(3), signal: controller.signal });
        } else if (action < 9 && q.running.size > 0) {
          const labels = [...q.running.keys()];
          const label = labels[random(labels.length)] ?? '';
          q.clock.advance(random(50));
          if (random(4) === 0) await q.fail(label, new Error(`failed ${label}`));
          else await q.complete(label);
        } else {
          const waiting = submitted.filter((label) => !q.started.includes(label) && !aborted.has(label));
          const label = waiting[random(Math.max(1, waiting.length))];
          if (label !== undefined) {
            aborted.add(label);
            controllers.get(label)?.abort(new Error(`aborted ${label}`));
          }
        }
        await flush();
        checkInvariants();
      }
      while (q.running.size > 0) {
        await q.complete([...q.running.keys()][0] ?? '');
        checkInvariants();
      }
      await q.queue.onIdle();

      expect(q.peak.global).toBeLessThanOrEqual(concurrency);
      expect(q.peak.perUser).toBeLessThanOrEqual(perUserConcurrency);
      expect(new Set(q.started).size).toBe(q.started.length);
      expect([...q.started].sort()).toEqual(submitted.filter((label) => !aborted.has(label)).sort());
      expect(q.outcomes.size).toBe(submitted.length);
      for (const label of aborted) {
        expect(q.outcomes.get(label)).toEqual({ status: 'rejected', reason: new Error(`aborted ${label}`) });
      }
      expect(q.queue.stats()).toMatchObject({ running: 0, waiting: 0, perUser: {}, completed: q.started.length });
    },
  );
});
