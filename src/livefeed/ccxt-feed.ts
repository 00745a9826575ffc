import type * as CcxtPackage from 'ccxt';
import type { Exchange } from 'ccxt';
import { ExponentialBackoff, type IBackoff, noJitterGenerator } from 'cockatiel';
import { type Clock, InvalidInputError, type Logger, createLogger, errorMessage } from '../core/index.js';
import { type Bar, type Feed, type FeedStart, freezeBar, validateBar } from '../market/index.js';
import { ExchangeUnreachableError } from './errors.js';
import { LiveStepQueue, RateLimitedWarner, compileLiveStart, compileSymbols, requireClock, wholeOption } from './live-feed.js';
import { StepAssembler } from './step-assembler.js';

/** Options of {@link openCcxtFeed}. */
export interface CcxtFeedOptions {
  /** A ccxt exchange id (`binance`, `kraken`, `coinbase`, …); only its public API is used, no keys. */
  exchange: string;
  /** Unified ccxt symbols (`BTC/USDT`). */
  symbols: readonly string[];
  /** A timeframe the exchange knows (`1m`, `5m`, `1h`, `1d`). @default '1m' */
  timeframe?: string;
  /**
   * `candles`: the exchange's own OHLCV candles (`fetchOHLCV`), each handed out once it closed.
   * `trades`: bars built here from the public trades (`fetchTrades`), one per timeframe bucket
   * with trades; a bucket's bar closes once the trades fetched reach past its end.
   * @default 'candles'
   */
  mode?: 'candles' | 'trades';
  /** Times polls, retries and closes: `SystemClock`, or `ManualClock` in tests. */
  clock: Clock;
  /** Wait between polls once the feed has caught up with the present (while catching up it fetches at once). @default 10_000 */
  pollMs?: number;
  /**
   * How long after its end a candle (or trade bucket) counts as closed: room for clock skew and
   * trades the exchange publishes late. @default 2000
   */
  settleMs?: number;
  /**
   * With several symbols, a step waits until every symbol's fetch reached past it. A symbol whose
   * fetches have failed for `graceMs` stops holding the others back (its bars for those times are
   * then late and dropped, with a warning). @default 120_000
   */
  graceMs?: number;
  /** Where to start: `{ afterTimeMs }` or a saved position (fetching since that time). @default the next candle to close */
  start?: FeedStart;
  /** The exchange's API base URL (scheme and host), in place of every host of its REST API: a fake exchange in tests, a proxy. */
  apiUrl?: string;
  /** First retry delay after a failed request; later ones double, up to `maxRetryDelayMs`. A 429's `Retry-After` is honoured when longer. @default 1000 */
  retryDelayMs?: number;
  /** @default 60_000 */
  maxRetryDelayMs?: number;
  /**
   * Once every request has failed for this long, the feed ends with an {@link ExchangeUnreachableError}
   * naming the exchange's URL (reads give the steps already buffered, then throw it). `Infinity`
   * keeps retrying, with a warning per failure kind a minute. @default 600_000
   */
  giveUpAfterMs?: number;
  /** Candles or trades asked for per request. @default 1000 */
  pageLimit?: number;
  /** @default 10_000 */
  maxBuffered?: number;
  /** Extra ccxt exchange options (merged over the feed's: `enableRateLimit: false`, spot markets only). */
  exchangeOptions?: Record<string, unknown>;
  /** @default createLogger('ccxt-feed') */
  logger?: Logger;
}

/** Counters of a {@link CcxtFeed}. */
export interface CcxtFeedStats {
  /** Requests made (retries included). */
  readonly requests: number;
  /** Requests that failed and were retried. */
  readonly retries: number;
  /** Bars handed to steps. */
  readonly bars: number;
  /** Candles or trades dropped: invalid, or at or before the last step handed out. */
  readonly dropped: number;
}

/** A {@link Feed} of an exchange's market data, with its counters. */
export interface CcxtFeed extends Feed {
  readonly exchange: string;
  /** The API base URL the feed talks to. */
  readonly url: string;
  stats(): CcxtFeedStats;
}

/**
 * Opens an endless feed of live market data from a public exchange through ccxt: closed candles
 * (or bars built from trades) of `symbols`, grouped into steps by time, each bar once, in order.
 * Polling, retries and closing run on `options.clock`. Network and exchange errors (rate limits,
 * 5xx, dropped connections) are retried with exponential back-off (cockatiel) and warned about;
 * see `giveUpAfterMs`. Resolves at once: the markets are loaded by the first poll.
 * @throws InvalidInputError naming the first invalid option (an unknown exchange id, a timeframe it lacks).
 */
export async function openCcxtFeed(options: CcxtFeedOptions): Promise<CcxtFeed> {
  // ccxt takes about half a second to load: only a deployment that reads an exchange pays for it.
  return new ExchangeFeed(options, await import('ccxt'));
}

const HOUR_MS = 3_600_000;
const CLOSED = Symbol('closed');

interface SymbolState {
  readonly symbol: string;
  /** Candles mode: candles open at or after it are still to fetch. Trades mode: trades at or after it. */
  cursor: number;
  /** Trades mode: ids of trades at or after `cursor` already taken. */
  seen: Set<string>;
  /** Trades mode: the bucket being built. */
  building: { timeMs: number; open: number; high: number; low: number; close: number; volume: number } | undefined;
  /** When its fetches started failing, on the clock; `undefined` while they succeed. */
  failingSinceMs: number | undefined;
}

/** The ccxt package, loaded on first use. */
type CcxtModule = typeof CcxtPackage;

class ExchangeFeed extends LiveStepQueue implements CcxtFeed {
  readonly exchange: string;
  readonly url: string;
  readonly #client: Exchange;
  readonly #clock: Clock;
  readonly #warner: RateLimitedWarner;
  readonly #mode: 'candles' | 'trades';
  readonly #timeframe: string;
  readonly #timeframeMs: number;
  readonly #pollMs: number;
  readonly #settleMs: number;
  readonly #graceMs: number;
  readonly #giveUpAfterMs: number;
  readonly #pageLimit: number;
  readonly #backoff: ExponentialBackoff<unknown>;
  readonly #assembler: StepAssembler;
  readonly #states: SymbolState[];
  readonly #stopping = new AbortController();
  #marketsLoaded = false;
  #counts = { requests: 0, retries: 0, bars: 0, dropped: 0 };

  readonly #ccxt: CcxtModule;

  constructor(options: CcxtFeedOptions, ccxtModule: CcxtModule) {
    if (typeof options !== 'object' || options === null) throw new InvalidInputError('options', 'must be an object { exchange, symbols, clock }');
    const clock = requireClock(options.clock);
    const symbols = compileSymbols(options.symbols);
    const start = compileLiveStart(options.start);
    const logger = options.logger ?? createLogger('ccxt-feed');
    const warner = new RateLimitedWarner(logger, clock, 60_000);
    let stopping: () => void = () => undefined;
    super({ symbols, start, maxBuffered: wholeOption('maxBuffered', options.maxBuffered, 10_000, 1), warner, onClose: () => stopping() });
    stopping = () => this.#stopping.abort();
    this.#clock = clock;
    this.#warner = warner;
    this.#ccxt = ccxtModule;
    const ccxt = ccxtModule.default;
    const ExchangeClass = (ccxt as unknown as Record<string, (new (config: Record<string, unknown>) => Exchange) | undefined>)[options.exchange];
    if (typeof options.exchange !== 'string' || !ccxt.exchanges.includes(options.exchange) || ExchangeClass === undefined) {
      throw new InvalidInputError('exchange', `must be a ccxt exchange id such as "binance", "kraken" or "coinbase", got ${JSON.stringify(options.exchange)}`);
    }
    this.exchange = options.exchange;
    this.#client = new ExchangeClass({
      enableRateLimit: false,
      options: { defaultType: 'spot', fetchMarkets: { types: ['spot'] }, fetchCurrencies: false },
      ...options.exchangeOptions,
    });
    this.url = options.apiUrl === undefined ? firstUrl(this.#client.urls.api) : rehost(this.#client.urls.api, compileApiUrl(options.apiUrl));
    this.#mode = options.mode ?? 'candles';
    if (this.#mode !== 'candles' && this.#mode !== 'trades') throw new InvalidInputError('mode', `must be "candles" or "trades", got ${JSON.stringify(options.mode)}`);
    this.#timeframe = options.timeframe ?? '1m';
    const known = Object.keys(this.#client.timeframes ?? {});
    if (!known.includes(this.#timeframe)) throw new InvalidInputError('timeframe', `must be one of ${this.exchange}'s timeframes (${known.join(', ')}), got ${JSON.stringify(options.timeframe)}`);
    this.#timeframeMs = this.#client.parseTimeframe(this.#timeframe) * 1000;
    this.#pollMs = wholeOption('pollMs', options.pollMs, 10_000, 1);
    this.#settleMs = wholeOption('settleMs', options.settleMs, 2000, 0);
    this.#graceMs = wholeOption('graceMs', options.graceMs, 120_000, 0);
    this.#giveUpAfterMs = wholeOption('giveUpAfterMs', options.giveUpAfterMs, 600_000, 0);
    this.#pageLimit = wholeOption('pageLimit', options.pageLimit, 1000, 1);
    const initialDelay = wholeOption('retryDelayMs', options.retryDelayMs, 1000, 1);
    const maxDelay = wholeOption('maxRetryDelayMs', options.maxRetryDelayMs, 60_000, initialDelay);
    this.#backoff = new ExponentialBackoff({ initialDelay, maxDelay, generator: noJitterGenerator });
    this.#assembler = new StepAssembler(symbols, start.afterTimeMs);
    const firstMs = start.afterTimeMs === null ? this.#firstOpenBucket() : start.afterTimeMs + 1;
    this.#states = symbols.map((symbol) => ({ symbol, cursor: firstMs, seen: new Set(), building: undefined, failingSinceMs: undefined }));
    void this.#run();
  }

  stats(): CcxtFeedStats {
    return { ...this.#counts };
  }

  /** The start of the first bucket not yet closed (with `settleMs`). */
  #firstOpenBucket(): number {
    return Math.floor((this.#clock.now() - this.#settleMs) / this.#timeframeMs) * this.#timeframeMs;
  }

  async #run(): Promise<void> {
    try {
      while (!this.#stopping.signal.aborted) {
        let caughtUp = true;
        for (const state of this.#states) {
          const result = await this.#attempt(state, () => (this.#mode === 'candles' ? this.#pollCandles(state) : this.#pollTrades(state)));
          if (result === CLOSED) return;
          caughtUp &&= result;
        }
        this.#releaseStragglers();
        for (const bars of this.#assembler.takeComplete()) this.push(bars);
        if (caughtUp && (await this.#sleep(this.#pollMs)) === CLOSED) return;
      }
    } catch (error) {
      this.fail(error instanceof Error ? error : new Error(String(error)));
    }
  }

  /** Runs one request for `state`, retrying transient failures with back-off until it succeeds, the feed closes, or `giveUpAfterMs` passed. */
  async #attempt(state: SymbolState, poll: () => Promise<boolean>): Promise<boolean | typeof CLOSED> {
    let backoff: IBackoff<unknown> | undefined;
    for (;;) {
      if (this.#stopping.signal.aborted) return CLOSED;
      try {
        this.#counts.requests += 1;
        if (!this.#marketsLoaded) {
          await this.#client.loadMarkets();
          this.#marketsLoaded = true;
          this.#checkSymbols();
        }
        const caughtUp = await poll();
        state.failingSinceMs = undefined;
        return caughtUp;
      } catch (error) {
        if (this.#stopping.signal.aborted) return CLOSED;
        // OperationFailed: network errors, rate limits, the exchange down or failing (5xx): trying again may help.
        if (!(error instanceof this.#ccxt.OperationFailed)) throw error;
        const now = this.#clock.now();
        state.failingSinceMs ??= now;
        const failingForMs = now - state.failingSinceMs;
        if (failingForMs >= this.#giveUpAfterMs) throw new ExchangeUnreachableError(this.exchange, this.url, failingForMs, error);
        backoff = backoff === undefined ? this.#backoff.next() : backoff.next(undefined);
        const delayMs = Math.max(backoff.duration, error instanceof this.#ccxt.DDoSProtection ? this.#retryAfterMs() : 0);
        this.#counts.retries += 1;
        this.#warner.warn(
          `request-failed:${(error).name}`,
          { exchange: this.exchange, url: this.url, symbol: state.symbol, error: errorMessage(error), retryInMs: delayMs, failingForMs },
          `ccxt feed: a request to ${this.exchange} failed; retrying with back-off`,
        );
        if ((await this.#sleep(delayMs)) === CLOSED) return CLOSED;
      }
    }
  }

  #checkSymbols(): void {
    for (const [i, symbol] of this.symbols.entries()) {
      if (this.#client.markets?.[symbol] === undefined) {
        throw new InvalidInputError(`symbols[${i}]`, `${JSON.stringify(symbol)} is not a spot market of ${this.exchange}; use a unified ccxt symbol such as "BTC/USDT"`);
      }
    }
  }

  /** The `Retry-After` of the last response, in ms (0 when absent). */
  #retryAfterMs(): number {
    const headers = (this.#client.last_response_headers ?? {}) as Record<string, unknown>;
    const key = Object.keys(headers).find((name) => name.toLowerCase() === 'retry-after');
    const seconds = key === undefined ? Number.NaN : Number(headers[key]);
    return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 0;
  }

  /** Fetches the candles of one symbol from its cursor; whether it reached the present. */
  async #pollCandles(state: SymbolState): Promise<boolean> {
    const candles = await this.#client.fetchOHLCV(state.symbol, this.#timeframe, state.cursor, this.#pageLimit);
    const openBucket = this.#firstOpenBucket();
    let last: number | undefined;
    for (const [timeMs, open, high, low, close, volume] of candles) {
      if (timeMs === undefined || timeMs < state.cursor || timeMs >= openBucket) continue;
      this.#add({ symbol: state.symbol, timeMs, open: Number(open), high: Number(high), low: Number(low), close: Number(close), volume: Number(volume) });
      last = timeMs;
    }
    const full = candles.length >= this.#pageLimit && last !== undefined && last + this.#timeframeMs < openBucket;
    state.cursor = Math.max(state.cursor, full ? (last as number) + this.#timeframeMs : openBucket);
    this.#assembler.knownBefore(state.symbol, state.cursor);
    return !full;
  }

  /** Fetches the trades of one symbol from its cursor, building bars; whether it reached the present. */
  async #pollTrades(state: SymbolState): Promise<boolean> {
    const since = state.cursor;
    const trades = await this.#client.fetchTrades(state.symbol, since, this.#pageLimit);
    let lastMs = since;
    for (const trade of trades) {
      const timeMs = trade.timestamp;
      if (timeMs === undefined || timeMs < since) continue;
      const id = `${timeMs}:${trade.id ?? ''}`;
      if (state.seen.has(id)) continue;
      state.seen.add(id);
      lastMs = Math.max(lastMs, timeMs);
      this.#trade(state, timeMs, Number(trade.price), Number(trade.amount));
    }
    const present = this.#clock.now() - this.#settleMs;
    const full = trades.length >= this.#pageLimit;
    // A page short of the limit holds every trade of the hour the exchange was asked for (up to now).
    state.cursor = full ? lastMs : Math.max(since, Math.min(since + HOUR_MS + 1, present));
    for (const id of state.seen) if (Number(id.slice(0, id.indexOf(':'))) < state.cursor) state.seen.delete(id);
    const bucketOfCursor = Math.floor(state.cursor / this.#timeframeMs) * this.#timeframeMs;
    if (state.building !== undefined && state.building.timeMs < bucketOfCursor) this.#closeBucket(state);
    this.#assembler.knownBefore(state.symbol, bucketOfCursor);
    return !full && state.cursor >= present;
  }

  #trade(state: SymbolState, timeMs: number, price: number, amount: number): void {
    const bucket = Math.floor(timeMs / this.#timeframeMs) * this.#timeframeMs;
    const building = state.building;
    if (building !== undefined && bucket > building.timeMs) this.#closeBucket(state);
    if (state.building === undefined) {
      state.building = { timeMs: bucket, open: price, high: price, low: price, close: price, volume: amount };
      return;
    }
    const bar = state.building;
    if (bucket < bar.timeMs) {
      this.#drop(state.symbol, bucket, 'a trade older than the bar being built');
      return;
    }
    bar.high = Math.max(bar.high, price);
    bar.low = Math.min(bar.low, price);
    bar.close = price;
    bar.volume += amount;
  }

  #closeBucket(state: SymbolState): void {
    const bar = state.building;
    state.building = undefined;
    if (bar !== undefined) this.#add({ symbol: state.symbol, ...bar });
  }

  #add(bar: Bar): void {
    const frozen = freezeBar(bar);
    const problem = validateBar(frozen)[0];
    if (problem !== undefined) {
      this.#drop(bar.symbol, bar.timeMs, `an invalid bar (${problem.message})`);
      return;
    }
    const result = this.#assembler.add(frozen);
    if (result === 'late' || result === 'unknown-symbol') this.#drop(bar.symbol, bar.timeMs, 'a bar at or before the last step handed out');
    else this.#counts.bars += 1;
  }

  #drop(symbol: string, timeMs: number, what: string): void {
    this.#counts.dropped += 1;
    this.#warner.warn(`dropped:${what}`, { exchange: this.exchange, symbol, timeMs, dropped: this.#counts.dropped }, `ccxt feed: dropped ${what}`);
  }

  /** A symbol whose fetches have failed for `graceMs` stops holding back the steps of the others. */
  #releaseStragglers(): void {
    const now = this.#clock.now();
    for (const state of this.#states) {
      if (state.failingSinceMs !== undefined && now - state.failingSinceMs >= this.#graceMs) {
        this.#assembler.knownBefore(state.symbol, this.#firstOpenBucket());
        this.#warner.warn(`straggler:${state.symbol}`, { exchange: this.exchange, symbol: state.symbol, graceMs: this.#graceMs }, 'ccxt feed: steps go on without a symbol whose requests keep failing');
      }
    }
  }

  #sleep(ms: number): Promise<void | typeof CLOSED> {
    const signal = this.#stopping.signal;
    if (signal.aborted) return Promise.resolve(CLOSED);
    return new Promise((resolve) => {
      const onAbort = (): void => {
        this.#clock.clearTimeout(timer);
        resolve(CLOSED);
      };
      const timer = this.#clock.setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/**
 * Checks an API base URL and returns its origin.
 * @throws InvalidInputError naming `apiUrl`.
 */
function compileApiUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidInputError('apiUrl', `must be an http(s) URL such as "http://127.0.0.1:8080", got ${JSON.stringify(url)}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new InvalidInputError('apiUrl', `must be an http(s) URL, got ${JSON.stringify(url)}`);
  return parsed.origin;
}

/** Puts `origin` in place of the scheme and host of every URL in a ccxt `urls.api` tree; returns `origin`. */
function rehost(tree: unknown, origin: string): string {
  if (typeof tree !== 'object' || tree === null) return origin;
  const node = tree as Record<string, unknown>;
  for (const [key, value] of Object.entries(node)) {
    if (typeof value === 'string') node[key] = value.replace(/^https?:\/\/[^/]+/, origin);
    else rehost(value, origin);
  }
  return origin;
}

/** The origin of the first URL of a ccxt `urls.api` tree (what errors name). */
function firstUrl(tree: unknown): string {
  if (typeof tree === 'string') return new URL(tree).origin;
  if (typeof tree === 'object' && tree !== null) {
    for (const value of Object.values(tree)) {
      const found = firstUrl(value);
      if (found !== '') return found;
    }
  }
  return '';
}
