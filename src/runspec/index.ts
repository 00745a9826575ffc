export { type RunOptions, type RunGapOptions, runGaps } from './options.js';
export {
  parseSpec,
  parseSpecText,
  loadSpec,
  readSpecDocument,
  runOptionsFromSpec,
  loadSpecBars,
  runOptionsWithBars,
  syntheticDataOf,
  type SyntheticData,
  loadRunOptions,
  specProblemOf,
  type Spec,
} from './spec.js';
export { SpecError } from './errors.js';
export { type RunWarning, warmUpWarnings } from './warnings.js';
