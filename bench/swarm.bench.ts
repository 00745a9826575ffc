// Swarm benchmark, one section per measurement, each a `measureX(): Promise<BenchRow[]>` listed in
// SECTIONS under its id:
// - bus: one-hop latency and throughput through the embedded broker (Aedes, issued credentials)
//   next to Mosquitto at 127.0.0.1:1883 and to two bare mqtt.js clients (no Bus);
// - brokers: request/reply and a 5-agent mesh's bar → fill on the embedded broker, on Mosquitto at
//   127.0.0.1:1883 as the machine runs it, and on a Mosquitto the run starts with set_tcp_nodelay
//   true (when the `mosquitto` binary is installed), so the ratios come from one run;
// - agents: N = 1, 5, 10, 20 agents deployed through the e2b SDK until their first heartbeat, cold
//   and with warm sandboxes, next to N raw `node` spawns;
// - topologies: bar → fill per topology with 5 agents;
// - consensus: a consensus round in a 10-agent mesh, and each agent process's memory read through
//   the SDK from /proc in its sandbox;
// - backtest: in-process bars per second of one SMA(50/200) crossover (lib/backtest.ts).
// `npm run bench:swarm [-- --quick] [-- --only brokers,bus]`; results in bench/results/swarm.json
// (swarm-<ids>.json with --only).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { randomId, silentLogger } from '../src/core/index.js';
import { type RunningSwarm, type SwarmReport, parseSwarmSpec, runSwarm } from '../src/swarm/index.js';
import { startEmbeddedBroker } from '../src/bus/index.js';
import { type StartedMosquitto, probeMosquittoBinary, startMosquitto } from '../test/fixtures/mosquitto.js';
import { SMA_DATASETS, measureSmaBacktest, missingFiles } from './lib/backtest.js';
import {
  type BrokerTarget,
  type LatencyRun,
  type ThroughputRun,
  anonymousTarget,
  bareHop,
  busHop,
  embeddedTarget,
  oneHopLatency,
  probeTcp,
  requestReplyLatency,
  throughput,
} from './lib/bus.js';
import { report, type BenchRow } from './lib/report.js';
import { type LatencySummary, summarize } from './lib/stats.js';

const quick = process.argv.includes('--quick');
/** `--only a,b`: the ids of the sections to run (all when absent). */
const only = ((): ReadonlySet<string> | undefined => {
  const index = process.argv.indexOf('--only');
  return index < 0 ? undefined : new Set((process.argv[index + 1] ?? '').split(',').filter((id) => id.length > 0));
})();

const LATENCY_MESSAGES = quick ? 500 : 2000;
const THROUGHPUT_MESSAGES = quick ? 5000 : 20_000;
const REQUESTS = quick ? 250 : 1000;
/** Timed request/reply round trips stop after this long on one broker (and n says how many ran). */
const REQUEST_BUDGET_MS = quick ? 3000 : 10_000;
/** Untimed messages sent first on every connection, so buffers and the broker's session are warm. */
const WARMUP = quick ? 100 : 300;
/** Untimed requests first on every request/reply pair. */
const REQUEST_WARMUP = 50;
/** Untimed messages through a Bus hop and a bare hop before anything is timed, so the JIT is warm. */
const PROCESS_WARMUP = quick ? 1000 : 3000;
/** Pipelining bound: bars sent but not yet received. */
const IN_FLIGHT = 256;
const MOSQUITTO = { host: '127.0.0.1', port: 1883 };
const BACKTEST_BARS = quick ? 200_000 : 500_000;
const BACKTEST_ROUNDS = quick ? 1 : 2;

/** What the JSON keeps beyond the rows; sections add their own key. */
const details: Record<string, unknown> = {};

const BASELINE = 'Bus on Aedes';

/** One workload's rows: the embedded-broker Bus row is the baseline, every other row a ratio to it. */
interface LatencyEntry {
  readonly summary: LatencySummary;
  /** Added to the row's name: messages lost, a budget that cut the run short. */
  readonly note?: string;
}

function latencyRows(title: string, baseline: LatencyEntry, others: ReadonlyArray<LatencyEntry & { readonly name: string }>): BenchRow[] {
  return [
    { name: `${title}: Bus on embedded Aedes (baseline)${baseline.note ?? ''}`, summary: baseline.summary },
    ...others.map((other): BenchRow => ({
      name: `${title}: ${other.name}${other.note ?? ''}`,
      summary: other.summary,
      ratio: { to: `${BASELINE} p50`, value: other.summary.p50 / baseline.summary.p50 },
    })),
  ];
}

function throughputRows(title: string, baseline: ThroughputRun, others: ReadonlyArray<{ name: string; run: ThroughputRun }>): BenchRow[] {
  const lostNote = (run: ThroughputRun): string =>
    run.received < run.sent || run.sendFailures > 0 ? ` (${run.sent - run.received} of ${run.sent} lost, ${run.sendFailures} send failures)` : '';
  return [
    { name: `${title}: Bus on embedded Aedes (baseline)${lostNote(baseline)}`, value: { amount: baseline.perSecond, unit: 'msg/s' } },
    ...others.map((other): BenchRow => ({
      name: `${title}: ${other.name}${lostNote(other.run)}`,
      value: { amount: other.run.perSecond, unit: 'msg/s' },
      ratio: { to: BASELINE, value: other.run.perSecond / baseline.perSecond },
    })),
  ];
}

/** Bus one hop (latency, throughput): embedded Aedes, Mosquitto, bare mqtt.js. */
async function measureBus(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const probe = await probeTcp(MOSQUITTO.host, MOSQUITTO.port);
  if (!probe.available) {
    process.stdout.write(`Mosquitto at ${MOSQUITTO.host}:${MOSQUITTO.port} is unreachable (${probe.detail}); skipping its rows\n`);
  }
  const broker = await startEmbeddedBroker({ logger: silentLogger });
  const runs: Record<string, unknown> = {};
  try {
    const swarmId = `bench-${randomId(8)}`;
    const embedded = embeddedTarget(broker);
    const mosquitto: BrokerTarget | undefined = probe.available ? anonymousTarget('Mosquitto', `mqtt://${MOSQUITTO.host}:${MOSQUITTO.port}`) : undefined;
    const latencyOptions = { count: LATENCY_MESSAGES, warmup: WARMUP, timeoutMs: 2000 };
    const throughputOptions = { count: THROUGHPUT_MESSAGES, warmup: WARMUP * 5, inFlight: IN_FLIGHT, stallMs: 2000 };
    // Whatever runs first would otherwise pay for compiling the Bus, zod and mqtt.js code paths.
    for (const hop of [busHop(embedded, swarmId, 1), bareHop(embedded, swarmId, 1)]) {
      await throughput(hop, { count: 0, warmup: PROCESS_WARMUP, inFlight: IN_FLIGHT, stallMs: 2000 });
    }

    for (const qos of [1, 0] as const) {
      const base = await oneHopLatency(busHop(embedded, swarmId, qos), latencyOptions);
      const others: Array<{ name: string; run: LatencyRun }> = [];
      if (mosquitto) others.push({ name: 'Bus on Mosquitto', run: await oneHopLatency(busHop(mosquitto, swarmId, qos), latencyOptions) });
      others.push({ name: 'bare mqtt.js clients on embedded Aedes (no Bus)', run: await oneHopLatency(bareHop(embedded, swarmId, qos), latencyOptions) });
      const entry = (run: LatencyRun): LatencyEntry => ({ summary: summarize(run.samples), note: run.lost > 0 ? ` (${run.lost} lost)` : '' });
      rows.push(...latencyRows(`bus one-hop latency QoS ${qos}`, entry(base), others.map((other) => ({ name: other.name, ...entry(other.run) }))));
      runs[`latencyQos${qos}`] = { embeddedLost: base.lost, others: others.map((other) => ({ name: other.name, lost: other.run.lost })) };
    }

    for (const qos of [0, 1] as const) {
      const base = await throughput(busHop(embedded, swarmId, qos), throughputOptions);
      const others: Array<{ name: string; run: ThroughputRun }> = [];
      if (mosquitto) others.push({ name: 'Bus on Mosquitto', run: await throughput(busHop(mosquitto, swarmId, qos), throughputOptions) });
      others.push({ name: 'bare mqtt.js clients on embedded Aedes (no Bus)', run: await throughput(bareHop(embedded, swarmId, qos), throughputOptions) });
      rows.push(...throughputRows(`bus throughput QoS ${qos}, ${THROUGHPUT_MESSAGES} msgs`, base, others));
      runs[`throughputQos${qos}`] = { embedded: base, others };
    }
  } finally {
    await broker.close();
  }
  details.bus = {
    mosquitto: { ...MOSQUITTO, ...probe },
    latencyMessages: LATENCY_MESSAGES,
    throughputMessages: THROUGHPUT_MESSAGES,
    warmup: WARMUP,
    processWarmup: PROCESS_WARMUP,
    inFlight: IN_FLIGHT,
    runs,
    note:
      'one process; latency = publish call → subscriber handler (performance.now), one message at a time; throughput = first publish → last arrival, ' +
      `at most ${IN_FLIGHT} sent but not received; the Bus speaks MQTT 3.1.1 to Aedes and MQTT 5 to Mosquitto, the bare clients 3.1.1 with JSON bars and no envelope`,
  };
  return rows;
}

/** In-process backtest bars/s, one SMA(50/200) crossover, daily and minute bars. */
async function measureBacktest(): Promise<BenchRow[]> {
  const missing = missingFiles(SMA_DATASETS);
  if (missing.length > 0) {
    process.stdout.write(`${missing.join(', ')} is missing (the shared data folder, see its SOURCES.md); skipping the backtest rows\n`);
    return [];
  }
  const rows: BenchRow[] = [];
  const runs: Record<string, unknown>[] = [];
  for (const dataset of SMA_DATASETS) {
    const measured = await measureSmaBacktest(dataset, { bars: BACKTEST_BARS, rounds: BACKTEST_ROUNDS, targetText: 'backtest > 1 million bars/s', prefix: 'backtest ' });
    rows.push(...measured.rows);
    runs.push(measured.run);
  }
  details.backtest = { runs, note: 'best of the rounds; same bars for baseline and backtest' };
  return rows;
}

/**
 * A synthetic swarm spec: `count` SMA crossovers (fills at the bar's close), over two symbols, or one
 * symbol each with `ownSymbols`. Strategies on one symbol share its position (the first one long keeps
 * the others out), so two symbols trade rarely: 41 fills in 400 steps, against 286 with own symbols.
 */
function swarmSpecOf(options: { count: number; topology: string; steps: number; consensus?: boolean; ownSymbols?: boolean }): Record<string, unknown> {
  const symbols = options.ownSymbols === true ? Array.from({ length: options.count }, (_, i) => `S${String(i + 1).padStart(2, '0')}`) : ['AAA', 'BBB'];
  return {
    name: `bench-${options.topology}-${options.count}`,
    data: { source: 'synthetic', seed: 5, symbols, barCount: options.steps },
    strategies: Array.from({ length: options.count }, (_, i) => ({
      type: 'sma-crossover',
      name: `sma-${i + 1}`,
      symbol: symbols[i % symbols.length],
      fastPeriod: 2 + (i % 4),
      slowPeriod: 8,
      sizing: { type: 'fixed-quantity', units: 1 },
    })),
    ...(options.consensus === true ? { consensus: { threshold: 'majority' } } : {}),
    risk: { maxPositionUnits: 1000 },
    venue: { fillAt: 'close' },
    swarm: { topology: options.topology },
  };
}

/** Time until every one of `count` plain `node` processes printed a line (the baseline of agent start). */
async function rawSpawns(count: number): Promise<number> {
  const started = performance.now();
  await Promise.all(
    Array.from({ length: count }, async () => {
      const child = spawn(process.execPath, ['-e', 'process.stdout.write("ready\\n")'], { stdio: ['ignore', 'pipe', 'ignore'] });
      await once(child.stdout, 'data');
      await once(child, 'exit');
    }),
  );
  return performance.now() - started;
}

/** CPU time a process in a sandbox has used, all threads (the first field of each thread's schedstat, in ns). */
async function processCpuMs(sandbox: { commands: { run(command: string): Promise<{ stdout: string }> } }, pid: number): Promise<number> {
  const { stdout } = await sandbox.commands.run(`cat /proc/${pid}/task/*/schedstat`);
  return stdout.trim().split('\n').reduce((sum, line) => sum + Number(line.split(' ')[0]), 0) / 1e6;
}

/** Time until N agents are ready (first heartbeat), cold (no warm sandboxes) and warm, next to raw process spawns. */
async function measureAgentsReady(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const runs: Record<string, unknown>[] = [];
  for (const count of quick ? [1, 5] : [1, 5, 10, 20]) {
    const raw = await rawSpawns(count);
    rows.push({ name: `${count} agents: raw node spawns, all printed (baseline)`, value: { amount: raw, unit: 'ms' } });
    for (const warm of [false, true]) {
      const spec = await parseSwarmSpec(swarmSpecOf({ count, topology: 'mesh', steps: 10 }), 'bench spec');
      const cpuMs: number[] = [];
      const report = await runSwarm({
        spec,
        logger: silentLogger,
        sandbox: warm ? { kind: 'local', warmPoolSize: count, prewarm: true } : { kind: 'local', warmPoolSize: 0 },
        // Before the first step: what each agent process spent to come up, over all its threads.
        ...(count === 10 && !warm
          ? {
              onReady: async (swarm: RunningSwarm): Promise<void> => {
                cpuMs.push(...(await Promise.all(swarm.processes().map(({ sandbox, pid }) => processCpuMs(sandbox, pid)))));
              },
            }
          : {}),
      });
      const sandboxMs = report.agents.map((agent) => agent.startMs.sandbox);
      rows.push({
        name: `${count} agents ready, ${warm ? 'warm sandboxes' : 'cold (sandboxes created now)'}`,
        value: { amount: report.readyMs, unit: 'ms' },
        ratio: { to: 'raw spawns', value: report.readyMs / raw },
        ...(count === 10 ? { target: { text: '10 agents ready < 1 s', met: report.readyMs < 1000 } } : {}),
      });
      if (cpuMs.length > 0) {
        const codeCache = [...new Set(report.agents.map((agent) => agent.codeCache))].join(', ');
        rows.push({ name: `CPU per agent process until its first heartbeat (mean of ${cpuMs.length}, code cache: ${codeCache})`, value: { amount: cpuMs.reduce((sum, ms) => sum + ms, 0) / cpuMs.length, unit: 'ms' } });
      }
      runs.push({ count, warm, readyMs: report.readyMs, rawSpawnsMs: raw, sandboxCreateMs: sandboxMs, agents: report.agents.map((agent) => agent.startMs), ...(cpuMs.length > 0 ? { agentCpuMs: cpuMs } : {}) });
    }
  }
  details.agentsReady = { runs, note: 'readyMs: from the start of deployment (bundle built, local cloud up) to every agent\'s first heartbeat at the control plane' };
  return rows;
}

/** Bar → fill for each topology with 5 agents (lockstep, fills at the bar's close). */
async function measureTopologies(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const runs: Record<string, unknown>[] = [];
  for (const topology of ['mesh', 'star', 'hierarchical', 'ring']) {
    // One symbol per strategy: most steps carry orders, and the p50 rests on about 290 fills, not 41.
    const spec = await parseSwarmSpec(swarmSpecOf({ count: 5, topology, steps: quick ? 150 : 400, ownSymbols: true }), 'bench spec');
    const report = await runSwarm({ spec, logger: silentLogger });
    const barToFill = report.latencyMs.barToFill;
    if (barToFill === null) throw new Error(`${topology}: no fills, so no bar → fill latency`);
    rows.push({
      name: `bar → fill, ${topology}, ${report.agents.length} agents`,
      summary: barToFill,
      ...(topology === 'mesh' ? { target: { text: 'p50 < 5 ms in a 5-agent mesh', met: barToFill.p50 < 5 } } : {}),
    });
    runs.push({ topology, agents: report.agents.length, steps: report.steps, latencyMs: report.latencyMs, messagesPerSecond: report.messagesPerSecond, trades: report.trades.length });
  }
  details.topologies = { runs, note: 'bar → fill: the control plane publishes step t, agents signal and decide, the venue fills at the close of t; one clock (the control plane\'s)' };
  return rows;
}

/** The largest mesh bar → fill p50 on an external broker, as a multiple of the embedded broker's (issue 13). */
const EXTERNAL_BROKER_FACTOR = 1.5;

/**
 * Request/reply and a 5-agent mesh's bar → fill on each broker, in one run, as ratios to the embedded
 * broker: Mosquitto at 127.0.0.1:1883 as this machine runs it, and a Mosquitto started here with
 * `set_tcp_nodelay true`, as the README asks of an external Mosquitto. Without it Mosquitto leaves
 * Nagle's algorithm on: a small packet it has for a client waits while its previous one is not yet
 * acknowledged, and the client's kernel delays that acknowledgement (about 40 ms on Linux).
 */
async function measureBrokers(): Promise<BenchRow[]> {
  const probe = await probeTcp(MOSQUITTO.host, MOSQUITTO.port);
  if (!probe.available) process.stdout.write(`Mosquitto at ${MOSQUITTO.host}:${MOSQUITTO.port} is unreachable (${probe.detail}); skipping its rows\n`);
  const binary = await probeMosquittoBinary();
  if (!binary.available) process.stdout.write(`${binary.name} is not available (${binary.detail}); skipping the rows of a Mosquitto with set_tcp_nodelay true\n`);
  const broker = await startEmbeddedBroker({ logger: silentLogger });
  let nodelay: StartedMosquitto | undefined;
  const rows: BenchRow[] = [];
  const runs: Record<string, unknown>[] = [];
  try {
    nodelay = binary.available ? await startMosquitto(['set_tcp_nodelay true']) : undefined;
    const found = `mqtt://${MOSQUITTO.host}:${MOSQUITTO.port}`;
    const targets: ReadonlyArray<{ readonly target: BrokerTarget; readonly brokerUrl?: string }> = [
      { target: embeddedTarget(broker) },
      ...(probe.available ? [{ target: anonymousTarget(`Mosquitto at ${MOSQUITTO.host}:${MOSQUITTO.port} as found`, found), brokerUrl: found }] : []),
      ...(nodelay ? [{ target: anonymousTarget('Mosquitto with set_tcp_nodelay true (started by the bench)', nodelay.url), brokerUrl: nodelay.url }] : []),
    ];
    const swarmId = `bench-${randomId(8)}`;
    const requestOptions = { count: REQUESTS, warmup: REQUEST_WARMUP, budgetMs: REQUEST_BUDGET_MS };
    const requests: Array<LatencyEntry & { readonly name: string }> = [];
    for (const { target } of targets) {
      const samples = await requestReplyLatency(target, swarmId, requestOptions);
      const summary = summarize(samples);
      let note = '';
      if (samples.length < REQUESTS) {
        process.stdout.write(`request/reply on ${target.name}: stopped after ${samples.length} of ${REQUESTS} requests (${REQUEST_BUDGET_MS / 1000} s budget)\n`);
        note = ` (${REQUEST_BUDGET_MS / 1000} s budget)`;
      }
      if (target.name.startsWith('Mosquitto') && summary.p50 > 20) {
        process.stdout.write(`${target.name} answers a request in ${summary.p50.toFixed(1)} ms (p50), as a broker that leaves Nagle's algorithm on does: Mosquitto needs set_tcp_nodelay true (README, the message bus)\n`);
      }
      requests.push({ name: `Bus on ${target.name}`, summary, note });
    }
    const [baseRequests, ...otherRequests] = requests as [LatencyEntry, ...Array<LatencyEntry & { readonly name: string }>];
    rows.push(...latencyRows('bus request/reply QoS 1', baseRequests, otherRequests));

    const spec = await parseSwarmSpec(swarmSpecOf({ count: 5, topology: 'mesh', steps: quick ? 150 : 400, ownSymbols: true }), 'bench spec');
    let baseline: number | undefined;
    for (const { target, brokerUrl } of targets) {
      const report: SwarmReport = await runSwarm({ spec, logger: silentLogger, ...(brokerUrl === undefined ? {} : { brokerUrl }) });
      const barToFill = report.latencyMs.barToFill;
      if (barToFill === null) throw new Error(`mesh on ${target.name}: no fills, so no bar → fill latency`);
      const name = `bar → fill, mesh of ${report.agents.length} agents, on ${target.name}`;
      if (baseline === undefined) {
        baseline = barToFill.p50;
        rows.push({ name: `${name} (baseline)`, summary: barToFill });
      } else {
        const ratio = barToFill.p50 / baseline;
        rows.push({
          name,
          summary: barToFill,
          ratio: { to: 'embedded p50', value: ratio },
          target: { text: `p50 within ${EXTERNAL_BROKER_FACTOR}x of the embedded broker's`, met: ratio <= EXTERNAL_BROKER_FACTOR },
        });
      }
      runs.push({ broker: target.name, url: brokerUrl ?? 'embedded', latencyMs: report.latencyMs, steps: report.steps, trades: report.trades.length, tradingMs: report.tradingMs });
    }
  } finally {
    await Promise.all([broker.close(), nodelay?.close()]);
  }
  details.brokers = {
    mosquitto: { ...MOSQUITTO, ...probe },
    mosquittoBinary: binary,
    requests: REQUESTS,
    requestWarmup: REQUEST_WARMUP,
    requestBudgetMs: REQUEST_BUDGET_MS,
    runs,
    note: 'one run; request/reply = sequential bus.request → bus.serve at QoS 1 (performance.now); bar → fill as in the topologies section, 5 strategies on 5 symbols',
  };
  return rows;
}

/** A consensus round with 10 agents (mesh), and the memory each agent process uses. */
async function measureConsensusAndMemory(): Promise<BenchRow[]> {
  const count = 10;
  const spec = await parseSwarmSpec(swarmSpecOf({ count, topology: 'mesh', steps: quick ? 150 : 400, consensus: true }), 'bench spec');
  /** Per agent: resident set, and proportional set (shared pages such as node's own code split among the processes sharing them). */
  const memoryKb: Array<{ rss: number; pss: number }> = [];
  let running: RunningSwarm | undefined;
  let sampled: Promise<void> | undefined;
  const report = await runSwarm({
    spec,
    logger: silentLogger,
    onReady: (swarm) => {
      running = swarm;
    },
    onProgress: ({ step }) => {
      if (step !== 100 || running === undefined) return;
      const processes = running.processes();
      sampled = Promise.all(
        processes.map(async ({ sandbox, pid }) => {
          const rollup = await sandbox.commands.run(`cat /proc/${pid}/smaps_rollup`);
          const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(rollup.stdout)?.[1] ?? Number.NaN);
          memoryKb.push({ rss: field('Rss'), pss: field('Pss') });
        }),
      ).then(() => undefined);
    },
  });
  await sampled;
  const round = report.latencyMs.allDecided;
  const rows: BenchRow[] = [];
  if (round !== null) rows.push({ name: `consensus round, mesh of ${count} agents (step published → all ${count} decided)`, summary: round });
  if (memoryKb.length > 0) {
    const mean = (values: number[]): number => values.reduce((sum, value) => sum + value, 0) / values.length;
    const pss = memoryKb.map((entry) => entry.pss / 1024);
    const rss = memoryKb.map((entry) => entry.rss / 1024);
    rows.push({
      name: `memory per agent (PSS: its own pages + its share of shared ones, mean of ${pss.length})`,
      value: { amount: mean(pss), unit: 'MB' },
      target: { text: '< 60 MB per agent (largest PSS)', met: Math.max(...pss) < 60 },
    });
    rows.push({ name: `memory per agent process (RSS, counting shared pages in full, mean of ${rss.length})`, value: { amount: mean(rss), unit: 'MB' } });
  }
  details.consensus = { agents: count, steps: report.steps, allDecided: round, agreement: report.agreement, consensus: report.pipeline?.consensus ?? null, memoryKb };
  return rows;
}

/** Each section: its id (for `--only`), what it measures, and the measurement. */
const SECTIONS: ReadonlyArray<readonly [string, string, () => Promise<BenchRow[]>]> = [
  ['bus', 'bus', measureBus],
  ['brokers', 'request/reply and mesh bar → fill per broker', measureBrokers],
  ['agents', 'agents ready', measureAgentsReady],
  ['topologies', 'topologies', measureTopologies],
  ['consensus', 'consensus and memory', measureConsensusAndMemory],
  ['backtest', 'backtest', measureBacktest],
];

async function main(): Promise<void> {
  const unknown = [...(only ?? [])].filter((id) => !SECTIONS.some(([known]) => known === id));
  if (only?.size === 0 || unknown.length > 0) {
    throw new Error(`--only takes section ids separated by commas (${SECTIONS.map(([id]) => id).join(', ')}), got ${JSON.stringify(unknown.join(','))}`);
  }
  const rows: BenchRow[] = [];
  const sectionMs: Record<string, number> = {};
  for (const [id, name, measure] of SECTIONS) {
    if (only !== undefined && !only.has(id)) continue;
    process.stdout.write(`measuring ${name}…\n`);
    const started = performance.now();
    rows.push(...(await measure()));
    sectionMs[name] = Math.round(performance.now() - started);
  }
  report(only === undefined ? 'swarm' : `swarm-${[...only].join('-')}`, rows, { quick, sectionMs, ...details });
}

await main();
