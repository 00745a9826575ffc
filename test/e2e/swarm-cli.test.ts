import { execFile, spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { starSwarmYaml } from '../fixtures/specs.js';

const repository = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);

const SPEC = starSwarmYaml('cli-swarm', 120);

describe('tradeswarm run (the CLI as a process)', () => {
  let folder = '';
  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'swarm-cli-'));
    await writeFile(join(folder, 'good.yaml'), SPEC);
    await writeFile(join(folder, 'bad.yaml'), SPEC.replace('topology: star', 'topology: circle, heartbeatMs: 1'));
    await writeFile(join(folder, 'long.yaml'), SPEC.replace('barCount: 120', 'barCount: 20000'));
  });
  afterAll(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  it('runs a spec as a swarm and prints a JSON report with the same trades as `backtest --json`', async () => {
    const swarm = await run(process.execPath, ['bin/tradeswarm.js', 'run', join(folder, 'good.yaml'), '--json'], { cwd: repository });
    const backtest = await run(process.execPath, ['bin/tradeswarm.js', 'backtest', join(folder, 'good.yaml'), '--json'], { cwd: repository });
    const report = JSON.parse(swarm.stdout) as { trades: unknown[]; finalEquity: number; topology: string; agents: Array<{ id: string; status: string }> };
    const expected = JSON.parse(backtest.stdout) as { trades: unknown[]; finalEquity: number };
    expect(report.topology).toBe('star');
    expect(report.agents.map((agent) => agent.id).sort()).toEqual(['1-sma-crossover-AAA-4-16', '2-momentum-BBB-8', 'hub']);
    expect(report.agents.every((agent) => agent.status === 'stopped')).toBe(true);
    expect(report.trades).toEqual(expected.trades);
    expect(report.finalEquity).toBe(expected.finalEquity);
    expect(swarm.stderr).toMatch(/cli-swarm \(star\) \[#+\] 120\/120 steps/);
  });

  it('refuses a bad swarm section before anything starts, naming each field, its value and what is allowed', async () => {
    const failed = await run(process.execPath, ['bin/tradeswarm.js', 'run', join(folder, 'bad.yaml')], { cwd: repository }).catch((error: unknown) => error as { code: number; stderr: string; stdout: string });
    expect(failed).toMatchObject({ code: 1, stdout: '' });
    const stderr = (failed as { stderr: string }).stderr;
    expect(stderr).toMatch(/swarm\.topology: got "circle"; must be one of "mesh", "star", "hierarchical", "ring"/);
    expect(stderr).toMatch(/swarm\.heartbeatMs: got 1; must be >= 10/);
    expect(stderr).toMatch(/nothing ran/);
  });

  it('with --json, answers a bad swarm section as a JSON error on stdout, each mistake an issue, exit code 1', async () => {
    const failed = await run(process.execPath, ['bin/tradeswarm.js', 'run', join(folder, 'bad.yaml'), '--json'], { cwd: repository }).catch((error: unknown) => error as { code: number; stdout: string });
    expect(failed).toMatchObject({ code: 1 });
    expect(JSON.parse((failed as { stdout: string }).stdout)).toMatchObject({
      error: {
        code: 'invalid-spec',
        issues: [
          { path: 'swarm.topology', got: 'circle', allowed: 'must be one of "mesh", "star", "hierarchical", "ring"' },
          { path: 'swarm.heartbeatMs', got: 1, allowed: 'must be >= 10' },
        ],
      },
    });
  });

  it('refuses --sandbox e2b without E2B_API_KEY, saying what to set', async () => {
    const env = { ...process.env };
    delete env.E2B_API_KEY;
    const failed = await run(process.execPath, ['bin/tradeswarm.js', 'run', join(folder, 'good.yaml'), '--sandbox', 'e2b'], { cwd: repository, env }).catch((error: unknown) => error as { code: number; stderr: string });
    expect(failed).toMatchObject({ code: 1 });
    expect((failed as { stderr: string }).stderr).toMatch(/E2B_API_KEY: is not set, and E2B cloud sandboxes need it: export E2B_API_KEY=.*or use --sandbox local/);
    const withKey = await run(process.execPath, ['bin/tradeswarm.js', 'run', join(folder, 'good.yaml'), '--sandbox', 'e2b'], { cwd: repository, env: { ...env, E2B_API_KEY: 'e2b_test' } }).catch((error: unknown) => error as { code: number; stderr: string });
    expect(withKey).toMatchObject({ code: 1 });
    expect((withKey as { stderr: string }).stderr).toMatch(/--broker: is required with --sandbox e2b/);
  });

  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    it(`stops cleanly on ${signal}: agents checkpoint, sandboxes are killed, the partial report is printed, exit ${code}`, async () => {
      const child = spawn(process.execPath, ['bin/tradeswarm.js', 'run', join(folder, 'long.yaml'), '--json'], { cwd: repository });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      const trading = new Promise<void>((resolve) => {
        child.stderr.on('data', (chunk: Buffer) => {
          stderr += chunk.toString();
          // Progress lines come at every 10 % of the steps: stop once 10 % are done.
          if (/\b\d{4,}\/20000 steps/.test(stderr)) resolve();
        });
      });
      const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
      await trading;
      child.kill(signal);
      expect(await exited).toBe(code);
      expect(stderr).toContain(`${signal}: stopping the run`);
      const report = JSON.parse(stdout) as {
        outcome: string;
        halted: { reason: string; atStep: number };
        steps: { total: number; decided: number };
        broker: string;
        agents: Array<{ status: string; decisions: number | null }>;
      };
      expect(report.outcome).toBe('stopped');
      expect(report.halted.reason).toBe(`stopped by ${signal}`);
      expect(report.steps.decided).toBeGreaterThanOrEqual(2000);
      expect(report.steps.decided).toBeLessThan(20000);
      // The step in flight when the signal came may have been decided after the run stopped trading.
      expect(report.steps.decided - report.halted.atStep).toBeGreaterThanOrEqual(0);
      expect(report.steps.decided - report.halted.atStep).toBeLessThanOrEqual(1);
      // Each agent took the stop, sent its last checkpoint (its counters) and exited 0.
      expect(report.agents.map((agent) => agent.status)).toEqual(report.agents.map(() => 'stopped'));
      for (const agent of report.agents) expect(agent.decisions).not.toBeNull();
      // No agent process of this run is left: they all knew its embedded broker.
      const brokerUrl = report.broker.replace(/^embedded /, '');
      expect(processesWithEnv(`TS_BUS_URL=${brokerUrl}`)).toEqual([]);
    });
  }
});

/** The pids of processes whose environment holds `entry`. */
function processesWithEnv(entry: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/environ`, 'utf8').split('\0').includes(entry)) pids.push(Number(name));
    } catch {
      // The process ended while we looked.
    }
  }
  return pids;
}
