export { TradingSession, type GapReport, type SessionGaps, type SessionReport, type StatisticsConventions, type SubmittedOrder, type TradingSessionSnapshot, type TradingSessionOptions } from './session.js';
export { submitOrders, type OrdersRequest, type OrderAnswer } from './gateway.js';
export { splitSessionSnapshot, joinSessionSnapshot, NO_SESSION_HISTORY, type SessionHistoryChunk, type SessionHistoryMark, type SessionHistoryPart, type SplitSessionSnapshot } from './history.js';
