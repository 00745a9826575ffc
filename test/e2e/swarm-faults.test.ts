import { describe, expect, it } from 'vitest';
import { runBacktest } from '../../src/backtest/index.js';
import { silentLogger } from '../../src/core/index.js';
import { type RunningSwarm, parseSwarmSpec, runSwarm } from '../../src/swarm/index.js';
import { oftenTradingSpec } from '../fixtures/specs.js';
import { faultAt, outcome } from './swarm-hooks.js';

/**
 * Faults injected into real swarms (agents are Node processes in local sandboxes, on the embedded
 * broker): in lockstep, a killed agent is waited for, so the run still gives the backtest's trades;
 * an agent lost for good stops the run or lets it go on by the spec's policy, and the report says
 * which; nothing hangs.
 */

/** The fault tests' spec (200 bars, fast heartbeats); `overrides` replace top-level fields. */
function specFor(swarm: Record<string, unknown>, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...oftenTradingSpec('faults', 200, { heartbeatMs: 100, agentTimeoutMs: 1_000, ...swarm }), ...overrides };
}

describe('lockstep: a killed agent is waited for, and the run gives the fault-free trades', () => {
  const cases = [
    { topology: 'mesh', victim: 'a trader', victims: (plan: RunningSwarm['plan']) => [plan.agents[1]!.id] },
    { topology: 'star', victim: 'a spoke', victims: (plan: RunningSwarm['plan']) => [plan.agents[2]!.id] },
    { topology: 'hierarchical', victim: 'a worker', victims: (plan: RunningSwarm['plan']) => [plan.agents.find((agent) => agent.kind === 'trader')!.id] },
    { topology: 'hierarchical', victim: 'a coordinator', victims: () => ['coordinator-1'] },
    { topology: 'ring', victim: 'the executor', victims: () => ['executor'] },
  ] as const;
  for (const { topology, victim, victims } of cases) {
    it(`${topology}: SIGKILL of ${victim} mid-run`, async () => {
      const spec = await parseSwarmSpec(specFor({ topology, ...(topology === 'hierarchical' ? { coordinators: 2 } : {}) }));
      const { report: backtest } = runBacktest(spec.backtest);
      const { hit, ...hooks } = faultAt(30, victims);
      const report = await runSwarm({ spec, logger: silentLogger, ...hooks });
      expect(hit).toHaveLength(1);
      expect(report.events.filter((event) => event.agent === hit[0]).map((event) => event.kind)).toEqual(expect.arrayContaining(['lost', 'restarted']));
      expect(report.outcome).toBe('complete');
      expect(report.absences).toEqual([]);
      expect(report.halted).toBeNull();
      expect(report.steps).toMatchObject({ total: 200, decided: 200 });
      expect(backtest.trades.length).toBeGreaterThan(20);
      expect(outcome(report)).toEqual(outcome(backtest));
    });
  }
});

describe("hot standbys in real sandboxes: the killed agent's standby takes over and the run gives the fault-free trades", () => {
  const cases = [
    { topology: 'mesh', victim: 'a trader', victims: (plan: RunningSwarm['plan']) => [plan.agents[1]!.id] },
    { topology: 'star', victim: 'the hub', victims: () => ['hub'] },
    { topology: 'ring', victim: 'the risk stage', victims: () => ['risk-assessor'] },
  ] as const;
  for (const { topology, victim, victims } of cases) {
    it(`${topology}: SIGKILL of ${victim} mid-run`, async () => {
      const spec = await parseSwarmSpec(specFor({ topology, standby: true, checkpointEverySteps: 10 }));
      const { report: backtest } = runBacktest(spec.backtest);
      const { hit, ...hooks } = faultAt(30, victims);
      const report = await runSwarm({ spec, logger: silentLogger, ...hooks });
      expect(hit).toHaveLength(1);
      const kinds = report.events.filter((event) => event.agent === hit[0]).map((event) => event.kind);
      expect(kinds.slice(0, 4)).toEqual(['standby', 'lost', 'failed-over', 'standby']);
      expect(report.outcome).toBe('complete');
      expect(report.absences).toEqual([]);
      expect(outcome(report)).toEqual(outcome(backtest));
    });
  }
});

describe('an agent lost for good', () => {
  it('halts a lockstep run by default, naming the agent, the step and the policy', async () => {
    const spec = await parseSwarmSpec(specFor({ topology: 'mesh', maxRestarts: 0 }));
    const { hit, ...hooks } = faultAt(30, (plan) => [plan.agents[1]!.id]);
    const report = await runSwarm({ spec, logger: silentLogger, ...hooks });
    expect(report.outcome).toBe('halted');
    expect(report.halted?.reason).toContain(`${hit[0]} lost for good`);
    expect(report.halted?.reason).toContain('swarm.onLostAgent is halt');
    expect(report.halted?.atStep).toBeGreaterThanOrEqual(30);
    expect(report.steps.decided).toBeLessThan(200);
    // No step was decided without it.
    expect(report.absences).toEqual([]);
  });

  it('goes on without it with onLostAgent: continue, and the report says for which steps and how', async () => {
    const spec = await parseSwarmSpec(specFor({ topology: 'mesh', maxRestarts: 0, onLostAgent: 'continue' }));
    const { hit, ...hooks } = faultAt(30, (plan) => [plan.agents[1]!.id]);
    const report = await runSwarm({ spec, logger: silentLogger, ...hooks });
    expect(report.outcome).toBe('degraded');
    expect(report.halted).toBeNull();
    expect(report.steps).toMatchObject({ total: 200, decided: 200 });
    expect(report.absences).toHaveLength(1);
    const [absence] = report.absences;
    expect(absence).toMatchObject({ agent: hit[0], toStep: 199 });
    expect(absence!.fromStep).toBeGreaterThanOrEqual(30);
    expect(absence!.steps).toBe(200 - absence!.fromStep);
    expect(absence!.how).toMatch(/decided without its signals \(swarm\.onLostAgent: continue\)/);
  });

  it('ring: a stage lost for good halts the run instead of refusing steps for ever', async () => {
    const spec = await parseSwarmSpec(specFor({ topology: 'ring', maxRestarts: 0, onLostAgent: 'continue' }));
    const report = await runSwarm({ spec, logger: silentLogger, ...faultAt(30, () => ['analyser']) });
    expect(report.outcome).toBe('halted');
    expect(report.halted?.reason).toMatch(/analyser lost for good.*the ring cannot decide without it/);
    expect(report.steps.decided).toBeLessThan(200);
  });

  it('a stall watchdog halts a run whose step makes no progress, saying where it stood and why', async () => {
    // A stopped (not dead) agent keeps its connection: with a long agent timeout nothing notices it.
    const spec = await parseSwarmSpec(specFor({ topology: 'star', agentTimeoutMs: 600_000, stallTimeoutMs: 1_500, recoveryWaitMs: 1_000 }));
    const { hit, ...hooks } = faultAt(30, (plan) => [plan.agents[1]!.id], 'SIGSTOP');
    const report = await runSwarm({ spec, logger: silentLogger, ...hooks });
    expect(report.outcome).toBe('halted');
    expect(report.halted?.reason).toMatch(/^stalled: no step decided for \d+ ms \(swarm\.stallTimeoutMs 1500\)/);
    expect(report.halted?.reason).toContain(`no signal from ${hit[0]}`);
    expect(report.halted?.atStep).toBeGreaterThanOrEqual(30);
  });
});
