import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// A synthetic market of 400 daily bars: small enough for many CLI runs, long enough for two folds.
const SPEC = [
  'name: cli-optimize',
  'data: { source: synthetic, seed: 3, symbols: [AAA], barCount: 400 }',
  'strategies:',
  '  - type: sma-crossover',
  '    symbol: AAA',
  '    fastPeriod: 4',
  '    slowPeriod: 20',
  '    sizing: { type: fixed-quantity, units: 10 }',
].join('\n');

/** What `execFile` rejects with when the command exits with a code other than 0. */
type Exited = { code: number; stdout: string; stderr: string };

describe('tradeswarm optimize (the CLI as a process)', () => {
  let folder = '';
  let spec = '';
  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'optimize-cli-'));
    spec = join(folder, 'spec.yaml');
    await writeFile(spec, SPEC);
  });
  afterAll(async () => {
    await rm(folder, { recursive: true, force: true });
  });
  const optimize = (...args: string[]): Promise<{ stdout: string; stderr: string }> =>
    promisify(execFile)(process.execPath, ['bin/tradeswarm.js', 'optimize', spec, ...args], { cwd: fileURLToPath(new URL('../..', import.meta.url)), timeout: 100_000, killSignal: 'SIGKILL' });
  const grid = ['--param', 'fastPeriod=3..5', '--param', 'slowPeriod=10,20'];

  it('prints the same table with 1 and 3 worker threads, the chosen metric first', async () => {
    const one = await optimize(...grid, '--maximize', 'sortino', '--walk-forward', '2', '--workers', '1');
    const three = await optimize(...grid, '--maximize', 'sortino', '--walk-forward', '2', '--workers', '3');
    expect(three.stdout).toBe(one.stdout);
    expect(one.stdout).toMatch(/^maximize sortino over 6 combinations, 400 time steps\n\nrank +fastPeriod +slowPeriod +sortino +return +sharpe +max drawdown +trades\n1 /);
    expect(one.stdout).toMatch(/\nwalk-forward, 2 folds, rolling: /);
    expect(one.stdout).toMatch(/\nout of sample, joined: sortino /);
    expect(one.stderr).toMatch(/^tradeswarm: 20 backtests in [\d.]+ s/m);
  });

  it('with --json and --out, gives every combination in grid order with its rank and statistics', async () => {
    const out = join(folder, 'results.json');
    const { stdout } = await optimize(...grid, '--constraint', 'fastPeriod * 4 <= slowPeriod', '--json', '--out', out, '--workers', '2');
    expect(await readFile(out, 'utf8')).toBe(stdout);
    const result = JSON.parse(stdout) as { rows: Array<{ rank: number; parameters: Record<string, number>; statistics: Record<string, number | null> }> };
    expect(result).toMatchObject({
      spec,
      metric: 'sharpe',
      direction: 'maximize',
      parameters: [
        { name: 'fastPeriod', values: [3, 4, 5] },
        { name: 'slowPeriod', values: [10, 20] },
      ],
      constraints: ['fastPeriod * 4 <= slowPeriod'],
      gridSize: 6,
      combinations: 3,
      timeSteps: 400,
      walkForward: null,
      runsDone: 3,
      runs: 3,
      stopped: false,
    });
    expect(result.rows.map((row) => row.parameters)).toEqual([
      { fastPeriod: 3, slowPeriod: 20 },
      { fastPeriod: 4, slowPeriod: 20 },
      { fastPeriod: 5, slowPeriod: 20 },
    ]);
    expect(result.rows.map((row) => row.rank).sort()).toEqual([1, 2, 3]);
    expect(Object.keys(result.rows[0]?.statistics ?? {})).toEqual(['totalReturn', 'sharpe', 'sortino', 'maxDrawdown', 'winRate', 'exposure', 'finalEquity', 'trades']);
  });

  it('refuses a bad --param, an unknown metric and an impossible constraint, as JSON with --json, exit code 1', async () => {
    const failed = async (...args: string[]): Promise<{ code: number; body: { error: Record<string, unknown> } }> => {
      const error = (await optimize(...args, '--json').catch((caught: unknown) => caught)) as Exited;
      return { code: error.code, body: JSON.parse(error.stdout) as { error: Record<string, unknown> } };
    };
    const param = await failed('--param', 'fastPeriod=5..1:1');
    expect(param).toEqual({ code: 1, body: { error: expect.objectContaining({ code: 'invalid-input', field: '--param', message: '--param: fastPeriod=5..1:1: TO must not be below FROM' }) as unknown } });
    const value = await failed('--param', 'fastPeriod=-2,3');
    expect(value.code).toBe(1);
    expect(value.body.error).toMatchObject({ code: 'invalid-spec', issues: [{ path: 'strategies[0].fastPeriod', got: -2, allowed: 'must be >= 1 (or leave such combinations out with --constraint)' }] });
    const metric = await failed(...grid, '--maximize', 'profit');
    expect(metric.body.error).toMatchObject({ code: 'invalid-input', field: '--maximize', message: expect.stringContaining('use one of totalReturn, sharpe, sortino, maxDrawdown, winRate, exposure, finalEquity, trades') as unknown });
    const impossible = await failed(...grid, '--constraint', 'fastPeriod > slowPeriod');
    expect(impossible).toEqual({ code: 1, body: { error: expect.objectContaining({ code: 'invalid-input', field: '--constraint', message: expect.stringContaining('no combination of the 6 in the grid meets "fastPeriod > slowPeriod"') as unknown }) as unknown } });
  });
});
