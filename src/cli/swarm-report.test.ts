// The swarm run's text report: what it says of the events it holds.
import { describe, expect, it } from 'vitest';
import { VALID } from '../../test/fixtures/specs.js';
import { runBacktest } from '../backtest/index.js';
import { parseSpec, runOptionsFromSpec } from '../runspec/index.js';
import type { SwarmEvent, SwarmReport } from '../swarm/index.js';
import { formatSwarmReport } from './swarm-report.js';

/** A swarm report around a backtest's books, holding `events` of `eventsTotal`. */
async function reportOf(events: readonly SwarmEvent[], eventsTotal: number): Promise<SwarmReport> {
  const { report } = runBacktest(await runOptionsFromSpec(parseSpec(VALID), '.'));
  const noLatency = { barToSignal: null, signalToDecision: null, barToOrder: null, orderToFill: null, barToFill: null, stepRound: null, allDecided: null };
  return {
    ...report,
    outcome: 'complete',
    topology: 'ring',
    pacing: 'lockstep',
    sandbox: 'local',
    broker: 'memory',
    brokerRoundTripMs: null,
    steps: { total: 300, published: 300, decided: 300, refused: eventsTotal },
    agents: [],
    pipeline: null,
    agreement: { compared: 0, agreed: 0, rate: null },
    duplicateOrders: 0,
    latencyMs: noLatency,
    messagesPerSecond: 0,
    messages: 0,
    halted: null,
    absences: [],
    events,
    eventsTotal,
    warnings: [],
    tradingMs: 0,
    readyMs: 0,
    elapsedMs: 0,
  };
}

describe('swarm text report', () => {
  const refused = (atStep: number): SwarmEvent => ({ atStep, agent: 'analyser', kind: 'refused', detail: 'not ready' });

  it('lists every event under "events:" when it holds them all', async () => {
    expect(formatSwarmReport(await reportOf([refused(1), refused(2)], 2))).toMatch(/\nevents:\n {2}step 1: analyser refused: not ready\n {2}step 2: analyser refused: not ready\n$/);
  });

  it('says how many earlier events it left out, and where they went', async () => {
    expect(formatSwarmReport(await reportOf([refused(299)], 300))).toMatch(/\nevents \(the last 1 of 300; the 299 before them were printed on stderr as they happened\):\n {2}step 299: analyser refused: not ready\n$/);
  });
});
