import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pageData } from '../../src/report/index.js';
import { starSwarmYaml } from '../fixtures/specs.js';

const repository = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);
const HOSTILE = '<script>document.title="ran"</script>';

const SPEC = `
name: '${HOSTILE}'
data: { source: synthetic, seed: 3, symbols: [AAA], barCount: 400 }
strategies:
  - { type: sma-crossover, symbol: AAA, fastPeriod: 4, slowPeriod: 20, side: both, sizing: { type: fixed-quantity, units: 10 }, exits: { stopLoss: { percent: 2 } } }
`;

type Exited = { code: number; stdout: string; stderr: string };

/** Debian's chromium, when installed (CI installs it: .ci/run). */
function chromium(): string | null {
  try {
    return execFileSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

describe('--html (the CLI as a process)', () => {
  let folder = '';
  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'html-report-'));
    await writeFile(join(folder, 'spec.yaml'), SPEC);
    await writeFile(join(folder, 'swarm.yaml'), starSwarmYaml('html-swarm', 80));
  });
  afterAll(async () => {
    await rm(folder, { recursive: true, force: true });
  });
  const cli = (...args: string[]): Promise<{ stdout: string; stderr: string }> =>
    run(process.execPath, ['bin/tradeswarm.js', ...args], { cwd: repository, timeout: 100_000, killSignal: 'SIGKILL', maxBuffer: 64 << 20 });

  it('backtest writes one self-contained page that holds the --json report exactly, with the spec escaped', async () => {
    const file = join(folder, 'backtest.html');
    const { stdout } = await cli('backtest', join(folder, 'spec.yaml'), '--json', '--html', file);
    const page = await readFile(file, 'utf8');
    expect((pageData(page) as { report: unknown }).report).toEqual(JSON.parse(stdout));
    expect(page).not.toMatch(/\s(src|href)=/);
    expect(page).not.toContain(HOSTILE);
    expect(page.match(/<script/g)).toHaveLength(3);
    const kinds = (JSON.parse(stdout) as { fills: Array<{ clientOrderId: string }> }).fills.map((fill) => fill.clientOrderId);
    expect(kinds.some((id) => id.endsWith(':stop-loss'))).toBe(true);
    expect(page).toContain('stop-loss / trailing stop');
  });

  it('refuses a path it cannot write, naming --html, before running anything', async () => {
    const failed = (await cli('backtest', join(folder, 'spec.yaml'), '--html', join(folder, 'no-such-folder', 'r.html')).catch((error: unknown) => error)) as Exited;
    expect(failed).toMatchObject({ code: 1, stdout: '' });
    expect(failed.stderr).toBe(`tradeswarm: --html: cannot write "${join(folder, 'no-such-folder', 'r.html')}": the folder ${join(folder, 'no-such-folder')} does not exist; create it or give another path\n`);
    const folderGiven = (await cli('run', join(folder, 'swarm.yaml'), '--html', folder).catch((error: unknown) => error)) as Exited;
    expect(folderGiven.stderr).toMatch(/^tradeswarm: --html: ".*" is a folder; give a file name/);
  });

  it('optimize writes the heat map page, which holds the --out JSON exactly; bad heat map flags are refused by name', async () => {
    const spec = join(folder, 'spec.yaml');
    const grid = ['--param', 'fastPeriod=3..5', '--param', 'slowPeriod=10,20', '--walk-forward', '2', '--workers', '1'];
    const file = join(folder, 'search.html');
    const out = join(folder, 'search.json');
    await cli('optimize', spec, ...grid, '--html', file, '--out', out, '--heatmap-x', 'slowPeriod');
    const page = await readFile(file, 'utf8');
    expect((pageData(page) as { search: unknown }).search).toEqual(JSON.parse(await readFile(out, 'utf8')));
    expect(page).toContain('<h2>Heat map: sharpe over slowPeriod and fastPeriod</h2>');
    expect(page).toContain('<h2>Walk-forward (2 folds, rolling)</h2>');
    const bad = (await cli('optimize', spec, ...grid, '--html', file, '--heatmap-y', 'nope').catch((error: unknown) => error)) as Exited;
    expect(bad.stderr).toBe('tradeswarm: --heatmap-y: "nope" is not a searched parameter; use one of fastPeriod, slowPeriod\n');
    const alone = (await cli('optimize', spec, ...grid, '--heatmap-x', 'fastPeriod').catch((error: unknown) => error)) as Exited;
    expect(alone.stderr).toBe('tradeswarm: --heatmap-x: lays out the heat map of --html; give --html <file> as well\n');
  });

  it('run writes the same page for a swarm, with its agents', async () => {
    const file = join(folder, 'swarm.html');
    const { stdout } = await cli('run', join(folder, 'swarm.yaml'), '--json', '--html', file);
    const page = await readFile(file, 'utf8');
    const report = JSON.parse(stdout) as { agents: Array<{ id: string }> };
    expect((pageData(page) as { report: unknown }).report).toEqual(report);
    expect(page).toContain('<h2>Agents</h2>');
    for (const agent of report.agents) expect(page).toContain(`<td>${agent.id}</td>`);
  });

  const browser = chromium();
  it.skipIf(browser === null)('draws its charts in a headless browser, without a script error and without running the spec’s script', async () => {
    const file = join(folder, 'backtest.html');
    await cli('backtest', join(folder, 'spec.yaml'), '--html', file);
    const { stdout: dom } = await run(browser as string, ['--headless', '--no-sandbox', '--disable-gpu', '--virtual-time-budget=5000', '--dump-dom', pathToFileURL(file).href], { timeout: 60_000, maxBuffer: 64 << 20 });
    // Equity, drawdown and the one symbol's price: one canvas each.
    expect(dom.match(/<canvas/g)).toHaveLength(3);
    expect(dom).toContain('<div id="chart-errors"></div>');
    expect(dom).not.toContain('<title>ran</title>');
  });
});
