import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { AgentConfig } from '../agent/index.js';
import { SystemClock, silentLogger } from '../core/index.js';
import { type AgentBundle, LOCAL_CLOUD_RATE_LIMIT, buildBundle, createSandboxProvider } from '../sandbox/index.js';
import type { AgentPlan } from '../topology/index.js';
import { agentConfigOf } from '../../test/fixtures/agent-config.js';
import { useLocalCloud, waitFor } from '../../test/fixtures/localcloud.js';
import { SandboxLauncher } from './sandboxes.js';

const ENTRY = fileURLToPath(new URL('../../test/fixtures/bundle-entry.ts', import.meta.url));

const cloud = useLocalCloud();
let bundle: AgentBundle;
let cacheDir = '';
beforeAll(async () => {
  cacheDir = await mkdtemp(join(tmpdir(), 'tradeswarm-launcher-test-'));
  bundle = await buildBundle({ entry: ENTRY, cacheDir, logger: silentLogger });
});
afterAll(async () => {
  await rm(cacheDir, { recursive: true, force: true });
});

describe('SandboxLauncher', () => {
  // Found by the chaos suite (issue 16): a paused sandbox cannot be signalled, so stopping its agent
  // ends in "did not report an exit"; the restart then started the agent again in that same sandbox
  // once it was resumed, beside the old process, and the two took each other's broker connection
  // (same client id) until the agent's restarts were used up and the deployment halted.
  it('kills the sandbox of an agent it could not stop (paused), so a restart starts it in a new one and the old process cannot come back', async () => {
    const provider = createSandboxProvider({ connection: cloud().connection, rateLimit: LOCAL_CLOUD_RATE_LIMIT });
    const launcher = new SandboxLauncher({ provider, template: 'base', bundle, swarmId: 'launcher-test', busEnvOf: () => ({ AGENT_MODE: 'run', AGENT_TICK_MS: '50' }), clock: new SystemClock(), logger: silentLogger });
    const agent = { id: 'a1' } as AgentPlan;
    const request = (previous: Awaited<ReturnType<SandboxLauncher['launch']>> | undefined, lines: string[]) => ({
      agent,
      config: { agentId: 'a1' } as AgentConfig,
      previous,
      onStdout: (line: string) => lines.push(line),
      onStderr: () => undefined,
    });
    try {
      const oldLines: string[] = [];
      const first = await launcher.launch(request(undefined, oldLines));
      await waitFor(() => oldLines.some((line) => line.startsWith('tick')), 'the first process ticking');
      expect(await provider.pause(first.placement)).toBe(true);
      // What the fleet does to a lost agent before it restarts it: the process is stopped (here it cannot be).
      await first.stop({ graceMs: 0 });
      await provider.connect(first.placement).catch(() => undefined);
      const second = await launcher.launch(request(first, []));
      expect(second.placement).not.toBe(first.placement);
      expect((await provider.list({ swarm: 'launcher-test', agent: 'a1' })).map((info) => info.sandboxId)).toEqual([second.placement]);
      const ticks = oldLines.length;
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(oldLines.length).toBe(ticks);
    } finally {
      await launcher.close();
    }
  }, 60_000);

  it('leaves its agents running when released; another launcher of the swarm adopts those it is told of, and ends the rest of the swarm', async () => {
    const provider = createSandboxProvider({ connection: cloud().connection, rateLimit: LOCAL_CLOUD_RATE_LIMIT });
    const options = { provider, template: 'base', bundle, swarmId: 'adopt-test', busEnvOf: () => ({ AGENT_MODE: 'run', AGENT_TICK_MS: '50', LOG_LEVEL: 'debug' }), clock: new SystemClock(), logger: silentLogger, handOver: true };
    // The environment's LOG_LEVEL (dev's debug, above) gives way to the launcher's agent log level (warn): still adopted.
    const first = new SandboxLauncher(options);
    const second = new SandboxLauncher(options);
    const configOf = (agentId: string, epoch: number): AgentConfig => agentConfigOf('adopt-test', agentId, { epoch });
    const lines = new Map<string, string[]>();
    const output = (key: string) => {
      lines.set(key, []);
      return { onStdout: (line: string) => lines.get(key)?.push(line), onStderr: () => undefined };
    };
    const ticking = (key: string) => waitFor(() => (lines.get(key) ?? []).some((line) => line.startsWith('tick')), `${key} ticking`);
    try {
      await first.prepare();
      const a1 = await first.launch({ agent: { id: 'a1' } as AgentPlan, config: configOf('a1', 0), previous: undefined, ...output('a1') });
      const a2 = await first.launch({ agent: { id: 'a2' } as AgentPlan, config: configOf('a2', 0), previous: undefined, ...output('a2') });
      await Promise.all([ticking('a1'), ticking('a2')]);
      let ended = false;
      void a1.exited.then(() => (ended = true));
      expect(await first.release()).toBe(true);
      // Released, closing the launcher ends nothing of it.
      await first.close();

      const adopted = await second.adopt([
        { agent: { id: 'a1' } as AgentPlan, placement: a1.placement, config: configOf('a1', 0), ...output('adopted a1') },
        { agent: { id: 'a2' } as AgentPlan, placement: a2.placement, config: configOf('a2', 1), ...output('adopted a2') },
      ]);
      const [one, two] = adopted ?? [];
      expect(typeof one === 'object' && { placement: one.placement, pid: one.pid, bundleWritten: one.bundleWritten }).toEqual({ placement: a1.placement, pid: a1.pid, bundleWritten: false });
      expect(two).toBe('its sandbox holds 0 processes of it at epoch 1');
      // The adopted process goes on, its output now the second launcher's; what was not adopted is ended.
      await ticking('adopted a1');
      expect((await provider.list({ swarm: 'adopt-test' })).map((info) => info.sandboxId)).toEqual([a1.placement]);
      expect(ended).toBe(false);
      // Adoption ended the rest of the swarm already: preparing to launch lists it no second time.
      const listing = vi.spyOn(provider, 'list');
      await second.prepare();
      expect(listing).not.toHaveBeenCalled();
      listing.mockRestore();

      // A launcher whose agents cannot outlive it adopts nothing, and looks for nothing.
      const embedded = new SandboxLauncher({ ...options, handOver: false });
      expect(await embedded.adopt([{ agent: { id: 'a1' } as AgentPlan, placement: a1.placement, config: configOf('a1', 0), ...output('none') }])).toBeNull();
      expect(await embedded.release()).toBe(false);
    } finally {
      await first.close();
      await second.close();
    }
    expect(await provider.list({ swarm: 'adopt-test' })).toEqual([]);
  }, 60_000);
});
