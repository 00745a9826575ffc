import { describe, expect, it } from 'vitest';
import { environmentFailureOf, explainStop } from './failures.js';

// Values as the local cloud's interpreter reports them.
const KILLED = 'The python kernel exited (killed by signal SIGKILL) while running this code, so its variables are lost. Restart the context to run more code.';
const EXITED = 'The javascript kernel exited (exit code 3) while running this code, so its variables are lost. Restart the context to run more code.';
const DEAD = 'The python kernel is dead (it exited with killed by signal SIGKILL), so this code did not run. Restart the context to run more code.';
const RESTARTED = 'The python kernel was restarted before this code finished; its variables are gone. Run the code again.';

describe('environmentFailureOf', () => {
  it.each([
    ['KernelDiedError', KILLED, 'out-of-memory'],
    ['KernelDiedError', EXITED, 'interpreter-stopped'],
    ['KernelDiedError', DEAD, 'interpreter-stopped'],
    ['KernelRestartedError', RESTARTED, 'interpreter-stopped'],
    ['MemoryError', '', 'out-of-memory'],
    ['RangeError', 'Array buffer allocation failed', 'out-of-memory'],
    ['KeyboardInterrupt', '', 'interrupted'],
    ['InterruptedError', 'Execution interrupted', 'interrupted'],
    ['RangeError', 'Invalid array length', undefined],
    ['ZeroDivisionError', 'division by zero', undefined],
    ['Error', 'killed by signal SIGKILL', undefined],
  ])('%s: %s → %s', (name, value, failure) => {
    expect(environmentFailureOf({ name, value })).toBe(failure);
  });
});

describe('explainStop', () => {
  const stateless = { stateful: false, memoryLimitMb: 1024 };

  it('tells a caller without state that the execution ran out of memory, the limit, and that running it unchanged will not help', () => {
    expect(explainStop({ name: 'KernelDiedError', value: KILLED, traceback: `KernelDiedError: ${KILLED}` }, stateless)).toEqual({
      name: 'OutOfMemoryError',
      value:
        'the execution ran out of memory and was stopped: its interpreter was killed (SIGKILL), which is how the sandbox enforces its memory limit of 1024 MB. ' +
        'Use less memory (smaller data, or process it in parts); run unchanged, it will fail the same way.',
      traceback: '',
    });
    expect(explainStop({ name: 'KernelDiedError', value: KILLED, traceback: '' }, { stateful: false, memoryLimitMb: undefined })?.value).toMatch(/enforces its memory limit\. Use less/);
  });

  it.each([
    [EXITED, 'the interpreter stopped while the code ran (exit code 3), so the execution did not finish. Code that ends its own process (os._exit, process.exit, a signal to itself) does this, and will again; otherwise the sandbox failed, and running it again may help.'],
    [RESTARTED, 'the interpreter stopped while the code ran (it was restarted), so the execution did not finish. Code that ends its own process (os._exit, process.exit, a signal to itself) does this, and will again; otherwise the sandbox failed, and running it again may help.'],
    [DEAD, 'the interpreter had stopped before the code ran (killed by signal SIGKILL), so the code did not run; run it again.'],
  ])('tells a caller without state what stopped the interpreter: %s', (value, told) => {
    const name = value === RESTARTED ? 'KernelRestartedError' : 'KernelDiedError';
    expect(explainStop({ name, value, traceback: '' }, stateless)).toEqual({ name: 'InterpreterStoppedError', value: told, traceback: '' });
  });

  it('never asks a caller without state to restart a context it does not have', () => {
    for (const value of [KILLED, EXITED, DEAD]) {
      expect(explainStop({ name: 'KernelDiedError', value, traceback: '' }, stateless)?.value).not.toMatch(/context|variables|restart the/i);
    }
  });

  it('tells a session what of its state is lost and what is kept', () => {
    expect(explainStop({ name: 'KernelDiedError', value: KILLED, traceback: '' }, { stateful: true, memoryLimitMb: 256 })?.value).toMatch(
      /limit of 256 MB\. .* The session's interpreter state \(variables, imports\) is lost; its files are kept, and its next execution starts a fresh interpreter\.$/,
    );
  });

  it("leaves the code's own exceptions as they are", () => {
    for (const name of ['MemoryError', 'ZeroDivisionError', 'KeyboardInterrupt']) {
      expect(explainStop({ name, value: 'x', traceback: 'Traceback …' }, stateless)).toBeUndefined();
    }
  });
});
