export { parseParameter, type Parameter, type ParameterValue } from './grid.js';
export { compileConstraint, type Constraint } from './constraint.js';
export { METRICS, type Metric, metricOf, type RunStatistics } from './runs.js';
export { runSearch, specOfCombination, walkForwardFolds, WalkForwardMode, DEFAULT_MAX_RUNS, type SearchOptions, type SearchResult, type SearchRow, type FoldResult, type StepRange } from './search.js';
export { SearchRunError } from './pool.js';
