import { availableParallelism } from 'node:os';
import { Sandbox } from '@e2b/code-interpreter';
import { afterEach, describe, expect, it } from 'vitest';
import { createApp, listen } from '../api/index.js';
import { silentLogger } from '../core/index.js';
import { POOL_ID_METADATA_KEY, POOL_OWNER_METADATA_KEY, POOL_PROCESS_METADATA_KEY } from '../sandbox/index.js';
import { useLocalCloud, waitFor } from '../../test/fixtures/localcloud.js';
import { endedProcessTag } from '../../test/fixtures/processes.js';
import { portOf, reachCode } from '../../test/fixtures/network.js';
import { closedPort } from '../../test/fixtures/servers.js';
import { ProviderUnreachableError, TemplateNotFoundError } from './errors.js';
import { EXEC_BUILD_TAG, EXEC_TEMPLATE, createExecService, defaultConcurrency, type ExecService, type ExecServiceOptions } from './service.js';
import { execRoutes } from './transport/index.js';

// One local cloud for the file; every service gets its own pool owner so that one service's start-up
// clean-up never kills another's sandboxes.
const BUILD_FILES = { '.tradeswarm-build': `${EXEC_BUILD_TAG}\n` };
/** The service's template with a small memory limit, for code that runs out of memory quickly. */
const SMALL_TEMPLATE = `${EXEC_TEMPLATE}-128mb`;
const cloud = useLocalCloud({ templates: [{ name: EXEC_TEMPLATE, files: BUILD_FILES }, { name: SMALL_TEMPLATE, memoryMB: 128, files: BUILD_FILES }] });
const services: ExecService[] = [];
let owners = 0;

async function service(options: ExecServiceOptions = {}): Promise<ExecService> {
  const created = await createExecService({
    connection: cloud().connection,
    template: EXEC_TEMPLATE,
    buildTag: EXEC_BUILD_TAG,
    rateLimit: { creationPerSecond: 50 },
    logger: silentLogger,
    ...options,
    pool: { minSize: 1, targetSize: 2, owner: `svc-test-${++owners}`, ...options.pool },
  });
  services.push(created);
  return created;
}

afterEach(async () => {
  await Promise.all(services.splice(0).map((item) => item.close()));
});

describe('the default concurrency', () => {
  it("is the seed's 6 on E2B cloud, and 6 per core, at most 48, on this machine's sandboxes", () => {
    expect([1, 2, 64].map((cores) => defaultConcurrency('e2b', cores))).toEqual([6, 6, 6]);
    expect([0, 1, 2, 4, 8, 64].map((cores) => defaultConcurrency('local', cores))).toEqual([6, 6, 12, 24, 48, 48]);
  });

  it("follows this machine's cores on the local cloud unless the queue option sets it", async () => {
    const byDefault = await service();
    expect(byDefault.metrics().queue).toMatchObject({ concurrency: defaultConcurrency('local', availableParallelism()), perUserConcurrency: 2 });
    const set = await service({ queue: { concurrency: 3 } });
    expect(set.metrics().queue).toMatchObject({ concurrency: 3, perUserConcurrency: 2 });
  });
});

describe('createExecService on the local cloud', () => {
  it('runs Python and JavaScript and returns output, value, timings and the sandbox id', async () => {
    const svc = await service();
    const python = await svc.exec({ code: 'print("hello")\n6 * 7', user: 'ann' });
    expect(python).toMatchObject({ stdout: 'hello\n', stderr: '', timedOut: false, fromCache: false, language: 'python', user: 'ann', attempts: 1 });
    expect(python.results.find((result) => result.isMainResult)?.text).toBe('42');
    expect(python.sandboxId).toMatch(/^[a-z0-9]+$/);
    expect(python.totalMs).toBeGreaterThanOrEqual(python.durationMs);
    const js = await svc.exec({ code: 'console.log("hi"); [1, 2].map((x) => x * 2)', language: 'javascript', user: 'ann' });
    expect(js.stdout).toBe('hi\n');
    expect(js.results.find((result) => result.isMainResult)?.text).toBe('[ 2, 4 ]');
  });

  it("returns the code's own error with its traceback as a result, not an exception", async () => {
    const svc = await service();
    const result = await svc.exec({ code: 'def f():\n    return 1 / 0\nf()', user: 'ann' });
    expect(result.error).toMatchObject({ name: 'ZeroDivisionError', value: 'division by zero' });
    expect(result.error?.traceback).toContain('f()');
    expect(svc.metrics().requests).toMatchObject({ total: 1, codeErrors: 1, ok: 0 });
  });

  it('gives every stateless execution a clean interpreter and a sandbox holding nothing of earlier callers', async () => {
    const svc = await service({ pool: { minSize: 1, targetSize: 1, maxSize: 1 } });
    const first = await svc.exec({
      code: [
        'import subprocess',
        'secret = "ann-only"',
        'open("/home/user/ann.txt", "w").write(secret)',
        'open("/tmp/ann.tmp", "w").write(secret)',
        'subprocess.Popen(["sleep", "600"], start_new_session=True).pid',
      ].join('\n'),
      user: 'ann',
    });
    expect(first.error).toBeUndefined();
    // maxSize 1: the next execution gets the same sandbox, after it was cleaned.
    const second = await svc.exec({
      code: [
        'import os, subprocess',
        'found = {"secret": "secret" in globals(), "home": sorted(os.listdir("/home/user")), "tmp": os.listdir("/tmp")}',
        'found["sleep"] = subprocess.run(["pgrep", "-x", "sleep"], capture_output=True).stdout.decode().split()',
        'found',
      ].join('\n'),
      user: 'bob',
    });
    expect(second.sandboxId).toBe(first.sandboxId);
    expect(second.results.find((result) => result.isMainResult)?.text).toBe("{'secret': False, 'home': ['.tradeswarm-build'], 'tmp': [], 'sleep': []}");
    expect(svc.metrics().scrubFailures).toBe(0);
  });

  it('resets both interpreters after every stateless execution: no globals, timers or variables reach the next caller', async () => {
    const svc = await service({ pool: { minSize: 1, targetSize: 1, maxSize: 1 } });
    const annJs = await svc.exec({ code: "globalThis.secret = 'ann'; setInterval(() => console.log('ann timer'), 1); secret", language: 'javascript', user: 'ann' });
    expect(annJs.results.find((result) => result.isMainResult)?.text).toBe("'ann'");
    const annPy = await svc.exec({ code: "import threading, time\nsecret = 'ann'\nthreading.Thread(target=lambda: [print('ann thread', flush=True) or time.sleep(0.001) for _ in range(10**6)], daemon=True).start()", user: 'ann' });
    expect(annPy.error).toBeUndefined();
    // maxSize 1: the same sandbox, cleaned and with both interpreters reset in between.
    const bobJs = await svc.exec({ code: '[typeof secret, process.getuid()]', language: 'javascript', user: 'bob' });
    expect(bobJs).toMatchObject({ sandboxId: annJs.sandboxId, stdout: '', stderr: '' });
    expect(bobJs.results.find((result) => result.isMainResult)?.text).toBe("[ 'undefined', 1000 ]");
    const bobPy = await svc.exec({ code: "import os\n('secret' in globals(), os.getuid())", user: 'bob' });
    expect(bobPy).toMatchObject({ sandboxId: annJs.sandboxId, stdout: '', stderr: '' });
    expect(bobPy.results.find((result) => result.isMainResult)?.text).toBe('(False, 1000)');
    expect(svc.metrics().scrubFailures).toBe(0);
  });

  it('tidies up after Python alone ran, scrubs after JavaScript ran, and either way the next caller finds nothing', async () => {
    const svc = await service({ pool: { minSize: 1, targetSize: 1, maxSize: 1 } });
    const leave = [
      'import os, subprocess',
      'secret = "ann-only"',
      'os.environ["ANN"] = secret',
      'for path in ("/home/user/ann.txt", "/tmp/ann", "/dev/shm/ann"): open(path, "w").write(secret)',
      // A daemon: forked twice, in a session of its own.
      'subprocess.Popen(["python3", "-c", "import os, time\\nif os.fork(): os._exit(0)\\nos.setsid()\\ntime.sleep(600)"], start_new_session=True).wait()',
      'subprocess.run(["pgrep", "-u", "user", "-c"], capture_output=True, text=True).stdout.strip()',
    ].join('\n');
    const look = [
      // The names the interpreter holds before this cell defines any: none of ann's, none of the tidy-up's.
      'found = {"names": sorted(name for name in globals() if not name.startswith("_"))}',
      'import os, subprocess',
      'found.update({"secret": "secret" in globals(), "env": "ANN" in os.environ})',
      'found["files"] = sorted(os.listdir("/home/user") + os.listdir("/tmp") + os.listdir("/var/tmp") + os.listdir("/dev/shm"))',
      'found["others"] = subprocess.run(["pgrep", "-u", "user", "-c"], capture_output=True, text=True).stdout.strip()',
      'found',
    ].join('\n');
    // pgrep counts the worker itself.
    const nothing = "{'names': [], 'secret': False, 'env': False, 'files': ['.tradeswarm-build'], 'others': '1'}";
    expect((await svc.exec({ code: leave, user: 'ann' })).results[0]?.text).toBe("'2'");
    expect((await svc.exec({ code: look, user: 'bob' })).results[0]?.text).toBe(nothing);
    await waitFor(() => svc.metrics().scrubbing === 0, 'the clean-up');
    expect(svc.metrics()).toMatchObject({ tidied: 2, scrubbed: 0, tidyFailures: 0, scrubFailures: 0 });

    expect((await svc.exec({ code: "require('fs').writeFileSync('/tmp/ann-js', 'x'); 1", language: 'javascript', user: 'ann' })).error).toBeUndefined();
    expect((await svc.exec({ code: look, user: 'bob' })).results[0]?.text).toBe(nothing);
    await waitFor(() => svc.metrics().scrubbing === 0, 'the clean-up');
    expect(svc.metrics()).toMatchObject({ tidied: 3, scrubbed: 1, tidyFailures: 0, scrubFailures: 0 });
  });

  it('scrubs a sandbox instead when the tidy-up finds a process of user it cannot account for', async () => {
    const svc = await service({ pool: { minSize: 1, targetSize: 1, maxSize: 1 } });
    const first = await svc.exec({ code: '1', user: 'ann' });
    await waitFor(() => svc.metrics().scrubbing === 0, 'the clean-up');
    // Started outside the Python worker (the service never does this), so a context restart does not end it.
    const sandbox = await Sandbox.connect(first.sandboxId, cloud().connection);
    await sandbox.commands.run('sleep 600', { user: 'user', background: true });
    await svc.exec({ code: '2', user: 'ann' });
    await waitFor(() => svc.metrics().scrubbing === 0, 'the clean-up');
    expect(svc.metrics()).toMatchObject({ tidied: 1, tidyFailures: 1, scrubbed: 1, scrubFailures: 0 });
    const after = await svc.exec({ code: 'import subprocess\nsubprocess.run(["pgrep", "-x", "sleep"], capture_output=True).stdout', user: 'bob' });
    expect(after).toMatchObject({ sandboxId: first.sandboxId });
    expect(after.results[0]?.text).toBe("b''");
  });

  it('keeps variables and files within a session, answers only the user that opened it and forgets it on close', async () => {
    const svc = await service();
    const session = await svc.openSession({ user: 'ann' });
    await svc.exec({ code: 'total = 40\nopen("notes.txt", "w").write("kept")', user: 'ann', session: session.session });
    const next = await svc.exec({ code: 'total + 2, open("notes.txt").read()', user: 'ann', session: session.session });
    expect(next.results.find((result) => result.isMainResult)?.text).toBe("(42, 'kept')");
    expect(next).toMatchObject({ session: session.session, fromCache: false, deterministic: false, sandboxId: session.sandboxId });
    // To anyone else the session does not exist: the same error as for an unknown id, which tells nothing.
    const unknown = (await svc.closeSession('ses_unknown', { user: 'bob' }).catch((error: unknown) => error)) as Error;
    const asBob = (await svc.exec({ code: 'total', user: 'bob', session: session.session }).catch((error: unknown) => error)) as Error;
    expect(asBob).toMatchObject({ name: 'SessionNotFoundError', retryable: false });
    expect(asBob.message).toBe(unknown.message.replace('ses_unknown', session.session));
    await expect(svc.closeSession(session.session, { user: 'bob' })).rejects.toMatchObject({ name: 'SessionNotFoundError' });
    await expect(svc.closeSession(session.session)).rejects.toMatchObject({ name: 'SessionNotFoundError' });
    expect(svc.metrics().sessions).toBe(1);
    await svc.closeSession(session.session, { user: 'ann' });
    await expect(svc.exec({ code: 'total', user: 'ann', session: session.session })).rejects.toMatchObject({ name: 'SessionNotFoundError' });
  });

  it('limits sessions per user (not retryable: close one of yours) and in all (retryable once one is idle long enough)', async () => {
    const svc = await service({ sessions: { maxSessions: 2, maxSessionsPerUser: 1, idleTimeoutMs: 60_000 } });
    await svc.openSession({ user: 'ann' });
    const again = await svc.openSession({ user: 'ann' }).catch((error: unknown) => error);
    expect(again).toMatchObject({ name: 'SessionLimitError', scope: 'user', limit: 1, retryable: false });
    expect((again as { retryAfterMs?: number }).retryAfterMs).toBeUndefined();
    await svc.openSession({ user: 'bob' });
    const full = await svc.openSession({ user: 'cid' }).catch((error: unknown) => error);
    expect(full).toMatchObject({ name: 'SessionLimitError', scope: 'service', limit: 2, retryable: true });
    // The sessions close after 60 s idle at the latest, unless they are used.
    expect((full as { retryAfterMs: number }).retryAfterMs).toBeGreaterThan(50_000);
    expect((full as { retryAfterMs: number }).retryAfterMs).toBeLessThanOrEqual(60_000);
  });

  it('runs stateless executions beside open sessions: a session takes no sandbox away from them', async () => {
    const svc = await service({ queue: { concurrency: 1 }, sessions: { maxSessions: 2 } });
    const sessions = [await svc.openSession({ user: 'ann' }), await svc.openSession({ user: 'bob' })];
    const started = performance.now();
    const result = await svc.exec({ code: 'print("beside the sessions")', user: 'cid', timeoutMs: 5_000 });
    expect(result.stdout).toBe('beside the sessions\n');
    expect(sessions.map((session) => session.sandboxId)).not.toContain(result.sandboxId);
    expect(performance.now() - started).toBeLessThan(5_000);
    await waitFor(() => svc.metrics().scrubbing === 0, 'the clean-up');
    // The sessions' sandboxes come from a pool of their own, and stay theirs.
    expect(svc.metrics().sessionPool).toMatchObject({ busy: 2, created: 2 });
    expect(svc.metrics().pool).toMatchObject({ busy: 0 });
    expect((await svc.prometheus()).body).toMatch(/^tradeswarm_exec_session_sandboxes 2$/m);
  });

  it('turns a caller away as busy once maxWaitMs passes without a sandbox, not only without a turn', async () => {
    // A pool made too small by hand: two turns, one sandbox, held by a long execution.
    const svc = await service({ queue: { concurrency: 2, maxWaitMs: 300 }, pool: { minSize: 1, targetSize: 1, maxSize: 1 } });
    const long = svc.exec({ code: 'import time\ntime.sleep(1.5)\nprint("long")', user: 'ann' });
    await waitFor(() => svc.metrics().pool.busy === 1, 'the long execution to hold the sandbox');
    const started = performance.now();
    const refused = await svc.exec({ code: 'print(1)', user: 'bob' }).catch((error: unknown) => error);
    expect(refused).toMatchObject({ name: 'QueueTimeoutError', retryable: true, maxWaitMs: 300 });
    expect((refused as { retryAfterMs: number }).retryAfterMs).toBeGreaterThan(0);
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
    expect((await long).stdout).toBe('long\n');
    expect((await svc.exec({ code: 'print(2)', user: 'bob' })).stdout).toBe('2\n');
  });

  it('stops an execution at its time limit, restarts the context and keeps serving', async () => {
    const svc = await service({ executor: { onTimeout: 'restart' } });
    const result = await svc.exec({ code: 'import time\nprint("started", flush=True)\nwhile True: time.sleep(0.01)', user: 'ann', timeoutMs: 400 });
    expect(result).toMatchObject({ timedOut: true, stdout: 'started\n', error: { name: 'TimeoutError' } });
    expect(result.durationMs).toBeGreaterThanOrEqual(400);
    const after = await svc.exec({ code: '1 + 1', user: 'ann' });
    expect(after.results.find((item) => item.isMainResult)?.text).toBe('2');
    expect(svc.metrics().requests).toMatchObject({ timedOut: 1, ok: 1 });
  });

  it('caches deterministic code only, keyed on code, language and env, and says why', async () => {
    const svc = await service();
    const first = await svc.exec({ code: 'sum(range(10))', user: 'ann' });
    const again = await svc.exec({ code: 'sum(range(10))', user: 'bob' });
    expect(first).toMatchObject({ fromCache: false, deterministic: true });
    expect(again).toMatchObject({ fromCache: true, attempts: 0, sandboxId: first.sandboxId });
    expect(again.results).toEqual(first.results);
    const otherEnv = await svc.exec({ code: 'sum(range(10))', user: 'bob', env: { MODE: 'x' } });
    expect(otherEnv.fromCache).toBe(false);
    const random = await svc.exec({ code: 'import random\nrandom.random()', user: 'ann' });
    const randomAgain = await svc.exec({ code: 'import random\nrandom.random()', user: 'ann' });
    expect(random.deterministic).toBe(false);
    expect(random.determinism.join(' ')).toMatch(/randomness/);
    expect(randomAgain.fromCache).toBe(false);
    expect(svc.metrics().cache).toMatchObject({ hits: 1 });
  });

  it.each([
    ['python', 'data = b"x" * (512 * 1024 * 1024)\nlen(data)'],
    ['javascript', 'const chunks = [];\nwhile (true) chunks.push(new Array(1e6).fill(1.5));'],
  ] as const)('never caches a %s execution that ran out of memory, and says what happened as fits a call without state', async (language, code) => {
    const svc = await service({ template: SMALL_TEMPLATE, pool: { minSize: 1, targetSize: 1 } });
    const first = await svc.exec({ code, language, user: 'ann' });
    const second = await svc.exec({ code, language, user: 'bob' });
    // Both ran: the second is no cache hit.
    expect([first.fromCache, second.fromCache]).toEqual([false, false]);
    // Judged deterministic: only what happened to it may keep it out of the cache.
    expect(first).toMatchObject({ deterministic: true, fromCache: false, attempts: 1, environmentFailure: 'out-of-memory', timedOut: false });
    expect(second).toMatchObject({ deterministic: true, fromCache: false, attempts: 1, environmentFailure: 'out-of-memory' });
    for (const result of [first, second]) {
      expect(result.error).toEqual({
        name: 'OutOfMemoryError',
        value:
          'the execution ran out of memory and was stopped: its interpreter was killed (SIGKILL), which is how the sandbox enforces its memory limit of 128 MB. ' +
          'Use less memory (smaller data, or process it in parts); run unchanged, it will fail the same way.',
        traceback: '',
      });
    }
    expect(svc.metrics().cache).toMatchObject({ hits: 0, size: 0 });
    // The sandbox serves on, and a deterministic result is still cached.
    const sum = language === 'python' ? 'sum(range(10))' : '[1, 2, 3].reduce((a, b) => a + b)';
    const fresh = await svc.exec({ code: sum, language, user: 'ann' });
    const cached = await svc.exec({ code: sum, language, user: 'bob' });
    expect([fresh.fromCache, cached.fromCache, cached.error, cached.results[0]?.text]).toEqual([false, true, undefined, language === 'python' ? '45' : '6']);
  });

  it('tells a session that ran out of memory what it lost and what it kept', async () => {
    const svc = await service({ template: SMALL_TEMPLATE, pool: { minSize: 1, targetSize: 1 } });
    const { session } = await svc.openSession({ user: 'ann' });
    await svc.exec({ code: 'kept = 1\nopen("notes.txt", "w").write("still here")', user: 'ann', session });
    const hog = await svc.exec({ code: 'data = b"x" * (512 * 1024 * 1024)', user: 'ann', session });
    expect(hog).toMatchObject({ environmentFailure: 'out-of-memory', error: { name: 'OutOfMemoryError' } });
    expect(hog.error?.value).toMatch(
      /limit of 128 MB\. Use less memory .*\. The session's interpreter state \(variables, imports\) is lost; its files are kept, and its next execution starts a fresh interpreter\.$/,
    );
    const after = await svc.exec({ code: '"kept" in globals(), open("notes.txt").read()', user: 'ann', session });
    expect(after.results[0]?.text).toBe("(False, 'still here')");
  });

  it('replaces a sandbox that dies under an execution and retries on another one', async () => {
    const owner = 'svc-test-dies';
    const svc = await service({ pool: { owner, minSize: 2, targetSize: 2 }, resilience: { initialDelayMs: 10, maxAttempts: 3 } });
    const running = svc.exec({ code: 'import os, time\nopen("/tmp/running", "w").close()\ntime.sleep(1.5)\n"done"', user: 'ann' });
    // Find the sandbox running the code by the file it wrote, and kill it from outside.
    let victim: string | undefined;
    await waitFor(async () => {
      const listed = await Sandbox.list({ ...cloud().connection, query: { metadata: { [POOL_OWNER_METADATA_KEY]: owner } } }).nextItems();
      for (const info of listed) {
        const sandbox = await Sandbox.connect(info.sandboxId, cloud().connection);
        if (await sandbox.files.exists('/tmp/running')) victim = info.sandboxId;
      }
      return victim !== undefined;
    }, 'the execution to start');
    await Sandbox.kill(victim!, cloud().connection);
    const result = await running;
    expect(result.attempts).toBe(2);
    expect(result.sandboxId).not.toBe(victim);
    expect(result.results.find((item) => item.isMainResult)?.text).toBe("'done'");
    expect(svc.metrics().pool.retiredBroken).toBe(1);
    expect(svc.metrics().breaker).toMatchObject({ retries: 1, state: 'closed' });
  });

  it('kills sandboxes an earlier crashed run of the same owner left behind', async () => {
    const leaked = await Sandbox.create(EXEC_TEMPLATE, {
      ...cloud().connection,
      metadata: { [POOL_OWNER_METADATA_KEY]: 'crash-owner', [POOL_ID_METADATA_KEY]: 'old-run', [POOL_PROCESS_METADATA_KEY]: await endedProcessTag() },
    });
    const svc = await service({ pool: { owner: 'crash-owner', minSize: 1, targetSize: 1 } });
    expect(svc.metrics().pool.leakedCleaned).toBe(1);
    const alive = await Sandbox.list({ ...cloud().connection, query: { metadata: { [POOL_OWNER_METADATA_KEY]: 'crash-owner' } } }).nextItems();
    expect(alive.map((info) => info.sandboxId)).not.toContain(leaked.sandboxId);
  });

  it('leaves the sandboxes of a running service of the same owner alone when another one starts', async () => {
    const first = await service({ pool: { owner: 'shared-owner', minSize: 2, targetSize: 2 } });
    const before = await first.exec({ code: 'print("first")', user: 'ann' });
    const second = await service({ pool: { owner: 'shared-owner', minSize: 1, targetSize: 1 } });
    expect(second.metrics().pool.leakedCleaned).toBe(0);
    const alive = await Sandbox.list({ ...cloud().connection, query: { metadata: { [POOL_OWNER_METADATA_KEY]: 'shared-owner' } } }).nextItems();
    expect(alive.map((info) => info.sandboxId)).toContain(before.sandboxId);
    expect((await first.exec({ code: 'print("still here")', user: 'ann' })).stdout).toBe('still here\n');
    expect(first.metrics().pool.retiredBroken).toBe(0);
  });

  it('names the provider address it could not reach at start, and starts nothing', async () => {
    const port = await closedPort();
    const address = `http://127.0.0.1:${port}`;
    const refused = await createExecService({ connection: { apiKey: `e2b_${'0'.repeat(40)}`, apiUrl: address, sandboxUrl: address }, logger: silentLogger }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ProviderUnreachableError);
    expect(refused).toMatchObject({ address, retryable: true });
    expect((refused as Error).message).toMatch(/\(fetch failed: .*ECONNREFUSED.*\); check connection\.apiUrl/);
  });

  it('names a template the provider does not have, with the templates it has', async () => {
    const missing = await service({ template: 'no-such-template', pool: { minSize: 1, targetSize: 1, maxCreateAttempts: 1 } }).catch((error: unknown) => error);
    expect(missing).toBeInstanceOf(TemplateNotFoundError);
    expect(missing).toMatchObject({ field: 'template', template: 'no-such-template', retryable: false });
    expect((missing as Error).message).toMatch(/^template: the sandbox provider has no template 'no-such-template' \(404: .*this local cloud has: .*code-interpreter-v1.*\); name a template it has/);
  });

  it('refuses sandboxes of the wrong build and starts nothing', async () => {
    await expect(
      service({ template: 'code-interpreter-v1', buildTag: EXEC_BUILD_TAG, pool: { minSize: 1, targetSize: 1, maxCreateAttempts: 2 } }),
    ).rejects.toMatchObject({ name: 'SandboxUnavailableError', reason: 'wrong-build' });
  });

  it('names the field of a bad request and keeps serving', async () => {
    const svc = await service();
    await expect(svc.exec({ code: 'x', language: 'ruby' as 'python' })).rejects.toMatchObject({ name: 'InvalidInputError', field: 'language' });
    await expect(svc.exec({ code: 'x', env: { '1BAD': 'v' } })).rejects.toMatchObject({ field: 'env.1BAD' });
    await expect(svc.exec({ code: 'x', timeoutMs: 10_000_000 })).rejects.toMatchObject({ field: 'timeoutMs' });
    await expect(svc.exec({ code: 'x', timeout: 5 } as never)).rejects.toMatchObject({ field: 'timeout' });
    expect(svc.metrics().requests.invalid).toBe(4);
    expect((await svc.exec({ code: '2 + 2' })).results[0]?.text).toBe('4');
  });

  it('lets a light user through while a heavy user has many executions queued', async () => {
    const svc = await service({ queue: { concurrency: 2, perUserConcurrency: 1 }, pool: { minSize: 2, targetSize: 2, maxSize: 2 } });
    const heavy = Array.from({ length: 8 }, (_, i) => svc.exec({ code: `import time\ntime.sleep(0.2)\n${i}`, user: 'heavy' }));
    const light = await svc.exec({ code: 'import time\ntime.sleep(0.01)\n"light"', user: 'light' });
    const heavyDone = (await Promise.all(heavy)).map((result) => result.totalMs);
    // Per-user concurrency 1 serialises the heavy user; the light one runs beside it at once.
    expect(light.queueWaitMs).toBeLessThan(Math.min(...heavyDone.slice(2)));
    expect(light.totalMs).toBeLessThan(Math.max(...heavyDone) / 2);
  });

  it('lets running executions finish on close and refuses new ones', async () => {
    const svc = await service();
    const running = svc.exec({ code: 'import time\ntime.sleep(0.3)\n"finished"', user: 'ann' });
    await waitFor(() => svc.metrics().queue.running === 1, 'the execution to start');
    const closing = svc.close();
    await expect(svc.exec({ code: '1' })).rejects.toMatchObject({ name: 'ExecServiceClosedError' });
    expect((await running).results[0]?.text).toBe("'finished'");
    await closing;
    const left = await Sandbox.list({ ...cloud().connection, query: { metadata: { [POOL_OWNER_METADATA_KEY]: `svc-test-${owners}` } } }).nextItems();
    expect(left).toEqual([]);
  });
});

describe('the network of executions', () => {
  /** What code run through `svc` (stateless, then in a session) finds when it connects to the service's HTTP port and the local cloud's API. */
  async function reachFrom(svc: ExecService, language: 'python' | 'javascript'): Promise<unknown[]> {
    const app = createApp({ logger: silentLogger });
    await app.register(execRoutes, { service: svc });
    const server = await listen(app);
    try {
      const code = reachCode(language, [server.port, portOf(cloud().apiUrl)]);
      const stateless = await svc.exec({ code, language, user: 'ann' });
      const { session } = await svc.openSession({ user: 'ann' });
      const inSession = await svc.exec({ code, language, user: 'ann', session });
      return [JSON.parse(stateless.stdout) as unknown, JSON.parse(inSession.stdout) as unknown];
    } finally {
      await server.close();
    }
  }

  it.each(['python', 'javascript'] as const)('gives %s code no network by default: it reaches neither the service nor the local cloud on 127.0.0.1', async (language) => {
    // Spare sandboxes on the host's network wait in the local cloud's warm pool for this template; none may be handed out.
    await cloud().sandboxes.prewarm(EXEC_TEMPLATE);
    const svc = await service();
    expect(await reachFrom(svc, language)).toEqual([
      ['failed', 'failed'],
      ['failed', 'failed'],
    ]);
  });

  it.each(['python', 'javascript'] as const)('lets %s code reach the host network with allowInternetAccess: true (the opt-in)', async (language) => {
    const svc = await service({ allowInternetAccess: true });
    expect(await reachFrom(svc, language)).toEqual([
      ['connected', 'connected'],
      ['connected', 'connected'],
    ]);
  });
});
