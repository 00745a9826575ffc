// A vitest reporter that turns a hung test file into a failure that names it.
//
// Vitest's timeouts run in the worker that runs the test: a test that blocks its worker's thread (a
// synchronous wait, a loop that never ends) never times out, and a file whose every test waits for its
// whole timeout takes that many times as long. Either way the run goes on until CI's own limit kills
// it, saying nothing of where. This reporter runs in vitest's main process, which neither blocks: when a
// file has reported nothing for `TRADESWARM_TEST_STALL_MS` (default 10 minutes, twice the longest
// timeout a test sets), or has run for `TRADESWARM_TEST_FILE_LIMIT_MS` (default 20 minutes; the longest
// file takes under 3 on an idle machine), it prints the file, its tests that started and did not end,
// those that failed so far, and the processes of the run, ends them, and exits with code 1.
import { execFile } from 'node:child_process';
import type { Reporter, TestCase, TestModule } from 'vitest/node';

function limitMs(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`${name} must be a whole number of milliseconds > 0, got ${JSON.stringify(raw)}`);
  return value;
}

interface Running {
  readonly module: TestModule;
  readonly startedMs: number;
  lastHeardMs: number;
  readonly started: Set<TestCase>;
  readonly failed: TestCase[];
}

export default class Watchdog implements Reporter {
  readonly #stallMs = limitMs('TRADESWARM_TEST_STALL_MS', 10 * 60_000);
  readonly #fileMs = limitMs('TRADESWARM_TEST_FILE_LIMIT_MS', 20 * 60_000);
  readonly #running = new Map<string, Running>();
  #timer: NodeJS.Timeout | undefined;

  onTestRunStart(): void {
    this.#timer = setInterval(() => this.#check(), Math.min(30_000, this.#stallMs / 4, this.#fileMs / 4));
    this.#timer.unref();
  }

  // Queued is when a worker starts importing the file (a top-level await that never settles hangs there).
  onTestModuleQueued(module: TestModule): void {
    const now = Date.now();
    this.#running.set(module.moduleId, { module, startedMs: now, lastHeardMs: now, started: new Set(), failed: [] });
  }

  onTestModuleStart(module: TestModule): void {
    if (this.#heard(module) === undefined) this.onTestModuleQueued(module);
  }

  onTestCaseReady(test: TestCase): void {
    this.#heard(test.module)?.started.add(test);
  }

  onTestCaseResult(test: TestCase): void {
    const running = this.#heard(test.module);
    running?.started.delete(test);
    if (test.result().state === 'failed') running?.failed.push(test);
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
    const why = (running: Running): string | undefined => {
      const silentS = Math.round((now - running.lastHeardMs) / 1000);
      const ranS = Math.round((now - running.startedMs) / 1000);
      if (now - running.lastHeardMs >= this.#stallMs) return `nothing reported for ${silentS} s`;
      if (now - running.startedMs >= this.#fileMs) return `still running after ${ranS} s`;
      return undefined;
    };
    const hung = [...this.#running.values()].flatMap((running) => {
      const reason = why(running);
      return reason === undefined ? [] : [{ running, reason }];
    });
    if (hung.length === 0) return;
    clearInterval(this.#timer);
    const lines = hung.flatMap(({ running, reason }) => [
      `${running.module.relativeModuleId}: ${reason}`,
      ...[...running.started].map((test) => `  started and not ended: ${test.fullName}`),
      ...running.failed.map((test) => `  failed: ${test.fullName}: ${firstError(test)}`),
    ]);
    process.stderr.write(`\nwatchdog: a test file hangs (its worker's own timeouts did not end it)\n${lines.join('\n')}\n`);
    // The processes under this run show what the file waited for (a child that never ended, a worker at 100% CPU).
    execFile('ps', ['-eo', 'pid=,ppid=,etime=,time=,stat=,args='], { timeout: 10_000, maxBuffer: 8 << 20 }, (error, stdout) => {
      const tree = error === null ? descendants(stdout, process.pid) : [];
      process.stderr.write(error === null ? `\nprocesses of this run (pid ppid elapsed cpu state command):\n${tree.map((row) => row.line).join('\n')}\n` : `\nps failed: ${error.message}\n`);
      // A worker stuck in a loop would outlive the run: end every process under it first.
      for (const { pid } of tree) if (pid !== process.pid) killQuietly(pid);
      process.exit(1);
    });
  }
}

function firstError(test: TestCase): string {
  const result = test.result();
  const error = result.state === 'failed' ? result.errors[0] : undefined;
  return (error?.message ?? 'no error recorded').split('\n')[0] ?? '';
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
