// Code-execution benchmark: 6 users × 20 mixed requests (short, long, failing, repeated) through the
// service, next to the naive way (create a sandbox per request, run, kill) on the same local cloud in
// the same run. `npx tsx bench/exec.bench.ts [--quick]`; results in bench/results/exec.json.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Sandbox } from '@e2b/code-interpreter';
import { Rng, silentLogger } from '../src/core/index.js';
import { EXEC_BUILD_TAG, EXEC_TEMPLATE, createExecService, type ExecResult, type ExecService } from '../src/exec/index.js';
import { startLocalCloud, type LocalCloud } from '../src/localcloud/index.js';
import { report, type BenchRow } from './lib/report.js';
import { summarize } from './lib/stats.js';

const quick = process.argv.includes('--quick');
const USERS = 6;
const REQUESTS_PER_USER = quick ? 10 : 20;
/** Each user keeps this many requests in flight (the service's per-user concurrency). */
const STREAMS_PER_USER = 2;
/** The configured run's global concurrency: the seed's, E2B cloud's default (the local cloud's follows the cores). */
const SEED_CONCURRENCY = 6;

type Kind = 'short' | 'long' | 'failing' | 'repeated';
interface Job {
  readonly user: string;
  readonly kind: Kind;
  readonly code: string;
  readonly language: 'python' | 'javascript';
}
interface Sample {
  readonly job: Job;
  readonly ms: number;
  readonly ok: boolean;
  readonly result?: ExecResult;
}

/** Every user gets the same mix (so their latencies are comparable), in a seeded order of their own. */
function workload(rng: Rng): Job[][] {
  const mix: Kind[] = [];
  const counts: Record<Kind, number> = { short: 0.5, long: 0.15, failing: 0.15, repeated: 0.2 };
  for (const [kind, share] of Object.entries(counts) as Array<[Kind, number]>) {
    for (let i = 0; i < Math.round(share * REQUESTS_PER_USER); i++) mix.push(kind);
  }
  return Array.from({ length: USERS }, (_, u) => {
    const user = `user-${u + 1}`;
    const order = rng.fork(user);
    const kinds = [...mix];
    for (let i = kinds.length - 1; i > 0; i--) {
      const j = order.int(0, i);
      [kinds[i], kinds[j]] = [kinds[j]!, kinds[i]!];
    }
    return kinds.map((kind, i): Job => {
      const javascript = i % 4 === 3;
      const tag = `${user}-${i}`;
      switch (kind) {
        case 'short':
          return javascript
            ? { user, kind, language: 'javascript', code: `let s = 0; for (let i = 0; i < 1000; i++) s += i * i; console.log('${tag}', s)` }
            : { user, kind, language: 'python', code: `print('${tag}', sum(i * i for i in range(1000)))` };
        case 'long':
          return { user, kind, language: 'python', code: `import time\ntime.sleep(0.2)\nprint('${tag}')` };
        case 'failing':
          return { user, kind, language: 'python', code: `raise ValueError('${tag}')` };
        case 'repeated':
          return { user, kind, language: 'python', code: 'sum(i * i for i in range(10000))' };
      }
    });
  });
}

function checked(job: Job, result: ExecResult): boolean {
  if (job.kind === 'failing') return result.error?.name === 'ValueError';
  return result.error === undefined && !result.timedOut;
}

async function drive(jobsByUser: Job[][], run: (job: Job) => Promise<ExecResult>): Promise<{ samples: Sample[]; wallMs: number }> {
  const samples: Sample[] = [];
  const started = performance.now();
  await Promise.all(
    jobsByUser.flatMap((jobs) =>
      Array.from({ length: STREAMS_PER_USER }, async (_, stream) => {
        for (let i = stream; i < jobs.length; i += STREAMS_PER_USER) {
          const job = jobs[i]!;
          const begun = performance.now();
          try {
            const result = await run(job);
            samples.push({ job, ms: performance.now() - begun, ok: checked(job, result), result });
          } catch {
            samples.push({ job, ms: performance.now() - begun, ok: false });
          }
        }
      }),
    ),
  );
  return { samples, wallMs: performance.now() - started };
}

/** The naive way: a new sandbox per request, killed afterwards; without network, like the service's. */
async function naive(cloud: LocalCloud, job: Job): Promise<ExecResult> {
  const sandbox = await Sandbox.create(EXEC_TEMPLATE, { ...cloud.connection, allowInternetAccess: false });
  try {
    const began = performance.now();
    const execution = await sandbox.runCode(job.code, { language: job.language });
    return {
      stdout: execution.logs.stdout.join(''),
      stderr: execution.logs.stderr.join(''),
      results: [],
      ...(execution.error ? { error: { name: execution.error.name, value: execution.error.value, traceback: execution.error.traceback } } : {}),
      timedOut: false,
      truncated: false,
      durationMs: performance.now() - began,
      sandboxId: sandbox.sandboxId,
      language: job.language,
      user: job.user,
      queueWaitMs: 0,
      totalMs: 0,
      fromCache: false,
      deterministic: false,
      determinism: [],
      attempts: 1,
    };
  } finally {
    await sandbox.kill();
  }
}

/**
 * CPU time the whole machine has spent (user, nice, system, irq, softirq), from /proc/stat: the
 * service's cost lies in sandbox processes as much as in this one. Includes whatever else runs.
 */
function machineCpuMs(): number {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const ticksPerSecond = 100; // USER_HZ, which /proc/stat counts in on Linux
  return ([0, 1, 2, 5, 6].reduce((sum, index) => sum + (fields[index] ?? 0), 0) * 1000) / ticksPerSecond;
}

function byKind(samples: readonly Sample[], kind: Kind): number[] {
  return samples.filter((sample) => sample.job.kind === kind).map((sample) => sample.ms);
}

/** Each user's mean latency over its whole (identical) mix; fairness = worst user / median user. */
function fairness(samples: readonly Sample[]): { perUserMeanMs: Record<string, number>; worstOverMedian: number } {
  const perUser: Record<string, number[]> = {};
  for (const sample of samples) (perUser[sample.job.user] ??= []).push(sample.ms);
  const means = Object.fromEntries(Object.entries(perUser).map(([user, values]) => [user, values.reduce((a, b) => a + b, 0) / values.length]));
  const sorted = Object.values(means).sort((a, b) => a - b);
  const median = sorted.length % 2 === 1 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
  return { perUserMeanMs: means, worstOverMedian: sorted.at(-1)! / median };
}

async function main(): Promise<void> {
  const cloud = await startLocalCloud({
    logger: silentLogger,
    metricsIntervalMs: 0,
    templates: [{ name: EXEC_TEMPLATE, files: { '.tradeswarm-build': `${EXEC_BUILD_TAG}\n` } }],
  });
  const rows: BenchRow[] = [];
  let service: ExecService | undefined;
  try {
    const jobs = workload(Rng.seeded(20261123));
    // Naive first, so the service's pool does not hold sandboxes while the naive runs.
    const naiveCpuFrom = machineCpuMs();
    const naiveRun = await drive(jobs, (job) => naive(cloud, job));
    const naiveCpuMs = machineCpuMs() - naiveCpuFrom;
    const serviceOptions = { connection: cloud.connection, template: EXEC_TEMPLATE, buildTag: EXEC_BUILD_TAG, rateLimit: { creationPerSecond: 50 }, logger: silentLogger };
    // The same workload at the seed's concurrency (6, E2B cloud's default): it keeps half the 12 streams
    // queued, behind sleeping requests that hold a slot without using the CPU.
    const seed = await createExecService({ ...serviceOptions, queue: { concurrency: SEED_CONCURRENCY } });
    const seedRun = await drive(jobs, (job) => seed.exec({ code: `${job.code}\n${job.language === 'python' ? '#' : '//'} seed`, language: job.language, user: job.user }));
    await seed.close();
    service = await createExecService(serviceOptions);
    const svc = service;
    const serviceCpuFrom = machineCpuMs();
    const serviceRun = await drive(jobs, (job) => svc.exec({ code: job.code, language: job.language, user: job.user }));
    const serviceCpuMs = machineCpuMs() - serviceCpuFrom;
    const metrics = svc.metrics();
    // The same short requests one at a time, each after the pool settled: the warm path without load.
    // A comment makes each program new to the cache (its key is the exact text).
    const unloadedJobs = jobs
      .flat()
      .filter((job) => job.kind === 'short')
      .slice(0, quick ? 10 : 30)
      .map((job, i): Job => ({ ...job, code: `${job.code}\n${job.language === 'python' ? '#' : '//'} one at a time ${i}` }));
    const settle = async (): Promise<void> => {
      while (svc.metrics().scrubbing > 0 || svc.metrics().pool.idle === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    };
    const serviceUnloaded: number[] = [];
    const naiveUnloaded: number[] = [];
    for (const job of unloadedJobs) {
      await settle();
      let begun = performance.now();
      const result = await svc.exec({ code: job.code, language: job.language, user: job.user });
      if (result.fromCache) throw new Error('the one-at-a-time run must not be answered by the cache');
      serviceUnloaded.push(performance.now() - begun);
      await settle();
      begun = performance.now();
      await naive(cloud, job);
      naiveUnloaded.push(performance.now() - begun);
    }

    const serviceShort = summarize(byKind(serviceRun.samples, 'short'));
    const naiveShort = summarize(byKind(naiveRun.samples, 'short'));
    const serviceAll = summarize(serviceRun.samples.map((sample) => sample.ms));
    const naiveAll = summarize(naiveRun.samples.map((sample) => sample.ms));
    const success = serviceRun.samples.filter((sample) => sample.ok).length / serviceRun.samples.length;
    const naiveSuccess = naiveRun.samples.filter((sample) => sample.ok).length / naiveRun.samples.length;
    const fair = fairness(serviceRun.samples);
    const total = serviceRun.samples.length;

    const unloaded = summarize(serviceUnloaded);
    const naiveAlone = summarize(naiveUnloaded);
    rows.push({ name: 'naive, one at a time: short request (baseline)', summary: naiveAlone });
    rows.push({
      name: 'service, one at a time: short request, warm',
      summary: unloaded,
      ratio: { to: 'faster than naive at p50', value: naiveAlone.p50 / unloaded.p50 },
      target: { text: 'p50 < 15 ms and >= 10x naive', met: unloaded.p50 < 15 && naiveAlone.p50 / unloaded.p50 >= 10 },
    });
    rows.push({ name: 'naive under load: short request (baseline)', summary: naiveShort });
    rows.push({
      name: `service under load: short request (end to end; default concurrency ${metrics.queue.concurrency} on ${availableParallelism()} cores)`,
      summary: serviceShort,
      ratio: { to: 'faster than naive at p50', value: naiveShort.p50 / serviceShort.p50 },
      target: { text: 'p50 < 15 ms and >= 10x naive', met: serviceShort.p50 < 15 && naiveShort.p50 / serviceShort.p50 >= 10 },
    });
    const shortResults = serviceRun.samples.filter((sample) => sample.job.kind === 'short' && sample.result !== undefined).map((sample) => sample.result!);
    rows.push({ name: 'service under load: short request, of which waiting in the queue', summary: summarize(shortResults.map((result) => result.queueWaitMs)) });
    rows.push({ name: 'service under load: short request, of which running (durationMs)', summary: summarize(shortResults.map((result) => result.durationMs)) });
    const seedShort = summarize(byKind(seedRun.samples, 'short'));
    rows.push({
      name: `service under load, the seed's concurrency ${SEED_CONCURRENCY} (E2B cloud's default): short request`,
      summary: seedShort,
      ratio: { to: 'faster than naive at p50', value: naiveShort.p50 / seedShort.p50 },
      value: { amount: (seedRun.samples.filter((sample) => sample.ok).length / seedRun.samples.length) * 100, unit: '% success' },
    });
    rows.push({ name: 'service: long request (sleeps 200 ms)', summary: summarize(byKind(serviceRun.samples, 'long')) });
    rows.push({ name: 'service: failing request (raises)', summary: summarize(byKind(serviceRun.samples, 'failing')) });
    rows.push({ name: 'service: repeated request (cacheable)', summary: summarize(byKind(serviceRun.samples, 'repeated')) });
    rows.push({ name: 'naive: all requests', summary: naiveAll, value: { amount: naiveRun.wallMs / 1000, unit: 's wall' } });
    rows.push({ name: 'service: all requests', summary: serviceAll, value: { amount: serviceRun.wallMs / 1000, unit: 's wall' }, ratio: { to: 'naive wall time', value: naiveRun.wallMs / serviceRun.wallMs } });
    rows.push({ name: 'naive: CPU of the whole machine during the loaded run', value: { amount: naiveCpuMs / 1000, unit: 's' } });
    rows.push({
      name: 'service: CPU of the whole machine during the loaded run',
      value: { amount: serviceCpuMs / 1000, unit: 's' },
      ratio: { to: 'naive', value: serviceCpuMs / naiveCpuMs },
    });
    rows.push({ name: 'service: success rate', value: { amount: success * 100, unit: `% of ${total}` }, target: { text: '100%', met: success === 1 } });
    rows.push({ name: 'naive: success rate', value: { amount: naiveSuccess * 100, unit: `% of ${total}` } });
    rows.push({ name: 'service: pool hit rate', value: { amount: (metrics.poolHitRate ?? 0) * 100, unit: '%' } });
    rows.push({ name: 'service: cache hit rate', value: { amount: (metrics.cacheHitRate ?? 0) * 100, unit: '%' } });
    rows.push({ name: 'service: worst user / median user (mean latency)', value: { amount: fair.worstOverMedian, unit: 'x' }, target: { text: '<= 2x', met: fair.worstOverMedian <= 2 } });
    report('exec', rows, {
      users: USERS,
      requestsPerUser: REQUESTS_PER_USER,
      streamsPerUser: STREAMS_PER_USER,
      perUserMeanMs: fair.perUserMeanMs,
      serviceMetrics: { requests: metrics.requests, pool: metrics.pool, queue: metrics.queue, cache: metrics.cache, breaker: metrics.breaker, tidied: metrics.tidied, tidyFailures: metrics.tidyFailures, scrubbed: metrics.scrubbed, scrubFailures: metrics.scrubFailures },
      defaultConcurrency: metrics.queue.concurrency,
      seedConcurrency: { concurrency: SEED_CONCURRENCY, wallMs: seedRun.wallMs, all: summarize(seedRun.samples.map((sample) => sample.ms)) },
      note: 'one local cloud for all; naive = Sandbox.create + runCode + kill per request; the service runs stateless executions and cleans each sandbox before reuse (tidied up when only Python ran in it, else scrubbed); the run at the seed\'s concurrency adds a comment to every program so that it starts with a cold cache',
    });
  } finally {
    await service?.close();
    await cloud.close();
  }
}

await main();
