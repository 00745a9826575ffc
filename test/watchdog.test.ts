import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
const repository = fileURLToPath(new URL('..', import.meta.url));
const vitest = fileURLToPath(new URL('../node_modules/vitest/vitest.mjs', import.meta.url));

describe('the watchdog reporter', () => {
  it('ends a run whose file blocks its worker, naming the file, and leaves no worker behind', async () => {
    const result = await run(process.execPath, [vitest, 'run', '--config', 'test/fixtures/watchdog/vitest.config.ts'], {
      cwd: repository,
      env: { ...process.env, TRADESWARM_TEST_STALL_MS: '3000', CI: 'true' },
      timeout: 60_000,
    }).then(
      () => ({ code: 0, output: '' }),
      (error: { code?: number; stdout?: string; stderr?: string }) => ({ code: error.code, output: `${error.stdout ?? ''}${error.stderr ?? ''}` }),
    );
    expect(result.code).toBe(1);
    expect(result.output).toContain('watchdog: a test file hangs');
    expect(result.output).toMatch(/hangs\.fixture\.ts: nothing reported for \d+ s/);
    expect(result.output).not.toMatch(/passes\.fixture\.ts: nothing reported/);
    const workers = [...result.output.matchAll(/^\s+(\d+)\s+\d+\s.*workers\/forks\.js/gm)].map((match) => Number(match[1]));
    expect(workers.length, 'the processes of the run are listed, its workers among them').toBeGreaterThan(0);
    // Killed, a worker is gone once init has reaped it: wait for that, as a user's shell would see it.
    await expect.poll(() => workers.filter(alive), { timeout: 10_000, interval: 100 }).toEqual([]);
  }, 90_000);

  it('refuses a stall limit that is not a whole number of milliseconds, naming the variable', async () => {
    const failed = await run(process.execPath, [vitest, 'run', '--config', 'test/fixtures/watchdog/vitest.config.ts', 'passes'], {
      cwd: repository,
      env: { ...process.env, TRADESWARM_TEST_STALL_MS: '10m', CI: 'true' },
      timeout: 60_000,
    }).then(
      () => '',
      (error: { stdout?: string; stderr?: string }) => `${error.stdout ?? ''}${error.stderr ?? ''}`,
    );
    expect(failed).toContain('TRADESWARM_TEST_STALL_MS must be a whole number of milliseconds > 0, got "10m"');
  }, 90_000);
});
