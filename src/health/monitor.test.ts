import { describe, expect, it } from 'vitest';
import { ManualClock } from '../core/index.js';
import type { AgentSelfReport, SandboxObservation } from './health.js';
import { type AgentHealth, type HealthProbe, HealthMonitor, type MonitoredAgent } from './monitor.js';

/** A probe the test sets by hand: two agents, their sandboxes and their answers. */
function probeOf(): HealthProbe & { agents: () => MonitoredAgent[]; set: Map<string, { agent: MonitoredAgent; sandbox: SandboxObservation; report: AgentSelfReport | null }>; asked: string[] } {
  const set = new Map<string, { agent: MonitoredAgent; sandbox: SandboxObservation; report: AgentSelfReport | null }>();
  for (const id of ['a', 'b']) {
    set.set(id, {
      agent: { id, lifecycle: 'running', heartbeatAgeMs: 10, checkpoints: true },
      sandbox: { state: 'running', resources: null },
      report: { lastStep: 4, checkpointedUpTo: 4, errors: 0, replaying: false, halted: null },
    });
  }
  const asked: string[] = [];
  return {
    set,
    asked,
    agents: () => [...set.values()].map((entry) => entry.agent),
    currentStep: () => 5,
    sandbox: (id) => Promise.resolve(set.get(id)?.sandbox ?? { state: 'gone', resources: null }),
    ask: (id) => {
      asked.push(id);
      return Promise.resolve(set.get(id)?.report ?? null);
    },
  };
}

/** Lets the monitor's promises settle after the clock moved. */
const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('HealthMonitor', () => {
  it('checks every agent each interval of the clock and reports a change of status or reasons when it happens, not every time', async () => {
    const clock = new ManualClock(0);
    const probe = probeOf();
    const changes: Array<[string, string, string | undefined]> = [];
    const monitor = new HealthMonitor({
      probe,
      clock,
      intervalMs: 1_000,
      thresholds: { heartbeatMs: 100, agentTimeoutMs: 1_000, maxLagSteps: 5, checkpointEverySteps: 10 },
      onChange: (health: AgentHealth, previous) => changes.push([health.agentId, health.status, previous?.status]),
    });
    monitor.start();
    clock.advance(999);
    await flush();
    expect(probe.asked).toEqual([]);
    clock.advance(1);
    await flush();
    expect(changes).toEqual([
      ['a', 'healthy', undefined],
      ['b', 'healthy', undefined],
    ]);
    clock.advance(1_000);
    await flush();
    expect(changes).toHaveLength(2);
    expect(probe.asked).toEqual(['a', 'b', 'a', 'b']);

    (probe.set.get('b') as { sandbox: SandboxObservation }).sandbox = { state: 'paused', resources: null };
    clock.advance(1_000);
    await flush();
    expect(changes.at(-1)).toEqual(['b', 'unreachable', 'healthy']);
    expect(monitor.of('b')?.reasons.map((reason) => reason.code)).toEqual(['sandbox-paused']);
    expect(monitor.of('b')?.sinceMs).toBe(3_000);
    monitor.stop();
  });

  it('checks at once on demand, one agent or all, in order with the interval checks', async () => {
    const clock = new ManualClock(0);
    const probe = probeOf();
    const monitor = new HealthMonitor({ probe, clock, thresholds: { heartbeatMs: 100, agentTimeoutMs: 1_000, maxLagSteps: 5, checkpointEverySteps: 10 }, onChange: () => undefined });
    (probe.set.get('a') as { agent: MonitoredAgent }).agent = { id: 'a', lifecycle: 'running', heartbeatAgeMs: 4_000, checkpoints: true };
    await monitor.check(['a']);
    expect(probe.asked).toEqual(['a']);
    expect(monitor.latest().map((health) => [health.agentId, health.status])).toEqual([['a', 'unreachable']]);
    await monitor.check();
    expect(monitor.latest().map((health) => health.agentId)).toEqual(['a', 'b']);
  });

  it('does not ask an agent that is not running for its report, and refuses an interval it cannot keep', () => {
    const probe = probeOf();
    (probe.set.get('a') as { agent: MonitoredAgent }).agent = { id: 'a', lifecycle: 'recovering', heartbeatAgeMs: null, checkpoints: true };
    const monitor = new HealthMonitor({ probe, clock: new ManualClock(0), thresholds: { heartbeatMs: 100, agentTimeoutMs: 1_000, maxLagSteps: 5, checkpointEverySteps: 10 }, onChange: () => undefined });
    return monitor.check().then(() => {
      expect(probe.asked).toEqual(['b']);
      expect(monitor.of('a')?.status).toBe('unhealthy');
      expect(() => new HealthMonitor({ probe, clock: new ManualClock(0), intervalMs: 0, thresholds: { heartbeatMs: 100, agentTimeoutMs: 1_000, maxLagSteps: 5, checkpointEverySteps: 10 }, onChange: () => undefined })).toThrow(/intervalMs/);
    });
  });
});
