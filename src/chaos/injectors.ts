import { type Clock, TradeswarmError, errorMessage } from '../core/index.js';
import type { EventAnswer } from '../client/index.js';
import type { Lab } from './lab.js';
import type { FaultKind, ScheduledFault } from './schedule.js';

/** What one fault did, as measured from outside. */
export interface FaultResult {
  readonly seq: number;
  readonly kind: FaultKind;
  readonly agent: string | null;
  /** The step it was scheduled after, and the steps the deployment had closed when it was injected. */
  readonly atStep: number;
  readonly injectedAtStep: number;
  readonly injectedAtMs: number;
  readonly holdMs: number;
  /**
   * Injection → the control plane's `lost` event for the agent; for the broker, → its `bus` event
   * (its own connection dropped) or the first `lost`; for `serve-kill`, → the restarted serve
   * answering; for `leader-kill`, → the follower leading. `null`: not seen.
   */
  readonly detectedMs: number | null;
  /**
   * Injection → the agent's `restarted` or `failed-over` event (the broker: every agent lost meanwhile back and a
   * step closed again); for `serve-kill` and `leader-kill`, → the deployment closing a step again. `null`: not within the wait.
   */
  readonly recoveredMs: number | null;
  /** What was seen, in words (the sandbox, the events, why a time is missing). */
  readonly note: string;
}

/** What an injector works on: the lab, the deployment, the clock and how long to wait for recovery. */
export interface FaultContext {
  readonly lab: Lab;
  readonly deployment: { readonly id: string; readonly name: string };
  readonly clock: Clock;
  readonly recoveryTimeoutMs: number;
  /** How often the API is asked while a fault is watched. */
  readonly pollMs: number;
}

/** States in which a deployment still trades (or will). */
const LIVE_STATES = new Set(['pending', 'starting', 'running', 'draining']);

/** A fault injected and recovered from, and what is still to come of it (a paused sandbox resumed after its hold). */
export interface InjectedFault {
  readonly result: FaultResult;
  /** Resolves with the words to add to its note once the rest has happened. */
  readonly rest: Promise<string>;
}

/**
 * Injects `fault` and waits for the deployment to recover from it (or for `recoveryTimeoutMs`), measuring
 * detection and recovery through the control plane's public API. `cursor` is the id of the last
 * event seen before it; events after it are the fault's.
 */
export async function injectFault(fault: ScheduledFault, context: FaultContext, cursor: number): Promise<InjectedFault> {
  const { lab, deployment } = context;
  const injectedAtStep = (await lab.view(deployment.id))?.steps ?? -1;
  const base = { seq: fault.seq, kind: fault.kind, agent: fault.agent, atStep: fault.atStep, injectedAtStep, holdMs: fault.holdMs };
  const done = Promise.resolve('');
  if (fault.kind === 'serve-kill') return { result: { ...base, ...(await serveKill(context, injectedAtStep)) }, rest: done };
  if (fault.kind === 'leader-kill') return { result: { ...base, ...(await leaderKill(context, injectedAtStep)) }, rest: done };
  if (fault.kind === 'broker-restart') return { result: { ...base, ...(await brokerRestart(context, fault.holdMs, cursor, injectedAtStep)) }, rest: done };
  const { rest, ...measured } = await agentFault(fault, context, cursor);
  return { result: { ...base, ...measured }, rest };
}

type Measured = Pick<FaultResult, 'injectedAtMs' | 'detectedMs' | 'recoveredMs' | 'note'>;

/** SIGKILL of the agent's process, its sandbox killed, or its sandbox paused for `holdMs` and resumed. */
async function agentFault(fault: ScheduledFault, context: FaultContext, cursor: number): Promise<Measured & { readonly rest: Promise<string> }> {
  const { lab, deployment, clock } = context;
  const agent = fault.agent as string;
  const sandboxId = await lab.sandboxOf(deployment.id, agent);
  let injectedAtMs: number;
  let resumed: Promise<string> = Promise.resolve('');
  if (fault.kind === 'agent-kill') {
    const sandbox = await lab.provider.connect(sandboxId);
    const processes = await sandbox.commands.list();
    const node = processes.find((info) => [info.cmd, ...info.args].join(' ').includes('node'));
    if (node === undefined) throw new TradeswarmError(`no node process in ${agent}'s sandbox ${sandboxId}: ${processes.map((info) => info.cmd).join(', ') || 'none'}`);
    injectedAtMs = clock.now();
    await sandbox.commands.kill(node.pid);
  } else if (fault.kind === 'sandbox-kill') {
    injectedAtMs = clock.now();
    await lab.provider.kill(sandboxId);
  } else {
    injectedAtMs = clock.now();
    await lab.provider.pause(sandboxId);
    resumed = sleep(clock, fault.holdMs).then(async () => {
      try {
        await lab.provider.connect(sandboxId);
        return `; sandbox ${sandboxId} resumed after ${fault.holdMs} ms`;
      } catch (error) {
        return `; sandbox ${sandboxId} could not be resumed after ${fault.holdMs} ms (${errorMessage(error)})`;
      }
    });
  }
  const seen = await watchAgent(context, agent, cursor, injectedAtMs);
  return { injectedAtMs, ...seen, note: `${agent} in ${sandboxId}: ${seen.note}`, rest: resumed };
}

/**
 * Waits for the agent's `lost` event after `cursor`, then for it to be back: its `restarted` event, or
 * the deployment closing a step again (in lockstep no step closes without it, so its own process took
 * part again: a paused sandbox resumed before the restart). Then, so that faults do not overlap, for
 * the restart itself to settle (`restarted`, `gone` or `halted`), within the same wait.
 */
async function watchAgent(context: FaultContext, agent: string, cursor: number, injectedAtMs: number): Promise<Omit<Measured, 'injectedAtMs'>> {
  const { lab, deployment, clock } = context;
  const deadline = clock.now() + context.recoveryTimeoutMs;
  let lost: EventAnswer | undefined;
  let stepsAtLoss = Number.POSITIVE_INFINITY;
  let back: { readonly atMs: number; readonly how: string } | undefined;
  for (;;) {
    const events = (await lab.eventsAfter(deployment.id, cursor).catch(() => [])).filter((event) => event.agentId === agent);
    const view = await lab.view(deployment.id);
    if (lost === undefined) {
      lost = events.find((event) => event.kind === 'lost');
      if (lost !== undefined) stepsAtLoss = view?.steps ?? stepsAtLoss;
    }
    const after = lost === undefined ? [] : events.filter((event) => event.id > (lost as EventAnswer).id);
    // Back by a restart, or by its hot standby taking over.
    const restarted = after.find((event) => event.kind === 'restarted' || event.kind === 'failed-over');
    const end = after.find((event) => event.kind === 'gone' || event.kind === 'halted' || event.kind === 'alert');
    const detectedMs = lost === undefined ? null : lost.atMs - injectedAtMs;
    if (restarted !== undefined && (back === undefined || restarted.atMs < back.atMs)) back = { atMs: restarted.atMs, how: restarted.detail ?? 'restarted' };
    // Two steps: the one in flight at the loss may close without it (decided before, or by its old process as it was stopped).
    if (back === undefined && view !== undefined && view.steps > stepsAtLoss + 1) back = { atMs: clock.now(), how: `trading again at step ${view.steps} before a restart (its own process took part again)` };
    const settled = restarted !== undefined ? `; ${restarted.detail ?? 'restarted'}` : end !== undefined ? `; then ${end.kind}: ${end.detail ?? ''}` : undefined;
    const ended = view !== undefined && !LIVE_STATES.has(view.state) ? `; the deployment ended (${view.state})` : undefined;
    const timedOut = clock.now() > deadline ? `; ${lost === undefined ? 'never marked lost' : back === undefined ? 'not back' : 'its restart did not settle'} within ${context.recoveryTimeoutMs} ms` : undefined;
    const outcome = settled ?? ended ?? timedOut;
    if (outcome !== undefined) {
      const how = back === undefined || back.how === restarted?.detail ? '' : `; ${back.how}`;
      return { detectedMs, recoveredMs: back === undefined ? null : back.atMs - injectedAtMs, note: `lost (${lost?.detail ?? 'never'})${how}${outcome}` };
    }
    await sleep(clock, context.pollMs);
  }
}

/** The broker's process killed, started again on the same port after `holdMs`. */
async function brokerRestart(context: FaultContext, holdMs: number, cursor: number, stepsAt: number): Promise<Measured> {
  const { lab, deployment, clock } = context;
  const injectedAtMs = clock.now();
  await lab.killBroker();
  await sleep(clock, holdMs);
  await lab.startBroker();
  const deadline = clock.now() + context.recoveryTimeoutMs;
  for (;;) {
    const events = await lab.eventsAfter(deployment.id, cursor).catch(() => []);
    const lost = events.filter((event) => event.kind === 'lost');
    const pending = [...new Set(lost.map((event) => event.agentId))].filter(
      (agent) => !events.some((event) => event.agentId === agent && (event.kind === 'restarted' || event.kind === 'failed-over') && event.id > (lost.find((l) => l.agentId === agent) as EventAnswer).id),
    );
    // The control plane says when its own connection dropped (a `bus` event), or takes an agent for lost.
    const noticed = events.find((event) => (event.kind === 'bus' && (event.detail ?? '').includes('dropped')) || event.kind === 'lost');
    const detectedMs = noticed === undefined ? null : noticed.atMs - injectedAtMs;
    const view = await lab.view(deployment.id);
    const who = lost.length === 0 ? 'no agent marked lost' : `lost: ${[...new Set(lost.map((event) => event.agentId))].join(', ')}`;
    if (view !== undefined && view.steps > stepsAt && pending.length === 0) return { injectedAtMs, detectedMs, recoveredMs: clock.now() - injectedAtMs, note: `broker down ${holdMs} ms; ${who}; trading again at step ${view.steps}` };
    if (view !== undefined && !LIVE_STATES.has(view.state)) return { injectedAtMs, detectedMs, recoveredMs: null, note: `broker down ${holdMs} ms; ${who}; the deployment ended (${view.state})` };
    if (clock.now() > deadline) return { injectedAtMs, detectedMs, recoveredMs: null, note: `broker down ${holdMs} ms; ${who}; ${pending.length > 0 ? `not restarted: ${pending.join(', ')}` : 'no step closed'} within ${context.recoveryTimeoutMs} ms` };
    await sleep(clock, context.pollMs);
  }
}

/** Serve SIGKILLed and started again on the same store. */
async function serveKill(context: FaultContext, stepsAt: number): Promise<Measured> {
  const { lab, deployment, clock } = context;
  const injectedAtMs = clock.now();
  await lab.killServe();
  await lab.startServe();
  const detectedMs = clock.now() - injectedAtMs;
  const resumedAt = (await lab.view(deployment.id))?.steps ?? stepsAt;
  return untilTradingAgain(context, { injectedAtMs, detectedMs, what: `killed at step ${stepsAt}; resumed at step ${resumedAt}`, after: 'the restart', killedAt: stepsAt, from: Math.max(stepsAt, resumedAt) });
}

/**
 * The leading serve SIGKILLed while another follows on the same PostgreSQL: the follower takes the
 * lease once it expires and resumes the deployment (adopting its agents on an external cloud and broker).
 * Once the deployment trades again, a new follower is started for the next fault.
 */
async function leaderKill(context: FaultContext, stepsAt: number): Promise<Measured> {
  const { lab, clock } = context;
  if (lab.serveCount < 2) throw new TradeswarmError('leader-kill needs a follower beside the leader: the lab runs one serve');
  const injectedAtMs = clock.now();
  await lab.killServe();
  if (!(await lab.untilLeader(context.recoveryTimeoutMs, context.pollMs))) {
    return { injectedAtMs, detectedMs: null, recoveredMs: null, note: `leader killed at step ${stepsAt}; no follower led within ${context.recoveryTimeoutMs} ms` };
  }
  const detectedMs = clock.now() - injectedAtMs;
  const measured = await untilTradingAgain(context, { injectedAtMs, detectedMs, what: `leader killed at step ${stepsAt}; the follower led after ${Math.round(detectedMs)} ms`, after: 'the takeover', killedAt: stepsAt, from: stepsAt });
  await lab.startServe();
  return measured;
}

/**
 * Waits (up to the recovery timeout) for the deployment to close a step after step `from`. One that
 * ended complete with steps after `killedAt` recovered too: another serve (a follower) finished it
 * before the restarted one answered; the time is then when that was seen.
 */
async function untilTradingAgain(
  context: FaultContext,
  fault: { readonly injectedAtMs: number; readonly detectedMs: number; readonly what: string; readonly after: string; readonly killedAt: number; readonly from: number },
): Promise<Measured> {
  const { lab, deployment, clock } = context;
  const { injectedAtMs, detectedMs, what } = fault;
  const deadline = clock.now() + context.recoveryTimeoutMs;
  for (;;) {
    const view = await lab.view(deployment.id);
    if (view !== undefined && view.steps > fault.from) return { injectedAtMs, detectedMs, recoveredMs: clock.now() - injectedAtMs, note: `${what}; trading again at step ${view.steps}` };
    if (view?.state === 'complete' && view.steps > fault.killedAt) return { injectedAtMs, detectedMs, recoveredMs: clock.now() - injectedAtMs, note: `${what}; the run was complete (step ${view.steps}) when seen` };
    if (view !== undefined && !LIVE_STATES.has(view.state)) return { injectedAtMs, detectedMs, recoveredMs: null, note: `${what}; the deployment ended (${view.state}) after ${fault.after}` };
    if (clock.now() > deadline) return { injectedAtMs, detectedMs, recoveredMs: null, note: `${what}; no step closed within ${context.recoveryTimeoutMs} ms of ${fault.after}` };
    await sleep(clock, context.pollMs);
  }
}

/** Resolves after `ms` on `clock`. */
export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimeout(resolve, ms));
}
