import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repository = fileURLToPath(new URL('../..', import.meta.url));
const minuteData = fileURLToPath(new URL('../../../shared/data/minute/SPY_minute.csv', import.meta.url));
const run = promisify(execFile);

const SPEC = `
name: cli-backtest
data: { source: synthetic, seed: 3, symbols: [AAA], barCount: 120 }
strategies:
  - { type: sma-crossover, symbol: AAA, fastPeriod: 4, slowPeriod: 200, sizing: { type: fixed-quantity, units: 10 } }
`;
const WARNING = 'strategies[0] sma-crossover-AAA-4-200 cannot trade: slowPeriod 200 needs 201 bars of AAA before its first decision, and the data has 120; lower slowPeriod or use more data';
const SECRET = 'root:$6$secretSalt$Zm9vYmFyYmF6cXV4c2VjcmV0aGFzaA:19000:0:99999:7:::';

interface Failed {
  code: number;
  stdout: string;
  stderr: string;
}

describe('tradeswarm backtest (the CLI as a process)', () => {
  let folder = '';
  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'backtest-cli-'));
    await writeFile(join(folder, 'warm-up.yaml'), SPEC);
    await writeFile(join(folder, 'huge.yaml'), SPEC.replace('barCount: 120', 'barCount: 1e12'));
    await writeFile(join(folder, 'shadow'), `${SECRET}\n`);
    await writeFile(join(folder, 'mistakes.yaml'), SPEC.replace('fastPeriod: 4', 'fastPeriod: -4, allowShort: yes'));
    await writeFile(join(folder, 'short.csv'), 'Date,Open,High,Low,Close,Volume\n2020-01-02,1,2,0.5,1.5,100\n2020-01-03,1,2,0.5,1.5\n');
    await writeFile(join(folder, 'short.yaml'), SPEC.replace('{ source: synthetic, seed: 3, symbols: [AAA], barCount: 120 }', '{ source: csv, files: [{ path: short.csv, symbol: AAA }] }'));
    await writeFile(join(folder, 'shadow.yaml'), SPEC.replace('{ source: synthetic, seed: 3, symbols: [AAA], barCount: 120 }', '{ source: csv, files: [{ path: shadow, symbol: AAA }] }'));
  });
  afterAll(async () => {
    await rm(folder, { recursive: true, force: true });
  });
  // The timeout ends a run that should have been refused and is generating bars instead.
  const backtest = (...args: string[]): Promise<{ stdout: string; stderr: string }> =>
    run(process.execPath, ['bin/tradeswarm.js', 'backtest', ...args], { cwd: repository, timeout: 20_000, killSignal: 'SIGKILL' });

  it('runs a spec that cannot trade, and prints why on stderr, and in the JSON report', async () => {
    const text = await backtest(join(folder, 'warm-up.yaml'));
    expect(text.stdout).toMatch(/^trades +0$/m);
    expect(text.stderr).toBe(`tradeswarm: warning: ${WARNING}\n`);
    const json = await backtest(join(folder, 'warm-up.yaml'), '--json');
    expect(json.stderr).toBe(`tradeswarm: warning: ${WARNING}\n`);
    expect((JSON.parse(json.stdout) as { warnings: Array<{ message: string }> }).warnings.map((warning) => warning.message)).toEqual([WARNING]);
  });

  it('refuses a barCount that would not fit in memory before generating anything', async () => {
    const failed = (await backtest(join(folder, 'huge.yaml')).catch((error: unknown) => error)) as Failed;
    expect(failed).toMatchObject({ code: 1, stdout: '' });
    expect(failed.stderr).toMatch(/data\.barCount: got 1000000000000; must be <= 2500000 for 2 generated series/);
  });

  it('with --json, an error is one JSON object on stdout (code, message, issues) and the exit code is 1', async () => {
    const json = async (...args: string[]): Promise<{ code: number; body: unknown; stderr: string }> => {
      const failed = (await backtest(...args).catch((error: unknown) => error)) as Failed;
      return { code: failed.code, body: JSON.parse(failed.stdout) as unknown, stderr: failed.stderr };
    };
    // One at a time: on a loaded machine three CLI starts at once can outlast the helper's timeout.
    const mistakes = await json(join(folder, 'mistakes.yaml'), '--json');
    const short = await json(join(folder, 'short.yaml'), '--json');
    const usage = await json('--json', '--bogus', join(folder, 'warm-up.yaml'));
    expect(mistakes.code).toBe(1);
    expect(mistakes.body).toEqual({
      error: {
        code: 'invalid-spec',
        name: 'SpecError',
        message: expect.stringContaining('has 2 mistakes; nothing ran') as unknown,
        retryable: false,
        issues: [
          { path: 'strategies[0].fastPeriod', got: -4, allowed: 'must be >= 1' },
          { path: 'strategies[0].allowShort', got: 'yes', allowed: expect.stringMatching(/^sma-crossover has no field 'allowShort'; its fields are .*; to trade short use side: short or side: both$/) as unknown },
        ],
      },
    });
    // People still read the error on stderr.
    expect(mistakes.stderr).toMatch(/strategies\[0\]\.fastPeriod: got -4; must be >= 1/);
    expect(short).toMatchObject({ code: 1, body: { error: { code: 'invalid-input', field: 'short.csv line 3', message: 'short.csv line 3: the row has 5 fields and the header 6; every row needs a value in every column (check for a missing comma)' } } });
    expect(usage).toMatchObject({ code: 1, body: { error: { code: 'usage', message: "unknown option '--bogus'" } } });
  }, 90_000);

  it('a CSV path to a file that is not a CSV of bars: the error quotes none of it', async () => {
    const failed = (await backtest(join(folder, 'shadow.yaml')).catch((error: unknown) => error)) as Failed;
    expect(failed).toMatchObject({ code: 1, stdout: '' });
    expect(failed.stderr).toMatch(/shadow line 1: is not a CSV of bars/);
    expect(failed.stderr).not.toContain('secret');
  });
});

describe.skipIf(!existsSync(minuteData))(`tradeswarm backtest on data with a gap (${minuteData}; skipped when absent)`, () => {
  let folder = '';
  const spec = (extra: string): string =>
    `name: spy-gap\ndata: { source: csv, files: [{ path: ${JSON.stringify(minuteData)}, symbol: SPY }] }\n` +
    'strategies:\n  - { type: sma-crossover, symbol: SPY, fastPeriod: 5, slowPeriod: 20, sizing: { type: fixed-quantity, units: 10 } }\n' +
    extra;
  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'backtest-gap-'));
    await writeFile(join(folder, 'held.yaml'), spec(''));
    await writeFile(join(folder, 'flat.yaml'), spec('gaps: { flatten: true }\n'));
  });
  afterAll(async () => {
    await rm(folder, { recursive: true, force: true });
  });
  const backtest = (...args: string[]): Promise<{ stdout: string; stderr: string }> => run(process.execPath, ['bin/tradeswarm.js', 'backtest', ...args], { cwd: repository, timeout: 60_000, maxBuffer: 64 * 1024 * 1024 });
  const GAP = 'SPY has no bars from 2013-10-11T23:59Z to 2023-08-03T08:00Z (3582.3 days; usually 1 min apart)';
  const FIRST_AFTER = Date.UTC(2023, 7, 3, 8, 0);
  interface GapJson {
    gaps: Array<{ symbol: string; lastBeforeMs: number; firstAfterMs: number; usualIntervalMs: number; flattened: number | null; cancelledOrders: number | null }>;
    fills: Array<{ timeMs: number }>;
  }

  it('reports the SPY minute data\'s ten-year hole in the text report, in --json and as a warning, and by default holds across it', async () => {
    const [text, jsonRun] = await Promise.all([backtest(join(folder, 'held.yaml')), backtest(join(folder, 'held.yaml'), '--json')]);
    const held = `${GAP}; positions were held across it (gaps.flatten: true closes them before it)`;
    expect(text.stdout).toContain(`\ngap              ${held}\n`);
    expect(text.stderr).toBe(`tradeswarm: warning: gap: ${held}\n`);
    const json = JSON.parse(jsonRun.stdout) as GapJson;
    expect(json.gaps).toEqual([{ symbol: 'SPY', lastBeforeMs: Date.UTC(2013, 9, 11, 23, 59), firstAfterMs: FIRST_AFTER, durationMs: FIRST_AFTER - Date.UTC(2013, 9, 11, 23, 59), usualIntervalMs: 60_000, flattened: null, cancelledOrders: null }]);
    // The order decided on the last bar of 2013 fills at the first open of 2023.
    expect(json.fills.filter((fill) => fill.timeMs === FIRST_AFTER)).toHaveLength(1);
  }, 90_000);

  it('with gaps.flatten, cancels the order decided on the last bar before the hole, and says so', async () => {
    const { stdout, stderr } = await backtest(join(folder, 'flat.yaml'), '--json');
    expect(stderr).toBe(`tradeswarm: warning: gap: ${GAP}; no position was open before it, and cancelled 1 order still open there\n`);
    const json = JSON.parse(stdout) as GapJson;
    expect(json.gaps.map(({ flattened, cancelledOrders }) => ({ flattened, cancelledOrders }))).toEqual([{ flattened: 0, cancelledOrders: 1 }]);
    expect(json.fills.filter((fill) => fill.timeMs === FIRST_AFTER)).toHaveLength(0);
  }, 90_000);
});
