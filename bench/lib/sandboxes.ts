import type { LocalCloud } from '../../src/localcloud/index.js';

/**
 * Times `rounds` creates (to a first command's answer, by `createAndRun`) and kills on `cloud`, each
 * create once the warm pool is refilled after the kill before it.
 */
export async function timeCreateAndKill(cloud: LocalCloud, rounds: number, createAndRun: (cloud: LocalCloud) => Promise<{ kill(): Promise<unknown> }>): Promise<{ create: number[]; kill: number[] }> {
  const create: number[] = [];
  const kill: number[] = [];
  for (let round = 0; round < rounds; round++) {
    await cloud.sandboxes.poolSettled();
    const started = performance.now();
    const sandbox = await createAndRun(cloud);
    create.push(performance.now() - started);
    const killStarted = performance.now();
    await sandbox.kill();
    kill.push(performance.now() - killStarted);
  }
  return { create, kill };
}
