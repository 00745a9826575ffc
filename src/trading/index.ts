export { TradingSession, type SessionReport } from './session.js';
export { submitOrders } from './gateway.js';
