export { parseParameter, type Parameter } from './grid.js';
export { METRICS, type Metric, type ParameterValue, type RunStatistics, WalkForwardMode, type SearchResult, type SearchRow, type FoldResult, type StepRange } from '../../search/index.js';
export { compileConstraint, type Constraint } from './constraint.js';
export { metricOf } from './runs.js';
export { runSearch, specOfCombination, walkForwardFolds, DEFAULT_MAX_RUNS, type SearchOptions } from './search.js';
export { SearchRunError } from './pool.js';
