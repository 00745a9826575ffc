// CLI start benchmark (issue 18, "The CLI must start at once"): wall time of whole processes, as a user
// waits for them, next to a bare `node -e 0` (the baseline, measured in the same rounds): `tradeswarm
// --help` and a 5,000-bar backtest (`tradeswarm backtest` on the last 5,000 AAPL daily bars of
// ../shared/data), each from the build (`node bin/tradeswarm.js`, what users run) and through tsx (the
// sources compiled on start, as bin/ ran the CLI before the build; tsx's cache of compiled files is warm
// after the first, untimed, round); and a client command (issue 15) from the build: `tradeswarm ps`
// where no server answers (it fails at once, so that is its start alone) and against a `tradeswarm
// serve` the bench starts (with no deployments). Every round runs each command once, in turn, so a change
// of load on the machine touches all of them alike; the median of the rounds counts.
// `npm run bench:cli [-- --quick]`; it builds dist/ first. Results in bench/results/cli.json.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { PACKAGE_ROOT, buildDist } from '../scripts/build.js';
import { DATA_DIR } from './lib/backtest.js';
import { report, type BenchRow } from './lib/report.js';
import { summarize } from './lib/stats.js';

const quick = process.argv.includes('--quick');
const ROUNDS = quick ? 3 : 9;
const BARS = 5_000;
/** The target: `--help` from the build within 3x a bare node start; a client command too (issue 15). */
const START_TARGET = 3;
/** An address no server answers at: fetch refuses port 1 without connecting, so `ps` fails at once. */
const NO_SERVER_URL = 'http://127.0.0.1:1';

const BASELINE = 'node -e 0';
const BUILT = [join(PACKAGE_ROOT, 'bin', 'tradeswarm.js')];
const SOURCES = ['--import', 'tsx', join(PACKAGE_ROOT, 'src', 'cli', 'main.ts')];

/** A spec of the AAPL SMA(50/200) example (examples/backtest-aapl.yaml) on the file's last `bars` bars. */
function lastBarsSpec(folder: string, bars: number): string {
  const csv = fileURLToPath(new URL('daily/AAPL.csv', DATA_DIR));
  const rows = readFileSync(csv, 'utf8').trim().split('\n').slice(1);
  const first = rows[rows.length - bars];
  if (first === undefined) throw new Error(`${csv} has ${rows.length} bars, fewer than ${bars}`);
  const spec = {
    name: `aapl-sma-50-200-last-${bars}`,
    data: { source: 'csv', files: [{ path: csv, symbol: 'AAPL' }], from: first.split(',')[0] },
    strategies: [{ type: 'sma-crossover', symbol: 'AAPL', fastPeriod: 50, slowPeriod: 200, sizing: { type: 'fraction-of-equity', fraction: 0.95, wholeUnits: true } }],
    venue: { fillAt: 'next-open', slippage: { model: 'bps', bps: 1 }, fees: { model: 'per-share', amountPerShare: 0.005, minimumPerOrder: 1 } },
    portfolio: { initialCash: 100_000, longOnly: true },
    endOfData: 'liquidate-at-close',
    periodsPerYear: 252,
  };
  const file = join(folder, 'backtest-5000.yaml');
  writeFileSync(file, stringify(spec));
  return file;
}

/** Runs `node <args>` to its end and returns its wall time in ms and its stdout; it must exit with `status`. */
function timed(args: readonly string[], status = 0): { ms: number; stdout: string; stderr: string } {
  const started = performance.now();
  const result = spawnSync(process.execPath, args, { cwd: PACKAGE_ROOT, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const ms = performance.now() - started;
  if (result.status !== status) throw new Error(`node ${args.join(' ')} exited with ${String(result.status ?? result.signal)}, not ${status}: ${result.stderr}`);
  return { ms, stdout: result.stdout, stderr: result.stderr };
}

/** `tradeswarm serve` from the build on a port the OS chooses, its store in `folder`; resolves with its URL once it listens. */
async function startServe(folder: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const serve = spawn(process.execPath, [...BUILT, 'serve', '--port', '0', '--data-dir', join(folder, 'serve-data')], { cwd: PACKAGE_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const stop = async (): Promise<void> => {
    if (serve.exitCode !== null || serve.signalCode !== null) return;
    const exited = once(serve, 'exit');
    serve.kill('SIGTERM');
    await exited;
  };
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const read = (chunk: Buffer): void => {
      output += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(output);
      if (match) resolve(match[1] as string);
    };
    serve.stdout.on('data', read);
    serve.stderr.on('data', read);
    serve.once('exit', (code) => reject(new Error(`tradeswarm serve exited with ${String(code)} before it listened: ${output}`)));
  });
  return { url, stop };
}

async function main(): Promise<void> {
  const build = await buildDist();
  process.stdout.write(`built dist/ in ${Math.round(build.ms)} ms (${build.written} files written)\n`);
  const folder = mkdtempSync(join(tmpdir(), 'tradeswarm-cli-bench-'));
  let serve: { url: string; stop: () => Promise<void> } | undefined;
  try {
    const spec = lastBarsSpec(folder, BARS);
    serve = await startServe(folder);
    const cases: ReadonlyArray<{ name: string; args: readonly string[]; bars?: true; status?: number; expect?: RegExp; target?: true }> = [
      { name: BASELINE, args: ['-e', '0'] },
      { name: 'tradeswarm --help, build', args: [...BUILT, '--help'] },
      { name: 'tradeswarm --help, tsx (sources)', args: [...SOURCES, '--help'] },
      { name: `tradeswarm backtest, ${BARS} bars, build`, args: [...BUILT, 'backtest', spec, '--json'], bars: true },
      { name: `tradeswarm backtest, ${BARS} bars, tsx (sources)`, args: [...SOURCES, 'backtest', spec, '--json'], bars: true },
      { name: 'tradeswarm ps, no server answers, build', args: [...BUILT, 'ps', '--url', NO_SERVER_URL], status: 1, expect: /no tradeswarm server answers/, target: true },
      { name: 'tradeswarm ps, against serve, build', args: [...BUILT, 'ps', '--url', serve.url], expect: /^no deployments/ },
    ];
    const samples = new Map<string, number[]>(cases.map((entry) => [entry.name, []]));
    let engineMs: number | undefined;
    // Round 0 is not timed: it fills the OS's file cache and tsx's cache, and checks every command works.
    for (let round = 0; round <= ROUNDS; round++) {
      for (const entry of cases) {
        const { ms, stdout, stderr } = timed(entry.args, entry.status);
        if (entry.expect !== undefined && !entry.expect.test(stdout + stderr)) throw new Error(`${entry.name} printed neither on stdout nor stderr ${String(entry.expect)}: ${stdout}${stderr}`);
        if (entry.bars === true) {
          const answer = JSON.parse(stdout) as { bars: number; elapsedMs: number };
          if (answer.bars !== BARS) throw new Error(`${entry.name}: the backtest ran ${answer.bars} bars, not ${BARS}`);
          engineMs = answer.elapsedMs;
        }
        if (round > 0) samples.get(entry.name)!.push(ms);
      }
    }
    const baseline = summarize(samples.get(BASELINE)!);
    const rows: BenchRow[] = cases.map((entry) => {
      const summary = summarize(samples.get(entry.name)!);
      if (entry.name === BASELINE) return { name: `${entry.name} (baseline)`, summary };
      const ratio = { to: BASELINE, value: summary.p50 / baseline.p50 };
      const target = entry.name === 'tradeswarm --help, build' || entry.target === true ? { text: `p50 < ${START_TARGET}x ${BASELINE}`, met: ratio.value < START_TARGET } : undefined;
      return { name: entry.name, summary, ratio, ...(target === undefined ? {} : { target }) };
    });
    report('cli', rows, {
      rounds: ROUNDS,
      bars: BARS,
      spec: 'examples/backtest-aapl.yaml on the last 5,000 bars of ../shared/data/daily/AAPL.csv',
      backtestEngineMs: engineMs,
      note: 'wall time of whole processes; every round runs each command once, in turn; the first round is not timed (warms the file cache and tsx cache)',
      clientCommands: `ps --url ${NO_SERVER_URL} (fails at once: no server answers) and ps against a tradeswarm serve this bench started, with no deployments`,
    });
  } finally {
    await serve?.stop();
    rmSync(folder, { recursive: true, force: true });
  }
}

await main();
