import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { Sandbox } from 'e2b';
import { silentLogger } from '../../src/core/index.js';
import { parseSwarmSpec, runSwarm } from '../../src/swarm/index.js';
import { useLocalCloud } from '../fixtures/localcloud.js';

/**
 * Resource tiers reach real sandboxes: each agent of a `run` is in its role's tier template on the
 * embedded local cloud, whose cgroups hold it to the tier's cores and memory and whose disk is the
 * tier's. That a busy loop is held to its CPU quota is shown by test/conformance/isolation.test.ts
 * ("holds a sandbox to its template's cpuCount").
 */

/** A local cloud that believes its host has one core, with a template that asks for four (a T3 on a small machine). */
const cloud = useLocalCloud({ hostCpus: 1, templates: [{ name: 'four-cores', cpuCount: 4, memoryMB: 2048 }] });

describe('resource tiers', () => {
  it('gives a template that asks for more cores than the host has the host\'s cores: its CPU quota and what info and metrics report', async () => {
    const sandbox = await Sandbox.create('four-cores', cloud().connection);
    try {
      expect(await sandbox.getInfo()).toMatchObject({ cpuCount: 1, memoryMB: 2048 });
      expect(cloud().sandboxes.get(sandbox.sandboxId).cgroups.cpuQuotaCores()).toBe(1);
      expect(cloud().sandboxes.get(sandbox.sandboxId).sampleMetrics().cpuCount).toBe(1);
    } finally {
      await sandbox.kill();
    }
  });

  it("runs each agent of a swarm in its role's tier: cores, memory, disk and the tier in its sandbox's metadata", async () => {
    const spec = await parseSwarmSpec(
      {
        name: 'tiers',
        data: { source: 'synthetic', seed: 3, symbols: ['AAA', 'BBB'], barCount: 30 },
        strategies: [
          { type: 'sma-crossover', symbol: 'AAA', fastPeriod: 3, slowPeriod: 8, sizing: { type: 'fixed-quantity', units: 10 } },
          { type: 'momentum', symbol: 'BBB', lookback: 5, entryThreshold: 0.01, exitThreshold: 0, sizing: { type: 'fixed-quantity', units: 10 } },
        ],
        // The hub in T2; the traders name no tier, which in a run (no environment) is T1.
        swarm: { topology: 'star', agentTimeoutMs: 10_000, resources: { roles: { decider: 'T2' } } },
      },
      'tiers spec',
    );
    const seen: Array<{ id: string; tier: string | undefined; template: string; cpuCount: number; memoryMB: number; diskMB: number }> = [];
    const report = await runSwarm({
      spec,
      logger: silentLogger,
      onReady: async (swarm) => {
        for (const { id, sandbox } of swarm.processes()) {
          const info = await sandbox.getInfo();
          const df = await sandbox.commands.run('df -m --output=size /tmp | tail -n 1');
          seen.push({ id, tier: info.metadata.tier, template: info.templateId, cpuCount: info.cpuCount, memoryMB: info.memoryMB, diskMB: Number(df.stdout.trim()) });
        }
      },
    });
    const cores = (tierCores: number): number => Math.min(tierCores, availableParallelism());
    expect(seen.map(({ diskMB: _, ...rest }) => rest).sort((a, b) => a.id.localeCompare(b.id))).toEqual([
      { id: '1-sma-crossover-AAA-3-8', tier: 'T1', template: 'base-t1', cpuCount: cores(1), memoryMB: 512 },
      { id: '2-momentum-BBB-5', tier: 'T1', template: 'base-t1', cpuCount: cores(1), memoryMB: 512 },
      { id: 'hub', tier: 'T2', template: 'base-t2', cpuCount: cores(2), memoryMB: 1536 },
    ]);
    // ext4 keeps about 2% of a disk for itself: 1 GiB shows as about 1006 MiB, 5 GiB as about 5030.
    for (const { tier, diskMB } of seen) {
      const size = tier === 'T2' ? 5120 : 1024;
      expect(diskMB).toBeGreaterThan(size * 0.97);
      expect(diskMB).toBeLessThanOrEqual(size);
    }
    expect(report.outcome).toBe('complete');
  });
});
