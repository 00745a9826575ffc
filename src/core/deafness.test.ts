import { describe, expect, it } from 'vitest';
import type { Clock, TimerHandle } from './clock.js';
import { ManualClock } from './clock.js';
import { DeafnessMeter } from './deafness.js';
import type { Logger } from './logger.js';

/**
 * A clock whose timers run only when told, late if time jumped past them meanwhile: an event loop that
 * did not run. (ManualClock runs each timer at its due time, so its timers are never late.)
 */
class StallingClock implements Clock {
  #now = 0;
  #next = 1;
  readonly #timers = new Map<number, { dueMs: number; callback: () => void }>();

  now(): number {
    return this.#now;
  }

  setTimeout(callback: () => void, delayMs: number): TimerHandle {
    const id = this.#next++;
    this.#timers.set(id, { dueMs: this.#now + delayMs, callback });
    return { id };
  }

  clearTimeout(handle: TimerHandle): void {
    this.#timers.delete(handle.id);
  }

  /** Time passes and the loop runs: each timer at its due time. */
  run(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      const due = [...this.#timers.entries()].filter(([, timer]) => timer.dueMs <= end).sort((a, b) => a[1].dueMs - b[1].dueMs)[0];
      if (due === undefined) break;
      this.#timers.delete(due[0]);
      this.#now = Math.max(this.#now, due[1].dueMs);
      due[1].callback();
    }
    this.#now = end;
  }

  /** Time passes and the loop does not run (its timers fall due, unrun). */
  stall(ms: number): void {
    this.#now += ms;
  }
}

describe('DeafnessMeter', () => {
  it('counts the stretches its loop did not run, from when the missed sample was due', () => {
    const clock = new StallingClock();
    const meter = new DeafnessMeter({ clock, sampleMs: 50, toleranceMs: 100 });
    clock.run(1_000);
    expect(meter.deafMs(0)).toBe(0);
    clock.stall(3_000);
    // Asked before its own sample ran (a liveness check due at the same time): the stretch is open.
    expect(meter.deafMs(0)).toBe(2_950);
    clock.run(500);
    expect(meter.deafMs(0)).toBe(2_950);
    // Only the part after `since` counts.
    expect(meter.deafMs(2_000)).toBe(2_000);
    expect(meter.deafMs(4_000)).toBe(0);
    meter.close();
  });

  it('takes lateness within the tolerance for jitter, not deafness', () => {
    const clock = new StallingClock();
    const meter = new DeafnessMeter({ clock, sampleMs: 50, toleranceMs: 100 });
    for (let i = 0; i < 20; i++) {
      clock.stall(140);
      clock.run(0);
    }
    expect(meter.deafMs(0)).toBe(0);
    meter.close();
  });

  it('forgets stretches older than keepMs, and reports a long one', () => {
    const clock = new StallingClock();
    const warnings: string[] = [];
    const logger = { warn: (_fields: unknown, message: string) => void warnings.push(message) } as unknown as Logger;
    const meter = new DeafnessMeter({ clock, sampleMs: 50, toleranceMs: 100, keepMs: 10_000, logger, warnAboveMs: 1_000 });
    clock.stall(500);
    clock.run(100);
    clock.stall(2_000);
    clock.run(100);
    expect(meter.deafMs(0)).toBe(450 + 1_950);
    expect(warnings).toEqual([expect.stringMatching(/^this process's event loop did not run for 1950 ms/)]);
    clock.run(11_000);
    expect(meter.deafMs(0)).toBe(0);
    meter.close();
  });

  it('finds nothing deaf on a manual clock, whose timers are never late', () => {
    const clock = new ManualClock();
    const meter = new DeafnessMeter({ clock });
    clock.advance(60_000);
    expect(meter.deafMs(0)).toBe(0);
    meter.close();
    expect(clock.pendingTimers).toBe(0);
  });
});
