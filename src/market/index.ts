export { type Bar, type BarProblem, validateBar, freezeBar } from './bars.js';
export { loadCsvBars, MAX_CSV_BYTES, type CsvBarsOptions } from './csv.js';
export { Timeline, groupByTime } from './timeline.js';
export {
  createSyntheticFeed,
  compileSyntheticFeedOptions,
  MAX_SYNTHETIC_BARS,
  MAX_SYNTHETIC_SYMBOLS,
  Regime,
  type SyntheticFeed,
  type SyntheticFeedConfig,
  type SyntheticFeedOptions,
  type SyntheticMarket,
  type SyntheticPairOptions,
  type SyntheticVenuesOptions,
  type SyntheticVolatilityIndexOptions,
} from './synthetic.js';
