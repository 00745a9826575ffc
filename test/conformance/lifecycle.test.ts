import { describe, expect, it } from 'vitest';
import { AuthenticationError, NotFoundError, Sandbox, SandboxNotFoundError } from 'e2b';
import { ManualClock, randomId } from '../../src/core/index.js';
import { itLocal, useBackend } from '../fixtures/backend.js';
import { waitFor } from '../fixtures/localcloud.js';

const clock = new ManualClock(Date.UTC(2026, 10, 23, 12));
const backend = useBackend({
  clock,
  templates: [
    {
      name: 'momentum-agent',
      memoryMB: 256,
      files: { 'agent/config.json': '{"lookback":20}' },
      envs: { ROLE: 'momentum' },
      startCommand: 'echo "$ROLE started" > /tmp/started',
    },
    { name: 'prewarmed', files: { 'agent.mjs': 'export {};' } },
  ],
});

describe('sandbox lifecycle through the unmodified e2b SDK', () => {
  it('creates a sandbox with metadata and env vars, and reports them', async () => {
    const sandbox = await Sandbox.create('base', { ...backend().connection, metadata: { team: 'quant', run: 'lifecycle-1' }, envs: { GREETING: 'hello' } });
    try {
      const info = await sandbox.getInfo();
      expect(info.sandboxId).toBe(sandbox.sandboxId);
      // The template's name (its alias) on both; E2B cloud's template ids are generated, the local cloud's are the names.
      expect(info.name).toBe('base');
      if (backend().kind === 'local') expect(info.templateId).toBe('base');
      expect(info.metadata).toEqual({ team: 'quant', run: 'lifecycle-1' });
      expect(info.state).toBe('running');
      expect(info.endAt.getTime() - info.startedAt.getTime()).toBe(300_000);
      const result = await sandbox.commands.run('echo "$GREETING $E2B_SANDBOX_ID"');
      expect(result.stdout).toBe(`hello ${sandbox.sandboxId}\n`);
    } finally {
      await sandbox.kill();
    }
  });

  itLocal('it needs a template registered in the local cloud')('creates a sandbox from a registered local template: files, env vars, limits and start command', async () => {
    const sandbox = await Sandbox.create('momentum-agent', backend().connection);
    try {
      expect(await sandbox.files.read('/home/user/agent/config.json')).toBe('{"lookback":20}');
      expect((await sandbox.files.getInfo('/home/user/agent/config.json')).owner).toBe('user');
      await waitFor(async () => (await sandbox.files.exists('/tmp/started')), 'the start command to run');
      expect(await sandbox.files.read('/tmp/started')).toBe('momentum started\n');
      const listed = await Sandbox.list({ ...backend().connection, query: { template: 'momentum-agent' } }).nextItems();
      expect(listed.map((item) => [item.sandboxId, item.memoryMB])).toEqual([[sandbox.sandboxId, 256]]);
    } finally {
      await sandbox.kill();
    }
  });

  itLocal("the warm pool is the local cloud's own")('prewarms a template\'s pool before its first use; a create then claims a warm sandbox with its files', async () => {
    const manager = backend().local.sandboxes;
    await manager.poolSettled();
    const before = manager.warmCount;
    await manager.prewarm('prewarmed');
    expect(manager.warmCount).toBe(before + 2);
    const sandbox = await Sandbox.create('prewarmed', backend().connection);
    try {
      expect(await sandbox.files.read('/home/user/agent.mjs')).toBe('export {};');
    } finally {
      await sandbox.kill();
    }
    await expect(manager.prewarm('no-such-template')).rejects.toThrow(/template 'no-such-template' not found/);
  });

  it('lists sandboxes filtered by metadata and state, page by page', async () => {
    // A suite of its own, so that sandboxes of other runs on the same E2B account are not listed.
    const suite = `list-${randomId(8)}`;
    const created = await Promise.all([1, 2, 3].map((n) => Sandbox.create('base', { ...backend().connection, metadata: { suite, n: String(n) } })));
    const other = await Sandbox.create('base', { ...backend().connection, metadata: { suite: `${suite}-other` } });
    try {
      await created[2]!.pause();
      const paginator = Sandbox.list({ ...backend().connection, query: { metadata: { suite } }, limit: 2 });
      const first = await paginator.nextItems();
      expect(first).toHaveLength(2);
      expect(paginator.hasNext).toBe(true);
      const second = await paginator.nextItems();
      expect(second).toHaveLength(1);
      expect(paginator.hasNext).toBe(false);
      expect(new Set([...first, ...second].map((item) => item.sandboxId))).toEqual(new Set(created.map((sandbox) => sandbox.sandboxId)));

      const paused = await Sandbox.list({ ...backend().connection, query: { metadata: { suite }, state: ['paused'] } }).nextItems();
      expect(paused.map((item) => item.sandboxId)).toEqual([created[2]!.sandboxId]);
      expect(paused[0]!.state).toBe('paused');
    } finally {
      await Promise.all([...created, other].map((sandbox) => sandbox.kill()));
    }
  });

  it('lists newest first unless asked for ascending order, and applies startedAfter and encoded metadata', async () => {
    const suite = `order-${randomId(8)}`;
    const metadata = { 'suite name': `${suite}&=%` };
    const created: Sandbox[] = [];
    try {
      for (let n = 0; n < 3; n += 1) {
        created.push(await Sandbox.create('base', { ...backend().connection, metadata }));
        // Start times one second apart (the local cloud's clock is the test's; E2B cloud's moves by itself).
        clock.advance(1000);
      }
      const ids = created.map((sandbox) => sandbox.sandboxId);
      const list = async (extra: Partial<Parameters<typeof Sandbox.list>[0] & object>, query: { startedAfter?: Date } = {}) =>
        (await Sandbox.list({ ...backend().connection, ...extra, query: { metadata, ...query } }).nextItems()).map((item) => item.sandboxId);
      expect(await list({})).toEqual([...ids].reverse());
      expect(await list({ order: 'asc' })).toEqual(ids);
      const second = await created[1]!.getInfo();
      expect(await list({}, { startedAfter: second.startedAt })).toEqual([ids[2], ids[1]]);
      expect(await list({}, { startedAfter: new Date(second.startedAt.getTime() + 1) })).toEqual([ids[2]]);
    } finally {
      await Promise.all(created.map((sandbox) => sandbox.kill()));
    }
  });

  itLocal("a manual clock drives the local cloud's reaper; on E2B cloud it would take two minutes of real time")('kills a sandbox when its timeout runs out, and setTimeout moves the deadline', async () => {
    const sandbox = await Sandbox.create('base', { ...backend().connection, timeoutMs: 60_000 });
    await sandbox.setTimeout(120_000);
    clock.advance(60_001);
    expect(await sandbox.isRunning()).toBe(true);
    clock.advance(60_000);
    await waitFor(() => backend().local.sandboxes.find(sandbox.sandboxId) === undefined, 'the reaper to kill the sandbox');
    expect(await sandbox.isRunning()).toBe(false);
    await expect(Sandbox.getInfo(sandbox.sandboxId, backend().connection)).rejects.toBeInstanceOf(SandboxNotFoundError);
  });

  it('pauses keeping only the filesystem (keepMemory: false): processes end, and connect boots it again from its disk', async () => {
    const sandbox = await Sandbox.create('base', backend().connection);
    try {
      await sandbox.files.write('/home/user/kept.txt', 'still here');
      await sandbox.commands.run('echo root > /opt/root-kept', { user: 'root' });
      await sandbox.commands.run('sleep 1000', { background: true });
      const bootBefore = (await sandbox.commands.run('cat /proc/sys/kernel/random/boot_id')).stdout;
      await sandbox.pause({ keepMemory: false });
      expect(await sandbox.isRunning()).toBe(false);
      await sandbox.connect();
      expect(await sandbox.isRunning()).toBe(true);
      expect(await sandbox.files.read('/home/user/kept.txt')).toBe('still here');
      expect((await sandbox.commands.run('cat /opt/root-kept; hostname; pgrep -c sleep || true; sudo id -u')).stdout).toBe(`root\n${sandbox.sandboxId}\n0\n0\n`);
      expect((await sandbox.commands.run('cat /proc/sys/kernel/random/boot_id')).stdout).not.toBe(bootBefore);
    } finally {
      await sandbox.kill();
    }
  });

  it("boots a sandbox paused with its memory again from its disk when connect asks (onResume: 'reboot')", async () => {
    const sandbox = await Sandbox.create('base', backend().connection);
    try {
      await sandbox.files.write('/home/user/kept.txt', 'rebooted');
      await sandbox.commands.run('sleep 1000', { background: true });
      await sandbox.pause();
      await sandbox.connect({ onResume: 'reboot' });
      expect(await sandbox.files.read('/home/user/kept.txt')).toBe('rebooted');
      expect((await sandbox.commands.run('pgrep -c sleep || true')).stdout).toBe('0\n');
    } finally {
      await sandbox.kill();
    }
  });

  itLocal("a manual clock drives the local cloud's reaper")('pauses at its timeout keeping only the filesystem when the lifecycle asks (onTimeout keepMemory: false)', async () => {
    const sandbox = await Sandbox.create('base', { ...backend().connection, timeoutMs: 60_000, lifecycle: { onTimeout: { action: 'pause', keepMemory: false } } });
    try {
      await sandbox.files.write('/home/user/kept.txt', 'after the timeout');
      await sandbox.commands.run('sleep 1000', { background: true });
      clock.advance(60_001);
      await waitFor(async () => !(await sandbox.isRunning()), 'the reaper to pause the sandbox');
      await sandbox.connect();
      expect(await sandbox.files.read('/home/user/kept.txt')).toBe('after the timeout');
      expect((await sandbox.commands.run('pgrep -c sleep || true')).stdout).toBe('0\n');
    } finally {
      await sandbox.kill();
    }
  });

  it('connect to a running sandbox never shortens its timeout, only extends it', async () => {
    const sandbox = await Sandbox.create('base', { ...backend().connection, timeoutMs: 300_000 });
    try {
      const before = (await sandbox.getInfo()).endAt.getTime();
      await Sandbox.connect(sandbox.sandboxId, { ...backend().connection, timeoutMs: 10_000 });
      expect((await sandbox.getInfo()).endAt.getTime()).toBe(before);
      await Sandbox.connect(sandbox.sandboxId, { ...backend().connection, timeoutMs: 600_000 });
      const after = (await sandbox.getInfo()).endAt.getTime();
      if (backend().kind === 'local') expect(after - before).toBe(300_000);
      else expect(after).toBeGreaterThan(before);
    } finally {
      await sandbox.kill();
    }
  });

  itLocal("the samples' times come from the local cloud's clock, which the test drives")('getMetrics({ start, end }) returns only the samples taken in that range', async () => {
    const sandbox = await Sandbox.create('base', backend().connection);
    try {
      const local = backend().local.sandboxes.get(sandbox.sandboxId);
      const startedAt = clock.now();
      for (let n = 0; n < 3; n += 1) {
        clock.advance(10_000);
        local.sampleMetrics();
      }
      const at = (offsetMs: number): Date => new Date(startedAt + offsetMs);
      const stamps = async (range: { start?: Date; end?: Date }): Promise<number[]> => (await sandbox.getMetrics(range)).map((metric) => metric.timestamp.getTime() - startedAt);
      expect(await stamps({ start: at(15_000), end: at(25_000) })).toEqual([20_000]);
      expect(await stamps({ start: at(0), end: at(20_000) })).toEqual([10_000, 20_000]);
      expect(await stamps({ start: at(-3_600_000), end: at(-1_800_000) })).toEqual([]);
      // A range that reaches now also measures now.
      expect(await stamps({ start: at(25_000) })).toEqual([30_000, 30_000]);
      await expect(sandbox.getMetrics({ start: at(20_000), end: at(10_000) })).rejects.toThrow(/query\.start .* is after query\.end/);
    } finally {
      await sandbox.kill();
    }
  });

  itLocal('Prometheus metrics are the local cloud\'s own')('serves Prometheus /metrics: sandboxes by state, creates, kills by reason, create latency and warm-pool claims', async () => {
    const { apiUrl, apiKey } = backend().local;
    const scrape = async (): Promise<(name: string) => number> => {
      const response = await fetch(`${apiUrl}/metrics`, { headers: { 'x-api-key': apiKey } });
      expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
      const text = await response.text();
      return (name) => Number(new RegExp(`^${name.replace(/[{}()|[\]\\.+*?^$]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
    };
    expect((await fetch(`${apiUrl}/metrics`)).status).toBe(401);
    const before = await scrape();
    const claims = (read: (name: string) => number): number => read('tradeswarm_localcloud_warm_pool_claims_total{result="hit"}') + read('tradeswarm_localcloud_warm_pool_claims_total{result="miss"}');
    const kept = await Sandbox.create('base', backend().connection);
    const reaped = await Sandbox.create('base', { ...backend().connection, timeoutMs: 60_000 });
    await reaped.pause();
    try {
      const during = await scrape();
      expect(during('tradeswarm_localcloud_sandbox_creates_total{template="base",outcome="ok"}') - before('tradeswarm_localcloud_sandbox_creates_total{template="base",outcome="ok"}')).toBe(2);
      expect(claims(during) - claims(before)).toBe(2);
      expect(during('tradeswarm_localcloud_sandbox_create_seconds_count{pool="hit"}') + during('tradeswarm_localcloud_sandbox_create_seconds_count{pool="miss"}')).toBe(claims(during));
      const listed = backend().local.sandboxes.list();
      expect(during('tradeswarm_localcloud_sandboxes{state="running"}')).toBe(listed.filter((sandbox) => sandbox.state === 'running').length);
      expect(during('tradeswarm_localcloud_sandboxes{state="paused"}')).toBe(1);
      await kept.kill();
      await backend().local.sandboxes.connect(reaped.sandboxId, 60);
      clock.advance(60_001);
      await waitFor(() => backend().local.sandboxes.find(reaped.sandboxId) === undefined, 'the reaper to kill the sandbox');
      const after = await scrape();
      expect(after('tradeswarm_localcloud_sandbox_kills_total{reason="request"}') - before('tradeswarm_localcloud_sandbox_kills_total{reason="request"}')).toBe(1);
      expect(after('tradeswarm_localcloud_sandbox_kills_total{reason="timeout"}') - before('tradeswarm_localcloud_sandbox_kills_total{reason="timeout"}')).toBe(1);
    } finally {
      await Promise.all([kept.kill(), reaped.kill()]);
    }
  });

  it('pauses and resumes: processes stop and continue, files are kept', async () => {
    const sandbox = await Sandbox.create('base', backend().connection);
    try {
      await sandbox.files.write('/home/user/kept.txt', 'still here');
      const counter = await sandbox.commands.run('i=0; while true; do i=$((i+1)); echo $i > /tmp/count.new; mv /tmp/count.new /tmp/count; sleep 0.01; done', { background: true });
      const count = async (reader: Sandbox): Promise<number> => Number((await reader.files.read('/tmp/count').catch(() => '0')).trim());
      await waitFor(async () => (await count(sandbox)) > 0, 'the counter to start');
      expect(await sandbox.pause()).toBe(true);
      expect(await sandbox.isRunning()).toBe(false);
      if (backend().kind === 'local') expect(backend().local.sandboxes.get(sandbox.sandboxId).state).toBe('paused');
      await expect(Sandbox.pause(sandbox.sandboxId, backend().connection)).resolves.toBe(false);

      const resumed = await Sandbox.connect(sandbox.sandboxId, backend().connection);
      expect(await resumed.isRunning()).toBe(true);
      expect(await resumed.files.read('/home/user/kept.txt')).toBe('still here');
      const before = await count(resumed);
      await waitFor(async () => (await count(resumed)) > before, 'the counter to continue after resume');
      expect((await resumed.commands.list()).map((process) => process.pid)).toContain(counter.pid);
    } finally {
      await sandbox.kill();
    }
  });

  it('kill returns true once and false after; a killed sandbox is not found', async () => {
    const sandbox = await Sandbox.create('base', backend().connection);
    expect(await Sandbox.kill(sandbox.sandboxId, backend().connection)).toBe(true);
    expect(await Sandbox.kill(sandbox.sandboxId, backend().connection)).toBe(false);
    await expect(Sandbox.getInfo(sandbox.sandboxId, backend().connection)).rejects.toBeInstanceOf(SandboxNotFoundError);
    await expect(Sandbox.connect(sandbox.sandboxId, backend().connection)).rejects.toBeInstanceOf(NotFoundError);
    await expect(sandbox.commands.run('true')).rejects.toThrow(/sandbox/i);
  });

  it('reports real CPU and memory metrics', async () => {
    const sandbox = await Sandbox.create('base', backend().connection);
    try {
      await sandbox.commands.run('python3 -c "x = bytearray(64 * 1024 * 1024); import time; time.sleep(0.2)" & sleep 0.1; cat /proc/meminfo > /dev/null; wait');
      // The local cloud measures when asked; E2B cloud samples every few seconds.
      let metrics = await sandbox.getMetrics();
      await waitFor(async () => (metrics = await sandbox.getMetrics()).length > 0, 'a metrics sample', 15_000);
      const last = metrics.at(-1)!;
      if (backend().kind === 'local') {
        // The local cloud's built-in template; E2B cloud's base template has sizes of its own.
        expect(last.cpuCount).toBe(2);
        expect(last.memTotal).toBe(1024 * 1024 * 1024);
      } else {
        expect(last.cpuCount).toBe((await sandbox.getInfo()).cpuCount);
      }
      expect(last.memUsed).toBeGreaterThan(0);
      expect(last.memUsed).toBeLessThan(last.memTotal);
    } finally {
      await sandbox.kill();
    }
  });

  it('refuses a wrong API key and an unknown template with the SDK error types', async () => {
    await expect(Sandbox.create('base', { ...backend().connection, apiKey: 'e2b_wrong' })).rejects.toBeInstanceOf(AuthenticationError);
    const unknown = Sandbox.create('no-such-template', backend().connection);
    // The wording is each backend's own; the local cloud's also lists the templates it has.
    if (backend().kind === 'local') await expect(unknown).rejects.toThrow(/template 'no-such-template' not found.*base, code-interpreter-v1/);
    else await expect(unknown).rejects.toThrow();
  });

  itLocal("it calls the local cloud's envd route with raw HTTP; on E2B cloud that route sits behind E2B's own proxy")('refuses envd requests with a wrong access token', async () => {
    const sandbox = await Sandbox.create('base', backend().connection);
    try {
      const response = await fetch(`${backend().local.sandboxUrl}/process.Process/List`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'e2b-sandbox-id': sandbox.sandboxId, 'e2b-sandbox-port': '49983', 'x-access-token': 'wrong' },
        body: '{}',
      });
      expect(response.status).toBe(401);
      expect(((await response.json()) as { message: string }).message).toMatch(/X-Access-Token/);
    } finally {
      await sandbox.kill();
    }
  });
});
