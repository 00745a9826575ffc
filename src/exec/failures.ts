/**
 * How the environment, not an exception of the code's own making, ended an execution. Such a result
 * says nothing about what the same code gives next time, so it is never cached.
 */
export type EnvironmentFailure =
  /** It ran past its time limit and was stopped. */
  | 'timeout'
  /** It needed more memory than the sandbox has: its interpreter was killed, or an allocation failed. */
  | 'out-of-memory'
  /** Its interpreter exited, or was restarted, under it (for another reason than memory). */
  | 'interpreter-stopped'
  /** An interrupt reached it. */
  | 'interrupted';

/** An error as the code interpreter reports it. */
export interface InterpreterError {
  readonly name: string;
  readonly value: string;
  readonly traceback: string;
}

/** What {@link explainStop} needs to know besides the error. */
export interface StopContext {
  /** The caller keeps the interpreter's state between executions (a session), so it must hear what was lost. */
  readonly stateful: boolean;
  /** The sandbox's memory limit, when known. */
  readonly memoryLimitMb: number | undefined;
}

/**
 * Errors the local cloud's interpreter reports about itself rather than about the code: its process
 * ended under the execution (`KernelDiedError`), or it was restarted (`KernelRestartedError`).
 * Their messages speak of a context to restart, which a caller without a context cannot do.
 */
const INTERPRETER_STOPS: ReadonlySet<string> = new Set(['KernelDiedError', 'KernelRestartedError']);
/** The interpreter's process got SIGKILL: on the local cloud, how the memory cgroup's OOM killer ends it. */
const KILLED = /killed by signal SIGKILL/;
/** The interpreter was already dead when the execution came (an earlier one ended it), so the code did not run. */
const DEAD_BEFORE = /did not run/;
/** How the local cloud says its interpreter ended: `exited (exit code 3) while …` or `it exited with killed by signal SIGSEGV)`. */
const EXIT = /exited (?:\(([^)]*)\)|with ([^)]*)\))/;
/** Allocations the interpreter refused for want of memory, which depends on the host, not only on the code. */
const ALLOCATION_FAILED: ReadonlyMap<string, RegExp> = new Map([
  ['MemoryError', /.*/],
  ['RangeError', /allocation failed/i],
]);
/** Python raises KeyboardInterrupt and the local JavaScript kernel ends a cell with InterruptedError when interrupted. */
const INTERRUPTS: ReadonlySet<string> = new Set(['KeyboardInterrupt', 'InterruptedError']);

const STATE_LOST =
  " The session's interpreter state (variables, imports) is lost; its files are kept, and its next execution starts a fresh interpreter.";

/**
 * Whether the environment ended the execution that reported `error`, and how; `undefined` when the
 * error is the code's own. Errors of the code that only an interrupt or a failed allocation explain
 * count as the environment's too: a run elsewhere, or later, may not meet them.
 */
export function environmentFailureOf(error: Pick<InterpreterError, 'name' | 'value'>): EnvironmentFailure | undefined {
  if (INTERPRETER_STOPS.has(error.name)) return ranOutOfMemory(error) ? 'out-of-memory' : 'interpreter-stopped';
  if (ALLOCATION_FAILED.get(error.name)?.test(error.value) === true) return 'out-of-memory';
  if (INTERRUPTS.has(error.name)) return 'interrupted';
  return undefined;
}

/**
 * The error to return for an interpreter that stopped under the execution, told as fits the caller:
 * what happened, what to do and whether running again can help, and for a session what of its state
 * is lost. `undefined` for any other error (the code's own exceptions are returned as they are).
 */
export function explainStop(error: InterpreterError, context: StopContext): InterpreterError | undefined {
  if (!INTERPRETER_STOPS.has(error.name)) return undefined;
  const lost = context.stateful ? STATE_LOST : '';
  if (ranOutOfMemory(error)) {
    const limit = context.memoryLimitMb === undefined ? '' : ` of ${context.memoryLimitMb} MB`;
    return {
      name: 'OutOfMemoryError',
      value:
        `the execution ran out of memory and was stopped: its interpreter was killed (SIGKILL), which is how the sandbox enforces its memory limit${limit}. ` +
        `Use less memory (smaller data, or process it in parts); run unchanged, it will fail the same way.${lost}`,
      traceback: '',
    };
  }
  const exit = EXIT.exec(error.value);
  const how = error.name === 'KernelRestartedError' ? 'it was restarted' : (exit?.[1] ?? exit?.[2] ?? 'it ended');
  const value = DEAD_BEFORE.test(error.value)
    ? `the interpreter had stopped before the code ran (${how}), so the code did not run; run it again.`
    : `the interpreter stopped while the code ran (${how}), so the execution did not finish. Code that ends its own process ` +
      '(os._exit, process.exit, a signal to itself) does this, and will again; otherwise the sandbox failed, and running it again may help.';
  return { name: 'InterpreterStoppedError', value: `${value}${lost}`, traceback: '' };
}

/** The interpreter was killed by SIGKILL under the execution (not before it). */
function ranOutOfMemory(error: Pick<InterpreterError, 'value'>): boolean {
  return KILLED.test(error.value) && !DEAD_BEFORE.test(error.value);
}
