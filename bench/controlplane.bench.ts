// Control-plane benchmark: real `tradeswarm serve` processes (embedded store in a temporary data dir,
// embedded broker, embedded local cloud unless said otherwise) driven over their /v1 HTTP API, one
// section per measurement:
// - restart: N deployments running (N = 1, 5, 20 of 2 agents, and 5 of 5 agents, the issue's case),
//   serve SIGKILLed and started again on the same data dir; the time from the SIGKILL (and from the new
//   process's spawn) until every deployment trades again (its `steps` past the value stored at the kill,
//   state `running`), polled every 20 ms, broken down into spawn → listening → agents resumed (the
//   agents' `resumed` events) → trading again. Each case twice: with the embedded broker and cloud (the
//   agents die with serve and are deployed again), and with an external `tradeswarm cloud serve` and
//   `tradeswarm broker`, processes of their own started by the bench as the chaos suite starts them
//   (serve --cloud-url … --broker …: the agents outlive serve and are adopted);
// - api: p50/p99 of GET /v1/deployments (`ps`) and GET /v1/deployments/:name (`status`) with 20
//   deployments running, next to a Fastify route returning a constant in this process (the baseline)
//   and serve's own /healthz, all through the same client (fetch), one request at a time;
// - memory: serve's RSS (its own pid only: the local cloud runs inside it, the agents' sandboxes are
//   separate processes) idle, and with 10 and 50 agents running;
// - longrun: serve's RSS and the steps closed while one deployment trades a looping feed (lockstep, as
//   fast as its 2 agents answer) for 10 minutes (4 with --quick), read at 2 minutes (1) and at the end:
//   what a deployment that runs for days adds per step. Not part of a run without --only.
// `npm run bench:controlplane [-- --quick] [-- --only restart|api|memory|longrun]`; results in
// bench/results/controlplane.json (controlplane-<ids>.json with --only). Timing never fails it.
// To compare two builds' restarts: `-- --only restart --scenario 5x5 --placement external --kills 8
// --alternate <another checkout, built>` restarts serve from this checkout and from the other one in
// turn (ABAB…) on the same data dir, and gives each build's medians.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createApp, listen } from '../src/api/index.js';
import { type RunningProcess, type TradeswarmCommand, startBroker, startCloud } from '../src/chaos/index.js';
import { silentLogger } from '../src/core/index.js';
import { type BenchRow, report } from './lib/report.js';
import { BENCH_BAR_COUNT, type EventRecord, type View, api, specYaml } from './lib/serve.js';
import { summarize } from './lib/stats.js';

const quick = process.argv.includes('--quick');
/** The value of `--name value`, if given. */
function flag(name: string): string | undefined {
  const index = process.argv.indexOf(name);
  return index < 0 ? undefined : process.argv[index + 1];
}
/** `--only a,b`: the ids of the sections to run (all when absent). */
const only = ((): ReadonlySet<string> | undefined => {
  const ids = flag('--only');
  return ids === undefined ? undefined : new Set(ids.split(',').filter((id) => id.length > 0));
})();

const REPOSITORY = fileURLToPath(new URL('..', import.meta.url));
/** Bars per symbol of the synthetic spec: long enough that no deployment ends during the bench. */
const BAR_COUNT = BENCH_BAR_COUNT;
const POLL_MS = 20;
/** Where the agents run: in serve's embedded broker and cloud, or in a `cloud serve` and `broker` of their own. */
type Placement = 'embedded' | 'external';
/**
 * Restart scenarios: deployments × agents each, and SIGKILLs one after another on the same data dir; each with both placements.
 * `--scenario DxA` (e.g. 5x5): only that scenario; `--kills N`: that many kills in each.
 */
const RESTART_SCENARIOS: ReadonlyArray<{ readonly deployments: number; readonly agents: 2 | 5; readonly kills: number }> = (
  quick
    ? ([{ deployments: 1, agents: 2, kills: 1 }, { deployments: 5, agents: 2, kills: 1 }, { deployments: 5, agents: 5, kills: 1 }] as const)
    : ([{ deployments: 1, agents: 2, kills: 2 }, { deployments: 5, agents: 2, kills: 2 }, { deployments: 20, agents: 2, kills: 1 }, { deployments: 5, agents: 5, kills: 2 }] as const)
)
  .filter((scenario) => flag('--scenario') === undefined || flag('--scenario') === `${scenario.deployments}x${scenario.agents}`)
  .map((scenario) => (flag('--kills') === undefined ? scenario : { ...scenario, kills: Number(flag('--kills')) }));
/** `--placement embedded|external`: only that placement. */
const PLACEMENTS: readonly Placement[] = (['embedded', 'external'] as const).filter((placement) => flag('--placement') === undefined || flag('--placement') === placement);
/** `--alternate DIR`: another checkout (built) whose serve restarts every other time, so two builds compare at the same load. */
const ALTERNATE = flag('--alternate');
/** How the bench starts `tradeswarm` commands (the built CLI). */
const COMMAND: TradeswarmCommand = { argv: [process.execPath, 'bin/tradeswarm.js'], cwd: REPOSITORY };
/** Steps every deployment closes before serve is killed (and between kills). */
const STEPS_BEFORE_KILL = 30;
const API_DEPLOYMENTS = 20;
const API_REQUESTS = quick ? 150 : 300;
const API_WARMUP = 50;
/** Memory: deployments of 2 agents, cumulative (5 → 10 agents, 25 → 50 agents). */
const MEMORY_STAGES = [0, 5, 25] as const;
/** Settling time before RSS is read, and how many reads (the median is reported). */
const MEMORY_SETTLE_MS = 3000;
const MEMORY_READS = 5;
/**
 * Long run: minutes from the first step closed to each read of serve's RSS; `--longrun-minutes 2,10,30`
 * reads at other times (a run long enough to tell growth that stops from growth that goes on).
 */
const LONGRUN_READ_MINUTES = ((): readonly number[] => {
  const given = flag('--longrun-minutes');
  if (given === undefined) return quick ? [1, 4] : [2, 10];
  const minutes = given.split(',').map(Number);
  if (minutes.length < 2 || minutes.some((value, index) => !(value > 0) || (index > 0 && value <= (minutes[index - 1] as number)))) {
    throw new Error(`--longrun-minutes must be two or more increasing numbers of minutes > 0, as 2,10,30; got ${given}`);
  }
  return minutes;
})();
/**
 * `--serve-old-space MB`: serve runs with V8's old space held to that size (`--max-old-space-size`). V8
 * lets its heap grow with garbage before it collects, so serve's RSS overstates what it keeps; held, the
 * RSS shows what a long run really retains.
 */
const SERVE_NODE_OPTIONS = ((): { NODE_OPTIONS?: string } => {
  const given = flag('--serve-old-space');
  if (given === undefined) return {};
  if (!/^[1-9]\d*$/.test(given)) throw new Error(`--serve-old-space must be a whole number of MB > 0, as 128; got ${given}`);
  return { NODE_OPTIONS: `--max-old-space-size=${given}` };
})();
/** Long run: bars per symbol of its data, replayed in a loop. */
const LONGRUN_BAR_COUNT = 500;
/** Targets from the issue (restart: with an external cloud). */
const RESTART_TARGET_MS = 2000;
const API_TARGET_P99_MS = 20;
/** How long anything may take before the bench gives up (a deployment that never trades again). */
const WAIT_LIMIT_MS = 120_000;

/** What the JSON keeps beyond the rows; sections add their own key. */
const details: Record<string, unknown> = {};
/** Everything to undo at the end, whatever happened. */
const servers = new Set<Serve>();
const folders: string[] = [];
/** Processes serve started (sandboxes), checked to be gone at the end. */
const sandboxPids = new Set<number>();
/** External clouds and brokers running, stopped at the end whatever happened. */
const externals = new Set<RunningProcess>();

/** An external cloud and broker, and what serve is started with to use them. */
interface External {
  readonly cloud: RunningProcess;
  readonly broker: RunningProcess;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
}

interface Serve {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly url: string;
  /** performance.now() at spawn and when it printed its address. */
  readonly spawnedAt: number;
  readonly listeningAt: number;
  readonly stderr: () => string;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function tempFolder(prefix: string): string {
  const folder = mkdtempSync(join(tmpdir(), prefix));
  folders.push(folder);
  return folder;
}

/** A --config file that lets prod hold every agent this bench starts. */
function configFile(folder: string): string {
  const file = join(folder, 'environments.yaml');
  writeFileSync(file, 'environments:\n  prod:\n    maxSandboxes: 100\n');
  return file;
}

/** Starts `tradeswarm serve` on an OS-chosen port (on `external`'s cloud and broker when given); resolves once it printed its address. */
async function startServe(dataDir: string, config: string, external?: External, repository = REPOSITORY): Promise<Serve> {
  const spawnedAt = performance.now();
  const child = spawn(process.execPath, ['bin/tradeswarm.js', 'serve', '--port', '0', '--data-dir', dataDir, '--config', config, ...(external?.args ?? [])], {
    cwd: repository,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LOG_LEVEL: 'warn', ...SERVE_NODE_OPTIONS, ...external?.env },
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-8000)));
  const url = await new Promise<string>((resolve, reject) => {
    let stdout = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(stdout);
      if (match !== null) resolve(match[1] as string);
    });
    child.once('exit', (code, signal) => reject(new Error(`serve exited (${signal ?? code}) before listening: ${stderr}`)));
    // A serve that never says it listens (one such hang was seen, cause unknown) ends the bench with what it printed.
    setTimeout(() => reject(new Error(`serve (pid ${child.pid}) did not print its address within ${WAIT_LIMIT_MS} ms; its stdout: ${stdout}; its stderr: ${stderr}`)), WAIT_LIMIT_MS).unref();
  });
  const serve: Serve = { child, pid: child.pid!, url, spawnedAt, listeningAt: performance.now(), stderr: () => stderr };
  servers.add(serve);
  return serve;
}

/** The pids of every process under `pid` (threads' children included). */
function descendants(pid: number): number[] {
  const found: number[] = [];
  const visit = (parent: number): void => {
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${parent}/task`);
    } catch {
      return;
    }
    for (const task of tasks) {
      let children: string;
      try {
        children = readFileSync(`/proc/${parent}/task/${task}/children`, 'utf8');
      } catch {
        continue;
      }
      for (const child of children.split(' ').filter((text) => text.length > 0).map(Number)) {
        found.push(child);
        visit(child);
      }
    }
  };
  visit(pid);
  return found;
}

/** Notes every process serve (or an external cloud) runs now, so the end can check none outlived it. */
function noteSandboxes(serve: { readonly pid: number }): number {
  const pids = descendants(serve.pid);
  for (const pid of pids) sandboxPids.add(pid);
  return pids.length;
}

/** Starts a `tradeswarm cloud serve` and a `tradeswarm broker`, each a process of its own, logging into `folder`. */
async function startExternal(folder: string): Promise<External> {
  const { process: cloud, settings } = await startCloud(COMMAND, folder);
  externals.add(cloud);
  const broker = await startBroker(COMMAND, { port: 0, logFile: join(folder, 'broker.log') });
  externals.add(broker.process);
  return {
    cloud,
    broker: broker.process,
    args: ['--cloud-url', settings.connection.apiUrl, '--broker', broker.url],
    env: { E2B_API_KEY: settings.connection.apiKey },
  };
}

/** Stops an external cloud (SIGTERM: it kills every sandbox) and broker, noting the cloud's sandboxes first. */
async function stopExternal(external: External): Promise<void> {
  if (external.cloud.child.pid !== undefined) noteSandboxes({ pid: external.cloud.child.pid });
  await external.cloud.kill('SIGTERM');
  await external.broker.kill('SIGTERM');
  externals.delete(external.cloud);
  externals.delete(external.broker);
}

/** VmRSS of a process, in MB. */
function rssMb(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (match === null) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) / 1024;
}

/** SIGKILLs serve and waits for it to be reaped; returns performance.now() at the kill. */
async function killServe(serve: Serve): Promise<number> {
  const killedAt = performance.now();
  // One that has exited already has given its 'exit': waiting for it again would wait for ever.
  if (serve.child.exitCode === null && serve.child.signalCode === null) {
    noteSandboxes(serve);
    const exited = once(serve.child, 'exit');
    serve.child.kill('SIGKILL');
    await exited;
  }
  servers.delete(serve);
  return killedAt;
}

const ENDED = new Set(['complete', 'halted', 'degraded', 'stopped', 'failed']);

/** Polls `ps` until `done` says so; throws when a deployment ended or the limit passed. */
async function pollUntil(serve: Serve, what: string, done: (views: readonly View[]) => boolean): Promise<View[]> {
  const limit = performance.now() + WAIT_LIMIT_MS;
  for (;;) {
    const views = await api<View[]>(serve, 'GET', '/v1/deployments');
    const ended = views.find((view) => ENDED.has(view.state));
    if (ended !== undefined) throw new Error(`deployment ${ended.name} ended (${ended.state}) while waiting for ${what}; serve's stderr: ${serve.stderr()}`);
    if (done(views)) return views;
    if (performance.now() > limit) throw new Error(`gave up waiting for ${what} after ${WAIT_LIMIT_MS} ms: ${JSON.stringify(views.map((view) => [view.name, view.state, view.steps]))}`);
    await sleep(POLL_MS);
  }
}

/** Deploys `count` deployments (names d<first>…) to prod, one request after another. */
async function deploy(serve: Serve, first: number, count: number, agents: 2 | 5, baseDir: string): Promise<string[]> {
  const names: string[] = [];
  for (let index = first; index < first + count; index++) {
    const name = `d${index}`;
    await api(serve, 'POST', '/v1/deployments', { spec: specYaml(index + 1, agents), baseDir, name, env: 'prod' });
    names.push(name);
  }
  return names;
}

/** Waits until every deployment runs with every agent healthy and has closed at least `steps` steps. */
function untilTrading(serve: Serve, count: number, steps: number): Promise<View[]> {
  return pollUntil(serve, `${count} deployments to trade`, (views) =>
    views.length === count && views.every((view) => view.state === 'running' && view.agents.healthy === view.agents.total && view.steps >= steps),
  );
}

/** One SIGKILL and restart, measured. */
interface RestartSample {
  readonly placement: Placement;
  /** The checkout the restarted serve ran from. */
  readonly build: string;
  readonly deployments: number;
  readonly agents: number;
  /** Agents whose running process the new serve adopted (the rest were deployed again). */
  readonly adopted: number;
  /** Steps each deployment had stored at the kill (the deployment's `resumed` event). */
  readonly stepsAtKill: number[];
  readonly killToExitMs: number;
  readonly spawnToListeningMs: number;
  /** From the SIGKILL: the last deployment's agents all resumed (their `resumed` events). */
  readonly killToAgentsResumedMs: number;
  /** From the SIGKILL / from the spawn: every deployment trading again. */
  readonly killToTradingMs: number;
  readonly spawnToTradingMs: number;
  /** Per deployment, from the SIGKILL: trading again. */
  readonly perDeploymentMs: number[];
}

async function restartOnce(
  serve: Serve,
  dataDir: string,
  config: string,
  names: readonly string[],
  agents: number,
  external: External | undefined,
  build: string,
): Promise<{ serve: Serve; sample: RestartSample }> {
  const killedAtWall = Date.now();
  const killedAt = await killServe(serve);
  const exitedAt = performance.now();
  const next = await startServe(dataDir, config, external, build);
  try {
    return { serve: next, sample: await measureResume(next, { killedAt, killedAtWall, exitedAt }, names, agents, external, build) };
  } catch (error) {
    // The bench ends with the error; the serve it started goes with it.
    await killServe(next);
    throw error;
  }
}

/**
 * Polls deployment `name`'s `resumed` events since `sinceWall` (the server's clock) until `pick` finds
 * in them what it needs; past `limit` (performance.now()), throws with `lacking`'s words.
 */
async function pollResumed<T>(serve: Serve, name: string, sinceWall: number, limit: number, pick: (resumed: EventRecord[]) => T | undefined, lacking: (resumed: EventRecord[]) => string): Promise<T> {
  for (;;) {
    const events = await api<EventRecord[]>(serve, 'GET', `/v1/deployments/${name}/events`);
    const resumed = events.filter((event) => event.kind === 'resumed' && event.atMs >= sinceWall);
    const found = pick(resumed);
    if (found !== undefined) return found;
    if (performance.now() > limit) throw new Error(`deployment ${name} ${lacking(resumed)} ${WAIT_LIMIT_MS} ms after the kill`);
    await sleep(POLL_MS);
  }
}

/** A restarted serve's way back, from the kill (`killedAt`, and `killedAtWall` on the server's clock) until every deployment trades again. */
async function measureResume(
  next: Serve,
  { killedAt, killedAtWall, exitedAt }: { readonly killedAt: number; readonly killedAtWall: number; readonly exitedAt: number },
  names: readonly string[],
  agents: number,
  external: External | undefined,
  build: string,
): Promise<RestartSample> {
  // The value stored at the kill is the step the deployment's `resumed` event names. Serve may listen
  // before a resumed deployment's event is stored: it is polled for.
  const resumedStep = new Map<string, number>();
  const limit = performance.now() + WAIT_LIMIT_MS;
  for (const name of names) {
    const step = await pollResumed(next, name, killedAtWall, limit, (resumed) => resumed.filter((event) => event.agentId === null).at(-1)?.step ?? undefined, () => 'has no resumed event');
    resumedStep.set(name, step);
  }
  const tradingAt = new Map<string, number>();
  await pollUntil(next, 'every deployment to trade again', (views) => {
    const now = performance.now();
    for (const view of views) {
      if (!tradingAt.has(view.name) && view.state === 'running' && view.steps > (resumedStep.get(view.name) ?? Number.POSITIVE_INFINITY)) tradingAt.set(view.name, now);
    }
    return names.every((name) => tradingAt.has(name));
  });
  const allTradingAt = Math.max(...tradingAt.values());
  // When each deployment's agents were all back: its agents' `resumed` events after the kill.
  let agentsResumedWall = 0;
  let adopted = 0;
  for (const name of names) {
    // Events are stored after what they tell of: a deployment may trade before its agents' events are in.
    const agentsOf = (resumed: EventRecord[]): EventRecord[] => resumed.filter((event) => event.agentId !== null);
    const back = await pollResumed(next, name, killedAtWall, limit, (resumed) => (agentsOf(resumed).length >= agents ? agentsOf(resumed) : undefined), (resumed) => `has ${agentsOf(resumed).length} of ${agents} agents resumed`);
    agentsResumedWall = Math.max(agentsResumedWall, ...back.map((event) => event.atMs));
    adopted += back.filter((event) => event.detail?.startsWith('adopted') === true).length;
  }
  return {
    placement: external === undefined ? 'embedded' : 'external',
    build,
    deployments: names.length,
    agents,
    adopted,
    stepsAtKill: names.map((name) => resumedStep.get(name)!),
    killToExitMs: exitedAt - killedAt,
    spawnToListeningMs: next.listeningAt - next.spawnedAt,
    killToAgentsResumedMs: agentsResumedWall - killedAtWall,
    killToTradingMs: allTradingAt - killedAt,
    spawnToTradingMs: allTradingAt - next.spawnedAt,
    perDeploymentMs: names.map((name) => tradingAt.get(name)! - killedAt),
  };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? Number.NaN;
}

/** Restart to resumed, per scenario, with the embedded broker and cloud (the baseline) and with external ones. */
async function measureRestart(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const samples: RestartSample[] = [];
  for (const scenario of RESTART_SCENARIOS) {
    for (const placement of PLACEMENTS) {
      const own = await restartScenario(scenario, placement);
      samples.push(...own);
      for (const build of [REPOSITORY, ...(ALTERNATE === undefined ? [] : [ALTERNATE])]) {
        const built = own.filter((sample) => sample.build === build);
        rows.push(...restartRows(scenario, placement, built, ALTERNATE === undefined ? '' : ` [${build === REPOSITORY ? 'this build' : `build in ${build}`}]`));
      }
    }
  }
  details.restart = {
    samples,
    barCount: BAR_COUNT,
    stepsBeforeKill: STEPS_BEFORE_KILL,
    note:
      'embedded: serve runs its own local cloud, broker and PGlite store, so every restart also starts a local cloud and deploys every agent into a new sandbox from its checkpoint. ' +
      'external: a `tradeswarm cloud serve` and a `tradeswarm broker` run as processes of their own (one pair per scenario), serve keeps its PGlite store and ' +
      'adopts the agents that outlived it (`adopted` counts them). ' +
      '"every agent resumed" is the latest agent `resumed` event (server clock); "trading again" = GET /v1/deployments shows the deployment running with ' +
      `steps past the value its \`resumed\` event stored at the kill, polled every ${POLL_MS} ms.`,
  };
  return rows;
}

/** One scenario's deployments started, trading, SIGKILLed and restarted `kills` times; the samples. */
async function restartScenario(scenario: (typeof RESTART_SCENARIOS)[number], placement: Placement): Promise<RestartSample[]> {
  const folder = tempFolder('tradeswarm-bench-cp-restart-');
  const dataDir = join(folder, 'data');
  const config = configFile(folder);
  const external = placement === 'external' ? await startExternal(folder) : undefined;
  const own: RestartSample[] = [];
  try {
    let serve = await startServe(dataDir, config, external);
    try {
      const names = await deploy(serve, 0, scenario.deployments, scenario.agents, folder);
      await untilTrading(serve, scenario.deployments, STEPS_BEFORE_KILL);
      for (let kill = 0; kill < scenario.kills; kill++) {
        if (kill > 0) {
          // Each deployment STEPS_BEFORE_KILL steps past its own count: they trade at their own pace, so
          // the slowest would rarely catch up with the fastest's count plus that within WAIT_LIMIT_MS.
          const before = new Map((await api<View[]>(serve, 'GET', '/v1/deployments')).map((view) => [view.name, view.steps]));
          await pollUntil(serve, `every deployment to trade ${STEPS_BEFORE_KILL} more steps`, (views) =>
            views.length === scenario.deployments &&
            views.every((view) => view.state === 'running' && view.agents.healthy === view.agents.total && view.steps >= (before.get(view.name) ?? 0) + STEPS_BEFORE_KILL),
          );
        }
        const build = ALTERNATE !== undefined && kill % 2 === 1 ? ALTERNATE : REPOSITORY;
        const result = await restartOnce(serve, dataDir, config, names, scenario.agents, external, build);
        serve = result.serve;
        own.push(result.sample);
        process.stdout.write(`restart ${placement} ${scenarioTitle(scenario)}, kill ${kill + 1}: ${JSON.stringify(result.sample)}\n`);
      }
    } finally {
      await killServe(serve);
    }
  } finally {
    if (external !== undefined) await stopExternal(external);
  }
  return own;
}

function scenarioTitle(scenario: (typeof RESTART_SCENARIOS)[number]): string {
  return `${scenario.deployments} deployment${scenario.deployments === 1 ? '' : 's'} × ${scenario.agents} agents`;
}

/** The rows of one scenario and placement: medians of its kills, broken down. */
function restartRows(scenario: (typeof RESTART_SCENARIOS)[number], placement: Placement, own: readonly RestartSample[], build: string): BenchRow[] {
  const title = `${placement === 'embedded' ? 'embedded broker and cloud (baseline)' : 'external broker and cloud'}, ${scenarioTitle(scenario)}${build}`;
  const mid = (pick: (sample: RestartSample) => number): number => median(own.map(pick));
  const killToTrading = mid((sample) => sample.killToTradingMs);
  const scope = own.length === 1 ? '' : ` (median of ${own.length} kills)`;
  const target = scenario.deployments === 5 && scenario.agents === 5;
  return [
    { name: `restart, ${title}: SIGKILL → serve exited (reaped)${scope}`, value: { amount: mid((sample) => sample.killToExitMs), unit: 'ms' } },
    { name: `restart, ${title}: new process spawn → listening${scope}`, value: { amount: mid((sample) => sample.spawnToListeningMs), unit: 'ms' } },
    { name: `restart, ${title}: SIGKILL → every agent resumed${scope}`, value: { amount: mid((sample) => sample.killToAgentsResumedMs), unit: 'ms' } },
    { name: `restart, ${title}: agents adopted${scope}`, value: { amount: mid((sample) => sample.adopted), unit: `of ${scenario.deployments * scenario.agents}` } },
    { name: `restart, ${title}: spawn → every deployment trading again${scope}`, value: { amount: mid((sample) => sample.spawnToTradingMs), unit: 'ms' } },
    {
      name: `restart, ${title}: SIGKILL → every deployment trading again${scope}`,
      value: { amount: killToTrading, unit: 'ms' },
      ...(target
        ? { target: { text: `< ${RESTART_TARGET_MS / 1000} s (issue: 5 × 5 agents, external cloud${placement === 'embedded' ? '; shown for comparison' : ''})`, met: killToTrading < RESTART_TARGET_MS } }
        : {}),
    },
  ];
}

/** `count` sequential GETs of `url` after `warmup` untimed ones; each request's wall time in ms. */
async function latencies(urlOf: (index: number) => string, count: number, warmup: number): Promise<number[]> {
  const samples: number[] = [];
  for (let index = 0; index < warmup + count; index++) {
    const started = performance.now();
    const response = await fetch(urlOf(index));
    await response.arrayBuffer();
    if (!response.ok) throw new Error(`GET ${urlOf(index)}: ${response.status}`);
    if (index >= warmup) samples.push(performance.now() - started);
  }
  return samples;
}

/** API latency with 20 deployments running, next to a constant Fastify route in this process. */
async function measureApi(): Promise<BenchRow[]> {
  const folder = tempFolder('tradeswarm-bench-cp-api-');
  const serve = await startServe(join(folder, 'data'), configFile(folder));
  const baseline = createApp({ logger: silentLogger });
  baseline.get('/constant', () => ({ ok: true }));
  const server = await listen(baseline);
  try {
    const idlePs = await latencies(() => `${serve.url}/v1/deployments`, API_REQUESTS, API_WARMUP);
    const names = await deploy(serve, 0, API_DEPLOYMENTS, 2, folder);
    await untilTrading(serve, API_DEPLOYMENTS, 1);
    const before = await api<View[]>(serve, 'GET', '/v1/deployments');
    const constant = await latencies(() => `${server.url}/constant`, API_REQUESTS, API_WARMUP);
    const health = await latencies(() => `${serve.url}/healthz`, API_REQUESTS, API_WARMUP);
    const ps = await latencies(() => `${serve.url}/v1/deployments`, API_REQUESTS, API_WARMUP);
    const status = await latencies((index) => `${serve.url}/v1/deployments/${names[index % names.length]!}`, API_REQUESTS, API_WARMUP);
    const constantAfter = await latencies(() => `${server.url}/constant`, API_REQUESTS, API_WARMUP);
    const after = await api<View[]>(serve, 'GET', '/v1/deployments');
    const psBytes = JSON.stringify(after).length;
    const base = summarize([...constant, ...constantAfter]);
    const rowOf = (name: string, samples: readonly number[], target: boolean): BenchRow => {
      const summary = summarize(samples);
      return {
        name,
        summary,
        ratio: { to: 'baseline p50', value: summary.p50 / base.p50 },
        ...(target ? { target: { text: `p99 < ${API_TARGET_P99_MS} ms`, met: summary.p99 < API_TARGET_P99_MS } } : {}),
      };
    };
    details.api = {
      requests: API_REQUESTS,
      warmup: API_WARMUP,
      deployments: API_DEPLOYMENTS,
      psResponseBytes: psBytes,
      stepsDuring: before.map((view, index) => [view.name, view.steps, after[index]?.steps]),
      note:
        'one request at a time with fetch (undici) from the bench process; the baseline is a route returning a constant on the api domain\'s createApp in the bench ' +
        'process (measured before and after the serve rows); /healthz is the same constant route inside serve, so it shows what its busy event loop adds. ' +
        `The ${API_DEPLOYMENTS} deployments (2 agents each, lockstep) trade as fast as they can meanwhile, so serve and the agents share the 2 cores.`,
    };
    return [
      { name: 'api: constant Fastify route in the bench process (baseline)', summary: base },
      rowOf('api: serve GET /healthz, 20 deployments running', health, false),
      rowOf('api: ps (GET /v1/deployments), no deployment', idlePs, false),
      rowOf('api: ps (GET /v1/deployments), 20 deployments running', ps, true),
      rowOf('api: status (GET /v1/deployments/:name), 20 deployments running', status, true),
    ];
  } finally {
    await server.close();
    await killServe(serve);
  }
}

/** The median of MEMORY_READS reads of serve's RSS, MEMORY_SETTLE_MS after `ready`. */
async function settledRss(serve: Serve): Promise<number> {
  await sleep(MEMORY_SETTLE_MS);
  const reads: number[] = [];
  for (let read = 0; read < MEMORY_READS; read++) {
    reads.push(rssMb(serve.pid));
    await sleep(200);
  }
  return median(reads);
}

/** serve's RSS idle and with 10 and 50 agents. */
async function measureMemory(): Promise<BenchRow[]> {
  const folder = tempFolder('tradeswarm-bench-cp-memory-');
  const dataDir = join(folder, 'data');
  const config = configFile(folder);
  // A first start creates the store (PGlite's initdb); the idle baseline is a start on that store.
  const first = await startServe(dataDir, config);
  const freshRss = await settledRss(first);
  await killServe(first);
  const serve = await startServe(dataDir, config);
  const rows: BenchRow[] = [{ name: 'memory: serve RSS, idle, first start on a new data dir (creates the store)', value: { amount: freshRss, unit: 'MB' } }];
  const stages: Array<{ deployments: number; agents: number; rssMb: number; processesUnderServe: number }> = [];
  try {
    let deployed = 0;
    let idle = Number.NaN;
    for (const deployments of MEMORY_STAGES) {
      await deploy(serve, deployed, deployments - deployed, 2, folder);
      deployed = deployments;
      if (deployments > 0) await untilTrading(serve, deployments, 1);
      const rss = await settledRss(serve);
      const processes = noteSandboxes(serve);
      stages.push({ deployments, agents: deployments * 2, rssMb: rss, processesUnderServe: processes });
      if (deployments === 0) {
        idle = rss;
        rows.push({ name: 'memory: serve RSS, idle, started on that data dir again (baseline)', value: { amount: rss, unit: 'MB' } });
      } else {
        rows.push({
          name: `memory: serve RSS, ${deployments} deployments × 2 agents = ${deployments * 2} agents running`,
          value: { amount: rss, unit: 'MB' },
          ratio: { to: 'idle', value: rss / idle },
        });
        rows.push({ name: `memory: serve RSS per deployment over idle, ${deployments} deployments`, value: { amount: (rss - idle) / deployments, unit: 'MB' } });
      }
    }
    details.memory = {
      freshRssMb: freshRss,
      stages,
      peakRssMb: Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${serve.pid}/status`, 'utf8'))?.[1] ?? Number.NaN) / 1024,
      barCount: BAR_COUNT,
      note:
        `VmRSS of serve's pid only (median of ${MEMORY_READS} reads, ${MEMORY_SETTLE_MS} ms after every deployment traded): the embedded local cloud, broker and PGlite ` +
        `run inside it; the agents' sandboxes are separate processes, not counted. Each deployment's spec is a synthetic market of 2 × ${BAR_COUNT} bars, made as its feed reads them (serve holds the steps its agents may still need, not the market).`,
    };
  } finally {
    await killServe(serve);
  }
  return rows;
}

/** serve's RSS while one deployment trades a looping feed: at LONGRUN_READ_MINUTES, with the steps closed by then. */
async function measureLongRun(): Promise<BenchRow[]> {
  const folder = tempFolder('tradeswarm-bench-cp-longrun-');
  const serve = await startServe(join(folder, 'data'), configFile(folder));
  const reads: Array<{ minutes: number; steps: number; rssMb: number }> = [];
  try {
    await api(serve, 'POST', '/v1/deployments', { spec: specYaml(1, 2, { barCount: LONGRUN_BAR_COUNT, loop: true }), baseDir: folder, name: 'looping', env: 'prod' });
    await untilTrading(serve, 1, 1);
    const started = performance.now();
    for (const minutes of LONGRUN_READ_MINUTES) {
      await sleep(started + minutes * 60_000 - performance.now());
      const [view] = await api<View[]>(serve, 'GET', '/v1/deployments');
      reads.push({ minutes, steps: view?.steps ?? Number.NaN, rssMb: rssMb(serve.pid) });
      noteSandboxes(serve);
    }
  } finally {
    await killServe(serve);
  }
  const first = reads[0] as (typeof reads)[number];
  const last = reads[reads.length - 1] as (typeof reads)[number];
  details.longrun = {
    reads,
    barCount: LONGRUN_BAR_COUNT,
    serveNodeOptions: SERVE_NODE_OPTIONS.NODE_OPTIONS ?? null,
    note: `VmRSS of serve's pid (one read each time) while one lockstep mesh of 2 agents trades a synthetic market of 2 × ${LONGRUN_BAR_COUNT} bars in a loop; steps are those closed (GET /v1/deployments).`,
  };
  const held = SERVE_NODE_OPTIONS.NODE_OPTIONS === undefined ? '' : `, serve's old space held by ${SERVE_NODE_OPTIONS.NODE_OPTIONS}`;
  // Per stretch between reads too: growth that slows down (caches filling) shows apart from growth that keeps its pace.
  const stretches = reads.slice(1).map((read, index) => ({ from: reads[index] as (typeof reads)[number], to: read }));
  const perThousand = (from: (typeof reads)[number], to: (typeof reads)[number]): number => ((to.rssMb - from.rssMb) / (to.steps - from.steps)) * 1000;
  return [
    ...reads.map((read) => ({ name: `longrun: serve RSS after ${read.minutes} min of a looping deployment (${read.steps} steps closed${held})`, value: { amount: read.rssMb, unit: 'MB' } })),
    ...(stretches.length > 1
      ? stretches.map(({ from, to }) => ({ name: `longrun: serve RSS added per 1,000 steps from minute ${from.minutes} to ${to.minutes}`, value: { amount: perThousand(from, to), unit: 'MB' } }))
      : []),
    { name: `longrun: serve RSS added per 1,000 steps from minute ${first.minutes} to ${last.minutes}`, value: { amount: perThousand(first, last), unit: 'MB' } },
  ];
}

const SECTIONS: ReadonlyArray<readonly [string, () => Promise<BenchRow[]>]> = [
  ['restart', measureRestart],
  ['api', measureApi],
  ['memory', measureMemory],
  ['longrun', measureLongRun],
];

/** Whether a process exists and is not a zombie. */
function isRunning(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

/** Kills every serve still running, checks no process it started outlived it, removes the folders. */
async function cleanUp(): Promise<string[]> {
  for (const serve of [...servers]) await killServe(serve).catch(() => undefined);
  for (const external of [...externals]) {
    if (external.child.pid !== undefined) noteSandboxes({ pid: external.child.pid });
    await external.kill('SIGTERM').catch(() => undefined);
  }
  const limit = performance.now() + 10_000;
  let left: number[];
  for (;;) {
    left = [...sandboxPids].filter(isRunning);
    if (left.length === 0 || performance.now() > limit) break;
    await sleep(100);
  }
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
  return left.map((pid) => {
    try {
      return `${pid} ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim()}`;
    } catch {
      return `${pid} (gone meanwhile)`;
    }
  });
}

async function main(): Promise<void> {
  const started = performance.now();
  const rows: BenchRow[] = [];
  const ran: string[] = [];
  let left: string[];
  try {
    for (const [id, measure] of SECTIONS) {
      // The long run takes 10 minutes: only when asked for.
      if (only === undefined ? id === 'longrun' : !only.has(id)) continue;
      const sectionStarted = performance.now();
      rows.push(...(await measure()));
      ran.push(id);
      process.stdout.write(`${id}: ${((performance.now() - sectionStarted) / 1000).toFixed(1)} s\n`);
    }
  } finally {
    left = await cleanUp();
  }
  if (left.length > 0) process.stderr.write(`processes serve started outlived it (${left.length}): ${left.join('; ')}\n`);
  report(only === undefined ? 'controlplane' : `controlplane-${ran.join('-')}`, rows, {
    quick,
    durationS: (performance.now() - started) / 1000,
    sandboxProcessesSeen: sandboxPids.size,
    sandboxProcessesLeft: left,
    ...details,
  });
  if (left.length > 0) process.exitCode = 1;
}

await main();
