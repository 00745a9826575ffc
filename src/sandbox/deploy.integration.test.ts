import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Sandbox } from 'e2b';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidInputError, errorMessage, silentLogger } from '../core/index.js';
import { useLocalCloud, useSandbox, waitFor } from '../../test/fixtures/localcloud.js';
import { buildBundle, type AgentBundle } from './bundle.js';
import { codeCacheOf, codeCachePathOf } from './codecache.js';
import { resolveSandboxConnection } from './connection.js';
import { deployAgent, type DeployAgentOptions, type DeployedAgent } from './deploy.js';
import { AgentDeployError, AgentStopError } from './errors.js';

const ENTRY = fileURLToPath(new URL('../../test/fixtures/bundle-entry.ts', import.meta.url));

const cloud = useLocalCloud();
const sandbox = useSandbox(cloud);
let bundle: AgentBundle;
let cacheDir = '';
beforeAll(async () => {
  cacheDir = await mkdtemp(join(tmpdir(), 'tradeswarm-deploy-test-'));
  bundle = await buildBundle({ entry: ENTRY, cacheDir, logger: silentLogger });
});
afterAll(async () => {
  await rm(cacheDir, { recursive: true, force: true });
});

interface Watched {
  readonly agent: DeployedAgent;
  readonly stdout: string[];
  readonly stderr: string[];
}

/** Deploys the fixture agent, collecting its output lines. */
async function deploy(env: Record<string, string>, options: Partial<DeployAgentOptions> = {}, into: Sandbox = sandbox()): Promise<Watched> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const agent = await deployAgent(into, {
    bundle,
    name: 'agent-1',
    env,
    onStdout: (line) => stdout.push(line),
    onStderr: (line) => stderr.push(line),
    logger: silentLogger,
    ...options,
  });
  return { agent, stdout, stderr };
}

describe('deployAgent into a local sandbox', () => {
  it('runs the bundle with its env and cwd, streams its lines and reports its exit code', async () => {
    const { agent, stdout, stderr } = await deploy({ AGENT_GREETING: 'hello sandbox', AGENT_EXIT_CODE: '7' }, { cwd: '/tmp' });
    expect(agent).toMatchObject({
      name: 'agent-1',
      sandboxId: sandbox().sandboxId,
      path: `/home/user/tradeswarm/agent-${bundle.sha256.slice(0, 12)}.cjs`,
      bundleWritten: true,
    });
    expect(agent.pid).toBeGreaterThan(0);
    expect(agent.timings.writeMs).toBeGreaterThan(0);
    expect(agent.timings.startMs).toBeGreaterThan(0);

    expect(await agent.exited).toEqual({ exitCode: 7, reason: 'exit', error: 'exit status 7' });
    expect(agent.exit).toEqual(await agent.exited);
    expect(stdout.map((line) => JSON.parse(line) as unknown)).toEqual([{ greeting: 'hello sandbox', mode: 'exit', cwd: '/tmp', clock: 42, codeCache: 'used' }]);
    expect(stderr).toEqual(['agent ready']);
    expect(agent.stdoutTail()).toEqual(stdout);
    expect(agent.stderrTail()).toEqual(['agent ready']);
    expect((await sandbox().files.read(agent.path)).length).toBe(bundle.code.length);
  });

  it('reports a clean exit as exit code 0, and sends nothing to a process that has ended', async () => {
    const { agent } = await deploy({});
    expect(await agent.exited).toEqual({ exitCode: 0, reason: 'exit' });
    expect(await agent.signal('SIGTERM')).toBe(false);
    expect(await agent.signal('SIGKILL')).toBe(false);
    expect(await agent.stop()).toEqual({ exitCode: 0, reason: 'exit' });
  });

  it('skips the upload with skipWriteIfPresent only when the bundle is already there', async () => {
    const path = `/home/user/tradeswarm/skip-${Date.now()}/agent.cjs`;
    const first = await deploy({}, { path, skipWriteIfPresent: true });
    expect(first.agent.bundleWritten).toBe(true);
    const second = await deploy({}, { path, skipWriteIfPresent: true });
    expect(second.agent.bundleWritten).toBe(false);
    expect(await second.agent.exited).toEqual({ exitCode: 0, reason: 'exit' });
    expect(second.stderr).toEqual(['agent ready']);
    await first.agent.exited;
  });

  it('ships a V8 code cache next to the bundle that the agent starts from, and runs without one when asked', async () => {
    const path = `/home/user/tradeswarm/cache-${Date.now()}/agent.cjs`;
    const cached = await deploy({}, { path });
    expect(await cached.agent.exited).toEqual({ exitCode: 0, reason: 'exit' });
    expect(JSON.parse(cached.stdout[0]!)).toMatchObject({ codeCache: 'used' });
    expect(new Uint8Array(await sandbox().files.read(codeCachePathOf(path), { format: 'bytes' }))).toEqual(codeCacheOf(bundle));

    const plainPath = `/home/user/tradeswarm/plain-${Date.now()}/agent.cjs`;
    const plain = await deploy({}, { path: plainPath, codeCache: false });
    expect(await plain.agent.exited).toEqual({ exitCode: 0, reason: 'exit' });
    expect(JSON.parse(plain.stdout[0]!)).toMatchObject({ codeCache: null });
    expect(await sandbox().files.exists(codeCachePathOf(plainPath))).toBe(false);
  });

  it('runs the bundle compiled as usual when its code cache does not fit (another Node, a damaged file)', async () => {
    const path = `/home/user/tradeswarm/damaged-${Date.now()}/agent.cjs`;
    await (await deploy({}, { path })).agent.exited;
    await sandbox().files.write(codeCachePathOf(path), 'not a code cache');
    const again = await deploy({ AGENT_GREETING: 'still here' }, { path, skipWriteIfPresent: true });
    expect(again.agent.bundleWritten).toBe(false);
    expect(await again.agent.exited).toEqual({ exitCode: 0, reason: 'exit' });
    expect(JSON.parse(again.stdout[0]!)).toMatchObject({ greeting: 'still here', codeCache: 'rejected' });
  });

  it('stops a running agent with SIGTERM: it says bye and exits 0', async () => {
    const { agent, stdout } = await deploy({ AGENT_MODE: 'run', AGENT_TICK_MS: '20' });
    await waitFor(() => stdout.includes('tick 2'), 'two ticks from the running agent');
    expect(agent.exit).toBeUndefined();
    const exit = await agent.stop({ graceMs: 10_000 });
    expect(exit).toEqual({ exitCode: 0, reason: 'exit' });
    expect(stdout.at(-1)).toBe('bye');
  });

  it('makes an agent hang with SIGSTOP (slow, not dead) and go on with SIGCONT', async () => {
    const { agent, stdout } = await deploy({ AGENT_MODE: 'run', AGENT_TICK_MS: '20' });
    await waitFor(() => stdout.includes('tick 1'), 'the agent to tick');
    const state = async (): Promise<string> => (await sandbox().commands.run(`cut -d' ' -f3 /proc/${agent.pid}/stat`)).stdout.trim();
    expect(await agent.signal('SIGSTOP')).toBe(true);
    await waitFor(async () => (await state()) === 'T', 'the agent to be stopped');
    const ticks = stdout.length;
    expect(await agent.signal('SIGCONT')).toBe(true);
    await waitFor(() => stdout.length > ticks, 'the agent to tick again');
    expect(agent.exit).toBeUndefined();
    expect(await agent.stop({ graceMs: 10_000 })).toEqual({ exitCode: 0, reason: 'exit' });
  });

  it('SIGKILLs an agent that ignores SIGTERM once graceMs has passed', async () => {
    const { agent, stdout } = await deploy({ AGENT_MODE: 'stubborn' });
    await waitFor(() => stdout.length > 0, 'the stubborn agent to start');
    const started = performance.now();
    const exit = await agent.stop({ graceMs: 300 });
    expect(performance.now() - started).toBeGreaterThanOrEqual(300);
    expect(exit).toEqual({ exitCode: -1, reason: 'signal', error: 'signal: killed' });
    expect(stdout).toContain('ignoring SIGTERM');
  });

  it('reports a missing node binary as exit code 127 with the shell message in the stderr tail', async () => {
    const { agent } = await deploy({}, { nodeBinary: 'no-such-node' });
    expect(await agent.exited).toMatchObject({ exitCode: 127, reason: 'exit' });
    expect(agent.stderrTail().join('\n')).toContain('no-such-node');
  });

  it('refuses a cwd that does not exist with a non-retryable AgentDeployError', async () => {
    const error = await deploy({}, { cwd: '/home/user/missing' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(AgentDeployError);
    expect(error).toMatchObject({ stage: 'start', retryable: false });
    expect((error as Error).message).toMatch(/cwd '\/home\/user\/missing' is not an existing directory.*fix the deployment options/);
  });

  it.each([
    { field: 'name', options: { name: 'two words' } },
    { field: 'path', options: { path: '/home/user/agent.js' } },
    { field: 'cwd', options: { cwd: 'relative' } },
    { field: 'env', options: { env: { '1BAD': 'x' } } },
    { field: 'tailLines', options: { tailLines: 0 } },
    { field: 'nodeBinary', options: { nodeBinary: '' } },
  ])('refuses an invalid $field with InvalidInputError', async ({ field, options }) => {
    const error = await deploy({}, options as Partial<DeployAgentOptions>).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(InvalidInputError);
    expect((error as InvalidInputError).field).toBe(field);
  });
});

describe('deployAgent when the sandbox goes away', () => {
  /** Runs `use` with an agent ticking in a sandbox of its own (killed afterwards), for tests that break the sandbox. */
  async function withRunningAgent(use: (agent: DeployedAgent, own: Sandbox) => Promise<void>): Promise<void> {
    const connection = resolveSandboxConnection({ kind: 'local', local: cloud().connection, env: {} });
    const own = await Sandbox.create('base', connection);
    try {
      const { agent, stdout } = await deploy({ AGENT_MODE: 'run', AGENT_TICK_MS: '20' }, {}, own);
      await waitFor(() => stdout.includes('tick 1'), 'the agent to run');
      await use(agent, own);
    } finally {
      await own.kill();
    }
  }

  it('resolves exited when the sandbox is killed under a running agent, and refuses to deploy into it afterwards', async () => {
    await withRunningAgent(async (agent, doomed) => {
      await doomed.kill();
      // As on E2B, the local cloud cuts the killed sandbox's connections; the SDK says why.
      expect(await agent.exited).toMatchObject({ exitCode: -1, reason: 'lost', error: expect.stringContaining('sandbox was killed or reached its end of life') as string });

      const error = await deploy({}, {}, doomed).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(AgentDeployError);
      expect(error).toMatchObject({ stage: 'write', agent: 'agent-1', sandboxId: doomed.sandboxId, retryable: true });
    });
  });

  // Found by the chaos suite (issue 16): a paused sandbox takes no signal, and stop() waited killWaitMs
  // for an exit that could not come, which held a restart up by that much.
  it('gives up stopping at once, with AgentStopError, when SIGKILL cannot reach the sandbox (paused)', async () => {
    await withRunningAgent(async (agent, frozen) => {
      await frozen.pause();
      const started = performance.now();
      const error = await agent.stop({ graceMs: 0, killWaitMs: 10_000 }).catch((caught: unknown) => caught);
      expect(performance.now() - started).toBeLessThan(2_000);
      expect(error).toBeInstanceOf(AgentStopError);
      expect(error).toMatchObject({ agent: 'agent-1', sandboxId: frozen.sandboxId, retryable: true });
      expect(errorMessage((error as AgentStopError).cause)).toMatch(/\S/);
    });
  });
});
