export { runBacktest, type BacktestReport, type BacktestHooks } from './engine.js';
export {
  parseParameter,
  compileConstraint,
  metricOf,
  runSearch,
  specOfCombination,
  walkForwardFolds,
  DEFAULT_MAX_RUNS,
  SearchRunError,
  type Parameter,
  type Constraint,
  type SearchOptions,
} from './optimize/index.js';
