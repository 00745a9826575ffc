import { TradeswarmError } from '../core/index.js';

/**
 * Where one agent of a run stands.
 * - `deploying`: its sandbox and process are starting; it has not sent a heartbeat yet.
 * - `running`: it heartbeats and takes part in steps.
 * - `recovering`: it was lost (process exited, connection dropped, silent); a restart is under way
 *   or pending. In lockstep it still takes part: steps wait for it.
 * - `gone`: lost for good (restarts used up, not back in time, or never restarted); steps go on
 *   without it or the run halts, by the spec's policy.
 * - `stopping` / `stopped`: the run asked it to stop / its process ended.
 */
export type AgentLifecycle = 'deploying' | 'running' | 'recovering' | 'gone' | 'stopping' | 'stopped';

/** What can happen to an agent. */
export type AgentLifecycleEvent = 'ready' | 'lost' | 'recovered' | 'abandoned' | 'stop' | 'exited';

/** The only moves an agent's lifecycle makes; anything else is a fault of the control plane. */
const TRANSITIONS: { readonly [S in AgentLifecycle]: Partial<Readonly<Record<AgentLifecycleEvent, AgentLifecycle>>> } = {
  deploying: { ready: 'running', stop: 'stopping' },
  running: { lost: 'recovering', abandoned: 'gone', stop: 'stopping' },
  // A restart attempt that dies before it is ready is lost again, and tried again.
  recovering: { recovered: 'running', lost: 'recovering', abandoned: 'gone', stop: 'stopping' },
  gone: {},
  stopping: { exited: 'stopped' },
  stopped: {},
};

/** The control plane tried a move its agent lifecycle table does not list (a bug, not a fault of an agent). */
export class LifecycleError extends TradeswarmError {
  override readonly name = 'LifecycleError';
}

/**
 * The state after `event` in `state`.
 * @throws LifecycleError when the table lists no such move.
 */
export function transition(state: AgentLifecycle, event: AgentLifecycleEvent): AgentLifecycle {
  const next = TRANSITIONS[state][event];
  if (next === undefined) throw new LifecycleError(`an agent that is ${state} cannot be ${event}; this is a bug in the control plane, please report it`);
  return next;
}

/** Whether `event` is a move from `state` (callers that race with the agent check before they move). */
export function canTransition(state: AgentLifecycle, event: AgentLifecycleEvent): boolean {
  return TRANSITIONS[state][event] !== undefined;
}
