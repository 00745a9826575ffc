// A vitest reporter that turns a hung test file into a failure that names it.
//
// Vitest's timeouts run in the worker that runs the test: a test that blocks its worker's thread (a
// synchronous wait, a loop that never ends), or a file whose worker stops answering, never times out,
// and the whole run waits until CI's own limit kills it, saying nothing of where. This reporter runs
// in vitest's main process, which such a hang does not block: when a file has reported nothing for
// `TRADESWARM_TEST_STALL_MS` (default 10 minutes, twice the longest timeout any test sets), it prints
// the file, the tests of it that started and did not end, and the machine's processes, and ends the
// run with exit code 1.
import { execFile } from 'node:child_process';
import type { Reporter, TestCase, TestModule } from 'vitest/node';

const DEFAULT_STALL_MS = 10 * 60_000;

function stallLimitMs(): number {
  const raw = process.env.TRADESWARM_TEST_STALL_MS;
  if (raw === undefined || raw === '') return DEFAULT_STALL_MS;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new Error(`TRADESWARM_TEST_STALL_MS must be a whole number of milliseconds > 0, got ${JSON.stringify(raw)}`);
  }
  return value;
}

interface Running {
  readonly module: TestModule;
  lastHeardMs: number;
  readonly tests: Set<TestCase>;
}

export default class Watchdog implements Reporter {
  readonly #limitMs = stallLimitMs();
  readonly #running = new Map<string, Running>();
  #timer: NodeJS.Timeout | undefined;

  onTestRunStart(): void {
    this.#timer = setInterval(() => this.#check(), Math.min(30_000, this.#limitMs / 4));
    this.#timer.unref();
  }

  onTestModuleStart(module: TestModule): void {
    this.#running.set(module.moduleId, { module, lastHeardMs: Date.now(), tests: new Set() });
  }

  onTestCaseReady(test: TestCase): void {
    const running = this.#heard(test.module);
    running?.tests.add(test);
  }

  onTestCaseResult(test: TestCase): void {
    this.#heard(test.module)?.tests.delete(test);
  }

  onTestModuleEnd(module: TestModule): void {
    this.#running.delete(module.moduleId);
  }

  onTestRunEnd(): void {
    clearInterval(this.#timer);
    this.#running.clear();
  }

  #heard(module: TestModule): Running | undefined {
    const running = this.#running.get(module.moduleId);
    if (running !== undefined) running.lastHeardMs = Date.now();
    return running;
  }

  #check(): void {
    const now = Date.now();
    const stalled = [...this.#running.values()].filter((running) => now - running.lastHeardMs >= this.#limitMs);
    if (stalled.length === 0) return;
    clearInterval(this.#timer);
    const lines = stalled.flatMap((running) => [
      `${running.module.relativeModuleId}: nothing reported for ${Math.round((now - running.lastHeardMs) / 1000)} s`,
      ...[...running.tests].map((test) => `  started and not ended: ${test.fullName}`),
    ]);
    process.stderr.write(`\nwatchdog: a test file hangs (its worker's own timeouts did not end it)\n${lines.join('\n')}\n`);
    // The processes under this run show what the file waited for (a child that never ended, a worker at 100% CPU).
    execFile('ps', ['-eo', 'pid=,ppid=,etime=,time=,stat=,args='], { timeout: 10_000, maxBuffer: 8 << 20 }, (error, stdout) => {
      const tree = descendants(stdout, process.pid);
      process.stderr.write(error === null ? `\nprocesses of this run (pid ppid elapsed cpu state command):\n${tree.map((row) => row.line).join('\n')}\n` : `\nps failed: ${error.message}\n`);
      // A worker stuck in a loop would outlive the run: end every process under it first.
      for (const { pid } of tree) if (pid !== process.pid) killQuietly(pid);
      process.exit(1);
    });
  }
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Ended already (ps itself, or a child that exited since).
  }
}

/** The rows of `ps` output for `root` and the processes under it, each line indented by its depth. */
function descendants(ps: string, root: number): { readonly pid: number; readonly line: string }[] {
  const rows = ps
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .map((line) => {
      const [pid, ppid] = line.split(/\s+/, 2).map(Number);
      return { pid: pid as number, ppid: ppid as number, line };
    });
  const out: { pid: number; line: string }[] = [];
  const visit = (pid: number, depth: number): void => {
    for (const row of rows) if (row.pid === pid) out.push({ pid, line: `${'  '.repeat(depth)}${row.line}` });
    for (const row of rows) if (row.ppid === pid && row.pid !== pid) visit(row.pid, depth + 1);
  };
  visit(root, 0);
  return out;
}
