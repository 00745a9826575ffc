import { summarize } from '../core/index.js';
import type { FaultResult } from './injectors.js';
import { type ChaosResult, type TopologyResult, topologyOk } from './result.js';
import type { FaultKind } from './schedule.js';

/** A time's p50 and max over the faults that had one. */
export interface TimeSummary {
  readonly count: number;
  readonly p50Ms: number;
  readonly maxMs: number;
}

/** One kind of fault in one topology. */
export interface KindSummary {
  readonly kind: FaultKind;
  readonly injected: number;
  /** Over the faults that were detected; `null` when none was. */
  readonly detection: TimeSummary | null;
  readonly recovery: TimeSummary | null;
  readonly undetected: number;
  readonly unrecovered: number;
}

/** Injected, detection and recovery (p50, max) of each kind, in the order of `kinds`. Pure. */
export function summarizeFaults(faults: readonly FaultResult[], kinds: readonly FaultKind[]): KindSummary[] {
  return kinds.map((kind) => {
    const mine = faults.filter((fault) => fault.kind === kind);
    const times = (pick: (fault: FaultResult) => number | null): TimeSummary | null => {
      const summary = summarize(mine.map(pick).filter((value): value is number => value !== null));
      return summary === null ? null : { count: summary.count, p50Ms: summary.p50, maxMs: summary.max };
    };
    return {
      kind,
      injected: mine.length,
      detection: times((fault) => fault.detectedMs),
      recovery: times((fault) => fault.recoveredMs),
      undetected: mine.filter((fault) => fault.detectedMs === null).length,
      unrecovered: mine.filter((fault) => fault.recoveredMs === null).length,
    };
  });
}

const duration = (summary: TimeSummary | null): string => (summary === null ? '-' : `${Math.round(summary.p50Ms)} / ${Math.round(summary.maxMs)} ms`);

/** A table per topology (faults by kind with their times; orders lost and doubled; fills and portfolio identical) and the verdict. */
export function formatChaosReport(result: ChaosResult): string {
  const lines = [`chaos: seed ${result.seed}, ${result.steps} steps, ${result.perKind} of each fault (${result.kinds.join(', ')})`, ''];
  for (const topology of result.topologies) lines.push(...topologyLines(topology, result.kinds), '');
  const bad = result.topologies.filter((topology) => !topologyOk(topology)).map((topology) => topology.topology);
  lines.push(result.ok ? 'result: 0 lost, 0 duplicated, identical to the fault-free run, in every topology' : `result: FAILED in ${bad.join(', ')}`);
  return `${lines.join('\n')}\n`;
}

function topologyLines(topology: TopologyResult, kinds: readonly FaultKind[]): string[] {
  const rows: string[][] = [['fault', 'injected', 'detection p50 / max', 'recovery p50 / max', 'not detected', 'not recovered']];
  for (const kind of summarizeFaults(topology.faults, kinds)) {
    rows.push([kind.kind, String(kind.injected), duration(kind.detection), duration(kind.recovery), String(kind.undetected), String(kind.unrecovered)]);
  }
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  const table = rows.map((row) => `  ${row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  ')}`);
  const head = `${topology.topology}: ${topology.state}${topology.deployment === null ? '' : ` (${topology.deployment.name})`}, ${topology.faults.length} of ${topology.schedule.length} faults injected, ${(topology.durationMs / 1000).toFixed(1)} s`;
  const comparison = topology.comparison;
  const skipped = topology.skipped.map((fault) => `  not injected: ${fault.kind} (fault ${fault.seq}): ${fault.why}`);
  if (comparison === null) return [head, ...table, ...skipped, `  could not compare: ${topology.error ?? 'no result'}`];
  const yes = (value: boolean): string => (value ? 'identical' : 'DIFFERENT');
  return [
    head,
    ...table,
    ...skipped,
    `  orders: ${comparison.ordersExpected} expected, ${comparison.ordersActual} stored; lost ${comparison.lost.length}; duplicated ${comparison.duplicatedById.length} by client order id, ${comparison.duplicatedByContent.length} by content; ${comparison.unexpected.length} unexpected`,
    `  orders ${yes(comparison.ordersIdentical)}, fills ${yes(comparison.fillsIdentical)}, final portfolio ${yes(comparison.portfolioIdentical)}`,
    ...(comparison.firstDifference === null ? [] : [`  first difference: ${comparison.firstDifference.detail}`]),
  ];
}
