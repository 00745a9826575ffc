import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Sandbox } from '@e2b/code-interpreter';
import { useLocalCloud } from '../fixtures/localcloud.js';

const cloud = useLocalCloud();
let sandbox: Sandbox;

beforeAll(async () => {
  sandbox = await Sandbox.create({ ...cloud().connection });
});
afterAll(async () => {
  await sandbox?.kill();
});

describe('code interpreter through the unmodified @e2b/code-interpreter SDK', () => {
  it('keeps Python state across calls and returns the last expression', async () => {
    await sandbox.runCode('import math\nradius = 2');
    const execution = await sandbox.runCode('round(math.pi * radius ** 2, 4)');
    expect(execution.text).toBe('12.5664');
    expect(execution.error).toBeUndefined();
    expect(execution.results[0]?.isMainResult).toBe(true);
  });

  it('returns an exception as name, value and traceback', async () => {
    const execution = await sandbox.runCode('def divide(a, b):\n    return a / b\n\ndivide(1, 0)');
    expect(execution.error?.name).toBe('ZeroDivisionError');
    expect(execution.error?.value).toBe('division by zero');
    expect(execution.error?.traceback).toContain('divide');
    expect(execution.results).toHaveLength(0);
  });

  it('streams stdout and stderr while the code runs', async () => {
    const seen: string[] = [];
    const execution = await sandbox.runCode('import sys, time\nprint("first", flush=True)\ntime.sleep(0.2)\nprint("oops", file=sys.stderr)\nprint("second")', {
      onStdout: (message) => void seen.push(`out@${message.line.trim()}`),
      onStderr: (message) => void seen.push(`err@${message.line.trim()}`),
    });
    expect(seen).toEqual(['out@first', 'err@oops', 'out@second']);
    expect(execution.logs.stdout.join('')).toBe('first\nsecond\n');
    expect(execution.logs.stderr.join('')).toBe('oops\n');
  });

  it('gives each context its own state, and lists, restarts and removes contexts', async () => {
    const context = await sandbox.createCodeContext({ language: 'python', cwd: '/tmp' });
    expect(context.language).toBe('python');
    await sandbox.runCode('secret = 7', { context });
    expect((await sandbox.runCode('secret * 6', { context })).text).toBe('42');
    expect((await sandbox.runCode('import os\nos.getcwd()', { context })).text).toBe("'/tmp'");
    expect((await sandbox.runCode('secret')).error?.name).toBe('NameError');
    expect((await sandbox.listCodeContexts()).map((listed) => listed.id)).toContain(context.id);

    await sandbox.restartCodeContext(context);
    expect((await sandbox.runCode('secret', { context })).error?.name).toBe('NameError');
    await sandbox.removeCodeContext(context);
    expect((await sandbox.listCodeContexts()).map((listed) => listed.id)).not.toContain(context.id);
  });

  it('stops code that runs past its timeout without losing the context', async () => {
    await sandbox.runCode('survivor = "kept"');
    await expect(sandbox.runCode('while True:\n    pass', { timeoutMs: 300 })).rejects.toThrow(/timeout|timed out|abort/i);
    const after = await sandbox.runCode('survivor');
    expect(after.text).toBe("'kept'");
  });

  it('runs JavaScript with its own persistent state', async () => {
    await sandbox.runCode('const prices = [101, 103, 99]', { language: 'javascript' });
    const execution = await sandbox.runCode('prices.reduce((sum, price) => sum + price, 0) / prices.length', { language: 'javascript' });
    expect(execution.text).toBe('101');
    const failed = await sandbox.runCode('null.field', { language: 'javascript' });
    expect(failed.error?.name).toBe('TypeError');
  });

  it('passes env vars to one execution only', async () => {
    const execution = await sandbox.runCode('import os\nos.environ.get("RUN_LABEL")', { envs: { RUN_LABEL: 'backtest-7' } });
    expect(execution.text).toBe("'backtest-7'");
    expect((await sandbox.runCode('import os\nos.environ.get("RUN_LABEL")')).text).toBeUndefined();
  });

  it('says clearly which languages it does not support', async () => {
    await expect(sandbox.runCode('1', { language: 'r' })).rejects.toThrow(/400/);
  });
});
