// Disk benchmark: what a sandbox's own disk costs (an ext4 image on a loop device, the choice explained
// in src/localcloud/isolation/disk.ts), next to the other ways of limiting a sandbox's writable storage,
// all measured in the same run. `npm run bench:disk` (as root); results in bench/results/disk.json.
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Sandbox } from 'e2b';
import { silentLogger } from '../src/core/index.js';
import { startLocalCloud, type LocalCloud } from '../src/localcloud/index.js';
import { report, type BenchRow } from './lib/report.js';
import { summarize } from './lib/stats.js';

const quick = process.argv.includes('--quick');
const ROUNDS = quick ? 5 : 20;
const WRITE_MIB = 256;

/** What bench/lib/disk_options.py measures (see its docstring). */
interface Options {
  readonly hostFolder: { readonly writeMBps: number };
  readonly tmpfs: { readonly setupMs: number; readonly writeMBps: number };
  readonly tmpfsInMemoryCgroup: { readonly memoryLimitMiB: number; readonly tmpfsSizeMiB: number; readonly writtenMiB: number; readonly writer: string };
  readonly imagePerSandbox: { readonly setupMs: number; readonly mkfsMs: number; readonly unmountMs: number; readonly writeMBps: number };
  readonly root: { readonly writableSetupMs: number; readonly readOnlySetupMs: number; readonly hostFolders: readonly string[] };
  readonly sharedWithProjectQuotas:
    | { readonly oneTimeSetupMs: number; readonly setupMs: number; readonly quotaMiB: number; readonly writtenMiBAsUser: number; readonly writtenMiBAsRoot: number }
    | { readonly unavailable: string; readonly kernelConfig: readonly string[] };
}

function measureOptions(): Options {
  const script = fileURLToPath(new URL('./lib/disk_options.py', import.meta.url));
  const supervisor = fileURLToPath(new URL('../src/localcloud/guest/supervisor.py', import.meta.url));
  // In a mount namespace of its own: nothing it mounts is seen by the host, and all of it goes with it.
  const run = spawnSync('/usr/bin/unshare', ['--mount', '--propagation', 'private', '/usr/bin/python3', '-I', '-S', script, String(ROUNDS), tmpdir(), supervisor], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`disk_options.py failed: ${run.stderr}`);
  return JSON.parse(run.stdout) as Options;
}

/** `dd` inside the sandbox, on its /tmp: MB/s of one 256 MiB file written with fdatasync. */
async function sandboxWriteMBps(sandbox: Sandbox): Promise<number> {
  const result = await sandbox.commands.run(`dd if=/dev/zero of=/tmp/throughput bs=1M count=${WRITE_MIB} conv=fdatasync 2>&1 | tail -n 1; rm /tmp/throughput`);
  const seconds = Number(/copied, ([\d.]+) s/.exec(result.stdout)?.[1]);
  if (!Number.isFinite(seconds)) throw new Error(`unexpected dd output ${JSON.stringify(result.stdout)}`);
  return (WRITE_MIB * 1024 * 1024) / seconds / 1e6;
}

async function createToFirstCommand(cloud: LocalCloud): Promise<{ ms: number; sandbox: Sandbox }> {
  const started = performance.now();
  const sandbox = await Sandbox.create('base', cloud.connection);
  await sandbox.commands.run('true');
  return { ms: performance.now() - started, sandbox };
}

function median(values: readonly number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
}

async function main(): Promise<void> {
  const options = measureOptions();
  const rows: BenchRow[] = [];
  const host = options.hostFolder.writeMBps;
  const write = (name: string, mbps: number): BenchRow => ({ name: `write ${WRITE_MIB} MiB + fdatasync: ${name}`, value: { amount: mbps, unit: 'MB/s' }, ratio: { to: 'host folder', value: mbps / host } });
  rows.push(write('a host folder (a sandbox\'s /tmp before its own disk)', host));
  rows.push(write('tmpfs', options.tmpfs.writeMBps));
  rows.push(write('image per sandbox, mounted by the supervisor (raw)', options.imagePerSandbox.writeMBps));
  rows.push({ name: 'set-up per sandbox: tmpfs (one mount)', value: { amount: options.tmpfs.setupMs, unit: 'ms' } });
  rows.push({ name: 'set-up per sandbox: image (sparse copy of the template\'s, loop device, mount)', value: { amount: options.imagePerSandbox.setupMs, unit: 'ms' } });
  rows.push({ name: 'set-up per sandbox: … an mkfs.ext4 of its own instead of the copy', value: { amount: options.imagePerSandbox.mkfsMs, unit: 'ms' } });
  rows.push({ name: 'end of a sandbox: unmount of its disk', value: { amount: options.imagePerSandbox.unmountMs, unit: 'ms' } });
  const folders = ['/', ...options.root.hostFolders.map((name) => `/${name}`), '/etc'].join(', ');
  rows.push({ name: `set-up per sandbox: its root, writable (overlays on ${folders}, upper layers on its disk)`, value: { amount: options.root.writableSetupMs, unit: 'ms' } });
  rows.push({ name: 'set-up per sandbox: … the read-only root before (tmpfs, read-only binds, /etc layer)', value: { amount: options.root.readOnlySetupMs, unit: 'ms' } });
  const cgroup = options.tmpfsInMemoryCgroup;
  rows.push({ name: `tmpfs of ${cgroup.tmpfsSizeMiB} MiB, writer in a ${cgroup.memoryLimitMiB} MiB memory cgroup: written before it stopped (${cgroup.writer})`, value: { amount: cgroup.writtenMiB, unit: 'MiB' } });
  const shared = options.sharedWithProjectQuotas;
  if ('unavailable' in shared) {
    const missing = shared.kernelConfig.map((line) => line.replace(/^# (\w+) is not set$/, '$1')).join(', ');
    rows.push({ name: `shared filesystem with project quotas: unavailable here, the kernel refused the mount (${missing ? `${missing} not set` : shared.unavailable})` });
  } else {
    rows.push({ name: 'set-up per sandbox: shared filesystem, project id and quota', value: { amount: shared.setupMs, unit: 'ms' } });
    rows.push({ name: 'shared filesystem with project quotas, once per server', value: { amount: shared.oneTimeSetupMs, unit: 'ms' } });
    rows.push({ name: `${shared.quotaMiB} MiB project quota: written by user / by root (CAP_SYS_RESOURCE)`, value: { amount: shared.writtenMiBAsUser, unit: `/ ${shared.writtenMiBAsRoot} MiB` } });
  }

  const cold = await startLocalCloud({ logger: silentLogger, warmPoolSize: 0, metricsIntervalMs: 0 });
  try {
    await (await createToFirstCommand(cold)).sandbox.kill();
    const samples: number[] = [];
    const throughputs: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const { ms, sandbox } = await createToFirstCommand(cold);
      samples.push(ms);
      if (round < 3) throughputs.push(await sandboxWriteMBps(sandbox));
      await sandbox.kill();
    }
    rows.push(write('inside a sandbox, on its /tmp (its own disk)', median(throughputs)));
    const summary = summarize(samples);
    rows.push({ name: 'create → first command, cold (no warm pool)', summary, ratio: { to: 'its disk\'s set-up', value: summary.p50 / options.imagePerSandbox.setupMs } });
  } finally {
    await cold.close();
  }

  const warm = await startLocalCloud({ logger: silentLogger, metricsIntervalMs: 0 });
  try {
    await warm.sandboxes.prewarm('base');
    const samples: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      await warm.sandboxes.poolSettled();
      const { ms, sandbox } = await createToFirstCommand(warm);
      samples.push(ms);
      await sandbox.kill();
    }
    rows.push({ name: 'create → first command, warm pool ready', summary: summarize(samples) });
  } finally {
    await warm.close();
  }
  report('disk', rows, { options });
}

await main();
