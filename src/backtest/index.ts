export { runBacktest, type BacktestReport, type BacktestHooks } from './engine.js';
