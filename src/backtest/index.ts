export { runBacktest, type BacktestReport } from './engine.js';
