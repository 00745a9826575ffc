// Swarm benchmark, one section per measurement, each a `measureX(): Promise<BenchRow[]>` listed in
// SECTIONS (append new ones there: agents ready time, bar → fill per topology, consensus round,
// memory per agent):
// - bus: one-hop latency, throughput and request/reply through the embedded broker (Aedes, issued
//   credentials) next to Mosquitto at 127.0.0.1:1883 and to two bare mqtt.js clients (no Bus);
// - backtest: in-process bars per second of one SMA(50/200) crossover (lib/backtest.ts).
// `npm run bench:swarm [-- --quick]`; results in bench/results/swarm.json.
import { randomId, silentLogger } from '../src/core/index.js';
import { startEmbeddedBroker } from '../src/bus/index.js';
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

/** Bus one hop (latency, throughput) and request/reply: embedded Aedes, Mosquitto, bare mqtt.js. */
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

    const requestOptions = { count: REQUESTS, warmup: REQUEST_WARMUP, budgetMs: REQUEST_BUDGET_MS };
    const cut = (target: BrokerTarget, samples: readonly number[]): string => {
      if (samples.length >= REQUESTS) return '';
      process.stdout.write(`request/reply on ${target.name}: stopped after ${samples.length} of ${REQUESTS} requests (${REQUEST_BUDGET_MS / 1000} s budget)\n`);
      return ` (${REQUEST_BUDGET_MS / 1000} s budget)`;
    };
    const baseSamples = await requestReplyLatency(embedded, swarmId, requestOptions);
    const others: Array<LatencyEntry & { name: string }> = [];
    if (mosquitto) {
      const samples = await requestReplyLatency(mosquitto, swarmId, requestOptions);
      others.push({ name: 'Bus on Mosquitto', summary: summarize(samples), note: cut(mosquitto, samples) });
    }
    rows.push(...latencyRows('bus request/reply QoS 1', { summary: summarize(baseSamples), note: cut(embedded, baseSamples) }, others));
  } finally {
    await broker.close();
  }
  details.bus = {
    mosquitto: { ...MOSQUITTO, ...probe },
    latencyMessages: LATENCY_MESSAGES,
    throughputMessages: THROUGHPUT_MESSAGES,
    requests: REQUESTS,
    requestBudgetMs: REQUEST_BUDGET_MS,
    warmup: WARMUP,
    requestWarmup: REQUEST_WARMUP,
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

const SECTIONS: ReadonlyArray<readonly [string, () => Promise<BenchRow[]>]> = [
  ['bus', measureBus],
  ['backtest', measureBacktest],
];

async function main(): Promise<void> {
  const rows: BenchRow[] = [];
  const sectionMs: Record<string, number> = {};
  for (const [name, measure] of SECTIONS) {
    process.stdout.write(`measuring ${name}…\n`);
    const started = performance.now();
    rows.push(...(await measure()));
    sectionMs[name] = Math.round(performance.now() - started);
  }
  report('swarm', rows, { quick, sectionMs, ...details });
}

await main();
