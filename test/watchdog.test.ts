import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { isAlive } from './fixtures/processes.js';

const run = promisify(execFile);
const repository = fileURLToPath(new URL('..', import.meta.url));
const vitest = fileURLToPath(new URL('../node_modules/vitest/vitest.mjs', import.meta.url));

/** Runs vitest on the fixtures named by `filters`, with the watchdog's limits in `env`; its exit code and output. */
async function vitestOn(filters: string[], env: Record<string, string>): Promise<{ code: number | undefined; output: string }> {
  return run(process.execPath, [vitest, 'run', '--config', 'test/fixtures/watchdog/vitest.config.ts', ...filters], {
    cwd: repository,
    env: { ...process.env, CI: 'true', ...env },
    timeout: 60_000,
  }).then(
    ({ stdout, stderr }) => ({ code: 0, output: `${stdout}${stderr}` }),
    (error: { code?: number; stdout?: string; stderr?: string }) => ({ code: error.code, output: `${error.stdout ?? ''}${error.stderr ?? ''}` }),
  );
}

describe('the watchdog reporter', () => {
  it('ends a run whose file blocks its worker, naming the file, and leaves no worker behind', async () => {
    const result = await vitestOn(['hangs', 'passes'], { TRADESWARM_TEST_STALL_MS: '3000' });
    expect(result.code).toBe(1);
    expect(result.output).toContain('watchdog: a test file hangs');
    expect(result.output).toMatch(/hangs\.fixture\.ts: nothing reported for \d+ s/);
    expect(result.output).not.toMatch(/passes\.fixture\.ts: nothing reported/);
    const workers = [...result.output.matchAll(/^\s+(\d+)\s+\d+\s.*workers\/forks\.js/gm)].map((match) => Number(match[1]));
    expect(workers.length, 'the processes of the run are listed, its workers among them').toBeGreaterThan(0);
    // Killed, a worker is gone once init has reaped it: wait for that, as a user's shell would see it.
    await expect.poll(() => workers.filter(isAlive), { timeout: 10_000, interval: 100 }).toEqual([]);
  }, 90_000);

  it('ends a run whose file outlasts the file limit by timing out test after test, listing the failures so far', async () => {
    const result = await vitestOn(['waits'], { TRADESWARM_TEST_STALL_MS: '60000', TRADESWARM_TEST_FILE_LIMIT_MS: '4000' });
    expect(result.code).toBe(1);
    expect(result.output).toMatch(/waits\.fixture\.ts: still running after \d+ s/);
    expect(result.output).toMatch(/ {2}failed: waits for what never comes \(1\): Test timed out in 1000ms/);
    expect(result.output).toMatch(/ {2}started and not ended: waits for what never comes \(\d+\)/);
  }, 90_000);

  it('ends a run whose file never finishes importing', async () => {
    const result = await vitestOn(['imports'], { TRADESWARM_TEST_STALL_MS: '3000' });
    expect(result.code).toBe(1);
    expect(result.output).toMatch(/imports\.fixture\.ts: nothing reported for \d+ s/);
  }, 90_000);

  it('lets a run that ends in time end as vitest ends it', async () => {
    const result = await vitestOn(['passes'], { TRADESWARM_TEST_STALL_MS: '3000', TRADESWARM_TEST_FILE_LIMIT_MS: '3000' });
    expect(result.code).toBe(0);
    expect(result.output).not.toContain('watchdog: ');
  }, 90_000);

  it('refuses a limit that is not a whole number of milliseconds, naming the variable', async () => {
    const result = await vitestOn(['passes'], { TRADESWARM_TEST_FILE_LIMIT_MS: '10m' });
    expect(result.code).not.toBe(0);
    expect(result.output).toContain('TRADESWARM_TEST_FILE_LIMIT_MS must be a whole number of milliseconds > 0, got "10m"');
  }, 90_000);
});
