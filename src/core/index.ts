export { type Clock, type TimerHandle, SystemClock, ManualClock, isClock } from './clock.js';
export {
  TradeswarmError,
  InvalidInputError,
  IncompatibleSnapshotError,
  isIncompatibleSnapshotError,
  SnapshotProblem,
  type SnapshotDifference,
  errorMessage,
  errorChain,
  type TradeswarmErrorOptions,
} from './errors.js';
export { ErrorCode, errorBody, type ErrorBody } from './error-body.js';
export { randomId, randomToken } from './ids.js';
export { finiteNumber, wholeNumber } from './validate.js';
export { createLogger, silentLogger, type Logger } from './logger.js';
export { Rng, type RngState } from './rng.js';
export { summarize, percentile, type LatencySummary } from './stats.js';
export {
  type JsonValue,
  type JsonObject,
  type JsonNumber,
  type Snapshot,
  SnapshotReader,
  openSnapshot,
  toJsonNumber,
  toJsonNumbers,
  toOptionalJsonNumber,
} from './snapshot.js';
export { startModuleWorker } from './worker.js';
export { lockDir, type DirLock, type LockRefusal } from './lockfile.js';
export { type Deafness, DeafnessMeter, type DeafnessMeterOptions } from './deafness.js';
