import { describe, expect, it } from 'vitest';
import { Sandbox } from 'e2b';
import { silentLogger } from '../../src/core/index.js';
import { POOL_OWNER_METADATA_KEY, POOL_PROCESS_METADATA_KEY, procLiveness } from '../../src/sandbox/index.js';
import { parseSwarmSpec, runSwarm } from '../../src/swarm/index.js';
import { useLocalCloud } from '../fixtures/localcloud.js';
import { endedProcessTag } from '../fixtures/processes.js';

/** A provider the run does not start itself (as E2B cloud would be), so what earlier runs left is there to find. */
const cloud = useLocalCloud();

async function listed(metadata: Record<string, string>): Promise<Array<{ sandboxId: string; metadata: Record<string, string> }>> {
  return Sandbox.list({ ...cloud().connection, query: { metadata } }).nextItems();
}

describe("tradeswarm run: agents' sandboxes carry their owner, and a crashed run's are cleaned up", () => {
  it("kills the agent sandboxes a crashed run left, leaves a running run's alone, and tags its own", async () => {
    const owner = 'tradeswarm-swarm';
    const leaked = await Sandbox.create('base', { ...cloud().connection, metadata: { [POOL_OWNER_METADATA_KEY]: owner, [POOL_PROCESS_METADATA_KEY]: await endedProcessTag() } });
    const running = await Sandbox.create('base', { ...cloud().connection, metadata: { [POOL_OWNER_METADATA_KEY]: owner, [POOL_PROCESS_METADATA_KEY]: procLiveness().tag } });
    const spec = await parseSwarmSpec(
      {
        name: 'owned',
        data: { source: 'synthetic', seed: 3, symbols: ['AAA'], barCount: 40 },
        strategies: [{ type: 'sma-crossover', symbol: 'AAA', fastPeriod: 3, slowPeriod: 8, sizing: { type: 'fixed-quantity', units: 10 } }],
        swarm: { topology: 'mesh', heartbeatMs: 100, agentTimeoutMs: 1_000 },
      },
      'owned spec',
    );
    let agents: Array<{ sandboxId: string; metadata: Record<string, string> }> = [];
    const report = await runSwarm({
      spec,
      sandbox: { kind: 'e2b', connection: cloud().connection },
      logger: silentLogger,
      onReady: async () => {
        agents = await listed({ tradeswarm: 'swarm-agent' });
      },
    });
    expect(report.outcome).toBe('complete');
    expect(agents.map((agent) => agent.metadata)).toEqual([expect.objectContaining({ [POOL_OWNER_METADATA_KEY]: owner, [POOL_PROCESS_METADATA_KEY]: procLiveness().tag })]);
    // The crashed run's sandbox is gone, the running one's stays, and the run's own agents went with it.
    expect((await listed({ [POOL_OWNER_METADATA_KEY]: owner })).map((sandbox) => sandbox.sandboxId)).toEqual([running.sandboxId]);
    expect(await leaked.isRunning()).toBe(false);
    await running.kill();
  });
});
