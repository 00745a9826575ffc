import { describe, expect, it } from 'vitest';
import { InvalidInputError, silentLogger } from '../core/index.js';
import type { ProcessLiveness } from './liveness.js';
import { POOL_OWNER_METADATA_KEY, POOL_PROCESS_METADATA_KEY, SandboxOwner, type ListedSandbox, type SandboxDirectory } from './ownership.js';

/** Processes by tag: `this-run` (this process), `ended-*` gone, `running-*` alive, anything else elsewhere. */
const liveness: ProcessLiveness = {
  tag: 'this-run',
  tagOf: (pid) => `running-${pid}`,
  stateOf: (tag) => (tag === 'this-run' || tag.startsWith('running-') ? 'running' : tag.startsWith('ended-') ? 'ended' : 'unknown'),
};

function directory(listed: ListedSandbox[], failing: readonly string[] = []): SandboxDirectory & { killed: string[] } {
  const killed: string[] = [];
  return {
    killed,
    list: (metadata) => Promise.resolve(listed.filter((sandbox) => Object.entries(metadata).every(([key, value]) => sandbox.metadata[key] === value))),
    kill: (sandboxId) => {
      if (failing.includes(sandboxId)) return Promise.reject(new Error('provider refused'));
      killed.push(sandboxId);
      return Promise.resolve(true);
    },
  };
}

const owned = (sandboxId: string, owner: string, process?: string): ListedSandbox => ({
  sandboxId,
  metadata: { [POOL_OWNER_METADATA_KEY]: owner, ...(process === undefined ? {} : { [POOL_PROCESS_METADATA_KEY]: process }) },
});

describe('SandboxOwner', () => {
  it('tags sandboxes with the owner and this process', () => {
    expect(new SandboxOwner('tradeswarm-swarm', liveness).metadata).toEqual({ [POOL_OWNER_METADATA_KEY]: 'tradeswarm-swarm', [POOL_PROCESS_METADATA_KEY]: 'this-run' });
    expect(() => new SandboxOwner('two words', liveness)).toThrow(InvalidInputError);
  });

  it("kills only its own sandboxes whose process has ended and that nobody holds; a failed kill is left to the sandbox's lifetime", async () => {
    const found = directory(
      [
        owned('crashed-1', 'desk', 'ended-1'),
        owned('crashed-2', 'desk', 'ended-2'),
        owned('refused', 'desk', 'ended-3'),
        owned('held', 'desk', 'ended-4'),
        owned('running', 'desk', 'running-7'),
        owned('elsewhere', 'desk', 'machine-b'),
        owned('untagged', 'desk'),
        owned('other-owner', 'lab', 'ended-5'),
      ],
      ['refused'],
    );
    const killed = await new SandboxOwner('desk', liveness).killLeaked(found, { held: (id) => id === 'held', logger: silentLogger });
    expect(killed).toBe(2);
    expect(found.killed).toEqual(['crashed-1', 'crashed-2']);
  });
});
