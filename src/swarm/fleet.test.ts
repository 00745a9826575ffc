import { describe, expect, it } from 'vitest';
import type { AgentConfig } from '../agent/index.js';
import type { Envelope } from '../bus/index.js';
import { ManualClock, silentLogger } from '../core/index.js';
import type { AgentPlan } from '../topology/index.js';
import { AgentFleet } from './fleet.js';
import type { AgentLauncher, LaunchedAgent } from './launcher.js';

const heartbeat = (from: string, seq: number): Envelope => ({ v: 1, id: `hb-${from}-${seq}`, type: 'heartbeat', from, ts: 0, payload: { seq, status: 'running' } });

/** A process that has started but not sent anything yet. */
const quiet: LaunchedAgent = {
  placement: 'sandbox-2',
  pid: 2,
  timings: { sandboxMs: 0, writeMs: 0, startMs: 0 },
  bundleWritten: false,
  exited: new Promise(() => undefined),
  signal: () => Promise.resolve(true),
  stop: () => Promise.resolve(),
  stderrTail: () => [],
  placementAlive: () => Promise.resolve(true),
  inspect: () => Promise.resolve({ state: 'running', resources: null }),
  detach: () => undefined,
};

describe('AgentFleet.deploy', () => {
  // Found by the chaos suite (issue 16): serve SIGKILLed and started again; while the new serve
  // cleared what the old one left (its agents' sandboxes), the old agents still beat, and their
  // heartbeats counted as the new agents' first: the replay went to an agent that had not
  // subscribed yet, was lost, and the deployment failed for good after 30 s.
  it('does not take the heartbeats of an earlier process of an agent, heard before the launcher cleared it away, for the new one', async () => {
    const clock = new ManualClock(0);
    const replays: string[] = [];
    const launcher: AgentLauncher = {
      prepare: () => {
        // The earlier run's a1 beats until the launcher kills what that run left.
        fleet.heard(heartbeat('a1', 900));
        return Promise.resolve();
      },
      launch: () => Promise.resolve(quiet),
      close: () => Promise.resolve(),
    };
    const fleet: AgentFleet = new AgentFleet({
      agents: [{ id: 'a1', label: 'a1', kind: 'trader' } as AgentPlan],
      critical: undefined,
      launcher,
      configOf: () => ({}) as AgentConfig,
      unreadyHint: '',
      onEpoch: () => undefined,
      agentTimeoutMs: 1_000,
      recovery: { mode: 'automatic', softRestarts: 1, maxRestarts: 1, restartWindowMs: 60_000 },
      standbys: false,
      promote: () => Promise.resolve(),
      recoveryWaitMs: 1_000,
      waitForLost: true,
      clock,
      logger: silentLogger,
      emit: () => undefined,
      halt: () => undefined,
      onGone: () => undefined,
      wake: () => undefined,
      replay: (agent) => {
        replays.push(agent.id);
        return Promise.resolve({ resumedAt: null, replayed: 0 });
      },
    });
    let deployed = false;
    const deploying = fleet.deploy(undefined, { checkpoints: new Map(), ceilings: new Map(), last: new Map() }).then(() => (deployed = true));
    for (let i = 0; i < 5; i++) {
      await new Promise((resolve) => setImmediate(resolve));
      clock.advance(50);
    }
    expect(fleet.lifecycleOf('a1')).toBe('deploying');
    expect(replays).toEqual([]);
    expect(deployed).toBe(false);
    // The new process's first heartbeat.
    fleet.heard(heartbeat('a1', 0));
    clock.advance(50);
    await deploying;
    expect(fleet.lifecycleOf('a1')).toBe('running');
    expect(replays).toEqual(['a1']);
  });
});
