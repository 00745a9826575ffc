import type { Clock, TimerHandle } from './clock.js';
import type { Logger } from './logger.js';

/** How long a process could not listen since a given time (see {@link DeafnessMeter}). */
export interface Deafness {
  /** Milliseconds since `sinceMs` during which this process's event loop did not run. */
  deafMs(sinceMs: number): number;
}

/** Options of {@link DeafnessMeter}. */
export interface DeafnessMeterOptions {
  readonly clock: Clock;
  /** How often it samples the loop. @default 50 */
  readonly sampleMs?: number;
  /** Lateness of a sample that is only the loop's ordinary jitter, not deafness. @default 100 */
  readonly toleranceMs?: number;
  /** How long a deaf stretch is remembered: longer than any silence judged with it. @default 15 min */
  readonly keepMs?: number;
  /** Where a stretch of at least `warnAboveMs` is reported (it explains later delays). */
  readonly logger?: Logger;
  /** @default 1000 */
  readonly warnAboveMs?: number;
}

/**
 * Measures when this process could not listen: stretches in which its event loop did not run, because
 * it was busy, paused (SIGSTOP), or starved of CPU on a loaded machine. During such a stretch messages
 * wait in the kernel's socket buffers; whoever sent them was not silent, this process was deaf. A
 * liveness check subtracts these stretches from a peer's silence. Node's `monitorEventLoopDelay` gives a
 * histogram of delays but not when they happened, which this needs; so the loop is sampled here, on the
 * injected clock (on a manual clock timers are never late and nothing is deaf).
 *
 * A check that runs right after a stretch, before this meter's own sample (both timers were due),
 * still counts it: an overdue sample is a stretch that has not ended yet.
 */
export class DeafnessMeter implements Deafness {
  readonly #clock: Clock;
  readonly #sampleMs: number;
  readonly #toleranceMs: number;
  readonly #keepMs: number;
  readonly #logger: Logger | undefined;
  readonly #warnAboveMs: number;
  /** Finished stretches, oldest first: deaf from `fromMs` to `toMs`. */
  readonly #stretches: Array<{ readonly fromMs: number; readonly toMs: number }> = [];
  #lastSampleMs: number;
  #timer: TimerHandle | undefined;

  constructor(options: DeafnessMeterOptions) {
    this.#clock = options.clock;
    this.#sampleMs = options.sampleMs ?? 50;
    this.#toleranceMs = options.toleranceMs ?? 100;
    this.#keepMs = options.keepMs ?? 15 * 60_000;
    this.#logger = options.logger;
    this.#warnAboveMs = options.warnAboveMs ?? 1_000;
    this.#lastSampleMs = this.#clock.now();
    this.#timer = this.#clock.setTimeout(() => this.#sample(), this.#sampleMs);
  }

  deafMs(sinceMs: number): number {
    const now = this.#clock.now();
    let total = 0;
    for (const { fromMs, toMs } of this.#stretches) total += overlap(fromMs, toMs, sinceMs, now);
    const open = this.#openStretchFrom(now);
    if (open !== undefined) total += overlap(open, now, sinceMs, now);
    return total;
  }

  /** Stops sampling. */
  close(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Where the stretch still going on began, if the sample due is overdue. */
  #openStretchFrom(now: number): number | undefined {
    return now - this.#lastSampleMs > this.#sampleMs + this.#toleranceMs ? this.#lastSampleMs + this.#sampleMs : undefined;
  }

  #sample(): void {
    const now = this.#clock.now();
    const from = this.#openStretchFrom(now);
    if (from !== undefined) {
      this.#stretches.push({ fromMs: from, toMs: now });
      if (now - from >= this.#warnAboveMs) {
        this.#logger?.warn({ deafMs: now - from }, `this process's event loop did not run for ${now - from} ms (busy, paused or starved of CPU); peers are not judged by their silence meanwhile`);
      }
    }
    while (this.#stretches.length > 0 && (this.#stretches[0] as { toMs: number }).toMs < now - this.#keepMs) this.#stretches.shift();
    this.#lastSampleMs = now;
    this.#timer = this.#clock.setTimeout(() => this.#sample(), this.#sampleMs);
  }
}

/** The length of [a0, a1] ∩ [b0, b1]. */
function overlap(a0: number, a1: number, b0: number, b1: number): number {
  return Math.max(0, Math.min(a1, b1) - Math.max(a0, b0));
}
