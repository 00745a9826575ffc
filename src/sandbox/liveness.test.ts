import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { endedProcessTag } from '../../test/fixtures/processes.js';
import { procLiveness } from './liveness.js';

describe('procLiveness', () => {
  const liveness = procLiveness();
  const [bootId, namespace, pid, startTicks] = liveness.tag.split('.');

  it('tags this process with the boot id, its pid namespace, its pid and its start time, and finds it running', () => {
    expect(bootId).toMatch(/^[0-9a-f-]{36}$/);
    expect(namespace).toMatch(/^\d+$/);
    expect(Number(pid)).toBe(process.pid);
    expect(startTicks).toMatch(/^\d+$/);
    expect(liveness.stateOf(liveness.tag)).toBe('running');
    expect(liveness.tagOf(process.pid)).toBe(liveness.tag);
    expect(liveness.tagOf(2 ** 22 + 1)).toBe('unknown');
  });

  it('finds a process that exited ended, and so a reused pid (another start time)', async () => {
    expect(liveness.stateOf(await endedProcessTag())).toBe('ended');
    expect(liveness.stateOf(`${bootId}.${namespace}.${pid}.${Number(startTicks) + 1}`)).toBe('ended');
  });

  it('cannot tell for a process of another boot or pid namespace, or for what is not a tag', () => {
    const otherBoot = `${'0'.repeat(8)}-0000-0000-0000-${'0'.repeat(12)}`;
    expect(liveness.stateOf(`${otherBoot}.${namespace}.${pid}.${startTicks}`)).toBe('unknown');
    expect(liveness.stateOf(`${bootId}.1.${pid}.${startTicks}`)).toBe('unknown');
    for (const tag of ['', 'unknown', `${bootId}.${namespace}.x.1`, `${liveness.tag}.9`]) expect(liveness.stateOf(tag)).toBe('unknown');
  });

  it('is unknown throughout without a /proc to read', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'tradeswarm-noproc-'));
    try {
      const blind = procLiveness(empty);
      expect(blind.tag).toBe('unknown');
      expect(blind.stateOf(liveness.tag)).toBe('unknown');
      expect(blind.stateOf(await endedProcessTag())).toBe('unknown');
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});
