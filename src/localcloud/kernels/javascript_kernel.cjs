/**
 * Persistent JavaScript kernel for the tradeswarm code interpreter.
 *
 * Started by `src/localcloud/interpreter/kernel.ts` as `node javascript_kernel.cjs` with stdin,
 * stdout and stderr as pipes and a control channel on file descriptor 3.
 *
 * Cells run in one `vm` context through V8's REPL mode (the mode Chrome DevTools' console uses,
 * reached through `node:inspector`): top-level `await` works, top-level `let`/`const`/`class`
 * declarations persist across cells and may be declared again in a later cell, and the
 * completion value of the last statement is the result, shown with `util.inspect` like the
 * Node REPL does.
 *
 * Control channel: newline-delimited JSON, one object per line.
 *
 * Host to kernel:
 *   {"type":"execute","id":7,"code":"...","env_vars":{...},"marker":"...","sigints_sent":0}
 *   {"type":"interrupt","id":7}   stops execution 7 while it awaits (SIGINT stops synchronous code)
 *
 * Kernel to host:
 *   {"type":"ready","language":"javascript","pid":123,"version":"v20.20.2"}
 *   {"type":"result","id":7,"is_main_result":true,"text":"2"}
 *   {"type":"error","id":7,"name":"TypeError","value":"...","traceback":"..."}
 *   {"type":"done","id":7,"execution_count":3,"markers":["stdout","stderr"]}
 *
 * Output of `console.log`, `process.stdout.write` and child processes goes to the real file
 * descriptors 1 and 2. After each execution the kernel writes the execution's marker to both
 * streams, then sends "done"; the host reports the execution finished once it has read both
 * markers, so everything printed during the execution arrives first.
 *
 * Started as root with TRADESWARM_KERNEL_USER=uid:gid (and TRADESWARM_KERNEL_CWD=/path), as the
 * local cloud does, the kernel boots as root and drops to that user (groups cleared) and enters
 * that directory when its first execution arrives, before any cell code runs; it then says
 * "idle_is_fresh": true in "ready". Until that first execution no user code can reach it, so the
 * host need not replace it on a restart. Both variables are removed from the environment.
 */
'use strict';

// CommonJS, not an ES module: Node starts it about 7 ms of CPU sooner (no ES module loader to set up),
// and a kernel is started again after every execution that ran JavaScript.
const { Console } = require('node:console');
const fs = require('node:fs');
const inspector = require('node:inspector');
const { builtinModules, createRequire } = require('node:module');
const net = require('node:net');
const path = require('node:path');
const util = require('node:util');
const vm = require('node:vm');

const CONTROL_FD = 3;
const CONTEXT_NAME = 'tradeswarm-cells';
const RUNNER_FILENAME = 'tradeswarm-kernel-runner';
const INTERRUPTED = { name: 'InterruptedError', value: 'Execution interrupted' };
/** How long the kernel waits for a stale SIGINT wake-up to surface before the next cell (see absorbStaleSigint). */
const STALE_SIGINT_WINDOW_MS = 50;
const ENV_USER = 'TRADESWARM_KERNEL_USER';
const ENV_CWD = 'TRADESWARM_KERNEL_CWD';

/**
 * The user to drop to before the first cell, from the environment (removed from it), or undefined
 * to keep running as the user that started the kernel.
 */
function takeDeferredUser() {
  const spec = process.env[ENV_USER];
  const cwd = process.env[ENV_CWD];
  delete process.env[ENV_USER];
  delete process.env[ENV_CWD];
  if (!spec) {
    return undefined;
  }
  const [uid, gid = uid] = spec.split(':').map(Number);
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) {
    throw new Error(`${ENV_USER} must be uid:gid, got ${spec}`);
  }
  return { uid, gid, cwd: cwd || undefined };
}

/** Becomes `user` (all ids, no groups) in its directory; the process exits rather than run a cell with more rights. */
function dropPrivileges(user) {
  try {
    process.setgroups([]);
    process.setgid(user.gid);
    process.setuid(user.uid);
    if (process.getuid() !== user.uid || process.geteuid() !== user.uid || process.getgid() !== user.gid || process.getegid() !== user.gid || process.getgroups().some((group) => group !== user.gid)) {
      // Node lists the effective gid among the groups; nothing else may be there.
      throw new Error(`still uid ${process.geteuid()}, gid ${process.getegid()}, groups ${process.getgroups().join(',')}`);
    }
  } catch (error) {
    process.stderr.write(`javascript_kernel.cjs: could not drop to uid ${user.uid} gid ${user.gid}: ${error.message}\n`);
    process.exit(1);
  }
  if (user.cwd !== undefined) {
    try {
      process.chdir(user.cwd);
    } catch (error) {
      process.stderr.write(`javascript_kernel.cjs: can't enter the working directory ${user.cwd}: ${error.message}\n`);
      process.exit(1);
    }
  }
}

// Our own use of vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER makes Node print an
// ExperimentalWarning into the first cell that imports a module; users did not ask for it.
const emitWarning = process.emitWarning;
process.emitWarning = function filteredEmitWarning(warning, ...rest) {
  const text = typeof warning === 'string' ? warning : warning?.message;
  if (typeof text === 'string' && text.includes('USE_MAIN_CONTEXT_DEFAULT_LOADER')) {
    return;
  }
  return Reflect.apply(emitWarning, process, [warning, ...rest]);
};

/** `require` of cells resolves from the working directory, like the Node REPL's. */
function defineRequire(sandbox) {
  Object.defineProperty(sandbox, 'require', {
    writable: true,
    configurable: true,
    enumerable: false,
    value: createRequire(path.join(process.cwd(), '[cell]')),
  });
}

/** The global object cells see: Node's globals, `require`, and builtin modules by name, like the Node REPL. */
function createCellContext() {
  const sandbox = {};
  const context = vm.createContext(sandbox, {
    name: CONTEXT_NAME,
    importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  const languageGlobals = new Set(vm.runInContext('Object.getOwnPropertyNames(globalThis)', context));
  for (const name of Object.getOwnPropertyNames(globalThis)) {
    const descriptor = Object.getOwnPropertyDescriptor(globalThis, name);
    if (!languageGlobals.has(name) && descriptor !== undefined) {
      Object.defineProperty(sandbox, name, descriptor);
    }
  }
  sandbox.global = sandbox;
  const hidden = { writable: true, configurable: true, enumerable: false };
  Object.defineProperty(sandbox, 'console', {
    ...hidden,
    value: new Console({ stdout: process.stdout, stderr: process.stderr, colorMode: false }),
  });
  defineRequire(sandbox);
  for (const name of builtinModules) {
    if (name.startsWith('_') || name.includes('/') || Object.hasOwn(sandbox, name)) {
      continue;
    }
    Object.defineProperty(sandbox, name, {
      configurable: true,
      enumerable: false,
      get() {
        const value = require(`node:${name}`);
        Object.defineProperty(sandbox, name, { ...hidden, value });
        return value;
      },
      set(value) {
        Object.defineProperty(sandbox, name, { ...hidden, value });
      },
    });
  }
  return sandbox;
}

/** Drives V8's REPL mode in the cell context through an in-process inspector session. */
class Evaluator {
  constructor(context) {
    this.session = new inspector.Session();
    this.session.connect();
    this.contextId = undefined;
    this.session.on('Runtime.executionContextCreated', (event) => {
      if (event.params.context.name === CONTEXT_NAME) {
        this.contextId = event.params.context.id;
      }
    });
    // Enabling the Runtime domain lists existing contexts; leaving it enabled would make the
    // inspector keep every console message (and the objects logged) alive.
    this.postSync('Runtime.enable', {});
    this.postSync('Runtime.disable', {});
    if (this.contextId === undefined) {
      throw new Error('The inspector did not report the cell context; this Node.js build cannot run the kernel.');
    }

    // Values come back as inspector handles; a capture function turns a handle into the value.
    this.captured = undefined;
    const captureKey = `__tradeswarm_capture_${process.pid}`;
    Object.defineProperty(context, captureKey, {
      configurable: true,
      value: (value) => {
        this.captured = value;
      },
    });
    this.captureObjectId = this.postSync('Runtime.evaluate', {
      expression: captureKey,
      contextId: this.contextId,
      objectGroup: 'kernel',
    }).result.objectId;
    delete context[captureKey];

    // The evaluation starts inside runInContext so that SIGINT stops synchronous cell code.
    this.runner = vm.createContext({ run: () => undefined });
    this.runnerScript = new vm.Script('run()', { filename: RUNNER_FILENAME });
    // A block, so the constant does not outlive the run: it is declared again every time.
    this.idleScript = new vm.Script(`{ const until = Date.now() + ${STALE_SIGINT_WINDOW_MS}; while (Date.now() < until) {} }`, { filename: RUNNER_FILENAME });
  }

  /**
   * A SIGINT that lands just as Node stops its vm SIGINT watchdog can leave a wake-up behind
   * that would interrupt the next watched script, i.e. the next cell. Called when the host sent
   * a SIGINT that this kernel never saw: a throwaway watched script takes the hit instead.
   */
  absorbStaleSigint() {
    try {
      this.idleScript.runInContext(this.runner, { breakOnSigint: true });
    } catch {
      // Interrupted: the leftover is used up.
    }
  }

  postSync(method, params) {
    let outcome;
    this.session.post(method, params, (error, result) => {
      outcome = { error, result };
    });
    if (outcome === undefined) {
      throw new Error(`The inspector did not answer ${method} synchronously.`);
    }
    if (outcome.error) {
      throw outcome.error;
    }
    return outcome.result;
  }

  /** The JavaScript value behind an inspector remote object. */
  toValue(remote) {
    if (remote.objectId !== undefined) {
      this.captured = undefined;
      this.postSync('Runtime.callFunctionOn', {
        objectId: remote.objectId,
        functionDeclaration: 'function (capture) { "use strict"; capture(this); }',
        arguments: [{ objectId: this.captureObjectId }],
        silent: true,
      });
      const value = this.captured;
      this.captured = undefined;
      return value;
    }
    if (remote.unserializableValue !== undefined) {
      const text = remote.unserializableValue;
      return text.endsWith('n') ? BigInt(text.slice(0, -1)) : Number(text);
    }
    return remote.value;
  }

  /**
   * Runs one cell. Resolves with {kind: 'value', value} | {kind: 'thrown', thrown, details}
   * | {kind: 'interrupted', bySignal?: true}; `execution.interrupt()` settles a cell that is awaiting.
   */
  evaluate(code, cellName, execution) {
    const expression = `${wrapObjectLiteral(code)}\n//# sourceURL=${cellName}`;
    const objectGroup = `cell:${cellName}`;
    return new Promise((resolve) => {
      let settled = false;
      const settle = (outcome) => {
        if (!settled) {
          settled = true;
          execution.interrupt = undefined;
          resolve(outcome);
        }
      };
      execution.interrupt = () => settle({ kind: 'interrupted' });
      this.runner.run = () => {
        this.session.post(
          'Runtime.evaluate',
          { expression, contextId: this.contextId, replMode: true, awaitPromise: true, objectGroup, silent: true },
          (error, response) => {
            try {
              if (!settled) {
                settle(this.toOutcome(error, response));
              }
            } catch (kernelError) {
              settle({ kind: 'thrown', thrown: kernelError, details: {} });
            } finally {
              this.session.post('Runtime.releaseObjectGroup', { objectGroup });
            }
          },
        );
      };
      try {
        this.runnerScript.runInContext(this.runner, { breakOnSigint: true });
      } catch (error) {
        settle(error?.code === 'ERR_SCRIPT_EXECUTION_INTERRUPTED' ? { kind: 'interrupted', bySignal: true } : { kind: 'thrown', thrown: error, details: {} });
      }
    });
  }

  toOutcome(error, response) {
    if (error) {
      return { kind: 'thrown', thrown: error, details: {} };
    }
    const details = response.exceptionDetails;
    if (details !== undefined) {
      return { kind: 'thrown', thrown: details.exception ? this.toValue(details.exception) : undefined, details };
    }
    return { kind: 'value', value: this.toValue(response.result) };
  }
}

/** `{ a: 1 }` is an object, not a block with a label, as in the Node REPL. */
function wrapObjectLiteral(code) {
  if (!/^\s*\{/.test(code) || /;\s*$/.test(code)) {
    return code;
  }
  try {
    new vm.Script(`(async () => (${code}\n))`);
    return `(${code}\n)`;
  } catch {
    return code;
  }
}

function isErrorLike(value) {
  return util.types.isNativeError(value)
    || (typeof value === 'object' && value !== null && typeof value.name === 'string' && typeof value.message === 'string');
}

/** Drop the frames below the cell: the inspector and this kernel. */
function trimStack(stack) {
  const lines = stack.split('\n');
  const kernelFrame = lines.findIndex((line, index) => index > 0 && /^\s+at .*(?:\(node:inspector:|\(node:vm:|tradeswarm-kernel-runner|javascript_kernel\.cjs)/.test(line));
  return (kernelFrame === -1 ? lines : lines.slice(0, kernelFrame)).join('\n');
}

/** The `Cell[3]:2` header with the offending line and a caret, like Node prints for syntax errors. */
function syntaxErrorHeader(code, cellName, details) {
  const lines = code.split('\n');
  let lineIndex = details.lineNumber ?? 0;
  let column = details.columnNumber ?? 0;
  if (lineIndex >= lines.length) {
    lineIndex = lines.length - 1;
    column = lines[lineIndex].length;
  }
  return `${cellName}:${lineIndex + 1}\n${lines[lineIndex]}\n${' '.repeat(column)}^\n\n`;
}

function describeError(thrown, details, code, cellName) {
  if (!isErrorLike(thrown)) {
    const text = util.inspect(thrown);
    return { name: 'Error', value: text, traceback: `Uncaught ${text}` };
  }
  const name = thrown.name;
  const value = thrown.message;
  let traceback = typeof thrown.stack === 'string' ? trimStack(thrown.stack) : `${name}: ${value}`;
  const isCompileError = name === 'SyntaxError'
    && details.scriptId !== undefined
    && details.stackTrace === undefined
    && !traceback.includes(`${cellName}:`);
  if (isCompileError) {
    traceback = `${syntaxErrorHeader(code, cellName, details)}${name}: ${value}`;
  }
  return { name, value, traceback };
}

function applyEnvironment(envVars) {
  const saved = new Map();
  for (const [key, value] of Object.entries(envVars ?? {})) {
    saved.set(key, Object.hasOwn(process.env, key) ? process.env[key] : undefined);
    process.env[key] = String(value);
  }
  return saved;
}

function restoreEnvironment(saved) {
  for (const [key, value] of saved) {
    if (value === undefined) {
      delete process.env[key];
    } else {
      process.env[key] = value;
    }
  }
}

class JavaScriptKernel {
  constructor(control, deferredUser) {
    this.control = control;
    this.deferredUser = deferredUser;
    this.context = createCellContext();
    this.evaluator = new Evaluator(this.context);
    this.executionCount = 0;
    this.current = undefined;
    /** SIGINTs this kernel has seen; the host reports how many it sent in each execute message. */
    this.sigintsSeen = 0;
    this.queue = Promise.resolve();
    const stdoutWrite = process.stdout.write.bind(process.stdout);
    const stderrWrite = process.stderr.write.bind(process.stderr);
    // Kept from before any cell ran, so a cell that replaces process.stdout.write cannot swallow markers.
    this.writeMarkers = (marker) => {
      stdoutWrite(marker);
      stderrWrite(marker);
    };
    process.on('uncaughtException', (error) => this.reportBackgroundError(error));
    process.on('unhandledRejection', (reason) => this.reportBackgroundError(reason));
    // Synchronous cell code is stopped by the vm SIGINT watchdog; an awaiting cell is stopped by
    // the "interrupt" control message. A SIGINT outside a cell must not end the kernel.
    process.on('SIGINT', () => {
      this.sigintsSeen += 1;
    });
  }

  send(messages) {
    this.control.write(messages.map((message) => `${JSON.stringify(message)}\n`).join(''));
  }

  handle(message) {
    if (message.type === 'execute') {
      this.queue = this.queue.then(() => this.execute(message));
    } else if (message.type === 'interrupt' && this.current?.id === message.id) {
      this.current.interrupt?.();
    }
  }

  reportBackgroundError(error) {
    if (this.current !== undefined) {
      this.current.backgroundErrors.push(error);
      return;
    }
    process.stderr.write(`Uncaught ${util.inspect(error)}\n`);
  }

  async execute(message) {
    if (this.deferredUser !== undefined) {
      dropPrivileges(this.deferredUser);
      this.deferredUser = undefined;
      defineRequire(this.context);
    }
    const sigintsSent = typeof message.sigints_sent === 'number' ? message.sigints_sent : 0;
    if (sigintsSent > this.sigintsSeen) {
      this.evaluator.absorbStaleSigint();
      this.sigintsSeen = sigintsSent;
    }
    this.executionCount += 1;
    const count = this.executionCount;
    const cellName = `Cell[${count}]`;
    const code = typeof message.code === 'string' ? message.code : '';
    const execution = { id: message.id, interrupt: undefined, backgroundErrors: [] };
    this.current = execution;
    const savedEnvironment = applyEnvironment(message.env_vars);
    const outcome = await this.evaluator.evaluate(code, cellName, execution);
    if (outcome.bySignal === true) {
      this.sigintsSeen += 1;
    }
    // Rejections the cell left unhandled are reported after the current macrotask; wait for them.
    await new Promise((resolve) => setImmediate(resolve));
    this.current = undefined;
    restoreEnvironment(savedEnvironment);

    const messages = [];
    let error;
    if (outcome.kind === 'interrupted') {
      error = { ...INTERRUPTED, traceback: `${INTERRUPTED.name}: ${INTERRUPTED.value}` };
    } else if (outcome.kind === 'thrown') {
      error = describeError(outcome.thrown, outcome.details, code, cellName);
    } else if (outcome.value !== undefined) {
      messages.push({ type: 'result', id: message.id, is_main_result: true, text: util.inspect(outcome.value) });
    }
    for (const backgroundError of execution.backgroundErrors) {
      if (error === undefined) {
        error = describeError(backgroundError, {}, code, cellName);
      } else {
        process.stderr.write(`Uncaught ${util.inspect(backgroundError)}\n`);
      }
    }
    if (error !== undefined) {
      messages.push({ type: 'error', id: message.id, ...error });
    }
    this.writeMarkers(typeof message.marker === 'string' ? message.marker : '');
    messages.push({ type: 'done', id: message.id, execution_count: count, markers: ['stdout', 'stderr'] });
    this.send(messages);
  }
}

function main() {
  let control;
  try {
    control = new net.Socket({ fd: CONTROL_FD, readable: true, writable: true });
  } catch (error) {
    process.stderr.write(`javascript_kernel.cjs: no control channel on fd ${CONTROL_FD} (${error.message}); start the kernel through Kernel.start() in kernel.ts.\n`);
    process.exit(2);
  }
  const deferredUser = takeDeferredUser();
  if (deferredUser?.cwd !== undefined) {
    // A directory that does not exist fails the start, as it does for a kernel started in it.
    try {
      if (!fs.statSync(deferredUser.cwd).isDirectory()) {
        throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
      }
    } catch (error) {
      if (error.code === 'ENOENT' || error.code === 'ENOTDIR') {
        process.stderr.write(`javascript_kernel.cjs: can't enter the working directory ${deferredUser.cwd}: ${error.message}\n`);
        process.exit(1);
      }
    }
  }
  const kernel = new JavaScriptKernel(control, deferredUser);
  let pending = '';
  control.setEncoding('utf8');
  control.on('data', (chunk) => {
    pending += chunk;
    let newline = pending.indexOf('\n');
    while (newline !== -1) {
      const line = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      if (line.length > 0) {
        kernel.handle(JSON.parse(line));
      }
      newline = pending.indexOf('\n');
    }
  });
  // The host closed the channel: nothing can reach this kernel any more.
  control.on('end', () => process.exit(0));
  control.on('error', () => process.exit(0));
  kernel.send([{ type: 'ready', language: 'javascript', pid: process.pid, version: process.version, idle_is_fresh: deferredUser !== undefined }]);
}

main();
