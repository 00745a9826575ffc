// The chaos suite, short: `tradeswarm chaos` on the last 300 daily bars of the quickstart's data
// (../shared/data/daily, see its SOURCES.md), one fault of each kind, injected from outside into a
// lockstep mesh under a real serve: an agent's process SIGKILLed, a sandbox killed, a sandbox paused
// past the agent timeout, the broker restarted on its port, serve SIGKILLed. Nothing may be lost or
// doubled, and the orders, fills and final portfolio must be the backtest's. The same with the leader
// of two serves on PostgreSQL SIGKILLed twice. Both without standbys (`--no-standby`), so lost agents take
// the restart path. (`npm run chaos` runs the four topologies on 2,000 bars with three of each fault, with
// a standby per agent.)
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import type { ChaosResult } from '../../src/chaos/index.js';
import { createDatabase, dropDatabase } from '../fixtures/serve-quickstart.js';
import { describeServerBacked, probeTcp } from '../fixtures/servers.js';

const repository = fileURLToPath(new URL('../..', import.meta.url));
const DAILY = fileURLToPath(new URL('../../../shared/data/daily/', import.meta.url));
const present = ['KO.csv', 'PEP.csv', 'SPY.csv', 'MSFT.csv', 'JPM.csv'].every((file) => existsSync(join(DAILY, file)));
const run = promisify(execFile);

const POSTGRES = await probeTcp('PostgreSQL at 127.0.0.1:5432', '127.0.0.1', 5432);

/** How long one `tradeswarm chaos` may run: inside the tests' own timeout (TEST_LIMIT_MS). */
const RUN_LIMIT_MS = 225_000;
const TEST_LIMIT_MS = 240_000;

/** `tradeswarm chaos` on the last 300 daily bars of a lockstep mesh, one fault of each kind in `extra` args' set; its result and output. */
async function chaos(folder: string, extra: readonly string[]): Promise<{ readonly result: ChaosResult; readonly stdout: string; readonly stderr: string; readonly code: number }> {
  const json = join(folder, 'result.json');
  const args = ['bin/tradeswarm.js', 'chaos', '--seed', '7', '--bars', '300', '--topology', 'mesh', '--work-dir', join(folder, 'work'), '--json-out', json, '--recovery-timeout-ms', '60000', ...extra];
  // Ended (SIGTERM: it ends its serves, broker and cloud) before the test's own timeout, which would
  // leave it running, so a run that hangs fails with its output instead of outliving the suite.
  const answer = await run(process.execPath, args, { cwd: repository, maxBuffer: 16 * 1024 * 1024, timeout: RUN_LIMIT_MS }).catch(
    (error: { stdout?: string; stderr?: string; code?: number | null; killed?: boolean }) => error,
  );
  const stderr = answer.stderr ?? '';
  if ('killed' in answer && answer.killed === true) {
    expect.fail(`tradeswarm chaos ${extra.join(' ')} ran past ${RUN_LIMIT_MS} ms and was ended. It printed:\n${stderr.slice(-4000)}\n${await logTails(join(folder, 'work', 'logs'))}`);
  }
  const code = 'code' in answer ? (answer.code ?? 1) : 0;
  return { result: JSON.parse(await readFile(json, 'utf8')) as ChaosResult, stdout: answer.stdout ?? '', stderr, code };
}

/** The last lines of each process's log under `dir` (serves, broker, cloud), for a run that hung. */
async function logTails(dir: string): Promise<string> {
  const files = (await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => [])).filter((entry) => entry.isFile());
  const tails = await Promise.all(
    files.map(async (entry) => {
      const path = join(entry.parentPath, entry.name);
      const lines = (await readFile(path, 'utf8')).trimEnd().split('\n');
      return `--- ${path} (last ${Math.min(lines.length, 30)} of ${lines.length} lines)\n${lines.slice(-30).join('\n')}`;
    }),
  );
  return tails.join('\n');
}

/** Every fault was injected, seen and recovered from, each measured by the run; nothing lost, doubled or different. */
function expectRecoveredAndIdentical(outcome: Awaited<ReturnType<typeof chaos>>, kinds: readonly string[]): void {
  const { result, stdout, stderr, code } = outcome;
  expect(result.topologies.map((topology) => topology.topology)).toEqual(['mesh']);
  for (const topology of result.topologies) {
    expect(topology.faults.map((fault) => fault.kind).sort(), `${topology.topology}: ${stderr}`).toEqual([...kinds].sort());
    for (const fault of topology.faults) {
      expect(fault.recoveredMs, `${topology.topology} ${fault.kind}: ${fault.note}`).toBeGreaterThan(0);
      if (fault.kind !== 'broker-restart') expect(fault.detectedMs, `${topology.topology} ${fault.kind}: ${fault.note}`).toBeGreaterThan(0);
    }
    expect(topology.state).toBe('complete');
    expect(topology.comparison).toMatchObject({ lost: [], duplicatedById: [], duplicatedByContent: [], unexpected: [], identical: true, firstDifference: null });
    expect(topology.comparison?.ordersExpected).toBeGreaterThan(10);
  }
  expect(result.ok).toBe(true);
  expect(stdout).toMatch(/result: 0 lost, 0 duplicated, identical to the fault-free run, in every topology/);
  expect(code).toBe(0);
}

describe('tradeswarm chaos, short', () => {
  const folders: string[] = [];
  afterAll(async () => {
    await Promise.all(folders.map((folder) => rm(folder, { recursive: true, force: true })));
  });
  if (!present && process.env.CI === 'true') it('needs the shared data under CI', () => expect.fail(`${DAILY} lacks the quickstart's files; CI must provide ../shared/data`));
  if (!present) console.warn(`skipping the chaos test: ${DAILY} lacks the quickstart's files`);

  it.skipIf(!present)(
    'injects one fault of each kind into a mesh; nothing is lost or doubled and the run is the backtest\'s',
    async () => {
      const folder = await mkdtemp(join(tmpdir(), 'chaos-test-'));
      folders.push(folder);
      expectRecoveredAndIdentical(await chaos(folder, ['--per-kind', '1', '--no-standby']), ['agent-kill', 'broker-restart', 'pause', 'sandbox-kill', 'serve-kill']);
    },
    TEST_LIMIT_MS,
  );
});

describeServerBacked(POSTGRES, 'tradeswarm chaos, short, two serves on PostgreSQL', () => {
  const folders: string[] = [];
  const databases: string[] = [];
  afterAll(async () => {
    await Promise.all(folders.map((folder) => rm(folder, { recursive: true, force: true })));
    for (const database of databases) await dropDatabase(database);
  });

  it.skipIf(!present)(
    'kills the leading serve twice: each time the follower takes over, and the run is the backtest\'s',
    async () => {
      const folder = await mkdtemp(join(tmpdir(), 'chaos-leader-'));
      folders.push(folder);
      const database = await createDatabase('ts_chaos_leader');
      databases.push(database.name);
      const outcome = await chaos(folder, ['--faults', 'leader-kill', '--per-kind', '2', '--no-standby', '--database-url', database.url]);
      expectRecoveredAndIdentical(outcome, ['leader-kill', 'leader-kill']);
      for (const fault of outcome.result.topologies[0]?.faults ?? []) expect(fault.note).toMatch(/^leader killed at step \d+; the follower led after \d+ ms; trading again at step \d+$/);
    },
    TEST_LIMIT_MS,
  );

  it('refuses leader-kill without a PostgreSQL database, saying what to give', async () => {
    const answer = await run(process.execPath, ['bin/tradeswarm.js', 'chaos', '--faults', 'leader-kill', '--bars', '300'], { cwd: repository }).catch((error: { stderr?: string; code?: number }) => error);
    expect('code' in answer ? answer.code : 0).not.toBe(0);
    expect(answer.stderr).toContain('leader-kill kills the leader of two serves sharing one PostgreSQL: give a databaseUrl (--database-url), or leave leader-kill out');
  }, 120_000);
});
