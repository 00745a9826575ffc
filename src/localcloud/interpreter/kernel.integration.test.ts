import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { KernelClosedError, KernelStartError, KernelStartTimeoutError, UnsupportedKernelLanguageError, isKernelError } from './errors.js';
import { KERNELS_HOST_DIR, KERNELS_SANDBOX_DIR, Kernel, kernelCommand, parseKernelLanguage, spawnKernelOnHost } from './kernel.js';
import type { KernelErrorMessage, KernelExitInfo, KernelLanguage, KernelMessage, KernelResultMessage, KernelStartOptions } from './kernel.js';

let workDir = '';
const openKernels: Kernel[] = [];

beforeEach(async () => {
  workDir = await mkdtemp(path.join(os.tmpdir(), 'tradeswarm-kernel-'));
});

afterEach(async () => {
  await Promise.all(openKernels.splice(0).map((kernel) => kernel.close()));
  await rm(workDir, { recursive: true, force: true });
});

async function startKernel(language: KernelLanguage, overrides: Partial<KernelStartOptions> = {}): Promise<Kernel> {
  const kernel = await Kernel.start({
    language,
    spawn: spawnKernelOnHost,
    kernelsDir: KERNELS_HOST_DIR,
    cwd: workDir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: workDir, LANG: 'C.UTF-8' },
    ...overrides,
  });
  openKernels.push(kernel);
  return kernel;
}

interface Run {
  readonly messages: KernelMessage[];
  readonly stdout: string;
  readonly stderr: string;
  readonly results: KernelResultMessage[];
  readonly error: KernelErrorMessage | undefined;
  readonly executionCount: number | undefined;
}

interface RunOptions {
  readonly envVars?: Record<string, string>;
  readonly signal?: AbortSignal;
  readonly onMessage?: (message: KernelMessage) => void;
}

function summarise(messages: KernelMessage[]): Run {
  const text = (type: 'stdout' | 'stderr'): string => messages.map((message) => (message.type === type ? message.text : '')).join('');
  const errors = messages.filter((message): message is KernelErrorMessage => message.type === 'error');
  const last = messages.at(-1);
  return {
    messages,
    stdout: text('stdout'),
    stderr: text('stderr'),
    results: messages.filter((message): message is KernelResultMessage => message.type === 'result'),
    error: errors.at(-1),
    executionCount: last?.type === 'number_of_executions' ? last.execution_count : undefined,
  };
}

async function run(kernel: Kernel, code: string, options: RunOptions = {}): Promise<Run> {
  const messages: KernelMessage[] = [];
  await kernel.execute(code, {
    envVars: options.envVars,
    signal: options.signal,
    onMessage: (message) => {
      messages.push(message);
      options.onMessage?.(message);
    },
  });
  return summarise(messages);
}

function resultText(outcome: Run): string | undefined {
  expect(outcome.error).toBeUndefined();
  expect(outcome.results).toHaveLength(1);
  expect(outcome.results[0]?.is_main_result).toBe(true);
  return outcome.results[0]?.text;
}

/** What each language must do; the same contract runs for both kernels. */
interface LanguageContract {
  readonly language: KernelLanguage;
  readonly assign: string;
  readonly readIncremented: string;
  readonly undefinedName: string;
  printWaitPrint(gateFile: string): string;
  readonly printToStderr: string;
  readonly raiseOnLineTwo: string;
  readonly raised: { readonly name: string; readonly value: string; tracebackIncludes(executionCount: number): string[] };
  readonly syntaxError: string;
  syntaxTracebackIncludes(executionCount: number): string[];
  readonly readEnvironment: string;
  readonly unsetEnvironmentText: string;
  readonly printThenLoopForever: string;
  readonly interruptedName: string;
  readonly printThenExit: string;
  readonly printAroundSubprocess: string;
  printMarker(text: string): string;
}

const python: LanguageContract = {
  language: 'python',
  assign: 'x = 1',
  readIncremented: 'x + 1',
  undefinedName: 'NameError',
  printWaitPrint: (gateFile) => [
    'import os, time',
    "print('first')",
    `while not os.path.exists(${JSON.stringify(gateFile)}):`,
    '    time.sleep(0.002)',
    "print('second')",
  ].join('\n'),
  printToStderr: "import sys\nprint('oops', file=sys.stderr)",
  raiseOnLineTwo: 'y = 1\ny / 0',
  raised: {
    name: 'ZeroDivisionError',
    value: 'division by zero',
    tracebackIncludes: (count) => ['Traceback (most recent call last):', `Cell In[${count}], line 2, in <module>`, 'y / 0', 'ZeroDivisionError: division by zero'],
  },
  syntaxError: 'z = (1,',
  syntaxTracebackIncludes: (count) => [`Cell In[${count}], line 1`, 'z = (1,', "SyntaxError: '(' was never closed"],
  readEnvironment: "import os\nstr(os.environ.get('TRADESWARM_TEST_VARIABLE'))",
  unsetEnvironmentText: "'None'",
  printThenLoopForever: "print('started')\nwhile True:\n    pass",
  interruptedName: 'KeyboardInterrupt',
  printThenExit: "import os\nprint('bye')\nos._exit(1)",
  printAroundSubprocess: "import os\nprint('a')\nstatus = os.system('echo b')\nprint('c')",
  printMarker: (text) => `print(${JSON.stringify(text)})`,
};

const javascript: LanguageContract = {
  language: 'javascript',
  assign: 'let x = 1',
  readIncremented: 'x + 1',
  undefinedName: 'ReferenceError',
  printWaitPrint: (gateFile) => [
    "console.log('first');",
    `while (!require('node:fs').existsSync(${JSON.stringify(gateFile)})) {`,
    '  await new Promise((resolve) => setTimeout(resolve, 2));',
    '}',
    "console.log('second');",
  ].join('\n'),
  printToStderr: "console.error('oops');",
  raiseOnLineTwo: "const y = 1;\nthrow new RangeError('too far');",
  raised: {
    name: 'RangeError',
    value: 'too far',
    tracebackIncludes: (count) => ['RangeError: too far', `at Cell[${count}]:2:7`],
  },
  syntaxError: 'let z = ;',
  syntaxTracebackIncludes: (count) => [`Cell[${count}]:1\nlet z = ;\n        ^`, "SyntaxError: Unexpected token ';'"],
  readEnvironment: 'String(process.env.TRADESWARM_TEST_VARIABLE)',
  unsetEnvironmentText: "'undefined'",
  printThenLoopForever: "console.log('started');\nwhile (true) {}",
  interruptedName: 'InterruptedError',
  printThenExit: "console.log('bye');\nprocess.exit(1);",
  printAroundSubprocess: "console.log('a');\nrequire('node:child_process').execSync('echo b', { stdio: 'inherit' });\nconsole.log('c');",
  printMarker: (text) => `console.log(${JSON.stringify(text)});`,
};

describe.each([python, javascript])('$language kernel contract', (contract) => {
  it('keeps state across executions and returns the last expression as the main result', async () => {
    const kernel = await startKernel(contract.language);
    const assigned = await run(kernel, contract.assign);
    expect(assigned.error).toBeUndefined();
    expect(resultText(await run(kernel, contract.readIncremented))).toBe('2');
  });

  it('streams stdout while the code runs', async () => {
    const kernel = await startKernel(contract.language);
    const gateFile = path.join(workDir, 'gate');
    const outcome = await run(kernel, contract.printWaitPrint(gateFile), {
      onMessage: (message) => {
        // The code only prints "second" after this file exists, so "first" arrived while it ran.
        if (message.type === 'stdout' && message.text === 'first\n') {
          writeFileSync(gateFile, '');
        }
      },
    });
    expect(outcome.messages.filter((message) => message.type === 'stdout').map((message) => message.type === 'stdout' && message.text)).toEqual(['first\n', 'second\n']);
    expect(outcome.error).toBeUndefined();
    expect(outcome.messages.at(-1)).toEqual({ type: 'number_of_executions', execution_count: 1 });
    for (const message of outcome.messages) {
      if (message.type === 'stdout') {
        expect(Math.abs(message.timestamp - Date.now() * 1000)).toBeLessThan(60_000_000);
      }
    }
  });

  it('forwards stderr', async () => {
    const kernel = await startKernel(contract.language);
    const outcome = await run(kernel, contract.printToStderr);
    expect(outcome.stderr).toBe('oops\n');
    expect(outcome.stdout).toBe('');
  });

  it('reports an exception with its name, message and the line in the traceback', async () => {
    const kernel = await startKernel(contract.language);
    await run(kernel, contract.assign);
    const outcome = await run(kernel, contract.raiseOnLineTwo);
    expect(outcome.results).toEqual([]);
    expect(outcome.error?.name).toBe(contract.raised.name);
    expect(outcome.error?.value).toBe(contract.raised.value);
    for (const fragment of contract.raised.tracebackIncludes(2)) {
      expect(outcome.error?.traceback).toContain(fragment);
    }
    expect(outcome.executionCount).toBe(2);
  });

  it('reports a syntax error with the offending line', async () => {
    const kernel = await startKernel(contract.language);
    const outcome = await run(kernel, contract.syntaxError);
    expect(outcome.error?.name).toBe('SyntaxError');
    for (const fragment of contract.syntaxTracebackIncludes(1)) {
      expect(outcome.error?.traceback).toContain(fragment);
    }
    expect(outcome.executionCount).toBe(1);
  });

  it('counts executions, including failed ones', async () => {
    const kernel = await startKernel(contract.language);
    const counts: (number | undefined)[] = [];
    for (const code of [contract.assign, contract.syntaxError, contract.readIncremented]) {
      counts.push((await run(kernel, code)).executionCount);
    }
    expect(counts).toEqual([1, 2, 3]);
  });

  it('applies env_vars to one execution only', async () => {
    const kernel = await startKernel(contract.language);
    expect(resultText(await run(kernel, contract.readEnvironment, { envVars: { TRADESWARM_TEST_VARIABLE: 'hello' } }))).toBe("'hello'");
    expect(resultText(await run(kernel, contract.readEnvironment))).toBe(contract.unsetEnvironmentText);
  });

  it('interrupts an infinite loop and keeps the namespace', async () => {
    const kernel = await startKernel(contract.language);
    await run(kernel, contract.assign);
    const pid = kernel.pid;
    const outcome = await run(kernel, contract.printThenLoopForever, {
      onMessage: (message) => {
        if (message.type === 'stdout' && message.text === 'started\n') {
          kernel.interrupt();
        }
      },
    });
    expect(outcome.error?.name).toBe(contract.interruptedName);
    expect(outcome.executionCount).toBe(2);
    expect(kernel.alive).toBe(true);
    expect(kernel.pid).toBe(pid);
    expect(resultText(await run(kernel, contract.readIncremented))).toBe('2');
  });

  it('interrupts the execution when its AbortSignal aborts and keeps the namespace', async () => {
    const kernel = await startKernel(contract.language);
    await run(kernel, contract.assign);
    const controller = new AbortController();
    const outcome = await run(kernel, contract.printThenLoopForever, {
      signal: controller.signal,
      onMessage: (message) => {
        if (message.type === 'stdout' && message.text === 'started\n') {
          controller.abort();
        }
      },
    });
    expect(outcome.error?.name).toBe(contract.interruptedName);
    expect(resultText(await run(kernel, contract.readIncremented))).toBe('2');
  });

  it('ends with an error, not a hang, when the kernel dies mid-execution', async () => {
    const kernel = await startKernel(contract.language);
    const exits: KernelExitInfo[] = [];
    kernel.onExit((info) => exits.push(info));
    const outcome = await run(kernel, contract.printThenExit);
    expect(outcome.stdout).toBe('bye\n');
    expect(outcome.error?.name).toBe('KernelDiedError');
    expect(outcome.error?.value).toContain('exited (exit code 1)');
    expect(outcome.error?.value).toContain('Restart the context');
    expect(outcome.executionCount).toBeUndefined();
    expect(kernel.alive).toBe(false);
    expect(exits).toEqual([{ reason: 'exited', exitCode: 1, signal: null }]);

    const afterDeath = await run(kernel, contract.readIncremented);
    expect(afterDeath.messages).toHaveLength(1);
    expect(afterDeath.error?.name).toBe('KernelDiedError');
    expect(afterDeath.error?.value).toContain('did not run');
  });

  it('runs queued executions one at a time, in order', async () => {
    const kernel = await startKernel(contract.language);
    const gateFile = path.join(workDir, 'gate');
    const log: string[] = [];
    const record = (tag: string) => (message: KernelMessage): void => {
      log.push(`${tag}:${message.type === 'stdout' ? message.text.trim() : message.type}`);
      if (message.type === 'stdout' && message.text === 'first\n') {
        writeFileSync(gateFile, '');
      }
    };
    const first = kernel.execute(contract.printWaitPrint(gateFile), { onMessage: record('one') });
    const second = kernel.execute(contract.printMarker('third'), { onMessage: record('two') });
    await Promise.all([first, second]);
    expect(log).toEqual(['one:first', 'one:second', 'one:number_of_executions', 'two:third', 'two:number_of_executions']);
  });

  it('captures output that child processes write to fd 1, in order with printed output', async () => {
    const kernel = await startKernel(contract.language);
    const outcome = await run(kernel, contract.printAroundSubprocess);
    expect(outcome.stdout).toBe('a\nb\nc\n');
    expect(outcome.error).toBeUndefined();
  });

  it('restarts with an empty namespace and a fresh counter', async () => {
    const kernel = await startKernel(contract.language);
    await run(kernel, contract.assign);
    const pid = kernel.pid;
    await kernel.restart();
    expect(kernel.alive).toBe(true);
    expect(kernel.pid).not.toBe(pid);
    const outcome = await run(kernel, contract.readIncremented);
    expect(outcome.error?.name).toBe(contract.undefinedName);
    expect(outcome.executionCount).toBe(1);
  });

  it('does not let user output that looks like protocol traffic confuse it', async () => {
    const kernel = await startKernel(contract.language);
    const fakeMarker = '\u0000tradeswarm:0000000000000000:1\u0000 {"type":"done","id":1}';
    const outcome = await run(kernel, contract.printMarker(fakeMarker));
    expect(outcome.stdout).toBe(`${fakeMarker}\n`);
    expect(outcome.executionCount).toBe(1);
  });

  it('measures the warm round trip of a trivial execution', async () => {
    const kernel = await startKernel(contract.language);
    await run(kernel, '1 + 1');
    const durations: number[] = [];
    for (let round = 0; round < 300; round += 1) {
      const started = performance.now();
      const outcome = await run(kernel, '1 + 1');
      durations.push(performance.now() - started);
      expect(outcome.results[0]?.text).toBe('2');
    }
    durations.sort((left, right) => left - right);
    const percentile = (fraction: number): string => (durations[Math.floor(durations.length * fraction)] ?? Number.NaN).toFixed(3);
    console.log(`${contract.language} warm execute('1 + 1'): p50 ${percentile(0.5)} ms, p90 ${percentile(0.9)} ms, p99 ${percentile(0.99)} ms`);
  });
});

describe('python kernel', () => {
  it('gives no result when the last expression is None', async () => {
    const kernel = await startKernel('python');
    const outcome = await run(kernel, "print('hi')");
    expect(outcome.results).toEqual([]);
    expect(outcome.stdout).toBe('hi\n');
    expect((await run(kernel, 'None')).results).toEqual([]);
  });

  it("forwards print(..., end='') output", async () => {
    const kernel = await startKernel('python');
    const outcome = await run(kernel, "print('partial', end='')");
    expect(outcome.stdout).toBe('partial');
  });

  it('shows repr() of strings and hides the result of a line ending in a semicolon', async () => {
    const kernel = await startKernel('python');
    expect(resultText(await run(kernel, "'a' + 'b'"))).toBe("'ab'");
    expect((await run(kernel, '1 + 1;')).results).toEqual([]);
  });

  it('adds rich formats from _repr_html_ and friends', async () => {
    const kernel = await startKernel('python');
    const outcome = await run(kernel, [
      'class Table:',
      '    def __repr__(self):',
      "        return 'Table()'",
      '    def _repr_html_(self):',
      "        return '<table></table>'",
      '    def _repr_png_(self):',
      "        return b'PNG'",
      'Table()',
    ].join('\n'));
    expect(outcome.results).toEqual([{ type: 'result', is_main_result: true, text: 'Table()', html: '<table></table>', png: 'UE5H' }]);
  });

  it('runs top-level await', async () => {
    const kernel = await startKernel('python');
    expect(resultText(await run(kernel, 'import asyncio\nawait asyncio.sleep(0.001)\n5'))).toBe('5');
  });

  it('fails input() at once because stdin is closed', async () => {
    const kernel = await startKernel('python');
    const outcome = await run(kernel, 'input()');
    expect(outcome.error?.name).toBe('EOFError');
  });

  it('catches SystemExit instead of dying', async () => {
    const kernel = await startKernel('python');
    const outcome = await run(kernel, 'import sys\nsys.exit(3)');
    expect(outcome.error?.name).toBe('SystemExit');
    expect(kernel.alive).toBe(true);
  });

  it('interrupts a blocking sleep', async () => {
    const kernel = await startKernel('python');
    const outcome = await run(kernel, "import time\nprint('started')\ntime.sleep(60)", {
      onMessage: (message) => {
        if (message.type === 'stdout') {
          kernel.interrupt();
        }
      },
    });
    expect(outcome.error?.name).toBe('KeyboardInterrupt');
    // Usually line 3 (inside sleep); line 2 if the signal lands just after print() returned.
    expect(outcome.error?.traceback).toMatch(/Cell In\[1\], line [23], in <module>/);
  });

  it('kills the kernel when code ignores the interrupt for longer than interruptGraceMs', async () => {
    const kernel = await startKernel('python', { interruptGraceMs: 300 });
    const exits: KernelExitInfo[] = [];
    kernel.onExit((info) => exits.push(info));
    // The code ignores SIGINT before it says it started, so the interrupt cannot land anywhere useful.
    const outcome = await run(kernel, "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nprint('started')\ntime.sleep(3)", {
      onMessage: (message) => {
        if (message.type === 'stdout') {
          kernel.interrupt();
        }
      },
    });
    expect(outcome.error?.name).toBe('KernelDiedError');
    expect(outcome.error?.value).toContain('did not stop within 300 ms of an interrupt');
    expect(exits).toEqual([{ reason: 'interrupt-timeout', exitCode: null, signal: 'SIGKILL' }]);
  });
});

describe('javascript kernel', () => {
  it('runs top-level await and returns the completion value', async () => {
    const kernel = await startKernel('javascript');
    expect(resultText(await run(kernel, 'await new Promise(r => setTimeout(r, 10)); 5'))).toBe('5');
  });

  it('keeps declarations made in a cell that awaits', async () => {
    const kernel = await startKernel('javascript');
    await run(kernel, 'const fetched = await Promise.resolve(21);');
    expect(resultText(await run(kernel, 'fetched * 2'))).toBe('42');
  });

  it('allows a const to be declared again in a later cell, like the browser console', async () => {
    const kernel = await startKernel('javascript');
    await run(kernel, 'const limit = 1;');
    expect(resultText(await run(kernel, 'const limit = 2; limit'))).toBe('2');
    const sameCell = await run(kernel, 'const twice = 1;\nconst twice = 2;');
    expect(sameCell.error?.name).toBe('SyntaxError');
    expect(sameCell.error?.value).toBe("Identifier 'twice' has already been declared");
  });

  it('reports a rejected promise at top level as an error', async () => {
    const kernel = await startKernel('javascript');
    const awaited = await run(kernel, "await Promise.reject(new Error('boom'))");
    expect(awaited.error).toMatchObject({ name: 'Error', value: 'boom' });
    expect(awaited.error?.traceback).toContain('at Cell[1]:1:22');

    const unhandled = await run(kernel, "Promise.reject(new TypeError('nobody caught me')); 3");
    expect(unhandled.results.map((result) => result.text)).toEqual(['3']);
    expect(unhandled.error).toMatchObject({ name: 'TypeError', value: 'nobody caught me' });
  });

  it('shows values with util.inspect and gives no result for undefined', async () => {
    const kernel = await startKernel('javascript');
    expect(resultText(await run(kernel, "'text'"))).toBe("'text'");
    expect(resultText(await run(kernel, '{ a: 1, list: [1, 2] }'))).toBe('{ a: 1, list: [ 1, 2 ] }');
    expect(resultText(await run(kernel, '10n ** 20n'))).toBe('100000000000000000000n');
    expect((await run(kernel, 'undefined')).results).toEqual([]);
    expect((await run(kernel, "console.log('x')")).results).toEqual([]);
  });

  it('loads node builtins with require, import() and by bare name', async () => {
    const kernel = await startKernel('javascript');
    expect(resultText(await run(kernel, "require('node:path').posix.sep"))).toBe("'/'");
    expect(resultText(await run(kernel, "(await import('node:path')).sep"))).toBe("'/'");
    expect(resultText(await run(kernel, 'typeof fs.readFileSync'))).toBe("'function'");
  });

  it('interrupts a cell that awaits forever', async () => {
    const kernel = await startKernel('javascript');
    await run(kernel, 'let kept = 7;');
    const outcome = await run(kernel, "console.log('started');\nawait new Promise(() => {});", {
      onMessage: (message) => {
        if (message.type === 'stdout') {
          kernel.interrupt();
        }
      },
    });
    expect(outcome.error?.name).toBe('InterruptedError');
    expect(resultText(await run(kernel, 'kept'))).toBe('7');
  });

  it('shows a thrown non-error value', async () => {
    const kernel = await startKernel('javascript');
    const outcome = await run(kernel, "throw { code: 42 }");
    expect(outcome.error).toEqual({ type: 'error', name: 'Error', value: '{ code: 42 }', traceback: 'Uncaught { code: 42 }' });
  });
});

describe('Kernel driver', () => {
  it('builds the command line for each language', () => {
    expect(kernelCommand('python')).toEqual(['/usr/bin/python3', '-u', `${KERNELS_SANDBOX_DIR}/python_kernel.py`]);
    expect(kernelCommand('js', '/kernels')).toEqual([process.execPath, '/kernels/javascript_kernel.cjs']);
    expect(kernelCommand('javascript', KERNELS_HOST_DIR)).toEqual([process.execPath, path.join(KERNELS_HOST_DIR, 'javascript_kernel.cjs')]);
    expect(KERNELS_HOST_DIR).toBe(path.resolve(import.meta.dirname, '../kernels'));
    expect(parseKernelLanguage(' Python ')).toBe('python');
    expect(() => kernelCommand('ruby')).toThrow(UnsupportedKernelLanguageError);
  });

  it('rejects start with the kernel stderr when the kernel program is missing', async () => {
    const failure = await Kernel.start({
      language: 'python',
      spawn: spawnKernelOnHost,
      kernelsDir: workDir,
      cwd: workDir,
      env: {},
    }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(KernelStartError);
    expect(isKernelError(failure)).toBe(true);
    expect((failure as KernelStartError).failure.exitCode).toBe(2);
    expect((failure as KernelStartError).message).toContain("can't open file");
  });

  it('rejects start when the interpreter cannot be spawned', async () => {
    const failure = await Kernel.start({
      language: 'python',
      spawn: (argv, options) => spawnKernelOnHost(['/nonexistent/python3', ...argv.slice(1)], options),
      kernelsDir: KERNELS_HOST_DIR,
      cwd: workDir,
      env: {},
    }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(KernelStartError);
    expect((failure as KernelStartError).message).toContain('could not be spawned');
  });

  it('kills a kernel that does not report ready in time', async () => {
    const spawned: number[] = [];
    const failure = await Kernel.start({
      language: 'python',
      spawn: (_argv, options) => {
        const child = spawnKernelOnHost(['/bin/sleep', '30'], options);
        spawned.push(child.pid ?? -1);
        return child;
      },
      kernelsDir: KERNELS_HOST_DIR,
      cwd: workDir,
      env: {},
      startTimeoutMs: 200,
    }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(KernelStartTimeoutError);
    expect(spawned).toHaveLength(1);
  });

  it('ends running and queued executions when closed, then refuses new ones', async () => {
    const kernel = await startKernel('python');
    const running = run(kernel, "print('started')\nimport time\ntime.sleep(60)", {
      onMessage: (message) => {
        if (message.type === 'stdout') {
          void kernel.close();
        }
      },
    });
    const queued = run(kernel, '1');
    const [runningOutcome, queuedOutcome] = await Promise.all([running, queued]);
    expect(runningOutcome.error?.name).toBe('KernelClosedError');
    expect(queuedOutcome.error?.name).toBe('KernelClosedError');
    expect(queuedOutcome.stdout).toBe('');
    await expect(kernel.execute('1', { onMessage: () => undefined })).rejects.toBeInstanceOf(KernelClosedError);
    await expect(kernel.restart()).rejects.toBeInstanceOf(KernelClosedError);
    await kernel.close();
  });

  it('restart ends the running execution and runs code submitted meanwhile on the new process', async () => {
    const kernel = await startKernel('python');
    const exits: KernelExitInfo[] = [];
    kernel.onExit((info) => exits.push(info));
    await run(kernel, 'x = 1');
    let restarting: Promise<void> | undefined;
    let submitted: Promise<Run> | undefined;
    const running = await run(kernel, "print('started')\nimport time\ntime.sleep(60)", {
      onMessage: (message) => {
        if (message.type === 'stdout') {
          restarting = kernel.restart();
          submitted = run(kernel, "'x' in globals()");
        }
      },
    });
    await restarting;
    const afterRestart = await submitted;
    expect(running.error?.name).toBe('KernelRestartedError');
    expect(afterRestart?.results.map((result) => result.text)).toEqual(['False']);
    expect(afterRestart?.executionCount).toBe(1);
    expect(exits).toEqual([]);
  });

  it('drops an execution whose signal aborts before it starts', async () => {
    const kernel = await startKernel('python');
    const controller = new AbortController();
    controller.abort();
    const outcome = await run(kernel, "print('never')", { signal: controller.signal });
    expect(outcome.messages).toEqual([expect.objectContaining({ type: 'error', name: 'ExecutionCancelledError' })]);
    expect(resultText(await run(kernel, '40 + 2'))).toBe('42');
  });

  it('rejects execute with the error its onMessage threw, and stays usable', async () => {
    const kernel = await startKernel('javascript');
    const thrown = new Error('client went away');
    await expect(kernel.execute("console.log('x'); 1", {
      onMessage: () => {
        throw thrown;
      },
    })).rejects.toBe(thrown);
    expect(resultText(await run(kernel, '1 + 1'))).toBe('2');
  });
});

/** Whether `pid` is a running process (not a zombie) on this machine. */
function isRunning(pid: number): boolean {
  try {
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** The host pid the cell prints, from a cell that prints one number. */
async function printedNumber(kernel: Kernel, code: string): Promise<number> {
  const outcome = await run(kernel, code);
  expect(outcome.error).toBeUndefined();
  return Number(outcome.stdout.trim());
}

describe('python zygote: a restart forks a fresh worker instead of starting Python', () => {
  it('gives the new worker no variables, imports, environment or working directory of the old one', async () => {
    const kernel = await startKernel('python');
    const zygote = await printedNumber(kernel, "import os, sys, fractions\nx = 1\nos.environ['LEFT_BEHIND'] = 'yes'\nos.chdir('/')\nprint(os.getppid())");
    const oldWorker = kernel.pid;
    await kernel.restart();
    expect(kernel.pid).not.toBe(oldWorker);
    const fresh = await run(kernel, "import os, sys\nprint(os.getppid())\n('x' in globals(), 'fractions' in sys.modules, os.environ.get('LEFT_BEHIND'), os.getcwd())");
    expect(Number(fresh.stdout.trim())).toBe(zygote);
    expect(fresh.results.map((result) => result.text)).toEqual([`(False, False, None, ${JSON.stringify(workDir).replaceAll('"', "'")})`]);
    expect(fresh.executionCount).toBe(1);
  });

  it('kills everything the old worker started, new sessions included, before the new one runs', async () => {
    const kernel = await startKernel('python');
    const sleeper = await printedNumber(kernel, "import subprocess\nprint(subprocess.Popen(['sleep', '60'], start_new_session=True).pid)");
    expect(isRunning(sleeper)).toBe(true);
    await kernel.restart();
    expect(isRunning(sleeper)).toBe(false);
  });

  it('drops what the old worker printed after its last execution; none of it reaches the next one', async () => {
    const kernel = await startKernel('python');
    await run(kernel, "import threading, time\ndef chatter():\n    while True:\n        print('old worker', flush=True)\n        time.sleep(0.001)\nthreading.Thread(target=chatter, daemon=True).start()\ntime.sleep(0.02)");
    await kernel.restart();
    const outcome = await run(kernel, "print('new worker')");
    expect(outcome.stdout).toBe('new worker\n');
  });

  it('reports a worker that dies as the kernel dying, and a restart forks a new worker from the same zygote', async () => {
    const kernel = await startKernel('python');
    const exits: KernelExitInfo[] = [];
    kernel.onExit((info) => exits.push(info));
    const zygote = await printedNumber(kernel, 'import os\nprint(os.getppid())');
    const died = await run(kernel, "import os, signal\nprint('last words')\nos.kill(os.getpid(), signal.SIGKILL)");
    expect(died.stdout).toBe('last words\n');
    expect(died.error?.name).toBe('KernelDiedError');
    expect(died.error?.value).toContain('exited (killed by signal SIGKILL) while running this code');
    expect(exits).toEqual([{ reason: 'exited', exitCode: null, signal: 'SIGKILL' }]);
    expect(kernel.alive).toBe(false);
    await kernel.restart();
    expect(await printedNumber(kernel, 'import os\nprint(os.getppid())')).toBe(zygote);
    expect(exits).toHaveLength(1);
  });

  it.skipIf(process.getuid?.() !== 0)('runs the worker as the user named in TRADESWARM_KERNEL_USER, without groups, and hides the setting', async () => {
    const kernel = await startKernel('python', {
      cwd: '/',
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8', TRADESWARM_KERNEL_USER: '65534:65534', TRADESWARM_KERNEL_CWD: '/tmp' },
    });
    const outcome = await run(kernel, "import os\n(os.getresuid(), os.getresgid(), os.getgroups(), os.getcwd(), sorted(k for k in os.environ if k.startswith('TRADESWARM')))");
    expect(resultText(outcome)).toBe("((65534, 65534, 65534), (65534, 65534, 65534), [], '/tmp', [])");
    await kernel.restart();
    expect(resultText(await run(kernel, 'import os\nos.getresuid()'))).toBe('(65534, 65534, 65534)');
  });
});

describe('javascript kernel started for another user', () => {
  it.skipIf(process.getuid?.() !== 0)('drops to that user on its first execution, and is kept by a restart until then', async () => {
    const kernel = await startKernel('javascript', {
      cwd: '/',
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8', TRADESWARM_KERNEL_USER: '65534:65534', TRADESWARM_KERNEL_CWD: '/tmp' },
    });
    const booted = kernel.pid;
    expect(booted).toBeDefined();
    expect(readFileSync(`/proc/${booted}/status`, 'utf8')).toMatch(/^Uid:\s+0\s/m);
    // Nothing ran and nothing but the driver can reach a root process: the restart keeps it.
    await kernel.restart();
    expect(kernel.pid).toBe(booted);
    const outcome = await run(kernel, "[process.getuid(), process.getgid(), process.getgroups(), process.cwd(), Object.keys(process.env).filter((k) => k.startsWith('TRADESWARM')), require.resolve.paths('x')[0]]");
    expect(resultText(outcome)).toBe("[ 65534, 65534, [ 65534 ], '/tmp', [], '/tmp/node_modules' ]");
    expect(kernel.pid).toBe(booted);
    await run(kernel, 'globalThis.leftOver = 1; setInterval(() => console.log("old timer"), 1);');
    await kernel.restart();
    expect(kernel.pid).not.toBe(booted);
    const fresh = await run(kernel, 'typeof leftOver');
    expect(resultText(fresh)).toBe("'undefined'");
    expect(fresh.stdout).toBe('');
  });
});
