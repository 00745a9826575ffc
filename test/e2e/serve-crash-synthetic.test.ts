// `tradeswarm serve` killed with SIGKILL at seeded random points of a lockstep deployment on a seeded
// synthetic market, its agents on an external `tradeswarm cloud serve` and `tradeswarm broker` so that
// they outlive each kill and are adopted (issue 15's case). A resumed deployment makes its synthetic
// bars as its feed reads them instead of generating the whole market first: its stored orders, fills
// and final report must still be exactly those of `tradeswarm backtest` on the same spec, which holds
// the whole market.
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/index.js';
import { startBroker, startCloud, stopCommand } from '../fixtures/outliving.js';
import { type ServeProcess, killServe, startServe } from '../fixtures/serve.js';
import { backtestOf, deployTo, ended, expectTheBacktest, untilListed } from '../fixtures/serve-quickstart.js';

const SPEC = `name: synthetic-crash
data:
  source: synthetic
  seed: 15
  symbols: [AAA, BBB]
  barCount: 1200
  pairs: [{ leader: AAA, follower: AAB, hedgeRatio: 1.2 }]
strategies:
  - { type: sma-crossover, symbol: AAA, fastPeriod: 10, slowPeriod: 40, sizing: { type: fraction-of-equity, fraction: 0.3, wholeUnits: true } }
  - { type: momentum, symbol: BBB, lookback: 20, entryThreshold: 0.03, exitThreshold: 0, sizing: { type: fraction-of-equity, fraction: 0.3, wholeUnits: true } }
  - { type: ema-crossover, symbol: AAB, fastPeriod: 8, slowPeriod: 30, sizing: { type: fraction-of-equity, fraction: 0.3, wholeUnits: true } }
endOfData: liquidate-at-close
swarm: { topology: mesh, pacing: lockstep, controlPlaneTimeoutMs: 60000 }
`;

describe('tradeswarm serve on a synthetic market, killed with SIGKILL mid-run, agents on an external cloud and broker', () => {
  const folders: string[] = [];
  const servers: ServeProcess[] = [];
  const commands: ChildProcess[] = [];
  afterAll(async () => {
    for (const server of servers) if (server.child.exitCode === null) server.child.kill('SIGKILL');
    for (const child of commands) await stopCommand(child);
    await Promise.all(folders.map((folder) => rm(folder, { recursive: true, force: true })));
  }, 60_000);

  it('adopts the agents each time, and its orders, fills and report are exactly the backtest\'s', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'serve-crash-synthetic-'));
    folders.push(folder);
    const spec = join(folder, 'synthetic-crash.yaml');
    await writeFile(spec, SPEC);
    const cloud = await startCloud();
    commands.push(cloud.child);
    const broker = await startBroker();
    commands.push(broker.child);
    const args = ['--data-dir', join(folder, 'data'), '--cloud-url', cloud.env.E2B_API_URL as string, '--broker', broker.url];
    const backtest = await backtestOf(spec);

    let server = await startServe(args, cloud.env);
    servers.push(server);
    // To prod, as bench:controlplane deploys.
    await deployTo(server, spec, ['--env', 'prod']);
    const rng = Rng.seeded(15);
    const killAt = [rng.int(50, 500), rng.int(550, 1000)];
    for (const step of killAt) {
      await untilListed(server, (view) => (view?.steps ?? 0) >= step);
      await killServe(server);
      server = await startServe(args, cloud.env);
      servers.push(server);
    }
    expect((await untilListed(server, ended, 200))?.state).toBe('complete');
    const events = await expectTheBacktest(server, backtest, 'synthetic-crash');
    await killServe(server);
    expect(events.filter((event) => event.kind === 'resumed' && event.agentId === null)).toHaveLength(2);
    // Every agent was adopted at each restart: the path a restart on an external cloud takes.
    const agents = events.filter((event) => event.kind === 'resumed' && event.agentId !== null);
    expect(agents).toHaveLength(6);
    expect(agents.filter((event) => event.detail?.startsWith('adopted') !== true).map((event) => event.detail)).toEqual([]);
  }, 300_000);
});
