import { type Clock, type TimerHandle, InvalidInputError, SystemClock, isClock } from '../../core/index.js';
import { QueueFullError, QueueTimeoutError } from '../errors.js';

/** Options for {@link FairQueue}. Every field is optional; units are in the names. */
export interface FairQueueOptions {
  /**
   * Tasks that may run at once across all users. An integer >= 1.
   * @default 6
   */
  concurrency?: number;
  /**
   * Tasks that may run at once for one user. An integer >= 1; a value above `concurrency` acts as `concurrency`.
   * @default 2
   */
  perUserConcurrency?: number;
  /**
   * Tasks that may wait (not yet started) across all users; past it `run` rejects at once with a
   * `QueueFullError`. A task that can start immediately never counts against it. An integer >= 0, or
   * `Infinity` for no limit.
   * @default 1000
   */
  maxQueueLength?: number;
  /**
   * How long a task may wait without starting before `run` rejects with a `QueueTimeoutError`. A number > 0,
   * or `Infinity` for no limit.
   * @default 30_000
   */
  maxWaitMs?: number;
  /**
   * Source of time for wait timers and task durations.
   * @default new SystemClock()
   */
  clock?: Clock;
}

/** The complete, validated form of {@link FairQueueOptions}. */
export interface FairQueueConfig {
  readonly concurrency: number;
  readonly perUserConcurrency: number;
  readonly maxQueueLength: number;
  readonly maxWaitMs: number;
  readonly clock: Clock;
}

/** Per-call options of {@link FairQueue.run}. */
export interface FairQueueRunOptions {
  /**
   * Higher starts first, before any round-robin between users. Any finite number.
   * @default 0
   */
  priority?: number;
  /** Aborting it withdraws a waiting task, or aborts the signal handed to a running task. */
  signal?: AbortSignal;
}

/** Counters for metrics, from {@link FairQueue.stats}. */
export interface FairQueueStats {
  /** The most tasks that may run at once, in all and for one user (the queue's configuration). */
  readonly concurrency: number;
  readonly perUserConcurrency: number;
  /** Tasks running now. */
  readonly running: number;
  /** Tasks waiting to start now. */
  readonly waiting: number;
  /** The same two counts for every user with a running or waiting task. */
  readonly perUser: Readonly<Record<string, { readonly running: number; readonly waiting: number }>>;
  /** Tasks that ran and settled (fulfilled or rejected) since the queue was made. */
  readonly completed: number;
  /** Calls refused with `QueueFullError`. */
  readonly rejectedFull: number;
  /** Tasks withdrawn with `QueueTimeoutError`. */
  readonly rejectedTimeout: number;
}

/** Assumed duration of a task before any task has completed, for `retryAfterMs`. */
const ASSUMED_TASK_DURATION_MS = 1000;
/** How many recent task durations the `retryAfterMs` estimate averages. */
const RECENT_DURATIONS = 20;

/**
 * Validates options and fills in defaults.
 * @throws {InvalidInputError} naming the field, when a value is out of range or of the wrong kind.
 */
export function compileFairQueueOptions(options: FairQueueOptions = {}): FairQueueConfig {
  const concurrency = options.concurrency ?? 6;
  const perUserConcurrency = options.perUserConcurrency ?? 2;
  const maxQueueLength = options.maxQueueLength ?? 1000;
  const maxWaitMs = options.maxWaitMs ?? 30_000;
  const clock = options.clock ?? new SystemClock();
  requireInteger('concurrency', concurrency, 1, 'the number of tasks that may run at once');
  requireInteger('perUserConcurrency', perUserConcurrency, 1, 'the number of tasks one user may run at once');
  if (maxQueueLength !== Number.POSITIVE_INFINITY) {
    requireInteger('maxQueueLength', maxQueueLength, 0, 'the number of tasks that may wait, or Infinity');
  }
  if (typeof maxWaitMs !== 'number' || Number.isNaN(maxWaitMs) || maxWaitMs <= 0) {
    throw new InvalidInputError(
      'maxWaitMs',
      `must be a number of milliseconds > 0 (or Infinity), got ${String(maxWaitMs)}.`,
    );
  }
  if (!isClock(clock)) {
    throw new InvalidInputError('clock', 'must be a Clock from core (SystemClock or ManualClock).');
  }
  return Object.freeze({ concurrency, perUserConcurrency, maxQueueLength, maxWaitMs, clock });
}

function requireInteger(field: string, value: unknown, min: number, meaning: string): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new InvalidInputError(field, `must be an integer >= ${min} (${meaning}), got ${String(value)}.`);
  }
}

interface UserState {
  readonly name: string;
  running: number;
  /** Waiting entries, highest priority first, then oldest first. */
  readonly waiting: Entry[];
  /** Serve counter value when this user last started a task; 0 = not since it became active. */
  lastServed: number;
}

interface Entry {
  readonly seq: number;
  readonly user: UserState;
  readonly priority: number;
  readonly signal: AbortSignal | undefined;
  phase: 'waiting' | 'running' | 'done';
  timer: TimerHandle | undefined;
  controller: AbortController | undefined;
  startedMs: number;
  /** Runs the task with its own signal; settles the caller's promise after the queue's bookkeeping. */
  readonly execute: (taskSignal: AbortSignal) => void;
  readonly reject: (error: unknown) => void;
  readonly onAbort: () => void;
}

/**
 * A fair, bounded queue for running tasks on behalf of users: at most `concurrency` tasks run at once,
 * at most `perUserConcurrency` of them for one user.
 *
 * When a slot frees, the next task is chosen among users that have a waiting task and a free per-user
 * slot: highest priority first; among equal priorities, the user who started a task least recently
 * (round-robin; users who have not started one since becoming active go first, oldest waiting task
 * first); within a user, first in, first out. So at equal priority a user with many queued tasks delays
 * another user's task by at most one turn. Priorities are strict: a steady stream of higher-priority
 * work can hold back lower-priority work.
 *
 * The scheduler is written here rather than on p-queue: p-queue has one global limit and one priority
 * order, with no per-user limits and no round-robin between users. Choosing a task is O(users).
 */
export class FairQueue {
  /** The compiled options this queue runs with. */
  readonly config: FairQueueConfig;
  private readonly users = new Map<string, UserState>();
  private running = 0;
  private waiting = 0;
  private completed = 0;
  private rejectedFull = 0;
  private rejectedTimeout = 0;
  private nextSeq = 1;
  private serveCounter = 0;
  private dispatching = false;
  private readonly recentDurationsMs: number[] = [];
  private recentIndex = 0;
  private idleWaiters: Array<() => void> = [];

  /** @throws {InvalidInputError} naming the field, when an option is invalid. */
  constructor(options: FairQueueOptions = {}) {
    this.config = compileFairQueueOptions(options);
  }

  /**
   * Runs `task` for `user` as soon as a global slot and one of that user's slots are free (at once when
   * they are). The task receives a signal that aborts when the caller's `signal` aborts while it runs; the
   * task decides how to stop.
   * @returns the task's result; rejects with the task's error when it fails.
   * @throws {QueueFullError} (as a rejection, at once) when `maxQueueLength` tasks already wait and this one
   *   cannot start at once.
   * @throws {QueueTimeoutError} (as a rejection) when the task waited `maxWaitMs` without starting.
   * @throws {InvalidInputError} (as a rejection) when `user` is empty or `priority` is not a finite number.
   * @throws the signal's `reason` (as a rejection) when `signal` aborts before the task starts.
   */
  run<T>(user: string, task: (signal: AbortSignal) => Promise<T>, options: FairQueueRunOptions = {}): Promise<T> {
    const priority = options.priority ?? 0;
    const signal = options.signal;
    // Throwing inside the executor rejects the returned promise, so callers see one failure path.
    return new Promise<T>((resolve, reject) => {
      if (typeof user !== 'string' || user.length === 0) {
        throw new InvalidInputError('user', 'must be a non-empty string naming who the task runs for.');
      }
      if (typeof priority !== 'number' || !Number.isFinite(priority)) {
        throw new InvalidInputError('priority', `must be a finite number, got ${String(priority)}.`);
      }
      signal?.throwIfAborted();
      const state = this.users.get(user) ?? { name: user, running: 0, waiting: [], lastServed: 0 };
      const canStartNow =
        this.running < this.config.concurrency && state.running < this.config.perUserConcurrency;
      if (!canStartNow && this.waiting >= this.config.maxQueueLength) {
        this.rejectedFull++;
        reject(new QueueFullError(this.estimateRetryAfterMs(this.waiting), this.config.maxQueueLength));
        return;
      }
      this.users.set(user, state);
      const entry: Entry = {
        seq: this.nextSeq++,
        user: state,
        priority,
        signal,
        phase: 'waiting',
        timer: undefined,
        controller: undefined,
        startedMs: 0,
        // The queue's bookkeeping runs before the caller sees the outcome.
        execute: (taskSignal) => resolve(invoke(task, taskSignal).finally(() => this.finish(entry))),
        reject,
        onAbort: () => this.abort(entry),
      };
      insertByPriority(state.waiting, entry);
      this.waiting++;
      signal?.addEventListener('abort', entry.onAbort, { once: true });
      if (this.config.maxWaitMs !== Number.POSITIVE_INFINITY) {
        entry.timer = this.config.clock.setTimeout(() => this.timeOut(entry), this.config.maxWaitMs);
      }
      this.dispatch();
    });
  }

  /** Current counts, for metrics. */
  stats(): FairQueueStats {
    const perUser = Object.fromEntries(
      [...this.users.values()].map((state) => [state.name, { running: state.running, waiting: state.waiting.length }]),
    );
    return {
      concurrency: this.config.concurrency,
      perUserConcurrency: this.config.perUserConcurrency,
      running: this.running,
      waiting: this.waiting,
      perUser,
      completed: this.completed,
      rejectedFull: this.rejectedFull,
      rejectedTimeout: this.rejectedTimeout,
    };
  }

  /** Resolves when no task is running or waiting (at once if that is already so). */
  onIdle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** The delay to suggest to a caller turned away now (see `estimateRetryAfterMs`), as the queue's own busy errors do. */
  suggestedRetryAfterMs(): number {
    return this.estimateRetryAfterMs(this.waiting);
  }

  /**
   * The suggested delay carried by busy errors:
   * `max(1, ceil(meanTaskMs × (waitingAhead + 1) / concurrency))`, where `meanTaskMs` is the mean run time
   * of the last 20 completed tasks (1000 ms before any has completed) and `waitingAhead` the other tasks
   * waiting now: roughly how long the queue needs to start everything ahead of a resubmitted task.
   */
  private estimateRetryAfterMs(waitingAhead: number): number {
    const samples = this.recentDurationsMs;
    const meanMs =
      samples.length === 0 ? ASSUMED_TASK_DURATION_MS : samples.reduce((sum, ms) => sum + ms, 0) / samples.length;
    return Math.max(1, Math.ceil((meanMs * (waitingAhead + 1)) / this.config.concurrency));
  }

  private dispatch(): void {
    // A task may call run() synchronously when started; the loop below re-picks until nothing can start.
    if (this.dispatching) return;
    this.dispatching = true;
    try {
      while (this.running < this.config.concurrency) {
        const next = this.pickNext();
        if (!next) break;
        this.start(next);
      }
    } finally {
      this.dispatching = false;
    }
  }

  private pickNext(): Entry | undefined {
    let best: Entry | undefined;
    for (const state of this.users.values()) {
      const head = state.waiting[0];
      if (!head || state.running >= this.config.perUserConcurrency) continue;
      if (!best || goesBefore(head, best)) best = head;
    }
    return best;
  }

  private start(entry: Entry): void {
    const state = entry.user;
    state.waiting.shift();
    this.waiting--;
    this.clearTimer(entry);
    state.running++;
    this.running++;
    state.lastServed = ++this.serveCounter;
    entry.phase = 'running';
    entry.startedMs = this.config.clock.now();
    const controller = new AbortController();
    entry.controller = controller;
    entry.execute(controller.signal);
  }

  private finish(entry: Entry): void {
    entry.phase = 'done';
    entry.signal?.removeEventListener('abort', entry.onAbort);
    const state = entry.user;
    state.running--;
    this.running--;
    this.completed++;
    this.recordDuration(this.config.clock.now() - entry.startedMs);
    this.forgetIfInactive(state);
    this.dispatch();
    this.notifyIfIdle();
  }

  private abort(entry: Entry): void {
    if (entry.phase === 'running') {
      entry.controller?.abort(entry.signal?.reason);
      return;
    }
    if (entry.phase === 'waiting') this.withdraw(entry, entry.signal?.reason);
  }

  private timeOut(entry: Entry): void {
    if (entry.phase !== 'waiting') return;
    entry.timer = undefined;
    this.rejectedTimeout++;
    const error = new QueueTimeoutError(this.estimateRetryAfterMs(this.waiting - 1), this.config.maxWaitMs);
    this.withdraw(entry, error);
  }

  /** Removes a waiting entry without running it, and rejects its caller with `error`. */
  private withdraw(entry: Entry, error: unknown): void {
    const queue = entry.user.waiting;
    const index = queue.indexOf(entry);
    if (index >= 0) queue.splice(index, 1);
    this.waiting--;
    entry.phase = 'done';
    this.clearTimer(entry);
    entry.signal?.removeEventListener('abort', entry.onAbort);
    this.forgetIfInactive(entry.user);
    entry.reject(error);
    this.notifyIfIdle();
  }

  private clearTimer(entry: Entry): void {
    if (entry.timer) this.config.clock.clearTimeout(entry.timer);
    entry.timer = undefined;
  }

  /** Drops a user with nothing running or waiting, so memory follows active users only. */
  private forgetIfInactive(state: UserState): void {
    if (state.running === 0 && state.waiting.length === 0) this.users.delete(state.name);
  }

  private recordDuration(durationMs: number): void {
    if (this.recentDurationsMs.length < RECENT_DURATIONS) {
      this.recentDurationsMs.push(durationMs);
    } else {
      this.recentDurationsMs[this.recentIndex] = durationMs;
    }
    this.recentIndex = (this.recentIndex + 1) % RECENT_DURATIONS;
  }

  private isIdle(): boolean {
    return this.running === 0 && this.waiting === 0;
  }

  private notifyIfIdle(): void {
    if (!this.isIdle() || this.idleWaiters.length === 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}

/** Whether `a` should start before `b`: priority, then least recently served user, then older task. */
function goesBefore(a: Entry, b: Entry): boolean {
  if (a.priority !== b.priority) return a.priority > b.priority;
  if (a.user.lastServed !== b.user.lastServed) return a.user.lastServed < b.user.lastServed;
  return a.seq < b.seq;
}

/** Inserts keeping the order highest priority first, then oldest first; scans from the end, where new work usually goes. */
function insertByPriority(queue: Entry[], entry: Entry): void {
  let index = queue.length;
  while (index > 0 && (queue[index - 1]?.priority ?? Number.POSITIVE_INFINITY) < entry.priority) index--;
  queue.splice(index, 0, entry);
}

/** Calls `task`, turning a synchronous throw into a rejection. */
function invoke<T>(task: (signal: AbortSignal) => Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve) => resolve(task(signal)));
}
