import { describe, expect, it } from 'vitest';
import { InvalidInputError, ManualClock, randomId } from '../core/index.js';
import { useLocalCloud } from '../../test/fixtures/localcloud.js';
import { MissingApiKeyError } from './errors.js';
import { Sandbox } from '@e2b/code-interpreter';
import { LOCAL_CLOUD_RATE_LIMIT, createSandboxProvider, inspectSandbox } from './provider.js';

const cloud = useLocalCloud();

describe('createSandboxProvider over the e2b SDK, against a local cloud', () => {
  it('creates with template, metadata, env, lifetime and network; lists by metadata; tells info and metrics; pauses; connects (resuming); kills', async () => {
    const provider = createSandboxProvider({ connection: cloud().connection, rateLimit: LOCAL_CLOUD_RATE_LIMIT });
    const run = randomId(8);
    const sandbox = await provider.create({ template: 'code-interpreter-v1', metadata: { run }, env: { GREETING: 'hello' }, timeoutMs: 120_000, allowInternetAccess: false });
    try {
      expect((await sandbox.commands.run('echo "$GREETING"')).stdout).toBe('hello\n');
      expect((await sandbox.runCode('6 * 7')).text).toBe('42');
      const info = await provider.info(sandbox.sandboxId);
      expect(info).toMatchObject({ sandboxId: sandbox.sandboxId, templateId: 'code-interpreter-v1', metadata: { run }, allowInternetAccess: false });
      expect(info.endAt.getTime() - info.startedAt.getTime()).toBe(120_000);
      expect((await provider.list({ run })).map((listed) => listed.sandboxId)).toEqual([sandbox.sandboxId]);
      expect(await provider.list({ run: 'nobody' })).toEqual([]);
      expect((await provider.metrics(sandbox.sandboxId)).at(-1)?.memTotal).toBeGreaterThan(0);
      expect(await provider.pause(sandbox.sandboxId)).toBe(true);
      expect(await provider.pause(sandbox.sandboxId)).toBe(false);
      expect((await provider.info(sandbox.sandboxId)).state).toBe('paused');
      // Connecting resumes it.
      const again = await provider.connect(sandbox.sandboxId);
      expect((await provider.info(sandbox.sandboxId)).state).toBe('running');
      expect((await again.commands.run('echo "$GREETING"')).stdout).toBe('hello\n');
    } finally {
      expect(await provider.kill(sandbox.sandboxId)).toBe(true);
    }
    expect(await provider.kill(sandbox.sandboxId)).toBe(false);
    expect(await provider.list({ run })).toEqual([]);
  });

  it('inspects a sandbox for health checks: running with its CPU and memory, paused, gone; never rejects', async () => {
    const provider = createSandboxProvider({ connection: cloud().connection, rateLimit: LOCAL_CLOUD_RATE_LIMIT });
    const sandbox = await provider.create({ template: 'base', timeoutMs: 120_000 });
    const running = await inspectSandbox(provider, sandbox.sandboxId);
    expect(running.state).toBe('running');
    expect(running.resources?.memTotalBytes).toBeGreaterThan(0);
    expect(running.resources?.cpuUsedPct).toBeGreaterThanOrEqual(0);
    expect(await Sandbox.betaPause(sandbox.sandboxId, { ...provider.connection })).toBe(true);
    expect((await inspectSandbox(provider, sandbox.sandboxId)).state).toBe('paused');
    await provider.kill(sandbox.sandboxId);
    expect(await inspectSandbox(provider, sandbox.sandboxId)).toEqual({ state: 'gone', resources: null });
    const nowhere = createSandboxProvider({ connection: { ...cloud().connection, apiUrl: 'http://127.0.0.1:9' }, rateLimit: LOCAL_CLOUD_RATE_LIMIT });
    expect(await inspectSandbox(nowhere, sandbox.sandboxId)).toEqual({ state: 'unknown', resources: null });
  });

  it('takes a create token for every creation and a lifecycle token for every other call, and counts what the provider answered', async () => {
    const provider = createSandboxProvider({ connection: cloud().connection, rateLimit: { creationPerSecond: 2, lifecyclePer30s: 100 }, clock: new ManualClock() });
    const sandbox = await provider.create({ template: 'base' });
    await provider.kill(sandbox.sandboxId);
    await expect(provider.create({ template: 'no-such-template' })).rejects.toThrow(/no-such-template/);
    const { kinds } = provider.rateLimiter.snapshot();
    expect(kinds.create).toMatchObject({ granted: 2, ok: 1, failed: 1 });
    expect(kinds.lifecycle).toMatchObject({ granted: 1 });
  });

  it('reads E2B_API_KEY when the connection has no key, and refuses to start without one', () => {
    const { apiUrl, sandboxUrl } = cloud().connection;
    expect(createSandboxProvider({ connection: { apiUrl, sandboxUrl }, env: { E2B_API_KEY: 'from-env' } }).connection).toEqual({ apiKey: 'from-env', apiUrl, sandboxUrl });
    expect(() => createSandboxProvider({ connection: { apiUrl, sandboxUrl }, env: {} })).toThrow(MissingApiKeyError);
    expect(() => createSandboxProvider({ connection: undefined as never })).toThrow(new InvalidInputError('connection', 'is required: pass { apiKey, apiUrl, sandboxUrl } of a local cloud, or { apiKey } for E2B cloud'));
    expect(() => createSandboxProvider({ connection: cloud().connection, rateLimit: { creationPerSecond: 0 } })).toThrow(/^creationPerSecond: /);
  });
});
