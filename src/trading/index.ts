export { TradingSession, type GapReport, type SessionGaps, type SessionReport, type StatisticsConventions, type SubmittedOrder, type TradingSessionSnapshot, type TradingSessionOptions } from './session.js';
export { submitOrders, type OrdersRequest, type OrderAnswer } from './gateway.js';
