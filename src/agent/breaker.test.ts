import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../core/index.js';
import { RING_BREAKER_TRANSITIONS, RingBreaker, type RingBreakerEvent, type RingBreakerState, ringBreakerTransition } from './breaker.js';

describe('ringBreakerTransition (the table)', () => {
  const EXPECTED: Array<[RingBreakerState, RingBreakerEvent, RingBreakerState]> = [
    ['closed', 'stage-lost', 'open'],
    ['closed', 'lap-completed', 'closed'],
    ['open', 'stage-lost', 'open'],
    ['open', 'stages-back', 'half-open'],
    ['open', 'lap-completed', 'open'],
    ['half-open', 'stage-lost', 'open'],
    ['half-open', 'trial-admitted', 'half-open'],
    ['half-open', 'lap-completed', 'closed'],
  ];

  it.each(EXPECTED)('%s + %s → %s', (state, event, next) => {
    expect(ringBreakerTransition(state, event)).toBe(next);
  });

  it('lists exactly those pairs', () => {
    const listed = Object.entries(RING_BREAKER_TRANSITIONS).flatMap(([state, row]) => Object.entries(row).map(([event, next]) => [state, event, next]));
    expect(listed.sort()).toEqual([...EXPECTED].sort());
  });

  it('is frozen', () => {
    expect(Object.isFrozen(RING_BREAKER_TRANSITIONS)).toBe(true);
  });

  it.each([
    ['closed', 'stages-back'],
    ['closed', 'trial-admitted'],
    ['open', 'trial-admitted'],
    ['half-open', 'stages-back'],
  ] as Array<[RingBreakerState, RingBreakerEvent]>)('throws InvalidInputError naming `event` on the unlisted pair %s + %s', (state, event) => {
    let thrown: unknown;
    try {
      ringBreakerTransition(state, event);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(InvalidInputError);
    expect(thrown).toMatchObject({ field: 'event', retryable: false, message: `event: ${event} is not allowed in state ${state}` });
  });
});

describe('RingBreaker', () => {
  it('starts closed and admits every step while closed', () => {
    const breaker = new RingBreaker();
    expect(breaker.state).toBe('closed');
    expect([breaker.admit(), breaker.admit(), breaker.admit()]).toEqual([undefined, undefined, undefined]);
    breaker.observe(true, []);
    expect(breaker.state).toBe('closed');
    expect(breaker.opened).toBe(0);
  });

  it('opens on a failed observe and refuses steps naming the silent stages', () => {
    const breaker = new RingBreaker();
    breaker.observe(false, ['analyser']);
    expect(breaker.state).toBe('open');
    expect(breaker.opened).toBe(1);
    expect(breaker.admit()).toBe('ring breaker open: stage analyser silent');
    breaker.observe(false, ['analyser', 'executor']);
    expect(breaker.admit()).toBe('ring breaker open: stage analyser, executor silent');
    expect(breaker.opened).toBe(1);
  });

  it('stays open when a lap completes while a stage is lost', () => {
    const breaker = new RingBreaker();
    breaker.observe(false, ['risk-assessor']);
    breaker.lapCompleted();
    expect(breaker.state).toBe('open');
    expect(breaker.admit()).toMatch(/open: stage risk-assessor silent/);
  });

  it('goes half-open when every stage is back, admits exactly one trial, and closes when its lap completes', () => {
    const breaker = new RingBreaker();
    breaker.observe(false, ['executor']);
    breaker.observe(true, []);
    expect(breaker.state).toBe('half-open');

    expect(breaker.admit()).toBeUndefined();
    expect(breaker.state).toBe('half-open');
    expect(breaker.admit()).toBe('ring breaker half-open: a trial step is going around the ring');
    expect(breaker.admit()).toBe('ring breaker half-open: a trial step is going around the ring');
    // Another healthy observation while the trial is in flight changes nothing.
    breaker.observe(true, []);
    expect(breaker.state).toBe('half-open');
    expect(breaker.admit()).toMatch(/half-open/);

    breaker.lapCompleted();
    expect(breaker.state).toBe('closed');
    expect([breaker.admit(), breaker.admit()]).toEqual([undefined, undefined]);
    expect(breaker.opened).toBe(1);
  });

  it('reopens when a stage is lost during half-open, and counts each opening', () => {
    const breaker = new RingBreaker();
    breaker.observe(false, ['analyser']);
    breaker.observe(true, []);
    expect(breaker.admit()).toBeUndefined();
    breaker.observe(false, ['collector']);
    expect(breaker.state).toBe('open');
    expect(breaker.opened).toBe(2);
    expect(breaker.admit()).toBe('ring breaker open: stage collector silent');

    // Back again: a fresh trial is admitted (the lost one no longer counts as in flight).
    breaker.observe(true, []);
    expect(breaker.state).toBe('half-open');
    expect(breaker.admit()).toBeUndefined();
    breaker.lapCompleted();
    expect(breaker.state).toBe('closed');

    breaker.observe(false, ['executor']);
    expect(breaker.opened).toBe(3);
  });

  it('a half-open breaker whose stage is lost before any trial reopens too', () => {
    const breaker = new RingBreaker();
    breaker.observe(false, ['analyser']);
    breaker.observe(true, []);
    breaker.observe(false, ['analyser']);
    expect(breaker.state).toBe('open');
    expect(breaker.opened).toBe(2);
  });
});
