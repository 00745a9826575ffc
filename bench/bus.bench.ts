// Bus benchmark: the in-memory Bus (createMemoryBus) next to the Bus on the embedded broker (Aedes,
// issued credentials), in one run, so the memory rows are ratios to the broker's:
// - one-hop latency (one message at a time) and throughput (pipelined), QoS 1;
// - request/reply round trips (bus.request to a bus.serve);
// - a 5-agent lockstep swarm's traffic over 1,000 steps (lib/bus.ts lockstepSwarm): wall time and the
//   process's CPU time, the figure issue 14 sets for a unit test of a swarm on the memory bus.
// `npm run bench:bus [-- --quick]`; results in bench/results/bus.json.
import { randomId, silentLogger } from '../src/core/index.js';
import { createMemoryBroker, startEmbeddedBroker } from '../src/bus/index.js';
import {
  type BusTarget,
  type LockstepRun,
  busHop,
  busTargetOf,
  embeddedTarget,
  lockstepSwarm,
  memoryTarget,
  oneHopLatency,
  requestReplyLatency,
  throughput,
} from './lib/bus.js';
import { type BenchRow, report } from './lib/report.js';
import { type LatencySummary, summarize } from './lib/stats.js';

const quick = process.argv.includes('--quick');
/**
 * Message counts: those of swarm.bench.ts's bus section, so its figures and these compare. Warm-ups are
 * untimed: `warmup` on every connection, `processWarmup` through each target before anything is timed
 * (so the JIT is warm for both), and a first lockstep round per target.
 */
const SIZES = quick
  ? { latencyMessages: 500, throughputMessages: 5000, requests: 250, warmup: 100, processWarmup: 1000, swarmRounds: 3 }
  : { latencyMessages: 2000, throughputMessages: 20_000, requests: 1000, warmup: 300, processWarmup: 3000, swarmRounds: 5 };
/** Pipelining bound: bars sent but not yet received. */
const IN_FLIGHT = 256;
const SWARM = { agents: 5, steps: 1000, symbols: 5, stallMs: 5000 };
/** The bar: a unit test of a 5-agent swarm over 1,000 steps in well under a second of CPU. */
const SWARM_CPU_TARGET_MS = 1000;

const BASELINE = 'embedded Aedes';

/** The median of `values`. */
function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? Number.NaN;
}

/** A latency row per target; the memory one with its p50 as a ratio to the broker's. */
function latencyPair(title: string, broker: LatencySummary, memory: LatencySummary): BenchRow[] {
  return [
    { name: `${title}: Bus on ${BASELINE} (baseline)`, summary: broker },
    { name: `${title}: MemoryBus`, summary: memory, ratio: { to: `${BASELINE} p50`, value: memory.p50 / broker.p50 } },
  ];
}

/** A value row per target; the memory one as a ratio to the broker's. */
function valuePair(title: string, unit: string, broker: number, memory: number, target?: BenchRow['target']): BenchRow[] {
  return [
    { name: `${title}: Bus on ${BASELINE} (baseline)`, value: { amount: broker, unit } },
    { name: `${title}: MemoryBus`, value: { amount: memory, unit }, ratio: { to: BASELINE, value: memory / broker }, ...(target === undefined ? {} : { target }) },
  ];
}

async function main(): Promise<void> {
  const embedded = await startEmbeddedBroker({ logger: silentLogger });
  const memory = createMemoryBroker({ logger: silentLogger });
  const targets: Record<'broker' | 'memory', BusTarget> = { broker: busTargetOf(embeddedTarget(embedded)), memory: memoryTarget(memory) };
  const rows: BenchRow[] = [];
  const runs: Record<string, unknown> = {};
  try {
    const swarmId = `bench-${randomId(8)}`;
    for (const target of Object.values(targets)) {
      await throughput(busHop(target, swarmId, 1), { count: 0, warmup: SIZES.processWarmup, inFlight: IN_FLIGHT, stallMs: 2000 });
    }

    const latencyOptions = { count: SIZES.latencyMessages, warmup: SIZES.warmup, timeoutMs: 2000 };
    const latency = { broker: await oneHopLatency(busHop(targets.broker, swarmId, 1), latencyOptions), memory: await oneHopLatency(busHop(targets.memory, swarmId, 1), latencyOptions) };
    rows.push(...latencyPair('one-hop latency QoS 1', summarize(latency.broker.samples), summarize(latency.memory.samples)));
    runs.latencyLost = { broker: latency.broker.lost, memory: latency.memory.lost };

    const throughputOptions = { count: SIZES.throughputMessages, warmup: SIZES.warmup * 5, inFlight: IN_FLIGHT, stallMs: 2000 };
    const pipelined = { broker: await throughput(busHop(targets.broker, swarmId, 1), throughputOptions), memory: await throughput(busHop(targets.memory, swarmId, 1), throughputOptions) };
    rows.push(...valuePair(`throughput QoS 1, ${SIZES.throughputMessages} msgs`, 'msg/s', pipelined.broker.perSecond, pipelined.memory.perSecond));
    runs.throughput = pipelined;

    const requestOptions = { count: SIZES.requests, warmup: 50, budgetMs: 10_000 };
    const requests = { broker: await requestReplyLatency(targets.broker, swarmId, requestOptions), memory: await requestReplyLatency(targets.memory, swarmId, requestOptions) };
    rows.push(...latencyPair('request/reply round trip', summarize(requests.broker), summarize(requests.memory)));

    // Alternating, so that neither target gets the quieter moments of a shared machine.
    const swarms: Record<'broker' | 'memory', LockstepRun[]> = { broker: [], memory: [] };
    for (let round = 0; round < SIZES.swarmRounds + 1; round++) {
      for (const name of ['broker', 'memory'] as const) {
        const run = await lockstepSwarm(targets[name], `bench-${randomId(8)}`, SWARM);
        if (round > 0) swarms[name].push(run); // the first round warms the code paths up
      }
    }
    const title = `${SWARM.agents}-agent swarm, ${SWARM.steps} lockstep steps, median of ${SIZES.swarmRounds}`;
    const cpu = { broker: median(swarms.broker.map((run) => run.cpuMs)), memory: median(swarms.memory.map((run) => run.cpuMs)) };
    rows.push(...valuePair(`${title}: process CPU`, 'ms', cpu.broker, cpu.memory, { text: `< ${SWARM_CPU_TARGET_MS} ms CPU`, met: cpu.memory < SWARM_CPU_TARGET_MS }));
    rows.push(...valuePair(`${title}: wall`, 'ms', median(swarms.broker.map((run) => run.wallMs)), median(swarms.memory.map((run) => run.wallMs))));
    const [sample] = swarms.memory;
    const perStep = sample === undefined ? {} : { publishedPerStep: sample.published / sample.steps, receivedPerStep: sample.received / sample.steps };
    rows.push(...valuePair(`${title}: copies delivered`, 'msg/s', median(swarms.broker.map((run) => (run.received / run.wallMs) * 1000)), median(swarms.memory.map((run) => (run.received / run.wallMs) * 1000))));
    runs.swarm = { ...SWARM, rounds: SIZES.swarmRounds, ...perStep, broker: swarms.broker, memory: swarms.memory };
  } finally {
    await memory.close();
    await embedded.close();
  }
  report('bus', rows, {
    quick,
    ...SIZES,
    inFlight: IN_FLIGHT,
    runs,
    note:
      'one process for both: the Bus on the embedded broker speaks MQTT 3.1.1 over loopback TCP, each client an agent with issued credentials; ' +
      'the MemoryBus agents have the same rights. Latency = publish call → subscriber handler; throughput = first publish → last arrival; ' +
      'swarm CPU = process.cpuUsage over the run (publishers, subscribers and, for Aedes, the broker), no strategies or venue',
  });
}

await main();
