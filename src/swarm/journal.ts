import type { IntentPayload, Resume, StepPayload } from '../agent/index.js';
import type { Bar, FeedPosition } from '../market/index.js';
import type { OrdersRequest } from '../trading/index.js';
import type { AgentHealth } from '../health/index.js';
import type { Fill } from '../venue/index.js';
import type { TradingSessionSnapshot } from '../trading/index.js';
import type { AbsenceState, AgentAbsence } from './absences.js';
import type { LedgerCounts } from './ledger.js';
import type { SwarmEvent } from './fleet.js';
import type { AgentLifecycle } from './lifecycle.js';

/**
 * Where a deployment stands:
 * - `pending`: made, nothing started;
 * - `starting`: its agents are being deployed;
 * - `running`: steps are traded;
 * - `draining`: no new step; agents are told to stop and checkpoint;
 * - `stopped`: drained (the data ended, the run halted by a fault, or it was asked to stop);
 * - `failed`: the control plane could not go on (an agent never came up, an error of its own).
 */
export type DeploymentState = 'pending' | 'starting' | 'running' | 'draining' | 'stopped' | 'failed';

/** What can be saved of a deployment and given back to {@link Deployment.restore}: plain JSON. */
export interface DeploymentSnapshot {
  readonly version: 1;
  readonly swarmId: string;
  readonly state: DeploymentState;
  /** The market position after the last step handed to the agents. */
  readonly position: FeedPosition;
  /** Steps decided and closed at the venue. */
  readonly closedSteps: number;
  readonly halted: { readonly reason: string; readonly atStep: number } | null;
  readonly stopRequested: boolean;
  /** The latest {@link EVENTS_KEPT} events. */
  readonly events: readonly SwarmEvent[];
  /** How many events there were in all (absent in snapshots made before they were counted: as many as `events`). */
  readonly eventsTotal?: number;
  /** Steps decided without an agent: the latest {@link ABSENCES_KEPT} stretches. */
  readonly absences: readonly AgentAbsence[];
  /** How many stretches there were in all (absent in snapshots made before they were counted: as many as `absences`). */
  readonly absencesTotal?: number;
  /**
   * Each agent: `epoch` is its process's (absent in snapshots made before fencing); `health` its
   * latest health check (absent before the first, or with checks off).
   */
  readonly agents: ReadonlyArray<{
    readonly id: string;
    readonly lifecycle: AgentLifecycle;
    readonly restarts: number;
    readonly placement: string;
    readonly epoch?: number;
    readonly health?: Pick<AgentHealth, 'status' | 'reasons' | 'sinceMs'>;
    /** Its hot standby, when it has one now. */
    readonly standby?: { readonly placement: string; readonly epoch: number; readonly ready: boolean };
  }>;
}

/**
 * An orders request the venue took, as it came: `beforeOpen` when it arrived after the previous
 * step had closed and before this one opened (a mesh's late duplicate, typically), so that
 * re-applying the journal puts it on the same side of the step's fills as it was.
 */
export interface JournaledSubmission {
  readonly from: string;
  readonly beforeOpen: boolean;
  readonly request: OrdersRequest;
}

/** One order the venue answered while a step was current. */
export interface JournaledOrder {
  readonly clientOrderId: string;
  readonly step: number;
  readonly agentId: string;
  readonly symbol: string;
  readonly side: 'buy' | 'sell';
  readonly quantity: number;
  readonly status: string;
  readonly reason: string | null;
}

/**
 * What a deployment writes when a step closes, all in one piece, before the next step is published:
 * what re-derives the control plane's side of the run (the step's bars, the orders requests in the
 * order the venue took them, the signals agents sent), what the API shows (orders, fills, the
 * account), and where agents and the market stand (checkpoints taken since the last step closed,
 * the feed's position, the deployment's own snapshot).
 */
export interface ClosedStep {
  readonly index: number;
  readonly timeMs: number;
  readonly bars: readonly Bar[];
  /** Who took part in the step, as last published. */
  readonly participants: readonly string[];
  readonly submissions: readonly JournaledSubmission[];
  /** Each agent's signalled intents of this step (an agent that sent none is absent). */
  readonly signals: Readonly<Record<string, readonly IntentPayload[]>>;
  readonly orders: readonly JournaledOrder[];
  /** Fills the venue made at this step's open and close. */
  readonly fills: readonly Fill[];
  /** The account as the step's decisions saw it, after the fills at its open (published with the step; a replay gives it again). */
  readonly opened: StepPayload['account'];
  readonly account: { readonly equity: number; readonly cash: number; readonly positions: ReadonlyArray<{ readonly symbol: string; readonly quantity: number }> };
  /** The feed's position after this step: a feed opened from it gives the next step. */
  readonly position: FeedPosition;
  /** Checkpoints agents sent since the previous step closed: the latest of each. */
  readonly checkpoints: ReadonlyArray<{ readonly agentId: string; readonly resume: Resume }>;
  readonly snapshot: DeploymentSnapshot;
  /** Every `venueSnapshotEverySteps` steps: the venue as this step left it (see {@link VenueSnapshot}). */
  readonly venue?: VenueSnapshot;
}

/**
 * What a restart needs of the closed steps before `closedSteps` besides the last of them: the
 * trading session (venue, books, portfolio, fills: `TradingSession.snapshot`), who was absent, and
 * the ledger's counts, as they stood once step `closedSteps − 1` closed. A restart from it applies
 * only the steps after it, and reads only those (and the few before it that a deployment holds in
 * memory), where it read and applied every step of the deployment's life.
 */
export interface VenueSnapshot {
  readonly closedSteps: number;
  readonly session: TradingSessionSnapshot;
  readonly absences: AbsenceState;
  readonly ledger: LedgerCounts;
}

/**
 * Where a deployment writes its closed steps. The deployment waits for each write before it
 * publishes the next step (durable before visible: no order of a step is shown, nor a later step
 * traded, before the step is stored); a write that fails is retried until it succeeds or the
 * deployment is stopped.
 */
export interface DeploymentJournal {
  stepClosed(step: ClosedStep): Promise<void>;
  /** The last checkpoints agents sent as the deployment drained (after its last closed step). */
  drained?(checkpoints: ClosedStep['checkpoints']): Promise<void>;
  /**
   * The closed steps from `from` (inclusive) to `to` (exclusive), in order, as {@link stepClosed}
   * wrote them: what an agent is replayed from when its checkpoint is older than the steps the
   * deployment still holds in memory. Without it, such a replay fails (and says so).
   */
  stepsBetween?(from: number, to: number): Promise<readonly StoredStep[]>;
}

/**
 * A closed step as the journal gives it back to replay it to an agent; `opened` is null for a step
 * stored by a tradeswarm that did not store it (before migration 006), which cannot be replayed.
 */
export type StoredStep = Pick<ClosedStep, 'index' | 'bars' | 'participants' | 'signals'> & { readonly opened: ClosedStep['opened'] | null };

/**
 * A stored step, as a restarted deployment re-applies it; `opened` as in {@link StoredStep} (a step
 * before a venue snapshot is rebuilt from it, not re-applied: it must have one).
 */
export type JournaledStep = Pick<ClosedStep, 'index' | 'timeMs' | 'bars' | 'participants' | 'submissions' | 'signals'> & { readonly opened?: ClosedStep['opened'] | null };

/**
 * What a deployment restarted from its journal is given: its closed steps in order, each agent's
 * latest checkpoint, and the snapshot written with the last step. Without `venue`, every closed
 * step from the first; with it, the steps from at most {@link REPLAY_CONTEXT_STEPS} before
 * `venue.closedSteps` (held again in memory: a late order's bars, signals to replay) to the last.
 */
export interface JournalReplay {
  readonly steps: readonly JournaledStep[];
  readonly checkpoints: ReadonlyMap<string, Resume>;
  readonly snapshot: DeploymentSnapshot;
  readonly venue?: VenueSnapshot;
}

/**
 * The closed steps a deployment always holds in memory, and a restart from a venue snapshot reads
 * before it: a slow decider's late orders of them need their bars.
 */
export const REPLAY_CONTEXT_STEPS = 100;

/**
 * The latest events a deployment keeps in memory, in its snapshot (written with every closed step)
 * and in its report; it counts every one (`eventsTotal`). Enough for a run's whole story (a few per
 * lost agent), while a deployment that runs for days and emits events all along (a ring refusing
 * steps, a broker or a store that flaps) writes a snapshot of a bounded size with each step. The
 * earlier events were passed on as they happened: `tradeswarm run` prints them, a control plane
 * stores them all (`tradeswarm logs <name>`).
 */
export const EVENTS_KEPT = 200;

/**
 * The latest stretches of steps decided without an agent that the snapshot written with every closed
 * step carries, with their count (`absencesTotal`): an agent that drops out and comes back all day long
 * (a flaky network, in realtime pacing) would otherwise grow that write with every stretch. The report
 * lists them all; a restart rebuilds them all from the venue snapshot and the steps after it.
 */
export const ABSENCES_KEPT = 100;
