// `tradeswarm serve` stopped (SIGSTOP) for twice its agents' timeout while a lockstep deployment trades,
// then let go (SIGCONT): what a machine too loaded to run it for seconds does to it. Its agents beat on
// all along; only serve could not read them. It must not take that silence for theirs: no agent is
// declared lost, none restarted, and the deployment trades on. (In dev, where failover is none, a
// lost agent is not restarted: the deployment halted.)
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type ServeProcess, killServe, startServe } from '../fixtures/serve.js';
import { api, deployTo, ended, untilListed } from '../fixtures/serve-quickstart.js';

/** The spec's agentTimeoutMs is 3 s (2 s by default: more room for agents slowed by a loaded machine); serve is stopped for twice that. */
const PAUSE_MS = 6_000;

const SPEC = `name: paused
data:
  source: synthetic
  seed: 21
  symbols: [AAA, BBB]
  barCount: 200000
strategies:
  - { type: sma-crossover, symbol: AAA, fastPeriod: 10, slowPeriod: 40, sizing: { type: fraction-of-equity, fraction: 0.3, wholeUnits: true } }
  - { type: momentum, symbol: BBB, lookback: 20, entryThreshold: 0.03, exitThreshold: 0, sizing: { type: fraction-of-equity, fraction: 0.3, wholeUnits: true } }
swarm: { topology: mesh, pacing: lockstep, agentTimeoutMs: 3000 }
`;

describe('tradeswarm serve paused past its agents\' timeout', () => {
  const folders: string[] = [];
  const servers: ServeProcess[] = [];
  afterAll(async () => {
    for (const server of servers) {
      if (server.child.signalCode === null && server.child.exitCode === null) server.child.kill('SIGCONT');
      await killServe(server, 'SIGTERM');
    }
    await Promise.all(folders.map((folder) => rm(folder, { recursive: true, force: true })));
  }, 60_000);

  it('does not take its own deafness for its agents\' silence: none is lost, and it trades on', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'serve-pause-'));
    folders.push(folder);
    const spec = join(folder, 'paused.yaml');
    await writeFile(spec, SPEC);
    const server = await startServe(['--data-dir', join(folder, 'data')]);
    servers.push(server);
    await deployTo(server, spec);
    await untilListed(server, (view) => (view?.steps ?? 0) >= 50);

    server.child.kill('SIGSTOP');
    // Real time: the pause is what is tested, and only the clock of this process measures it.
    await new Promise((resolve) => setTimeout(resolve, PAUSE_MS));
    server.child.kill('SIGCONT');

    const resumedAt = (await untilListed(server, () => true))?.steps ?? 0;
    const after = await untilListed(server, (view) => ended(view) || (view?.steps ?? 0) >= resumedAt + 200);
    const events = await api<Array<{ kind: string; agentId: string | null; detail: string | null }>>(server, 'GET', '/v1/deployments/paused/events');
    expect(events.filter((event) => ['lost', 'restarted', 'failed-over', 'gone', 'halted', 'stall'].includes(event.kind))).toEqual([]);
    expect(after?.state).toBe('running');
    await api(server, 'POST', '/v1/deployments/paused/stop', {});
  }, 120_000);
});
