export { type Bar, type BarProblem, validateBar, freezeBar } from './bars.js';
export { CsvPrices, loadCsvBars, MAX_CSV_BYTES, type CsvBarsOptions, type CsvColumns } from './csv.js';
export { Timeline, groupByTime } from './timeline.js';
export { findGaps, describeGap, compileGapOptions, type DataGap, type GapOptions, type GapConfig } from './gaps.js';
export { type Feed, type FeedStep, type FeedPosition, type FeedStart, positionAfter, checkFeedStart } from './feed.js';
export { openArrayFeed, openCsvFeed, type ArrayFeedOptions, type CsvFeedOptions, type CsvFeedFile } from './replay.js';
export { openSyntheticFeed, type OpenSyntheticFeedOptions } from './synthetic-feed.js';
export { pace, type Pacer, type Pacing, type PacerOptions, type PacerConfig } from './pacing.js';
export { FeedClosedError, FeedPositionError, PacerWaitAbortedError, isFeedClosedError, isFeedPositionError, isPacerWaitAbortedError } from './errors.js';
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
