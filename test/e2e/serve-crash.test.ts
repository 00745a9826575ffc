// `tradeswarm serve` killed with SIGKILL at seeded random points of a lockstep deployment on real
// data (the quickstart's spec and ../shared/data/daily, see its SOURCES.md), and started again on the
// same store each time: the deployment carries on, and its stored orders, fills and final report are
// those of `tradeswarm backtest` on the same spec (which the swarm matches when nothing fails), with
// no order lost or doubled. On the embedded store (PGlite), and on the PostgreSQL of this machine.
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/index.js';
import { startCloud } from '../fixtures/outliving.js';
import { type ServeProcess, killServe, startServe, untilLeading } from '../fixtures/serve.js';
import { DAILY, QUICKSTART, backtestOf, createDatabase, deployTo, dropDatabase, ended, expectTheBacktest, quickstartDataPresent as present, untilListed } from '../fixtures/serve-quickstart.js';
import { type ServerProbe, probeTcp } from '../fixtures/servers.js';

const postgres: ServerProbe = await probeTcp('PostgreSQL at 127.0.0.1:5432', '127.0.0.1', 5432);
const stores: Array<[string, boolean]> = [
  ['the embedded store (PGlite)', true],
  ['PostgreSQL', postgres.available || process.env.CI === 'true'],
  ['the embedded store, agents on an external `tradeswarm cloud serve`', true],
];

describe.each(stores)('tradeswarm serve on %s, killed with SIGKILL mid-run', (storeName, available) => {
  const folders: string[] = [];
  const servers: ServeProcess[] = [];
  const clouds: ChildProcess[] = [];
  const databases: string[] = [];
  afterAll(async () => {
    for (const server of servers) if (server.child.exitCode === null) server.child.kill('SIGKILL');
    for (const cloud of clouds) {
      if (cloud.exitCode !== null) continue;
      const exited = once(cloud, 'exit');
      cloud.kill('SIGTERM');
      await exited;
    }
    await Promise.all(folders.map((folder) => rm(folder, { recursive: true, force: true })));
    for (const database of databases) await dropDatabase(database);
  }, 60_000);
  if (!present && process.env.CI === 'true') it('needs the shared data under CI', () => expect.fail(`${DAILY} lacks the quickstart's files; CI must provide ../shared/data`));
  if (!present) console.warn(`skipping the serve crash test: ${DAILY} lacks the quickstart's files`);
  if (!available) console.warn(`skipping the serve crash test on PostgreSQL: ${postgres.name} is not reachable (${postgres.detail})`);

  it.skipIf(!present || !available)(
    'resumes the deployment each time, and its orders, fills and report are exactly the backtest\'s',
    async () => {
      const folder = await mkdtemp(join(tmpdir(), 'serve-crash-'));
      folders.push(folder);
      let store: string[];
      if (storeName === 'PostgreSQL') {
        const database = await createDatabase('ts_crash');
        databases.push(database.name);
        store = ['--database-url', database.url];
      } else {
        store = ['--data-dir', join(folder, 'data')];
      }
      let cloudEnv: Record<string, string> = {};
      if (storeName.includes('cloud serve')) {
        const cloud = await startCloud();
        clouds.push(cloud.child);
        cloudEnv = cloud.env;
        store = [...store, '--cloud-url', cloud.env.E2B_API_URL as string];
      }
      const backtest = await backtestOf(QUICKSTART);

      let server = await startServe(store, cloudEnv);
      servers.push(server);
      // On PostgreSQL a serve runs deployments once it leads: after a SIGKILL, once its predecessor's lease expired.
      await untilLeading(server);
      // The CLI deploys (to staging: the quickstart's five agents are more than dev's three sandboxes).
      await deployTo(server, QUICKSTART, ['--env', 'staging']);
      // Three kills, each at a seeded random step of the part of the run still ahead.
      const rng = Rng.seeded(15);
      const killAt = [rng.int(50, 400), rng.int(450, 800), rng.int(850, 1200)];
      for (const step of killAt) {
        await untilListed(server, (view) => (view?.steps ?? 0) >= step);
        await killServe(server);
        server = await startServe(store, cloudEnv);
        servers.push(server);
        await untilLeading(server);
      }
      expect((await untilListed(server, ended, 200))?.state).toBe('complete');
      const events = await expectTheBacktest(server, backtest);
      await killServe(server);
      expect(events.filter((event) => event.kind === 'resumed' && event.agentId === null)).toHaveLength(3);
    },
    300_000,
  );
});
