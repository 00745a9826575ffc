export { parseParameter, type Parameter } from './grid.js';
export { compileConstraint, type Constraint } from './constraint.js';
export { metricOf } from './runs.js';
export { runSearch, specOfCombination, walkForwardFolds, DEFAULT_MAX_RUNS, type SearchOptions } from './search.js';
export { SearchRunError } from './pool.js';
