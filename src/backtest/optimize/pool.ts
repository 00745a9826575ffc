import type { Worker } from 'node:worker_threads';
import { TradeswarmError, startModuleWorker } from '../../core/index.js';
import type { RunAnswer, RunJob } from './runs.js';
import type { WorkerMessage, WorkerSetup } from './worker.js';

/** A run of a search failed: its combination, and what went wrong (an error of the run, or the worker thread's end). */
export class SearchRunError extends TradeswarmError {
  override readonly name = 'SearchRunError';

  constructor(
    /** The combination in words: `fastPeriod=5 slowPeriod=20`. */
    readonly combination: string,
    message: string,
  ) {
    super(`the run of ${combination} failed: ${message}`);
  }
}

/** What {@link WorkerPool.run} gives back. */
export interface PoolOutcome {
  /** Answers by job id; a job missing was not finished (only after a stop). */
  readonly answers: ReadonlyMap<number, RunAnswer>;
  /** Whether the signal stopped the jobs before they all finished. */
  readonly stopped: boolean;
}

/**
 * Worker threads that run a search's backtests, each thread set up once with the spec and the bars.
 * Jobs go out one at a time to whichever thread is free; answers are kept by job id, so their order
 * of completion never shows.
 */
export class WorkerPool {
  readonly #workers: Worker[];

  constructor(size: number, setup: WorkerSetup) {
    this.#workers = Array.from({ length: size }, () => startWorker(setup));
  }

  get size(): number {
    return this.#workers.length;
  }

  /**
   * Runs the jobs. Resolves when all are done, or when `signal` aborts (with what finished: the
   * threads are then ended, and the pool cannot run again).
   * @param describe a job's combination in words, for errors.
   * @throws SearchRunError for the first job that throws or whose thread ends (the threads are ended).
   */
  run(jobs: readonly RunJob[], describe: (job: RunJob) => string, options: { signal?: AbortSignal; onAnswer?: (done: number) => void } = {}): Promise<PoolOutcome> {
    const answers = new Map<number, RunAnswer>();
    const { signal, onAnswer } = options;
    return new Promise<PoolOutcome>((resolve, reject) => {
      let next = 0;
      let settled = false;
      const cleanups: Array<() => void> = [];
      const finish = (outcome: { error?: Error; stopped?: boolean }): void => {
        if (settled) return;
        settled = true;
        for (const cleanup of cleanups) cleanup();
        if (outcome.error !== undefined || outcome.stopped === true) void this.close();
        if (outcome.error !== undefined) reject(outcome.error);
        else resolve({ answers, stopped: outcome.stopped === true });
      };
      const send = (worker: Worker): RunJob | undefined => {
        const job = jobs[next++];
        if (job !== undefined) worker.postMessage(job);
        return job;
      };
      if (signal?.aborted === true) return finish({ stopped: true });
      const onAbort = (): void => finish({ stopped: true });
      signal?.addEventListener('abort', onAbort, { once: true });
      cleanups.push(() => signal?.removeEventListener('abort', onAbort));
      if (jobs.length === 0) return finish({});
      for (const worker of this.#workers) {
        let current = send(worker);
        const onMessage = (message: WorkerMessage): void => {
          if (settled) return;
          if ('error' in message) return finish({ error: new SearchRunError(describe(current as RunJob), message.error) });
          answers.set(message.id, message.answer);
          onAnswer?.(answers.size);
          if (answers.size === jobs.length) return finish({});
          current = send(worker);
        };
        const onError = (error: Error): void => {
          if (current !== undefined) finish({ error: new SearchRunError(describe(current), `its worker thread crashed: ${error.message}`) });
          else finish({ error: new TradeswarmError(`a worker thread crashed: ${error.message}`) });
        };
        const onExit = (code: number): void => {
          const job = current;
          finish({ error: job === undefined ? new TradeswarmError(`a worker thread ended (exit code ${code})`) : new SearchRunError(describe(job), `its worker thread ended (exit code ${code})`) });
        };
        worker.on('message', onMessage);
        worker.on('error', onError);
        worker.on('exit', onExit);
        cleanups.push(() => {
          worker.off('message', onMessage);
          worker.off('error', onError);
          worker.off('exit', onExit);
        });
      }
    });
  }

  /** Ends every thread. */
  async close(): Promise<void> {
    await Promise.all(this.#workers.map((worker) => worker.terminate()));
  }
}

/** Starts a worker thread on `worker.ts` (or `worker.js` in the build), set up with `setup`. */
function startWorker(setup: WorkerSetup): Worker {
  return startModuleWorker(import.meta.url, 'worker', { workerData: setup });
}
