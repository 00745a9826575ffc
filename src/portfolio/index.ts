export {
  Portfolio,
  createPortfolio,
  compilePortfolioOptions,
  type PortfolioFill,
  type PortfolioOptions,
  type PortfolioConfig,
  type Position,
  type Trade,
  type MarkPrices,
} from './portfolio.js';
export { type EquityPoint, type EquitySeries, type EquityValues, settledCurve } from './curve.js';
export { fixedQuantity, fractionOfEquity, type Sizer, type FractionOfEquityOptions } from './sizing.js';
export { performanceStats, RatioConvention, type PerformanceStats, type PerformanceStatsOptions } from './stats.js';
export { EndOfDataRule, settleEndOfData, type EndOfDataSettlement, type SettleEndOfDataOptions } from './liquidation.js';
export { ShortSellingNotAllowedError, isShortSellingNotAllowedError } from './errors.js';
