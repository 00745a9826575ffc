import type { Comparison } from './compare.js';
import type { FaultResult } from './injectors.js';
import type { FaultKind, ScheduledFault } from './schedule.js';
import type { Topology } from '../topology/index.js';

/** One topology's chaos run. */
export interface TopologyResult {
  readonly topology: Topology;
  readonly deployment: { readonly id: string; readonly name: string } | null;
  /** The deployment's state at the end (`complete`, `halted`…), or why it never ran. */
  readonly state: string;
  readonly schedule: readonly ScheduledFault[];
  readonly faults: readonly FaultResult[];
  /** Faults that could not be injected (what they aimed at was not there), and why. */
  readonly skipped: ReadonlyArray<{ readonly seq: number; readonly kind: FaultKind; readonly why: string }>;
  readonly comparison: Comparison | null;
  /** Why the run could not go on, if it could not. */
  readonly error: string | null;
  readonly durationMs: number;
}

/** What {@link runChaos} measured. */
export interface ChaosResult {
  readonly seed: number;
  readonly steps: number;
  readonly kinds: readonly FaultKind[];
  readonly perKind: number;
  readonly topologies: readonly TopologyResult[];
  /** Every topology ended complete, with nothing lost or doubled, and identical to the fault-free run. */
  readonly ok: boolean;
}

/** Whether a topology's run ended complete with nothing lost, doubled or different. */
export function topologyOk(topology: TopologyResult): boolean {
  const comparison = topology.comparison;
  return topology.state === 'complete' && comparison !== null && comparison.identical && comparison.lost.length === 0 && comparison.duplicatedById.length === 0 && comparison.duplicatedByContent.length === 0;
}

