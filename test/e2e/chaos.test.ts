// The chaos suite, short: `tradeswarm chaos` on the last 300 daily bars of the quickstart's data
// (../shared/data/daily, see its SOURCES.md), one fault of each kind, injected from outside into a
// lockstep mesh under a real serve: an agent's process SIGKILLed, a sandbox killed, a sandbox paused
// past the agent timeout, the broker restarted on its port, serve SIGKILLed. Nothing may be lost or
// doubled, and the orders, fills and final portfolio must be the backtest's. (`npm run chaos` runs the
// four topologies on 2,000 bars with three of each fault.)
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import type { ChaosResult } from '../../src/chaos/index.js';

const repository = fileURLToPath(new URL('../..', import.meta.url));
const DAILY = fileURLToPath(new URL('../../../shared/data/daily/', import.meta.url));
const present = ['KO.csv', 'PEP.csv', 'SPY.csv', 'MSFT.csv', 'JPM.csv'].every((file) => existsSync(join(DAILY, file)));
const run = promisify(execFile);

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
      const json = join(folder, 'result.json');
      const args = ['bin/tradeswarm.js', 'chaos', '--seed', '7', '--bars', '300', '--per-kind', '1', '--topology', 'mesh', '--work-dir', join(folder, 'work'), '--json-out', json, '--recovery-timeout-ms', '60000'];
      const answer = await run(process.execPath, args, { cwd: repository, maxBuffer: 16 * 1024 * 1024 }).catch((error: { stdout?: string; stderr?: string; code?: number }) => error);
      const result = JSON.parse(await readFile(json, 'utf8')) as ChaosResult;
      expect(result.topologies.map((topology) => topology.topology)).toEqual(['mesh']);
      for (const topology of result.topologies) {
        // Every fault was injected, seen and recovered from, each measured by the run.
        expect(topology.faults.map((fault) => fault.kind).sort(), `${topology.topology}: ${answer.stderr}`).toEqual(['agent-kill', 'broker-restart', 'pause', 'sandbox-kill', 'serve-kill']);
        for (const fault of topology.faults) {
          expect(fault.recoveredMs, `${topology.topology} ${fault.kind}: ${fault.note}`).toBeGreaterThan(0);
          if (fault.kind !== 'broker-restart') expect(fault.detectedMs, `${topology.topology} ${fault.kind}: ${fault.note}`).toBeGreaterThan(0);
        }
        expect(topology.state).toBe('complete');
        expect(topology.comparison).toMatchObject({ lost: [], duplicatedById: [], duplicatedByContent: [], unexpected: [], identical: true, firstDifference: null });
        expect(topology.comparison?.ordersExpected).toBeGreaterThan(10);
      }
      expect(result.ok).toBe(true);
      expect(answer.stdout).toMatch(/result: 0 lost, 0 duplicated, identical to the fault-free run, in every topology/);
      expect('code' in answer ? answer.code : 0).toBe(0);
    },
    240_000,
  );
});
