import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentConfig } from '../agent/index.js';
import { SystemClock, silentLogger } from '../core/index.js';
import { type AgentBundle, LOCAL_CLOUD_RATE_LIMIT, buildBundle, createSandboxProvider } from '../sandbox/index.js';
import type { AgentPlan } from '../topology/index.js';
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
});
