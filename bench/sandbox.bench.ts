// Sandbox benchmark: the local cloud driven through the unmodified e2b SDK, next to raw process spawns
// measured in the same run. `npm run bench:sandbox`; results in bench/results/sandbox.json.
// Snapshots: createSnapshot's latency with nothing and with 200 MB written, and how long the sandbox's
// own processes stood still meanwhile (the freezer), read from a ticker inside it (a Python loop writing
// its monotonic clock every millisecond): the longest gap between ticks during the snapshot, next to the
// longest gap over as long a window without one (the baseline: the sleep and the scheduler).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sandbox } from '@e2b/code-interpreter';
import { silentLogger } from '../src/core/index.js';
import { startLocalCloud, type LocalCloud } from '../src/localcloud/index.js';
import { report, type BenchRow } from './lib/report.js';
import { summarize, timeEach } from './lib/stats.js';
import { timeCreateAndKill } from './lib/sandboxes.js';

const COMMAND = 'echo ready';
const quick = process.argv.includes('--quick');
const ROUNDS = quick ? 10 : 40;
const CONCURRENT = quick ? 10 : 50;

// The baseline runs the same login shell with the same kind of clean environment a sandbox gives it
// (an empty home), so the host's own login profile is not what is measured.
const BASELINE_HOME = mkdtempSync(join(tmpdir(), 'tradeswarm-bench-home-'));
const BASELINE_ENV = { HOME: BASELINE_HOME, PATH: '/usr/local/bin:/usr/bin:/bin', USER: 'user', LANG: 'C.UTF-8' };

async function rawSpawn(): Promise<void> {
  const child = spawn('/bin/bash', ['-l', '-c', COMMAND], { stdio: ['ignore', 'pipe', 'pipe'], env: BASELINE_ENV });
  child.stdout.resume();
  const [code] = (await once(child, 'exit')) as [number];
  if (code !== 0) throw new Error(`raw spawn exited with ${code}`);
}

async function createAndRun(cloud: LocalCloud): Promise<Sandbox> {
  const sandbox = await Sandbox.create('base', cloud.connection);
  const result = await sandbox.commands.run(COMMAND);
  if (result.stdout !== 'ready\n') throw new Error(`unexpected output ${JSON.stringify(result.stdout)}`);
  return sandbox;
}

const SNAPSHOT_ROUNDS = quick ? 3 : 10;
const TICKER = 'import time\nwith open("/tmp/ticks", "w", buffering=1) as out:\n    while True:\n        out.write(f"{time.monotonic_ns() // 1000}\\n")\n        time.sleep(0.001)\n';

/** The ticks (µs) the sandbox's ticker has written so far. */
async function ticks(sandbox: Sandbox): Promise<number[]> {
  return (await sandbox.files.read('/tmp/ticks')).split('\n').filter((line) => line.length > 0).map(Number);
}

/** The longest gap (ms) between the ticks written from index `from` on. */
function longestGap(all: readonly number[], from: number): number {
  let longest = 0;
  for (let index = Math.max(1, from); index < all.length; index++) longest = Math.max(longest, (all[index]! - all[index - 1]!) / 1000);
  return longest;
}

/** createSnapshot's latency and the longest stop of the sandbox's processes during it, with `writtenMB` on its disk; and the stops over as long idle windows. */
async function snapshotRows(cloud: LocalCloud, writtenMB: number): Promise<BenchRow[]> {
  const sandbox = await Sandbox.create('base', cloud.connection);
  try {
    if (writtenMB > 0) await sandbox.commands.run(`head -c ${writtenMB}M /dev/urandom > /home/user/blob`);
    await sandbox.files.write('/tmp/ticker.py', TICKER);
    await sandbox.files.write('/tmp/ticks', '');
    await sandbox.commands.run('python3 /tmp/ticker.py', { background: true });
    while ((await ticks(sandbox)).length < 100) await new Promise((resolve) => setTimeout(resolve, 50));
    const latencies: number[] = [];
    const stops: number[] = [];
    const idleStops: number[] = [];
    for (let round = 0; round < SNAPSHOT_ROUNDS; round++) {
      const before = (await ticks(sandbox)).length;
      const started = performance.now();
      const snapshot = await sandbox.createSnapshot();
      const tookMs = performance.now() - started;
      latencies.push(tookMs);
      await new Promise((resolve) => setTimeout(resolve, 20));
      stops.push(longestGap(await ticks(sandbox), before));
      await Sandbox.deleteSnapshot(snapshot.snapshotId, cloud.connection);
      const idleFrom = (await ticks(sandbox)).length;
      await new Promise((resolve) => setTimeout(resolve, tookMs + 20));
      idleStops.push(longestGap(await ticks(sandbox), idleFrom));
    }
    const what = writtenMB > 0 ? `${writtenMB} MB written` : 'nothing written';
    const idle = summarize(idleStops);
    const stop = summarize(stops);
    return [
      { name: `createSnapshot, ${what}`, summary: summarize(latencies) },
      { name: `longest stop of the sandbox's processes during it, ${what}`, summary: stop, ratio: { to: 'same window without a snapshot', value: stop.p50 / idle.p50 } },
      { name: `longest stop over as long a window without a snapshot (baseline), ${what}`, summary: idle },
    ];
  } finally {
    await sandbox.kill();
  }
}

async function main(): Promise<void> {
  const rows: BenchRow[] = [];
  // Warm up the OS caches the same way for both sides.
  await timeEach(5, rawSpawn);
  const raw = summarize(await timeEach(ROUNDS, rawSpawn));
  rows.push({ name: `raw spawn: bash -l -c '${COMMAND}' (baseline)`, summary: raw });

  const cold = await startLocalCloud({ logger: silentLogger, warmPoolSize: 0, metricsIntervalMs: 0 });
  try {
    await (await createAndRun(cold)).kill();
    const samples: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const started = performance.now();
      const sandbox = await createAndRun(cold);
      samples.push(performance.now() - started);
      await sandbox.kill();
    }
    const summary = summarize(samples);
    rows.push({ name: 'create → first command, cold (no warm pool)', summary, ratio: { to: 'raw spawn', value: summary.p50 / raw.p50 } });
  } finally {
    await cold.close();
  }

  const cloud = await startLocalCloud({ logger: silentLogger, warmPoolSize: 2, metricsIntervalMs: 0 });
  try {
    await (await createAndRun(cloud)).kill();
    const { create: createSamples, kill: killSamples } = await timeCreateAndKill(cloud, ROUNDS, createAndRun);
    const warm = summarize(createSamples);
    rows.push({
      name: 'create → first command, warm pool ready',
      summary: warm,
      ratio: { to: 'raw spawn', value: warm.p50 / raw.p50 },
      target: { text: 'p50 within 1.5x of raw spawn', met: warm.p50 <= 1.5 * raw.p50 },
    });
    rows.push({ name: 'kill (every process gone, files removed)', summary: summarize(killSamples) });

    const sandbox = await Sandbox.create('code-interpreter-v1', cloud.connection);
    await timeEach(10, async () => void (await sandbox.commands.run(COMMAND)));
    const command = summarize(await timeEach(ROUNDS * 2, async () => void (await sandbox.commands.run(COMMAND))));
    rows.push({ name: `command round trip: commands.run('${COMMAND}')`, summary: command, ratio: { to: 'raw spawn', value: command.p50 / raw.p50 }, target: { text: 'p50 under 10 ms', met: command.p50 < 10 } });

    for (const language of ['python', 'javascript'] as const) {
      await sandbox.runCode('1 + 1', { language });
      const code = summarize(
        await timeEach(ROUNDS * 2, async () => {
          const execution = await sandbox.runCode('1 + 1', { language });
          if (execution.text !== '2') throw new Error(`runCode returned ${execution.text}`);
        }),
      );
      rows.push({ name: `runCode('1 + 1') round trip, warm ${language} context`, summary: code, target: { text: 'p50 under 10 ms', met: code.p50 < 10 } });
    }
    await sandbox.kill();
    for (const writtenMB of [0, 200]) rows.push(...(await snapshotRows(cloud, writtenMB)));
  } finally {
    await cloud.close();
  }

  const burst = await startLocalCloud({ logger: silentLogger, warmPoolSize: 0, metricsIntervalMs: 0, maxSandboxes: CONCURRENT + 5 });
  try {
    const started = performance.now();
    const outcomes = await Promise.allSettled(Array.from({ length: CONCURRENT }, () => createAndRun(burst)));
    const elapsedMs = performance.now() - started;
    const alive = outcomes.filter((outcome): outcome is PromiseFulfilledResult<Sandbox> => outcome.status === 'fulfilled').map((outcome) => outcome.value);
    // Every sandbox must still answer after the burst: none lost.
    const answering = (await Promise.allSettled(alive.map(async (sandbox) => (await sandbox.commands.run('echo still-here')).stdout === 'still-here\n'))).filter(
      (outcome) => outcome.status === 'fulfilled' && outcome.value,
    ).length;
    rows.push({ name: `${CONCURRENT} sandboxes created at once (cold), each ran a command`, value: { amount: (alive.length / elapsedMs) * 1000, unit: 'sandboxes/s' } });
    rows.push({
      name: `${CONCURRENT} concurrent sandboxes still answering afterwards`,
      value: { amount: answering, unit: `of ${CONCURRENT}` },
      target: { text: `${CONCURRENT} concurrent with none lost`, met: answering === CONCURRENT },
    });
    await Promise.allSettled(alive.map((sandbox) => sandbox.kill()));
  } finally {
    await burst.close();
  }
  rmSync(BASELINE_HOME, { recursive: true, force: true });
  report('sandbox', rows, { rounds: ROUNDS, concurrent: CONCURRENT, snapshotRounds: SNAPSHOT_ROUNDS });
}

await main();
