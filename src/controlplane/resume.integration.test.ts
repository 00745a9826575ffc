// A starting control plane keeps the agents of the deployments it is about to resume from giving up on
// it: they hear its heartbeat before their deployment's turn comes (here, even though none of them can
// be resumed: their data is gone).
import { afterEach, describe, expect, it } from 'vitest';
import { CONTROL_PLANE_ID } from '../agent/index.js';
import { HeartbeatMessage, type MemoryBroker, createMemoryBroker, createMemoryBus, swarmTopics } from '../bus/index.js';
import { ManualClock, silentLogger } from '../core/index.js';
import { type Store, openStore } from '../store/index.js';
import type { SwarmRuntime } from '../swarm/index.js';
import { ControlPlane } from './controlplane.js';
import { compileEnvironments } from './environments.js';
import { ControlPlaneRepository } from './repository.js';

const SPEC = `name: gone
data:
  source: csv
  files:
    - { path: ./no-such-file.csv, symbol: AAA }
strategies:
  - { type: sma-crossover, symbol: AAA, fastPeriod: 3, slowPeriod: 6 }
swarm: { topology: mesh, pacing: lockstep }
`;

describe('ControlPlane.start', () => {
  let store: Store | undefined;
  let broker: MemoryBroker | undefined;
  afterEach(async () => {
    await store?.close();
    await broker?.close();
  });

  it("beats on every resumable deployment's topic before resuming them, and marks each that cannot be resumed failed", async () => {
    store = await openStore({ dataDir: 'memory' });
    broker = createMemoryBroker({ logger: silentLogger });
    const clock = new ManualClock(Date.UTC(2026, 11, 7));
    const repo = new ControlPlaneRepository(store, () => clock.now());
    const ids = ['dep-one', 'dep-two', 'dep-three'];
    for (const id of ids) await repo.create({ id, name: id, env: 'dev' }, { specYaml: SPEC, baseDir: '/nonexistent' });
    await repo.setState('dep-three', { state: 'stopped', desired: 'stopped' });

    const heard: string[] = [];
    const agents = createMemoryBus({ broker, logger: silentLogger });
    for (const id of ids) {
      await agents.subscribe(swarmTopics(id).heartbeat(CONTROL_PLANE_ID), (envelope) => {
        if (HeartbeatMessage.is(envelope)) heard.push(id);
      });
    }
    const bus = createMemoryBus({ broker, logger: silentLogger });
    const plane = await ControlPlane.start({ store, runtime: { bus } as unknown as SwarmRuntime, environments: compileEnvironments(), clock, logger: silentLogger });
    await broker.flush();

    // Neither could be resumed (their CSV is gone), yet their agents heard the server first; the stopped one is not resumed.
    expect([...new Set(heard)].sort()).toEqual(['dep-one', 'dep-two']);
    expect((await repo.list()).map((record) => [record.id, record.state]).sort()).toEqual([['dep-one', 'failed'], ['dep-three', 'stopped'], ['dep-two', 'failed']]);
    // Nothing beats once the resumes are over: the deployments that run beat by themselves.
    heard.length = 0;
    clock.advance(2_000);
    await broker.flush();
    expect(heard).toEqual([]);
    await plane.close();
  });
});
