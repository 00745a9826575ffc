export {
  type StreamingIndicator,
  type PriceIndicator,
  type BarIndicator,
  type PriceInput,
  type HighLowClose,
  type BandsValue,
  type MacdValue,
  type StochasticValue,
  type EmaOptions,
  type MacdOptions,
  type AtrOptions,
  EmaSeed,
  MacdSeed,
  TrueRangeStart,
  sma,
  wma,
  ema,
  smma,
  rsi,
  bollinger,
  macd,
  stochastic,
  atr,
  natr,
  cci,
  williamsR,
  momentum,
  roc,
} from './indicators.js';
export {
  type Strategy,
  type StrategyContext,
  type StrategySizer,
  type Intent,
  type StrategyIntent,
} from './strategy.js';
export { type CrossoverOptions, type SmaCrossoverOptions, type EmaCrossoverOptions, smaCrossover, emaCrossover } from './crossover.js';
export { type MomentumOptions, momentumStrategy } from './momentum.js';
export {
  type MeanReversionOptions,
  type BollingerReversionOptions,
  type RsiReversionOptions,
  MeanReversionIndicator,
  meanReversion,
} from './mean-reversion.js';
export { type PairsOptions, pairs } from './pairs.js';
export { type CrossVenueArbitrageOptions, crossVenueArbitrage } from './arbitrage.js';
export {
  RiskManager,
  RiskState,
  RiskEvent,
  RiskRejectReason,
  RISK_TRANSITIONS,
  riskTransition,
  createRiskManager,
  compileRiskManagerOptions,
  type RiskManagerOptions,
  type RiskManagerConfig,
  type RiskManagerSnapshot,
  type RiskReviewContext,
  type RiskReview,
  type RiskRejection,
} from './risk.js';
export {
  allocate,
  PortfolioAllocator,
  createPortfolioAllocator,
  compilePortfolioAllocatorOptions,
  Weighting,
  type Allocation,
  type AllocationChange,
  type AllocationContext,
  type AllocatedStrategy,
  type PortfolioAllocatorOptions,
  type PortfolioAllocatorConfig,
} from './allocator.js';
export { InvalidTransitionError, isInvalidTransitionError } from './errors.js';
export {
  collectIntents,
  DecisionPipeline,
  type AccountSnapshot,
  type DecisionPipelineOptions,
  type DecisionRejection,
  type Decision,
  type DecisionSummary,
  type RiskStateSummary,
  type AllocationSummary,
} from './decider.js';
