import { describe, expect, it } from 'vitest';
import type { FaultResult } from './injectors.js';
import { formatChaosReport, summarizeFaults } from './report.js';
import type { ChaosResult } from './result.js';

const fault = (seq: number, kind: FaultResult['kind'], detectedMs: number | null, recoveredMs: number | null): FaultResult => ({
  seq,
  kind,
  agent: kind === 'serve-kill' || kind === 'broker-restart' ? null : 'a1',
  atStep: seq * 10,
  injectedAtStep: seq * 10,
  injectedAtMs: 0,
  holdMs: 0,
  detectedMs,
  recoveredMs,
  note: '',
});

describe('summarizeFaults', () => {
  it('gives each kind asked for its count, p50 and max of the times measured, and what was not', () => {
    const faults = [fault(0, 'agent-kill', 30, 300), fault(1, 'agent-kill', 10, 100), fault(2, 'agent-kill', 20, null), fault(3, 'broker-restart', null, 4_000)];
    expect(summarizeFaults(faults, ['agent-kill', 'broker-restart', 'pause'])).toEqual([
      { kind: 'agent-kill', injected: 3, detection: { count: 3, p50Ms: 20, maxMs: 30 }, recovery: { count: 2, p50Ms: 100, maxMs: 300 }, undetected: 0, unrecovered: 1 },
      { kind: 'broker-restart', injected: 1, detection: null, recovery: { count: 1, p50Ms: 4_000, maxMs: 4_000 }, undetected: 1, unrecovered: 0 },
      { kind: 'pause', injected: 0, detection: null, recovery: null, undetected: 0, unrecovered: 0 },
    ]);
  });
});

describe('formatChaosReport', () => {
  it('prints a table per topology, the orders, what differs first, and the verdict', () => {
    const comparison = { ordersExpected: 3, ordersActual: 2, lost: [], duplicatedById: [], duplicatedByContent: [], unexpected: [], ordersIdentical: false, fillsIdentical: true, portfolioIdentical: true, identical: false, firstDifference: { what: 'order' as const, index: 2, expected: null, actual: null, detail: 'order 2 (by step, then id): expected x, got nothing' } };
    const result: ChaosResult = {
      seed: 1,
      steps: 100,
      kinds: ['agent-kill'],
      perKind: 1,
      ok: false,
      topologies: [{ topology: 'mesh', deployment: { id: 'chaos-mesh-1', name: 'chaos-mesh' }, state: 'complete', schedule: [], faults: [fault(0, 'agent-kill', 12.4, 250.6)], skipped: [], comparison, error: null, durationMs: 12_345 }],
    };
    expect(formatChaosReport(result)).toBe(
      [
        'chaos: seed 1, 100 steps, 1 of each fault (agent-kill)',
        '',
        'mesh: complete (chaos-mesh), 1 of 0 faults injected, 12.3 s',
        '  fault       injected  detection p50 / max  recovery p50 / max  not detected  not recovered',
        '  agent-kill         1           12 / 12 ms        251 / 251 ms             0              0',
        '  orders: 3 expected, 2 stored; lost 0; duplicated 0 by client order id, 0 by content; 0 unexpected',
        '  orders DIFFERENT, fills identical, final portfolio identical',
        '  first difference: order 2 (by step, then id): expected x, got nothing',
        '',
        'result: FAILED in mesh',
        '',
      ].join('\n'),
    );
  });
});
