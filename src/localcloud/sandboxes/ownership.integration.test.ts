import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TEMP_ROOT_PREFIX, claimInstanceDir, cleanStaleDataDirs, cleanStaleTempRoots, instanceState, type InstanceClaim } from './ownership.js';

/** The pid of a process that ran here a moment ago and has exited. */
async function endedPid(): Promise<number> {
  const child = spawn('true', { stdio: 'ignore' });
  await once(child, 'exit');
  return child.pid!;
}

let folder: string;
const claims: InstanceClaim[] = [];

beforeEach(() => {
  folder = mkdtempSync(join(tmpdir(), 'tradeswarm-ownership-test-'));
});
afterEach(() => {
  for (const claim of claims.splice(0)) claim.release();
  rmSync(folder, { recursive: true, force: true });
});

function claim(dir: string): InstanceClaim {
  const made = claimInstanceDir(dir);
  claims.push(made);
  return made;
}

describe('instanceState', () => {
  it('is running while the claim is held, and ended once let go, though a live process has the pid in its name', () => {
    // The name carries this test's own pid: a gone server whose pid was reused by another process.
    const dir = join(folder, `srv-${process.pid}-reused`);
    const held = claim(dir);
    expect(held.marked).toBe(true);
    expect(instanceState(dir)).toBe('running');
    held.release();
    held.release();
    expect(instanceState(dir)).toBe('ended');
  });

  it('judges a folder without the owner FIFO (an older version\'s) by the pid in its name', async () => {
    const dead = join(folder, `srv-${await endedPid()}-legacy`);
    const alive = join(folder, `srv-${process.pid}-legacy`);
    const foreign = join(folder, 'not-an-instance');
    for (const dir of [dead, alive, foreign]) mkdirSync(dir);
    expect([instanceState(dead), instanceState(alive), instanceState(foreign)]).toEqual(['ended', 'running', 'unknown']);
  });
});

describe('cleaning what crashed servers left', () => {
  it('removes the temporary roots whose every server is gone, and nothing else', async () => {
    const root = (name: string): string => join(folder, `${TEMP_ROOT_PREFIX}${name}`);
    const deadPid = await endedPid();
    claim(join(root('live'), `srv-${process.pid}-a`));
    claim(join(root('crashed'), `srv-${process.pid}-b`)).release();
    mkdirSync(join(root('legacy-crashed'), `srv-${deadPid}-c`, 'sandbox'), { recursive: true });
    mkdirSync(join(root('legacy-live'), `srv-${process.pid}-d`), { recursive: true });
    mkdirSync(root('being-made'));
    mkdirSync(join(folder, 'someone-else', `srv-${deadPid}-e`), { recursive: true });

    expect(cleanStaleTempRoots(folder)).toBe(2);
    expect(['live', 'crashed', 'legacy-crashed', 'legacy-live', 'being-made'].filter((name) => existsSync(root(name)))).toEqual(['live', 'legacy-live', 'being-made']);
    expect(existsSync(join(folder, 'someone-else', `srv-${deadPid}-e`))).toBe(true);
    expect(cleanStaleTempRoots(join(folder, 'missing'))).toBe(0);
  });

  it('removes the instance folders of gone servers from a data folder a user gave', async () => {
    claim(join(folder, `srv-${process.pid}-live`));
    claim(join(folder, `srv-${process.pid}-crashed`)).release();
    mkdirSync(join(folder, `srv-${await endedPid()}-legacy`));
    mkdirSync(join(folder, 'notes'));

    expect(cleanStaleDataDirs(folder)).toBe(2);
    expect(existsSync(join(folder, `srv-${process.pid}-live`))).toBe(true);
    expect(existsSync(join(folder, 'notes'))).toBe(true);
  });
});
