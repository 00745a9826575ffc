// The live feeds' public face: feeds that run for ever, from bars published on a deployment's bus
// topic or from a public exchange through ccxt. Apart from src/market/ (which they build on), so
// that the market domain, used by the agent bundle and the backtest, depends on neither the bus nor ccxt.
export { BarMessage, barPayloadSchema, parseBarPayload, type BarPayload, type ParsedBar } from './bar-message.js';
export { openBusFeed, type BusFeed, type BusFeedOptions, type BusFeedStats } from './bus-feed.js';
export { openCcxtFeed, type CcxtFeed, type CcxtFeedOptions, type CcxtFeedStats } from './ccxt-feed.js';
export { ExchangeUnreachableError, isExchangeUnreachableError } from './errors.js';
