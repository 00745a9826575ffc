import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Sandbox } from '@e2b/code-interpreter';
import { InvalidInputError, ManualClock, silentLogger } from '../core/index.js';
import { startLocalCloud, type LocalCloud } from '../localcloud/index.js';
import { endedProcessTag } from '../../test/fixtures/processes.js';
import { procLiveness, type ProcessLiveness } from './liveness.js';
import { POOL_OWNER_METADATA_KEY, POOL_PROCESS_METADATA_KEY, type ListedSandbox } from './ownership.js';
import { POOL_ID_METADATA_KEY, SandboxPool, compileSandboxPoolOptions, type PoolSandbox, type SandboxPoolOptions } from './pool.js';
import { LOCAL_CLOUD_RATE_LIMIT, createSandboxProvider, type CreateSandboxOptions } from './provider.js';
import {
  isPoolAcquireAbortedError,
  isPoolClosedError,
  isSandboxBuildMismatchError,
  isSandboxUnavailableError,
  type SandboxBuildMismatchError,
  type SandboxUnavailableError,
} from './errors.js';

/** A sandbox that only records what the pool does to it. */
class FakeSandbox implements PoolSandbox {
  killed = false;
  readonly timeouts: number[] = [];
  readonly files: { read(path: string): Promise<string> };

  constructor(
    readonly sandboxId: string,
    readonly request: CreateSandboxOptions,
    buildTag: string | undefined,
    /** What the provider says of the sandbox's internet access (undefined: it does not say). */
    private readonly reportedInternetAccess: boolean | undefined,
  ) {
    this.files = {
      read: (path) => {
        if (buildTag === undefined || path !== '/home/user/.tradeswarm-build') {
          return Promise.reject(Object.assign(new Error(`${path} not found`), { name: 'FileNotFoundError' }));
        }
        return Promise.resolve(`${buildTag}\n`);
      },
    };
  }

  kill(): Promise<boolean> {
    const wasAlive = !this.killed;
    this.killed = true;
    return Promise.resolve(wasAlive);
  }

  setTimeout(timeoutMs: number): Promise<void> {
    this.timeouts.push(timeoutMs);
    return Promise.resolve();
  }

  getInfo(): Promise<{ allowInternetAccess?: boolean }> {
    return Promise.resolve(this.reportedInternetAccess === undefined ? {} : { allowInternetAccess: this.reportedInternetAccess });
  }
}

/**
 * A fake provider: sandboxes carry `tags.shift()` (or `defaultTag`) as their build tag, and report the
 * internet access `networks.shift()` when that list is not empty (else what was asked; `null`: nothing).
 */
function fakeProvider(defaultTag: string | undefined = 'build-1', tags: (string | undefined)[] = [], networks: (boolean | null)[] = []) {
  const made: FakeSandbox[] = [];
  const listed: ListedSandbox[] = [];
  const killedById: string[] = [];
  return {
    made,
    listed,
    killedById,
    create: (request: CreateSandboxOptions): Promise<FakeSandbox> => {
      const tag = tags.length > 0 ? tags.shift() : defaultTag;
      const network = networks.length > 0 ? networks.shift() : request.allowInternetAccess;
      const sandbox = new FakeSandbox(`sbx-${made.length + 1}`, request, tag, network ?? undefined);
      made.push(sandbox);
      return Promise.resolve(sandbox);
    },
    list: (metadata: Readonly<Record<string, string>>) =>
      Promise.resolve(listed.filter((sandbox) => Object.entries(metadata).every(([key, value]) => sandbox.metadata[key] === value))),
    kill: (sandboxId: string) => {
      killedById.push(sandboxId);
      return Promise.resolve(true);
    },
  };
}

type Provider = ReturnType<typeof fakeProvider>;

/** Processes by tag: `this-run` (the pool's own), `ended-*` gone, `running-*` alive, anything else elsewhere. */
const fakeLiveness: ProcessLiveness = {
  tag: 'this-run',
  tagOf: (pid) => `running-${pid}`,
  stateOf: (tag) => (tag === 'this-run' || tag.startsWith('running-') ? 'running' : tag.startsWith('ended-') ? 'ended' : 'unknown'),
};

function fakePool(provider: Provider, clock: ManualClock, options: Partial<SandboxPoolOptions<FakeSandbox>> = {}): SandboxPool<FakeSandbox> {
  return new SandboxPool<FakeSandbox>({
    provider,
    buildTag: 'build-1',
    clock,
    logger: silentLogger,
    liveness: fakeLiveness,
    ...options,
  });
}

/** Lets every settled promise chain run (fakes answer at once; no time passes on any clock). */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

function counts(pool: SandboxPool<FakeSandbox>) {
  const { idle, busy, creating, waiting, desired, created, killed } = pool.stats();
  return { idle, busy, creating, waiting, desired, created, killed };
}

describe('SandboxPool options', () => {
  it('applies the documented defaults', () => {
    const provider = fakeProvider();
    const config = compileSandboxPoolOptions({ provider, logger: silentLogger });
    expect(config).toMatchObject({
      template: 'code-interpreter-v1',
      minSize: 2,
      readyOnStart: 2,
      targetSize: 3,
      maxSize: 10,
      maxExecutionsPerSandbox: 50,
      maxAgeMs: 3_600_000,
      sandboxTimeoutMs: 900_000,
      buildTag: undefined,
      buildTagPath: '/home/user/.tradeswarm-build',
      maxCreateAttempts: 3,
      idleShrinkAfterMs: 300_000,
      allowInternetAccess: false,
      owner: 'tradeswarm-exec',
      provider,
    });
    expect(config.poolId).toMatch(/^[a-z0-9]{16}$/);
    expect(Object.isFrozen(config)).toBe(true);
    // Sizes left out follow a smaller maxSize.
    expect(compileSandboxPoolOptions({ provider, maxSize: 1, logger: silentLogger })).toMatchObject({ minSize: 1, targetSize: 1, maxSize: 1 });
  });

  it.each([
    [{ provider: undefined }, 'provider'],
    [{ prepare: 'yes' }, 'prepare'],
    [{ minSize: 4 }, 'minSize'],
    [{ minSize: 2, readyOnStart: 3 }, 'readyOnStart'],
    [{ readyOnStart: -1 }, 'readyOnStart'],
    [{ minSize: 1, targetSize: 11 }, 'targetSize'],
    [{ maxSize: 0 }, 'maxSize'],
    [{ minSize: 1.5 }, 'minSize'],
    [{ maxExecutionsPerSandbox: 0 }, 'maxExecutionsPerSandbox'],
    [{ maxAgeMs: 0 }, 'maxAgeMs'],
    [{ sandboxTimeoutMs: 5 }, 'sandboxTimeoutMs'],
    [{ maxCreateAttempts: 0 }, 'maxCreateAttempts'],
    [{ idleShrinkAfterMs: -1 }, 'idleShrinkAfterMs'],
    [{ buildTag: '  ' }, 'buildTag'],
    [{ buildTagPath: 'home/user/tag' }, 'buildTagPath'],
    [{ poolId: 'has space' }, 'poolId'],
    [{ owner: '' }, 'owner'],
    [{ template: '' }, 'template'],
    [{ allowInternetAccess: 'no' }, 'allowInternetAccess'],
  ] as const)('rejects %j naming %s', (bad, field) => {
    const attempt = () => new SandboxPool({ provider: fakeProvider(), logger: silentLogger, ...bad } as unknown as SandboxPoolOptions);
    expect(attempt).toThrow(InvalidInputError);
    expect(attempt).toThrow(new RegExp(`^${field}: `));
  });
});

describe('SandboxPool with a fake provider and a manual clock', () => {
  it('tags sandboxes, kills what an earlier run that has ended left and fills to minSize', async () => {
    const provider = fakeProvider();
    const owned = (id: string, process?: string): ListedSandbox => ({
      sandboxId: id,
      metadata: { [POOL_OWNER_METADATA_KEY]: 'desk-a', [POOL_ID_METADATA_KEY]: `run-of-${id}`, ...(process === undefined ? {} : { [POOL_PROCESS_METADATA_KEY]: process }) },
    });
    provider.listed.push(
      owned('old-1', 'ended-1'),
      owned('old-2', 'ended-2'),
      // A pool of the same owner that runs now, one that ran on another machine, one from before process tags.
      owned('busy', 'running-1'),
      owned('remote', 'machine-b'),
      owned('untagged'),
      { sandboxId: 'other', metadata: { [POOL_OWNER_METADATA_KEY]: 'desk-b', [POOL_PROCESS_METADATA_KEY]: 'ended-3' } },
    );
    const pool = fakePool(provider, new ManualClock(), { owner: 'desk-a', poolId: 'run-2' });
    expect(await pool.start()).toEqual({ leakedCleaned: 2, ready: 2 });
    expect(provider.killedById).toEqual(['old-1', 'old-2']);
    expect(counts(pool)).toEqual({ idle: 2, busy: 0, creating: 0, waiting: 0, desired: 2, created: 2, killed: 0 });
    expect(pool.stats().leakedCleaned).toBe(2);
    expect(provider.made[0]?.request).toEqual({
      template: 'code-interpreter-v1',
      metadata: { [POOL_OWNER_METADATA_KEY]: 'desk-a', [POOL_ID_METADATA_KEY]: 'run-2', [POOL_PROCESS_METADATA_KEY]: 'this-run' },
      timeoutMs: 900_000,
      allowInternetAccess: false,
    });
    await pool.close();
  });

  it('resolves start once readyOnStart sandboxes are ready and makes the rest of minSize in the background', async () => {
    const provider = fakeProvider();
    const gates: Array<() => void> = [];
    const prepare = (): Promise<void> => new Promise<void>((resolve) => gates.push(resolve));
    const pool = fakePool(provider, new ManualClock(), { minSize: 3, targetSize: 3, maxSize: 3, readyOnStart: 1, prepare });
    const started = pool.start();
    await settle();
    expect(gates).toHaveLength(3);
    gates[0]!();
    expect(await started).toEqual({ leakedCleaned: 0, ready: 1 });
    expect(counts(pool)).toMatchObject({ idle: 1, creating: 2 });
    for (const open of gates.slice(1)) open();
    await settle();
    expect(counts(pool)).toMatchObject({ idle: 3, creating: 0, created: 3 });
    await pool.close();
  });

  it('reuses one sandbox for 50 leases and gives the 51st a new one', async () => {
    const provider = fakeProvider();
    const pool = fakePool(provider, new ManualClock(), { minSize: 1, targetSize: 1 });
    await pool.start();
    for (let execution = 1; execution <= 50; execution++) {
      const lease = await pool.acquire();
      expect([lease.id, lease.executions]).toEqual(['sbx-1', execution]);
      expect(provider.made[0]?.killed).toBe(false);
      await lease.release('ok');
    }
    expect(provider.made[0]?.killed).toBe(true);
    const fresh = await pool.acquire();
    expect([fresh.id, fresh.executions]).toEqual(['sbx-2', 1]);
    expect(pool.stats()).toMatchObject({ created: 2, killed: 1, retiredByUse: 1, retiredByAge: 0 });
    await fresh.release('ok');
    await pool.close();
  });

  it('retires an idle sandbox exactly at maxAgeMs and replaces it', async () => {
    const clock = new ManualClock(1_000);
    const provider = fakeProvider();
    const pool = fakePool(provider, clock, { minSize: 1, targetSize: 1, maxAgeMs: 60_000 });
    await pool.start();
    clock.advance(59_999);
    const young = await pool.acquire();
    expect(young.id).toBe('sbx-1');
    await young.release('ok');
    expect(provider.made[0]?.killed).toBe(false);
    clock.advance(1);
    expect(pool.stats()).toMatchObject({ idle: 0, retiredByAge: 1, killed: 1 });
    await settle();
    expect(provider.made[0]?.killed).toBe(true);
    expect(counts(pool)).toMatchObject({ idle: 1, created: 2 });
    const replacement = await pool.acquire();
    expect(replacement.id).toBe('sbx-2');
    await replacement.release('ok');
    await pool.close();
  });

  it('never retires a leased sandbox, keeps its lifetime extended, and retires it on release', async () => {
    const clock = new ManualClock();
    const provider = fakeProvider();
    const pool = fakePool(provider, clock, { minSize: 1, targetSize: 1, maxAgeMs: 3_600_000, sandboxTimeoutMs: 900_000 });
    await pool.start();
    const lease = await pool.acquire();
    // A long execution: 70 minutes in 10-minute steps; the keepalive fires every 600 s (2/3 of 900 s).
    for (let step = 0; step < 7; step++) {
      clock.advance(600_000);
      await settle();
    }
    const sandbox = provider.made[0];
    expect(sandbox?.killed).toBe(false);
    expect(sandbox?.timeouts).toEqual([900_000, 900_000, 900_000, 900_000, 900_000, 900_000, 900_000]);
    expect(pool.stats()).toMatchObject({ busy: 1, retiredByAge: 0, killed: 0 });
    await lease.release('ok');
    expect(sandbox?.killed).toBe(true);
    expect(pool.stats()).toMatchObject({ busy: 0, retiredByAge: 1, killed: 1 });
    await pool.close();
  });

  it('retires an idle sandbox whose lifetime cannot be extended', async () => {
    const clock = new ManualClock();
    const provider = fakeProvider();
    const pool = fakePool(provider, clock, { minSize: 1, targetSize: 1, sandboxTimeoutMs: 30_000 });
    await pool.start();
    const gone = provider.made[0];
    if (gone === undefined) throw new Error('no sandbox was made');
    gone.setTimeout = () => Promise.reject(new Error('sandbox not found'));
    clock.advance(20_000);
    await settle();
    expect(gone.killed).toBe(true);
    expect(pool.stats()).toMatchObject({ idle: 1, retiredBroken: 1, created: 2 });
    await pool.close();
  });

  it("kills a sandbox released as 'broken' and replaces it", async () => {
    const provider = fakeProvider();
    const pool = fakePool(provider, new ManualClock(), { minSize: 1, targetSize: 1 });
    await pool.start();
    const lease = await pool.acquire();
    await lease.release('broken');
    await lease.release('ok'); // a second release does nothing
    expect(provider.made[0]?.killed).toBe(true);
    await settle();
    expect(pool.stats()).toMatchObject({ idle: 1, busy: 0, created: 2, killed: 1, retiredBroken: 1 });
    const next = await pool.acquire();
    expect(next.id).toBe('sbx-2');
    await expect(next.release('oops' as 'ok')).rejects.toThrow(/^outcome: /);
    await next.release('failed');
    expect(pool.stats()).toMatchObject({ idle: 1, killed: 1 });
    await pool.close();
  });

  it('holds at most maxSize sandboxes and serves waiters first come first served; an abort leaves the queue', async () => {
    const clock = new ManualClock();
    const provider = fakeProvider();
    const pool = fakePool(provider, clock, { minSize: 0, targetSize: 0, maxSize: 2 });
    await pool.start();
    expect(counts(pool)).toMatchObject({ idle: 0, created: 0 });
    const first = await pool.acquire();
    const second = await pool.acquire();
    const served: string[] = [];
    const abort = new AbortController();
    const waiterA = pool.acquire().then((lease) => (served.push(`A:${lease.id}`), lease));
    const waiterB = pool.acquire(abort.signal);
    const waiterC = pool.acquire().then((lease) => (served.push(`C:${lease.id}`), lease));
    await settle();
    expect(counts(pool)).toEqual({ idle: 0, busy: 2, creating: 0, waiting: 3, desired: 2, created: 2, killed: 0 });
    clock.advance(250);
    abort.abort(new Error('caller gave up'));
    const aborted = await waiterB.then(() => undefined, (error: unknown) => error);
    expect(isPoolAcquireAbortedError(aborted)).toBe(true);
    expect(aborted).toMatchObject({ waitedMs: 250, retryable: true, cause: new Error('caller gave up') });
    await first.release('ok');
    const leaseA = await waiterA;
    expect(served).toEqual(['A:sbx-1']);
    await second.release('ok');
    const leaseC = await waiterC;
    expect(served).toEqual(['A:sbx-1', 'C:sbx-2']);
    expect(pool.stats()).toMatchObject({ created: 2, waiting: 0 });
    await expect(pool.acquire(AbortSignal.abort())).rejects.toMatchObject({ name: 'PoolAcquireAbortedError', waitedMs: 0 });
    await leaseA.release('ok');
    await leaseC.release('ok');
    await pool.close();
  });

  it('grows with queue depth up to maxSize, shrinks to targetSize when demand falls and to minSize after idleShrinkAfterMs', async () => {
    const clock = new ManualClock();
    const provider = fakeProvider();
    const pool = fakePool(provider, clock); // 2 / 3 / 10
    await pool.start();
    expect(counts(pool)).toMatchObject({ idle: 2, desired: 2 });
    pool.setDemand(5);
    expect(counts(pool)).toMatchObject({ idle: 2, creating: 3, desired: 5 });
    await settle();
    expect(counts(pool)).toMatchObject({ idle: 5, creating: 0, created: 5 });
    pool.setDemand(25);
    await settle();
    expect(counts(pool)).toMatchObject({ idle: 10, desired: 10, created: 10 });
    pool.setDemand(0);
    expect(counts(pool)).toMatchObject({ idle: 3, desired: 3, killed: 7 });
    clock.advance(299_999);
    expect(counts(pool)).toMatchObject({ idle: 3, desired: 3 });
    clock.advance(1);
    expect(counts(pool)).toMatchObject({ idle: 2, desired: 2, killed: 8 });
    // Busy sandboxes count as demand: two leases plus four queued want six.
    const leases = [await pool.acquire(), await pool.acquire()];
    await settle();
    expect(counts(pool)).toMatchObject({ idle: 1, busy: 2, desired: 3 });
    pool.setDemand(4);
    await settle();
    expect(counts(pool)).toMatchObject({ idle: 4, busy: 2, desired: 6 });
    expect(() => pool.setDemand(-1)).toThrow(/^queueDepth: /);
    for (const lease of leases) await lease.release('ok');
    await pool.close();
    expect(provider.made.every((sandbox) => sandbox.killed)).toBe(true);
  });

  it('kills sandboxes of the wrong build before use and gives up after maxCreateAttempts', async () => {
    const provider = fakeProvider('build-1', ['build-0', undefined]);
    const pool = fakePool(provider, new ManualClock(), { minSize: 1, targetSize: 1, maxCreateAttempts: 3 });
    // Two wrong images, then the right one: start succeeds on the third.
    expect(await pool.start()).toEqual({ leakedCleaned: 0, ready: 1 });
    expect(provider.made.map((sandbox) => sandbox.killed)).toEqual([true, true, false]);
    expect(pool.stats()).toMatchObject({ rejectedWrongBuild: 2, killed: 2, created: 3 });
    const lease = await pool.acquire();
    expect(lease.id).toBe('sbx-3');
    await lease.release('ok');
    await pool.close();

    const wrong = fakeProvider('build-7');
    const strict = fakePool(wrong, new ManualClock(), { minSize: 1, targetSize: 1, maxCreateAttempts: 2 });
    const startError = await strict.start().then(() => undefined, (error: unknown) => error);
    expect(isSandboxUnavailableError(startError)).toBe(true);
    expect(startError).toMatchObject({ reason: 'wrong-build', attempts: 2, retryable: false });
    const cause = (startError as SandboxUnavailableError).cause as SandboxBuildMismatchError;
    expect(isSandboxBuildMismatchError(cause)).toBe(true);
    expect(cause).toMatchObject({ expected: 'build-1', found: 'build-7', buildTagPath: '/home/user/.tradeswarm-build' });
    // Background filling pauses after the streak; an acquire gets its own attempts.
    await settle();
    expect(strict.stats()).toMatchObject({ rejectedWrongBuild: 2, created: 2 });
    await expect(strict.acquire()).rejects.toMatchObject({ name: 'SandboxUnavailableError', reason: 'wrong-build', attempts: 2 });
    expect(strict.stats()).toMatchObject({ rejectedWrongBuild: 4, created: 4, killed: 4, idle: 0, busy: 0 });
    expect(wrong.made.every((sandbox) => sandbox.killed)).toBe(true);
    await strict.close();
  });

  it('asks for sandboxes without internet access and never hands out one whose network differs from the ask', async () => {
    // The provider ignores the ask: the first is on the network, the second does not say (its default is internet access).
    const provider = fakeProvider('build-1', [], [true, null]);
    const pool = fakePool(provider, new ManualClock(), { minSize: 1, targetSize: 1, maxCreateAttempts: 3 });
    expect(await pool.start()).toEqual({ leakedCleaned: 0, ready: 1 });
    expect(provider.made.map((sandbox) => [sandbox.request.allowInternetAccess, sandbox.killed])).toEqual([
      [false, true],
      [false, true],
      [false, false],
    ]);
    expect(pool.stats()).toMatchObject({ rejectedWrongNetwork: 2, rejectedWrongBuild: 0, killed: 2, created: 3 });
    const lease = await pool.acquire();
    expect(lease.id).toBe('sbx-3');
    await lease.release('ok');
    await pool.close();

    const online = fakeProvider('build-1', [], [true, true, true, true]);
    const strict = fakePool(online, new ManualClock(), { minSize: 0, targetSize: 0, maxCreateAttempts: 2 });
    const error = await strict.acquire().then(() => undefined, (caught: unknown) => caught);
    expect(error).toMatchObject({ name: 'SandboxUnavailableError', reason: 'wrong-network', attempts: 2, retryable: false });
    expect((error as Error).message).toMatch(/has internet access, but the pool asked for none/);
    expect(online.made.every((sandbox) => sandbox.killed)).toBe(true);
    await strict.close();

    // The opt-in asks for internet access, and takes a provider that does not say (internet access is its default).
    const opted = fakeProvider('build-1', [], [null]);
    const open = fakePool(opted, new ManualClock(), { minSize: 1, targetSize: 1, allowInternetAccess: true });
    await open.start();
    expect(opted.made.map((sandbox) => [sandbox.request.allowInternetAccess, sandbox.killed])).toEqual([[true, false]]);
    await open.close();
  });

  it('counts creations that throw and reports them after maxCreateAttempts as retryable', async () => {
    let calls = 0;
    const pool = new SandboxPool<FakeSandbox>({
      provider: {
        ...fakeProvider(),
        create: () => {
          calls++;
          throw new Error('429: rate limited');
        },
      },
      clock: new ManualClock(),
      logger: silentLogger,
      minSize: 0,
      targetSize: 0,
      maxCreateAttempts: 2,
    });
    await expect(pool.acquire()).rejects.toMatchObject({ name: 'SandboxUnavailableError', reason: 'create-failed', retryable: true });
    expect(calls).toBe(2);
    expect(pool.stats()).toMatchObject({ failedCreations: 2, created: 0 });
    await pool.close();
  });

  it('readies every new sandbox with prepare before anyone leases it; one it fails on is killed and counts as a failed creation', async () => {
    const provider = fakeProvider();
    const prepared: string[] = [];
    let failures = 1;
    const pool = fakePool(provider, new ManualClock(), {
      minSize: 1,
      targetSize: 1,
      prepare: (sandbox) => {
        if (failures-- > 0) return Promise.reject(new Error('the interpreter did not start'));
        prepared.push(sandbox.sandboxId);
        return Promise.resolve();
      },
    });
    expect(await pool.start()).toEqual({ leakedCleaned: 0, ready: 1 });
    expect(prepared).toEqual(['sbx-2']);
    expect(provider.made.map((sandbox) => sandbox.killed)).toEqual([true, false]);
    expect(pool.stats()).toMatchObject({ failedCreations: 1, created: 1, killed: 0 });
    const lease = await pool.acquire();
    expect(lease.id).toBe('sbx-2');
    await lease.release('ok');
    await pool.close();
  });

  it('closes gracefully: waits for the lease in use, ends waiters, then kills every sandbox', async () => {
    const provider = fakeProvider();
    const pool = fakePool(provider, new ManualClock(), { minSize: 1, targetSize: 1, maxSize: 1 });
    await pool.start();
    const lease = await pool.acquire();
    const waiter = pool.acquire();
    let closed = false;
    const closing = pool.close().then(() => (closed = true));
    await expect(waiter).rejects.toSatisfy(isPoolClosedError);
    await expect(pool.acquire()).rejects.toSatisfy(isPoolClosedError);
    await settle();
    expect(closed).toBe(false);
    expect(provider.made[0]?.killed).toBe(false);
    await lease.release('ok');
    await closing;
    expect(closed).toBe(true);
    expect(provider.made.map((sandbox) => sandbox.killed)).toEqual([true]);
    expect(pool.stats()).toMatchObject({ idle: 0, busy: 0, killed: 1 });
  });
});

describe('SandboxPool against a real local cloud', () => {
  let cloud: LocalCloud;
  beforeAll(async () => {
    cloud = await startLocalCloud({
      logger: silentLogger,
      metricsIntervalMs: 0,
      templates: [{ name: 'exec-test', files: { '.tradeswarm-build': 'build-42' } }],
    });
  });
  afterAll(async () => {
    await cloud?.close();
  });

  const localProvider = () => createSandboxProvider({ connection: cloud.connection, rateLimit: LOCAL_CLOUD_RATE_LIMIT });

  async function listOwned(owner: string): Promise<string[]> {
    const paginator = Sandbox.list({ ...cloud.connection, query: { metadata: { [POOL_OWNER_METADATA_KEY]: owner } } });
    const ids: string[] = [];
    while (paginator.hasNext) for (const info of await paginator.nextItems()) ids.push(info.sandboxId);
    return ids.sort();
  }

  it('kills a sandbox left by an earlier run, fills to minSize, runs code on one lease and leaves nothing after close', async () => {
    const owner = 'pool-it-a';
    const leaked = await Sandbox.create('exec-test', { ...cloud.connection, metadata: { [POOL_OWNER_METADATA_KEY]: owner, [POOL_ID_METADATA_KEY]: 'crashed', [POOL_PROCESS_METADATA_KEY]: await endedProcessTag() } });
    // One of a pool of the same owner that runs now (this process): left alone.
    const running = await Sandbox.create('exec-test', { ...cloud.connection, metadata: { [POOL_OWNER_METADATA_KEY]: owner, [POOL_ID_METADATA_KEY]: 'running', [POOL_PROCESS_METADATA_KEY]: procLiveness().tag } });
    const pool = new SandboxPool({ provider: localProvider(), template: 'exec-test', buildTag: 'build-42', owner, minSize: 2, targetSize: 2, logger: silentLogger });
    try {
      expect(await pool.start()).toEqual({ leakedCleaned: 1, ready: 2 });
      expect(pool.stats()).toMatchObject({ idle: 2, created: 2, rejectedWrongBuild: 0 });
      expect(await listOwned(owner)).toContain(running.sandboxId);
      await running.kill();
      const owned = await listOwned(owner);
      expect(owned).toHaveLength(2);
      expect(owned).not.toContain(leaked.sandboxId);

      const lease = await pool.acquire();
      expect(owned).toContain(lease.id);
      await lease.sandbox.runCode('x = 1');
      expect((await lease.sandbox.runCode('x + 1')).text).toBe('2');
      await lease.release('ok');
      expect(pool.stats()).toMatchObject({ idle: 2, busy: 0 });
    } finally {
      await pool.close();
    }
    expect(await listOwned(owner)).toEqual([]);
    expect(pool.stats()).toMatchObject({ idle: 0, busy: 0, created: 2, killed: 2 });
  });

  it('rejects sandboxes whose build tag differs and fails acquire with SandboxUnavailableError', async () => {
    const owner = 'pool-it-b';
    const pool = new SandboxPool({
      provider: localProvider(),
      template: 'exec-test',
      buildTag: 'build-43',
      owner,
      minSize: 1,
      targetSize: 1,
      maxCreateAttempts: 2,
      logger: silentLogger,
    });
    try {
      await expect(pool.start()).rejects.toMatchObject({ name: 'SandboxUnavailableError', reason: 'wrong-build', attempts: 2 });
      const error = await pool.acquire().then(() => undefined, (caught: unknown) => caught);
      expect(isSandboxUnavailableError(error)).toBe(true);
      expect((error as SandboxUnavailableError).message).toMatch(/has build tag 'build-42' at \/home\/user\/\.tradeswarm-build, but the pool expects 'build-43'/);
      expect(pool.stats()).toMatchObject({ rejectedWrongBuild: 4, created: 4, killed: 4, idle: 0, busy: 0 });
    } finally {
      await pool.close();
    }
    expect(await listOwned(owner)).toEqual([]);
  });
});
