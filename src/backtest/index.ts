export {
  runBacktest,
  type BacktestOptions,
  type BacktestReport,
  type BacktestResult,
} from './engine.js';
export { type BacktestWarning, warmUpWarnings } from './warnings.js';
export {
  backtestSpecSchema,
  parseBacktestSpec,
  loadBacktestSpec,
  loadBacktestOptions,
  backtestOptionsFromSpec,
  specProblemOf,
  type BacktestSpec,
} from './spec.js';
export { BacktestSpecError, isBacktestSpecError, type SpecProblem } from './errors.js';
