// `tradeswarm serve` killed with SIGKILL at seeded random points of a lockstep deployment on real
// data (the quickstart's spec and ../shared/data/daily, see its SOURCES.md), and started again on the
// same store each time: the deployment carries on, and its stored orders, fills and final report are
// those of `tradeswarm backtest` on the same spec (which the swarm matches when nothing fails), with
// no order lost or doubled. On the embedded store (PGlite), and on the PostgreSQL of this machine.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/index.js';
import { type ServeProcess, killServe, startServe } from '../fixtures/serve.js';
import { type ServerProbe, probeTcp } from '../fixtures/servers.js';

const repository = fileURLToPath(new URL('../..', import.meta.url));
const QUICKSTART = join(repository, 'examples', 'quickstart.yaml');
const DAILY = fileURLToPath(new URL('../../../shared/data/daily/', import.meta.url));
const present = ['KO.csv', 'PEP.csv', 'SPY.csv', 'MSFT.csv', 'JPM.csv'].every((file) => existsSync(join(DAILY, file)));
const run = promisify(execFile);

async function api<T>(server: ServeProcess, method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const response = await fetch(new URL(path, server.url), { method, ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }) });
  const answer = (await response.json()) as T;
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(answer)}`);
  return answer;
}

interface View {
  readonly state: string;
  readonly steps: number;
}

const postgres: ServerProbe = await probeTcp('PostgreSQL at 127.0.0.1:5432', '127.0.0.1', 5432);
const stores: Array<[string, boolean]> = [
  ['the embedded store (PGlite)', true],
  ['PostgreSQL', postgres.available || process.env.CI === 'true'],
  ['the embedded store, agents on an external `tradeswarm cloud serve`', true],
];

/** `tradeswarm cloud serve` in its own process (it outlives every serve of the test); resolves with the settings it prints. */
async function startCloud(): Promise<{ readonly child: ChildProcess; readonly env: Record<string, string> }> {
  const child = spawn(process.execPath, ['bin/tradeswarm.js', 'cloud', 'serve', '--port', '0'], { cwd: repository, stdio: ['ignore', 'pipe', 'pipe'] });
  const env = await new Promise<Record<string, string>>((resolve, reject) => {
    let printed = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      printed += chunk.toString();
      const settings = Object.fromEntries([...printed.matchAll(/export (E2B_[A-Z_]+)=(\S+)/g)].map((match) => [match[1] as string, match[2] as string]));
      if (settings.E2B_API_KEY !== undefined && settings.E2B_API_URL !== undefined) resolve(settings);
    });
    child.once('exit', (code) => reject(new Error(`cloud serve exited with ${code}`)));
  });
  return { child, env };
}

describe.each(stores)('tradeswarm serve on %s, killed with SIGKILL mid-run', (storeName, available) => {
  const folders: string[] = [];
  const servers: ServeProcess[] = [];
  const clouds: ChildProcess[] = [];
  afterAll(async () => {
    for (const server of servers) if (server.child.exitCode === null) server.child.kill('SIGKILL');
    for (const cloud of clouds) {
      if (cloud.exitCode !== null) continue;
      const exited = once(cloud, 'exit');
      cloud.kill('SIGTERM');
      await exited;
    }
    await Promise.all(folders.map((folder) => rm(folder, { recursive: true, force: true })));
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
        const database = `ts_crash_${Date.now().toString(36)}`;
        await run('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-d', 'test', '-c', `CREATE DATABASE ${database}`]);
        store = ['--database-url', `postgres://postgres@127.0.0.1:5432/${database}`];
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
      const backtest = JSON.parse((await run(process.execPath, ['bin/tradeswarm.js', 'backtest', QUICKSTART, '--json'], { cwd: repository, maxBuffer: 64 * 1024 * 1024 })).stdout) as {
        fills: Array<{ clientOrderId: string }>;
        trades: unknown[];
        finalEquity: number;
        timeSteps: number;
      };

      let server = await startServe(store, cloudEnv);
      servers.push(server);
      // The CLI deploys (to staging: the quickstart's five agents are more than dev's three sandboxes).
      await run(process.execPath, ['bin/tradeswarm.js', 'deploy', QUICKSTART, '--env', 'staging', '--url', server.url], { cwd: repository });
      // Three kills, each at a seeded random step of the part of the run still ahead.
      const rng = Rng.seeded(15);
      const killAt = [rng.int(50, 400), rng.int(450, 800), rng.int(850, 1200)];
      for (const step of killAt) {
        for (;;) {
          const [view] = await api<View[]>(server, 'GET', '/v1/deployments');
          expect(view?.state).not.toBe('failed');
          if ((view?.steps ?? 0) >= step) break;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        await killServe(server);
        server = await startServe(store, cloudEnv);
        servers.push(server);
      }
      let final: View | undefined;
      for (;;) {
        [final] = await api<View[]>(server, 'GET', '/v1/deployments');
        if (final !== undefined && !['pending', 'starting', 'running', 'draining'].includes(final.state)) break;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(final?.state).toBe('complete');

      const status = await api<{ report: { fills: unknown[]; trades: unknown[]; finalEquity: number; outcome: string } }>(server, 'GET', '/v1/deployments/quickstart');
      const orders = await api<Array<{ clientOrderId: string; status: string }>>(server, 'GET', '/v1/deployments/quickstart/orders');
      const fills = await api<Array<{ clientOrderId: string; price: number; quantity: number; fee: number }>>(server, 'GET', '/v1/deployments/quickstart/fills');
      const events = await api<Array<{ kind: string; agentId: string | null }>>(server, 'GET', '/v1/deployments/quickstart/events');
      await killServe(server);

      expect(events.filter((event) => event.kind === 'resumed' && event.agentId === null)).toHaveLength(3);
      // Every order once; every fill the backtest made before its end-of-data settlement, in order.
      expect(new Set(orders.map((order) => order.clientOrderId)).size).toBe(orders.length);
      const venueFills = backtest.fills.slice(0, fills.length);
      expect(fills.map(({ clientOrderId, price, quantity, fee }) => ({ clientOrderId, price, quantity, fee }))).toEqual(
        venueFills.map((fill) => {
          const { clientOrderId, price, quantity, fee } = fill as unknown as { clientOrderId: string; price: number; quantity: number; fee: number };
          return { clientOrderId, price, quantity, fee };
        }),
      );
      expect(orders.map((order) => order.clientOrderId).sort()).toEqual(fills.map((fill) => fill.clientOrderId).sort());
      // The report the deployment ended with is the backtest's, to the last fill and cent.
      expect(status.report.outcome).toBe('complete');
      expect(status.report.fills).toEqual(backtest.fills);
      expect(status.report.trades).toEqual(backtest.trades);
      expect(status.report.finalEquity).toBe(backtest.finalEquity);
    },
    300_000,
  );
});
