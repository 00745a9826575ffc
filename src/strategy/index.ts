export { sma, ema, rsi } from './indicators.js';
export { type Strategy, type Intent, type StrategyIntent } from './strategy.js';
export { smaCrossover } from './crossover.js';
export { momentumStrategy } from './momentum.js';
export { meanReversion } from './mean-reversion.js';
export { pairs } from './pairs.js';
export { crossVenueArbitrage } from './arbitrage.js';
export { collectIntents, type StrategyAccount } from './collect.js';
export { strategySpecSchema, buildStrategy, sideOf, sizerOf, strategyFieldsOf, type StrategySpec } from './registry.js';
export {
  type RestorableStrategy,
  type StrategiesSnapshot,
  snapshotStrategies,
  restoreStrategies,
} from './snapshot.js';
// The option checks and bounds the decision stages and the spec share with the strategies.
export { optionalBoolean, requireBars } from './rules.js';
export { MAX_BPS, MAX_HEDGE_RATIO, MAX_PERIOD_BARS, MAX_UNITS, between, name, positiveUpTo, wholeNumber } from './limits.js';
