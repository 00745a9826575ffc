import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Sandbox } from '@e2b/code-interpreter';
import { InvalidInputError, silentLogger } from '../core/index.js';
import { startLocalCloud, type LocalCloud } from '../localcloud/index.js';
import { Executor, compileExecutorOptions } from './executor.js';

let cloud: LocalCloud;
let sandbox: Sandbox;

beforeAll(async () => {
  cloud = await startLocalCloud({ logger: silentLogger, metricsIntervalMs: 0, warmPoolSize: 0 });
  sandbox = await Sandbox.create({ ...cloud.connection });
});
afterAll(async () => {
  await cloud?.close();
});

describe('Executor on a real local sandbox', () => {
  it('returns output, the main result and the duration, keeping state per language', async () => {
    const executor = new Executor();
    await executor.run(sandbox, { code: 'base = 40', language: 'python' });
    const outcome = await executor.run(sandbox, { code: 'print("hi")\nbase + 2', language: 'python' });
    expect(outcome).toMatchObject({ stdout: 'hi\n', stderr: '', timedOut: false, truncated: false, sandboxId: sandbox.sandboxId });
    expect(outcome.results).toEqual([expect.objectContaining({ text: '42', isMainResult: true })]);
    expect(outcome.durationMs).toBeGreaterThanOrEqual(0);
    const javascript = await executor.run(sandbox, { code: 'typeof base', language: 'javascript' });
    expect(javascript.results[0]?.text).toBe("'undefined'");
  });

  it("returns the code's exception as a result, with env vars for that execution only", async () => {
    const executor = new Executor();
    const failed = await executor.run(sandbox, { code: 'import os\nraise ValueError(os.environ["LIMIT"])', language: 'python', env: { LIMIT: 'too high' } });
    expect(failed.error).toMatchObject({ name: 'ValueError', value: 'too high' });
    const after = await executor.run(sandbox, { code: 'import os\nos.environ.get("LIMIT")', language: 'python' });
    expect(after.results).toEqual([]);
  });

  it('stops code past its time limit and restarts the context (state gone) by default', async () => {
    const executor = new Executor();
    await executor.run(sandbox, { code: 'kept = 1', language: 'python' });
    const outcome = await executor.run(sandbox, { code: 'while True:\n    pass', language: 'python', timeoutMs: 300 });
    expect(outcome).toMatchObject({ timedOut: true, environmentFailure: 'timeout' });
    expect(outcome.error).toEqual({ name: 'TimeoutError', value: 'the execution ran past its 300 ms limit and was stopped.', traceback: '' });
    expect((await executor.run(sandbox, { code: 'kept', language: 'python' })).error?.name).toBe('NameError');
    // A caller that keeps state (a session) hears that it is gone.
    const inSession = await executor.run(sandbox, { code: 'while True:\n    pass', language: 'python', timeoutMs: 300, stateful: true });
    expect(inSession.error?.value).toBe(
      "the execution ran past its 300 ms limit and was stopped. The session's interpreter was restarted to stop it: its state (variables, imports) is lost; its files are kept.",
    );
  });

  it("keeps the context's state after a time-out when configured to", async () => {
    const executor = new Executor({ onTimeout: 'keep' });
    await executor.run(sandbox, { code: 'kept = 7', language: 'python' });
    expect((await executor.run(sandbox, { code: 'while True:\n    pass', language: 'python', timeoutMs: 300 })).timedOut).toBe(true);
    expect((await executor.run(sandbox, { code: 'kept', language: 'python' })).results[0]?.text).toBe('7');
  });

  it('keeps at most maxOutputBytes of each stream and says it truncated', async () => {
    const executor = new Executor({ maxOutputBytes: 1000 });
    const outcome = await executor.run(sandbox, { code: 'for i in range(500):\n    print("x" * 9)', language: 'python' });
    expect(Buffer.byteLength(outcome.stdout)).toBe(1000);
    expect(outcome.truncated).toBe(true);
  });

  it('tells which languages ran in a sandbox since it last asked, and whether a context was dropped', async () => {
    const executor = new Executor();
    await executor.run(sandbox, { code: '1', language: 'python' });
    await executor.run(sandbox, { code: '1', language: 'javascript' });
    const usage = executor.takeUsage(sandbox);
    expect([...usage.languages].sort()).toEqual(['javascript', 'python']);
    expect(usage.contextDropped).toBe(false);
    expect(executor.takeUsage(sandbox)).toEqual({ languages: new Set(), contextDropped: false });
    // A context that cannot be made is dropped; what it may have started is unknown.
    const failing = { sandboxId: 'gone', createCodeContext: () => Promise.reject(new Error('sandbox gone')) } as unknown as Sandbox;
    await expect(executor.run(failing, { code: '1', language: 'python' })).rejects.toThrow('sandbox gone');
    expect(executor.takeUsage(failing)).toEqual({ languages: new Set(['python']), contextDropped: true });
    expect(executor.existingContext(failing, 'python')).toBeUndefined();
  });

  it('refuses a time limit over the maximum, naming the field', async () => {
    const executor = new Executor({ maxTimeoutMs: 1000, defaultTimeoutMs: 500 });
    await expect(executor.run(sandbox, { code: '1', language: 'python', timeoutMs: 1001 })).rejects.toThrow(/^timeoutMs: must be a whole number of ms from 1 to 1000/);
    expect(() => compileExecutorOptions({ onTimeout: 'later' as never })).toThrow(InvalidInputError);
    expect(() => compileExecutorOptions({ defaultTimeoutMs: 10, maxTimeoutMs: 5 })).toThrow(/^defaultTimeoutMs:/);
  });
});
