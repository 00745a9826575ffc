/**
 * How an environment recovers a lost agent (the environment matrix's failover mode):
 * - `automatic`: the ladder climbs by itself, soft restart → hard restart → alert;
 * - `manual`: an alert is raised and the agent waits for an operator to restart it;
 * - `none`: an alert is raised and the agent is lost for good (the spec's `onLostAgent` decides).
 */
export const RECOVERY_MODES = ['automatic', 'manual', 'none'] as const;
export type RecoveryMode = (typeof RECOVERY_MODES)[number];

/**
 * The rungs of the recovery ladder: its hot standby takes over (failover, when it has one ready),
 * the agent's process started again in its own sandbox (soft), in a new sandbox (hard), or nothing
 * more but an alert for a person.
 */
export type RecoveryRung = 'failover' | 'soft-restart' | 'hard-restart' | 'alert';

/** What decides the next rung. */
export interface RecoveryPolicy {
  readonly mode: RecoveryMode;
  /** Tries in the agent's own sandbox before new sandboxes are tried (when the sandbox is still there). */
  readonly softRestarts: number;
  /** Restarts of one agent allowed within `restartWindowMs`; past them the ladder ends in an alert. */
  readonly maxRestarts: number;
  readonly restartWindowMs: number;
}

/** Where one agent's recovery stands when the next rung is chosen. */
export interface RecoveryState {
  /** Tries so far for this loss (0 for the first). */
  readonly attempt: number;
  /** Its restarts within the policy's window, this loss's included. */
  readonly recentRestarts: number;
  /** Whether an operator asked for this try (`manual` mode climbs only then). */
  readonly requested: boolean;
  /** Whether its sandbox is still there to restart in. */
  readonly sandboxAlive: boolean;
  /** Whether it has a hot standby ready to take over. */
  readonly standbyReady: boolean;
}

/** The next rung for a lost agent, and why, for the event that records it. */
export function nextRung(policy: RecoveryPolicy, state: RecoveryState): { readonly rung: RecoveryRung; readonly why: string } {
  if (policy.mode === 'none') return { rung: 'alert', why: 'recovery is off in this environment (failover: none): it is not restarted' };
  if (policy.mode === 'manual' && !state.requested) return { rung: 'alert', why: 'this environment recovers by hand (failover: manual): restart it with `tradeswarm restart <deployment> <agent>`' };
  if (state.recentRestarts >= policy.maxRestarts) {
    return {
      rung: 'alert',
      why:
        policy.maxRestarts === 0
          ? 'not restarted (swarm.maxRestarts is 0)'
          : `restarted ${state.recentRestarts} times within ${policy.restartWindowMs} ms (swarm.maxRestarts, swarm.restartWindowMs), lost again`,
    };
  }
  if (state.attempt === 0 && state.standbyReady) return { rung: 'failover', why: 'its hot standby takes over' };
  if (state.attempt < policy.softRestarts && state.sandboxAlive) return { rung: 'soft-restart', why: `try ${state.attempt + 1}: started again in its own sandbox` };
  return { rung: 'hard-restart', why: `try ${state.attempt + 1}: deployed again in a new sandbox` };
}

/** The restart times of the last `windowMs` before `nowMs` (older ones no longer count against the budget). */
export function withinWindow(times: readonly number[], nowMs: number, windowMs: number): number[] {
  return times.filter((time) => nowMs - time < windowMs);
}
