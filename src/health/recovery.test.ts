import { describe, expect, it } from 'vitest';
import { type RecoveryPolicy, type RecoveryState, nextRung, withinWindow } from './recovery.js';

const AUTOMATIC: RecoveryPolicy = { mode: 'automatic', softRestarts: 1, maxRestarts: 3, restartWindowMs: 60_000 };
const first: RecoveryState = { attempt: 0, recentRestarts: 0, requested: false, sandboxAlive: true, standbyReady: false };

describe('nextRung', () => {
  it.each([
    ['automatic, first try, its sandbox there', AUTOMATIC, first, 'soft-restart'],
    ['automatic, first try, a standby ready', AUTOMATIC, { ...first, standbyReady: true }, 'failover'],
    ['automatic, the failover failed', AUTOMATIC, { ...first, attempt: 1, recentRestarts: 1, standbyReady: true }, 'hard-restart'],
    ['automatic, a standby ready but the budget spent', AUTOMATIC, { ...first, recentRestarts: 3, standbyReady: true }, 'alert'],
    ['automatic, first try, its sandbox gone', AUTOMATIC, { ...first, sandboxAlive: false }, 'hard-restart'],
    ['automatic, second try', AUTOMATIC, { ...first, attempt: 1, recentRestarts: 1 }, 'hard-restart'],
    ['automatic, no soft tries', { ...AUTOMATIC, softRestarts: 0 }, first, 'hard-restart'],
    ['automatic, budget spent in the window', AUTOMATIC, { ...first, recentRestarts: 3 }, 'alert'],
    ['automatic, maxRestarts 0', { ...AUTOMATIC, maxRestarts: 0 }, first, 'alert'],
    ['manual, nobody asked', { ...AUTOMATIC, mode: 'manual' }, first, 'alert'],
    ['manual, an operator asked', { ...AUTOMATIC, mode: 'manual' }, { ...first, requested: true }, 'soft-restart'],
    ['none', { ...AUTOMATIC, mode: 'none' }, { ...first, requested: true }, 'alert'],
  ] as const)('%s: %s', (_, policy, state, rung) => {
    expect(nextRung(policy, state).rung).toBe(rung);
  });

  it('says why, naming the settings to change', () => {
    expect(nextRung(AUTOMATIC, { ...first, recentRestarts: 3 }).why).toBe('restarted 3 times within 60000 ms (swarm.maxRestarts, swarm.restartWindowMs), lost again');
    expect(nextRung({ ...AUTOMATIC, mode: 'manual' }, first).why).toMatch(/tradeswarm restart <deployment> <agent>/);
  });
});

describe('withinWindow', () => {
  it('keeps the restarts of the last window only', () => {
    expect(withinWindow([0, 10_000, 59_999, 70_000], 80_000, 60_000)).toEqual([59_999, 70_000]);
  });
});
