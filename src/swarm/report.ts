import type { DecisionSummary } from '../decision/index.js';
import type { RunWarning } from '../runspec/index.js';
import type { SessionReport } from '../trading/index.js';
import type { AgentAbsence } from './absences.js';
import type { AgentReport, SwarmEvent } from './fleet.js';
import type { SwarmAgreement, SwarmLatency } from './ledger.js';

/**
 * How a run ended (the CLI's exit code follows it):
 * - `complete`: every step decided, every agent taking part (exit 0);
 * - `degraded`: every step decided, some without an agent lost for good (see `absences`; exit 3);
 * - `halted`: stopped before the end of the data by a fault: an essential agent lost, an agent lost
 *   for good under `onLostAgent: halt`, or the stall watchdog (see `halted`; exit 2);
 * - `stopped`: stopped on request, e.g. SIGINT (exit 130) or SIGTERM (exit 143).
 */
export type SwarmOutcome = 'complete' | 'degraded' | 'halted' | 'stopped';

/** The report of a swarm run. */
export interface SwarmReport extends SessionReport {
  readonly outcome: SwarmOutcome;
  readonly topology: string;
  readonly pacing: string;
  readonly sandbox: 'local' | 'e2b';
  readonly broker: string;
  /**
   * An external broker's request/reply round trip before the run (median of a few, ms); `null` on the
   * embedded broker. Tens of ms mean the broker holds small packets (Mosquitto without `set_tcp_nodelay true`).
   */
  readonly brokerRoundTripMs: number | null;
  /** `decided`: steps a decider answered; `refused`: times the ring refused a step (lockstep retries it). */
  readonly steps: { readonly total: number; readonly published: number; readonly decided: number; readonly refused: number };
  readonly agents: readonly AgentReport[];
  /**
   * What the decision pipeline did (consensus votes and agreement, allocator, risk states), as the
   * first deciding agent reported it in its last checkpoint; `null` when none reported.
   */
  readonly pipeline: DecisionSummary | null;
  /** Decisions of the same step by several agents (a mesh) that agreed, and the rate. */
  readonly agreement: SwarmAgreement;
  /** Orders the venue answered `duplicate` (a mesh's other deciders submitting the same order). */
  readonly duplicateOrders: number;
  readonly latencyMs: SwarmLatency;
  readonly messagesPerSecond: number;
  readonly messages: number;
  /**
   * Set when the run stopped before the end of the data (outcome `halted` or `stopped`): why, and
   * the first step it did not trade (steps before it were decided and closed at the venue).
   */
  readonly halted: { readonly reason: string; readonly atStep: number } | null;
  /** Steps decided without an agent that was lost (empty in a complete run). */
  readonly absences: readonly AgentAbsence[];
  /**
   * The latest events (`EVENTS_KEPT`, 200); the earlier ones were passed on as they happened:
   * `tradeswarm run` printed them, a control plane stored them (`tradeswarm logs <name>`).
   */
  readonly events: readonly SwarmEvent[];
  /** How many events there were in all; more than `events` holds when earlier ones were left out. */
  readonly eventsTotal: number;
  /** What the spec will not do as written (a warm-up longer than the data), as `tradeswarm backtest` finds it. */
  readonly warnings: readonly RunWarning[];
  /** Run time from the first step to the last decision, in ms. */
  readonly tradingMs: number;
  /** Time until every agent was ready, in ms. */
  readonly readyMs: number;
  readonly elapsedMs: number;
}

