export { TradingSession, type SessionReport } from './session.js';
export { submitOrders, type OrdersRequest, type OrderAnswer } from './gateway.js';
