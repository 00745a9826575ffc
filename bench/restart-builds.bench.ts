// Restart of `tradeswarm serve`, two builds alternated on one data dir (issue 15's case): 5 deployments
// of 5 agents (lockstep meshes on 2 × 20,000 synthetic bars, as bench:controlplane deploys them) on an
// external `tradeswarm cloud serve` and `tradeswarm broker`, so the agents outlive every SIGKILL and are
// adopted. Each restart SIGKILLs serve and starts the other build on the same data dir, cloud and broker;
// per start it reports spawn → listening and SIGKILL → every deployment trading again (its `steps` past
// the value its `resumed` event stored, state running, polled every 20 ms), the CPU time serve used to
// get to listen (bench/lib/start-marks.mjs: unlike wall time, barely moved by what else the machine
// runs), the agents adopted, and the load average at the time. Before the restarts, `serve --help` of
// each build in turn (--module-rounds times, 7 by default): the CPU time of loading serve's modules alone;
// and, as many rounds, the CPU time of what a resume does per deployment before its agents are adopted:
// parsing the stored spec as the control plane does and opening its feed at step RESUME_STEP, for the
// deployments, in a process of each build's own. Alternating A, B, A, B… spreads the machine's changing load over both
// builds; the table gives each build's medians.
//
// `npm run bench:restart-builds -- --a DIR --b DIR [--starts N] [--module-rounds N] [--deployments N] [--agents 2|5] [--profile-dir DIR] [--quick]`
// where each DIR holds a build (bin/tradeswarm.js and dist/; each defaults to this checkout, as `npm run
// bench` runs it). --quick: 1 start and 3 rounds of each. With
// --profile-dir, every start of serve writes a CPU profile of its first 6 s there (`start-marks.mjs`).
// Results in bench/results/restart-builds.json. Timing never fails it.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type RunningProcess, type TradeswarmCommand, startBroker, startCloud } from '../src/chaos/index.js';
import { type BenchRow, report } from './lib/report.js';
import { type EventRecord, type View, api, specYaml } from './lib/serve.js';

/** The value after `--name`, or `fallback`. */
function flag(name: string, fallback?: string): string | undefined {
  const index = process.argv.indexOf(`--${name}`);
  return index < 0 ? fallback : process.argv[index + 1];
}

const REPOSITORY = fileURLToPath(new URL('..', import.meta.url));
const BUILDS = { a: resolve(flag('a', REPOSITORY)!), b: resolve(flag('b', REPOSITORY)!) } as const;
/** Starts of each build. */
const quick = process.argv.includes('--quick');
const STARTS = Number(flag('starts', quick ? '1' : '4'));
const MODULE_ROUNDS = Number(flag('module-rounds', quick ? '3' : '7'));
const DEPLOYMENTS = Number(flag('deployments', '5'));
const AGENTS = Number(flag('agents', '5')) as 2 | 5;
const PROFILE_DIR = flag('profile-dir');
const POLL_MS = 20;
/** Steps every deployment closes between restarts. */
const STEPS_BETWEEN = 30;
const WAIT_LIMIT_MS = 120_000;
interface Serve {
  readonly child: ChildProcess;
  readonly url: string;
  readonly spawnedAt: number;
  readonly listeningAt: number;
  /** CPU time (user + system) serve used until it printed its address. */
  readonly cpuToListeningMs: number;
  readonly stderr: () => string;
}

/** One restart, measured. */
interface Sample {
  readonly build: 'a' | 'b';
  readonly spawnToListeningMs: number;
  readonly cpuToListeningMs: number;
  readonly killToTradingMs: number;
  readonly adopted: number;
  /** The 1-minute load average when serve was killed. */
  readonly load: number;
}

/** CPU time (ms) of `serve --help` from `build`: loading serve's modules and nothing else. */
function helpCpuMs(build: string): number {
  const run = spawnSync(process.execPath, ['--import', join(REPOSITORY, 'bench', 'lib', 'start-marks.mjs'), join(build, 'bin', 'tradeswarm.js'), 'serve', '--help'], { cwd: build, encoding: 'utf8' });
  const match = /start-marks-exit (\{.*\})/.exec(run.stderr);
  if (match === null) throw new Error(`serve --help of ${build} printed no start-marks-exit: ${run.stderr}`);
  return (JSON.parse(match[1] as string) as { cpuMs: number }).cpuMs;
}

/** The step the resume rounds open each deployment's feed at (the restarts here kill at a few hundred). */
const RESUME_STEP = 500;

/**
 * CPU time (ms) `build` takes to do, for each of the deployments, what ControlPlane's resume does with
 * its spec before the agents are adopted: parse it (with the bars the feed will need) and open its feed
 * at {@link RESUME_STEP}, then read that step.
 */
function resumeCpuMs(build: string): number {
  const specs = Array.from({ length: DEPLOYMENTS }, (_, index) => specYaml(index + 1, AGENTS));
  const code = `
    const { parseSwarmSpecText, openSwarmFeed } = await import(${JSON.stringify(pathToFileURL(join(build, 'dist', 'swarm', 'index.js')).href)});
    const { ManualClock, silentLogger } = await import(${JSON.stringify(pathToFileURL(join(build, 'dist', 'core', 'index.js')).href)});
    const before = process.cpuUsage();
    for (const text of ${JSON.stringify(specs)}) {
      const spec = await parseSwarmSpecText(text, 'resumed', '/nonexistent', { streamData: true });
      const feed = await openSwarmFeed({ spec, swarmId: 'resumed', bus: undefined, clock: new ManualClock(), logger: silentLogger, from: { step: ${RESUME_STEP} } });
      await feed.read(1);
    }
    const used = process.cpuUsage(before);
    process.stdout.write(JSON.stringify({ cpuMs: (used.user + used.system) / 1000 }));`;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: build, encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`the resume round of ${build} failed: ${run.stderr}`);
  return (JSON.parse(run.stdout) as { cpuMs: number }).cpuMs;
}

const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms));

async function startServe(build: string, dataDir: string, config: string, args: readonly string[], env: Readonly<Record<string, string>>): Promise<Serve> {
  const spawnedAt = performance.now();
  const child = spawn(process.execPath, ['--import', join(REPOSITORY, 'bench', 'lib', 'start-marks.mjs'), join(build, 'bin', 'tradeswarm.js'), 'serve', '--port', '0', '--data-dir', dataDir, '--config', config, ...args], {
    cwd: build,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LOG_LEVEL: 'warn', ...env, ...(PROFILE_DIR === undefined ? {} : { PROFILE_START_DIR: PROFILE_DIR }) },
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-8000)));
  const [url, cpuMs] = await new Promise<[string, number]>((done, fail) => {
    let stdout = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /start-marks (\{.*\})\n[^]*listening on (http:\/\/\S+)/.exec(stdout);
      if (match !== null) done([match[2] as string, (JSON.parse(match[1] as string) as { cpuMs: number }).cpuMs]);
    });
    child.once('exit', (code, signal) => fail(new Error(`serve exited (${signal ?? code}) before listening: ${stderr}`)));
  });
  return { child, url, spawnedAt, listeningAt: performance.now(), cpuToListeningMs: cpuMs, stderr: () => stderr };
}

async function kill(serve: Serve): Promise<void> {
  const exited = once(serve.child, 'exit');
  serve.child.kill('SIGKILL');
  await exited;
}

async function pollUntil(serve: Serve, what: string, done: (views: readonly View[]) => boolean): Promise<void> {
  const limit = performance.now() + WAIT_LIMIT_MS;
  for (;;) {
    const views = await api<View[]>(serve, 'GET', '/v1/deployments');
    if (done(views)) return;
    if (performance.now() > limit) throw new Error(`gave up waiting for ${what}: ${JSON.stringify(views.map((view) => [view.name, view.state, view.steps]))}; stderr: ${serve.stderr()}`);
    await sleep(POLL_MS);
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted.length === 0 ? Number.NaN : sorted.length % 2 === 1 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
}

const helpCpu: Record<'a' | 'b', number[]> = { a: [], b: [] };
const resumeCpu: Record<'a' | 'b', number[]> = { a: [], b: [] };
const helpLoads: number[] = [];
for (let round = 0; round < MODULE_ROUNDS; round++) {
  helpLoads.push(loadavg()[0]!);
  for (const build of ['a', 'b'] as const) {
    helpCpu[build].push(helpCpuMs(BUILDS[build]));
    resumeCpu[build].push(resumeCpuMs(BUILDS[build]));
  }
}

const externals: RunningProcess[] = [];
let serve: Serve | undefined;
const samples: Sample[] = [];

/** The restarts, in `folder`: an external cloud and broker, the deployments, then serve killed and started `2 × STARTS` times. */
async function restarts(folder: string): Promise<void> {
  const command: TradeswarmCommand = { argv: [process.execPath, 'bin/tradeswarm.js'], cwd: BUILDS.a };
  const cloud = await startCloud(command, folder);
  externals.push(cloud.process);
  const broker = await startBroker(command, { port: 0, logFile: join(folder, 'broker.log') });
  externals.push(broker.process);
  const args = ['--cloud-url', cloud.settings.connection.apiUrl, '--broker', broker.url];
  const env = { E2B_API_KEY: cloud.settings.connection.apiKey };
  const dataDir = join(folder, 'data');
  const config = join(folder, 'environments.yaml');
  writeFileSync(config, 'environments:\n  prod:\n    maxSandboxes: 100\n');
  serve = await startServe(BUILDS.a, dataDir, config, args, env);
  const names: string[] = [];
  for (let index = 0; index < DEPLOYMENTS; index++) {
    await api(serve, 'POST', '/v1/deployments', { spec: specYaml(index + 1, AGENTS), baseDir: folder, name: `d${index}`, env: 'prod' });
    names.push(`d${index}`);
  }
  for (let start = 0; start < 2 * STARTS; start++) {
    const build = start % 2 === 0 ? 'b' : 'a';
    const before = await api<View[]>(serve, 'GET', '/v1/deployments');
    const floor = Math.max(0, ...before.map((view) => view.steps)) + STEPS_BETWEEN;
    await pollUntil(serve, 'every deployment to trade', (views) => views.length === DEPLOYMENTS && views.every((view) => view.state === 'running' && view.steps >= floor));
    const load = loadavg()[0]!;
    const killedAtWall = Date.now();
    const killedAt = performance.now();
    await kill(serve);
    serve = await startServe(BUILDS[build], dataDir, config, args, env);
    // Each deployment's `resumed` event names the step stored at the kill; trading again is a step past it.
    const resumedStep = new Map<string, number>();
    let adopted = 0;
    const limit = performance.now() + WAIT_LIMIT_MS;
    while (resumedStep.size < names.length) {
      for (const name of names.filter((each) => !resumedStep.has(each))) {
        const events = await api<EventRecord[]>(serve, 'GET', `/v1/deployments/${name}/events`);
        const resumed = events.filter((event) => event.kind === 'resumed' && event.agentId === null && event.atMs >= killedAtWall).at(-1);
        if (resumed?.step !== undefined && resumed.step !== null) resumedStep.set(name, resumed.step);
      }
      if (performance.now() > limit) throw new Error(`no resumed event after the kill for ${names.filter((each) => !resumedStep.has(each)).join(', ')}`);
      if (resumedStep.size < names.length) await sleep(POLL_MS);
    }
    const tradingAt = new Map<string, number>();
    await pollUntil(serve, 'every deployment to trade again', (views) => {
      const now = performance.now();
      for (const view of views) {
        const from = resumedStep.get(view.name);
        if (!tradingAt.has(view.name) && from !== undefined && view.state === 'running' && view.steps > from) tradingAt.set(view.name, now);
      }
      return names.every((name) => tradingAt.has(name));
    });
    for (const name of names) {
      const events = await api<EventRecord[]>(serve, 'GET', `/v1/deployments/${name}/events`);
      adopted += events.filter((event) => event.kind === 'resumed' && event.agentId !== null && event.atMs >= killedAtWall && event.detail?.startsWith('adopted') === true).length;
    }
    const sample: Sample = { build, spawnToListeningMs: serve.listeningAt - serve.spawnedAt, cpuToListeningMs: serve.cpuToListeningMs, killToTradingMs: Math.max(...tradingAt.values()) - killedAt, adopted, load };
    samples.push(sample);
    process.stdout.write(`${JSON.stringify(sample)}\n`);
  }
}

/** Why the restarts stopped before their count, if they did. */
let stoppedEarly: string | undefined;
// --starts 0: the module loading rounds alone.
if (STARTS > 0) {
  const folder = mkdtempSync(join(tmpdir(), 'tradeswarm-bench-restart-builds-'));
  try {
    await restarts(folder);
  } catch (error) {
    // On a loaded machine a restart can fail (sandboxes that do not start in time): the samples so far still count.
    stoppedEarly = error instanceof Error ? error.message.slice(0, 2000) : String(error);
    process.stdout.write(`stopped early: ${stoppedEarly}\n`);
  } finally {
    if (serve !== undefined) await kill(serve).catch(() => undefined);
    for (const running of externals.reverse()) await running.kill('SIGTERM').catch(() => undefined);
    rmSync(folder, { recursive: true, force: true });
  }
}

const rows: BenchRow[] = (['a', 'b'] as const).flatMap((build) => {
  const own = samples.filter((sample) => sample.build === build);
  const title = `build ${build} (${BUILDS[build]}), ${DEPLOYMENTS} × ${AGENTS} agents, median of ${own.length} starts, load ${Math.min(...own.map((s) => s.load)).toFixed(1)}–${Math.max(...own.map((s) => s.load)).toFixed(1)}`;
  const restartRows: BenchRow[] = [
    { name: `${title}: spawn → listening`, value: { amount: median(own.map((s) => s.spawnToListeningMs)), unit: 'ms' } },
    { name: `${title}: CPU time to listening`, value: { amount: median(own.map((s) => s.cpuToListeningMs)), unit: 'ms' } },
    { name: `${title}: SIGKILL → every deployment trading again`, value: { amount: median(own.map((s) => s.killToTradingMs)), unit: 'ms' } },
    { name: `${title}: agents adopted`, value: { amount: median(own.map((s) => s.adopted)), unit: `of ${DEPLOYMENTS * AGENTS}` } },
  ];
  return [
    {
      name: `build ${build}: CPU time of serve --help (loading serve's modules), median of ${MODULE_ROUNDS}, load ${Math.min(...helpLoads).toFixed(1)}–${Math.max(...helpLoads).toFixed(1)}`,
      value: { amount: median(helpCpu[build]), unit: 'ms' },
    },
    {
      name: `build ${build}: CPU time to parse ${DEPLOYMENTS} deployments' specs and open their feeds at step ${RESUME_STEP}, median of ${MODULE_ROUNDS}`,
      value: { amount: median(resumeCpu[build]), unit: 'ms' },
    },
    ...(own.length === 0 ? [] : restartRows),
  ];
});
report('restart-builds', rows, { builds: BUILDS, samples, helpCpuMs: helpCpu, resumeCpuMs: resumeCpu, helpLoads, ...(stoppedEarly === undefined ? {} : { stoppedEarly }) });
