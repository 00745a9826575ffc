import { parentPort, workerData } from 'node:worker_threads';
import { errorChain } from '../../core/index.js';
import { type PackedBars, unpackBars } from './bars.js';
import type { Parameter } from './grid.js';
import { type RunContext, type RunJob, runJob, timeStepsOf } from './runs.js';

/** What a search gives each of its worker threads once, at start. */
export interface WorkerSetup {
  readonly document: unknown;
  readonly source: string;
  readonly parameters: readonly Parameter[];
  readonly bars: PackedBars;
}

/** A worker's answer to one job: its result, or why it failed. */
export type WorkerMessage = { readonly id: number; readonly answer: ReturnType<typeof runJob> } | { readonly id: number; readonly error: string };

// The entry of a search's worker thread: builds the bars once from the shared buffers, then runs
// each job it is sent and answers with its result or its error (the worker goes on).
if (parentPort !== null) {
  const port = parentPort;
  const setup = workerData as WorkerSetup;
  const bars = unpackBars(setup.bars);
  const context: RunContext = { document: setup.document, source: setup.source, parameters: setup.parameters, bars, times: timeStepsOf(bars) };
  port.on('message', (job: RunJob) => {
    let message: WorkerMessage;
    try {
      message = { id: job.id, answer: runJob(context, job) };
    } catch (error) {
      message = { id: job.id, error: errorChain(error) };
    }
    port.postMessage(message);
  });
}
