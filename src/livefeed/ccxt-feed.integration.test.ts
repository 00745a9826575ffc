import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock, silentLogger } from '../core/index.js';
import { type Bar, type FeedStart, type FeedStep, freezeBar, groupByTime, loadCsvBars } from '../market/index.js';
import { runFeedContract } from '../market/feed.testkit.js';
import { type FakeExchange, startFakeExchange } from '../../test/fixtures/fake-exchange.js';
import { type CcxtFeed, type CcxtFeedOptions, ExchangeUnreachableError, openCcxtFeed } from './index.js';
import { capturingLogger } from './livefeed.testkit.js';

const csv = new URL('../../../shared/data/minute/SPY_minute.csv', import.meta.url);
const haveData = existsSync(csv);
if (!haveData && process.env.CI === 'true') throw new Error(`${fileURLToPath(csv)} is missing; CI must provide ../shared/data`);
if (!haveData) console.warn(`ccxt-feed.integration.test.ts: skipping: ${fileURLToPath(csv)} is absent`);

const MINUTE = 60_000;
const BARS = 400;

/** SPY's first minute bars as SPY/USDT, and as QQQ/USDT with every seventh minute missing (a symbol that does not trade every minute). */
async function loadMarkets(): Promise<{ spy: Bar[]; qqq: Bar[] }> {
  const spy = (await loadCsvBars(csv, 'SPY/USDT')).slice(0, BARS);
  const qqq = spy.filter((_, i) => i % 7 !== 3).map((bar) => freezeBar({ ...bar, symbol: 'QQQ/USDT' }));
  return { spy, qqq };
}

/** Lets the feed's HTTP requests run: resolves once `check` holds (real I/O, no clock time). */
async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
  if (!check()) throw new Error(`timed out waiting for ${what}`);
}

describe.runIf(haveData)('openCcxtFeed against a fake Binance', () => {
  let spy: Bar[] = [];
  let qqq: Bar[] = [];
  let clock: ManualClock;
  let fake: FakeExchange;
  const feeds: CcxtFeed[] = [];

  beforeAll(async () => {
    ({ spy, qqq } = await loadMarkets());
    clock = new ManualClock((spy.at(-1) as Bar).timeMs + 10 * MINUTE);
    fake = await startFakeExchange({
      clock,
      markets: [
        { base: 'SPY', quote: 'USDT', bars: spy },
        { base: 'QQQ', quote: 'USDT', bars: qqq },
      ],
    });
  });
  afterEach(async () => {
    // A feed left open would poll on the shared clock and take faults planned for the next test.
    await Promise.all(feeds.splice(0).map((feed) => feed.close()));
    fake.clearFaults();
  });
  afterAll(async () => {
    await fake.close();
  });

  /** `n` steps, in as many reads as it takes (a read gives what is ready). */
  async function take(feed: CcxtFeed, n: number): Promise<FeedStep[]> {
    const steps: FeedStep[] = [];
    while (steps.length < n) steps.push(...(await feed.read(n - steps.length)));
    return steps;
  }

  async function open(options: Partial<CcxtFeedOptions> = {}): Promise<CcxtFeed> {
    const feed = await openCcxtFeed({
      exchange: 'binance',
      symbols: ['SPY/USDT', 'QQQ/USDT'],
      clock,
      apiUrl: fake.url,
      logger: silentLogger,
      start: { afterTimeMs: (spy[0] as Bar).timeMs - 1 },
      ...options,
    });
    feeds.push(feed);
    return feed;
  }

  function expectCsvSteps(steps: readonly FeedStep[], bars: readonly Bar[], from = 0): void {
    const expected = groupByTime(bars).steps.slice(from, from + steps.length);
    expect(steps.map((step) => step.bars)).toEqual(expected);
  }

  describe('candles', () => {
    runFeedContract({ name: 'ccxt feed, candles', resumes: 'after-time', makeFeed: (from?: FeedStart) => open(from === undefined ? {} : { start: from }) });

    it('gives the CSV bars, grouped by time, symbols in order', async () => {
      const feed = await open();
      expect(feed.symbols).toEqual(['QQQ/USDT', 'SPY/USDT']);
      const steps = await take(feed, BARS);
      expectCsvSteps(steps, [...spy, ...qqq]);
      expect(fake.requests.filter((path) => path.startsWith('/api/v3/exchangeInfo')).length).toBeGreaterThan(0);
    });

    it('hands out only closed candles, each once across polls', async () => {
      const local = new ManualClock((spy[100] as Bar).timeMs + 30_000);
      const exchange = await startFakeExchange({ clock: local, markets: [{ base: 'SPY', quote: 'USDT', bars: spy }] });
      const feed = await openCcxtFeed({ exchange: 'binance', symbols: ['SPY/USDT'], clock: local, apiUrl: exchange.url, logger: silentLogger, pollMs: 10_000, settleMs: 0, start: { afterTimeMs: (spy[0] as Bar).timeMs - 1 } });
      try {
        const first = await feed.read(1000);
        // Candle 100 is open: not handed out.
        expect(first).toHaveLength(100);
        for (let poll = 0; poll < 6; poll++) {
          // The exchange counts a request when it arrives; the feed schedules its next poll only after it handled the answer.
          // Advancing before that would move time past a timer not yet set, and the poll would never come.
          await until(() => local.pendingTimers === 1, 'the feed to wait for its next poll');
          const before = exchange.requests.length;
          local.advance(10_000);
          await until(() => exchange.requests.length > before, 'a poll');
        }
        const next = await feed.read(1000);
        expect(next.map((step) => step.index)).toEqual([100]);
        expectCsvSteps([...first, ...next], spy);
        expect(feed.stats()).toMatchObject({ dropped: 0, retries: 0, bars: 101 });
      } finally {
        await feed.close();
        await exchange.close();
      }
    });

    it('retries after a 429 (waiting its Retry-After), a 500 and a dropped connection, and gives the same bars', async () => {
      const { logger, records } = capturingLogger();
      fake.inject({ kind: 'status', status: 429, retryAfterS: 7 }, 1, '/api/v3/klines');
      fake.inject({ kind: 'status', status: 500 }, 1, '/api/v3/klines');
      fake.inject({ kind: 'drop' }, 1, '/api/v3/klines');
      const before = fake.requests.length;
      const feed = await open({ symbols: ['SPY/USDT'], logger, retryDelayMs: 1000 });
      const reading = feed.read(BARS);
      // The feed sleeps on the clock between attempts: advance it only once it does.
      const sleeping = (): Promise<void> => until(() => clock.pendingTimers === 1, 'the feed to wait for its retry');
      await sleeping();
      expect(fake.requests.length).toBe(before + 2);
      clock.advance(6999);
      await new Promise((resolve) => setTimeout(resolve, 30));
      // Still waiting out the Retry-After.
      expect(fake.requests.length).toBe(before + 2);
      clock.advance(1);
      for (let i = 0; i < 2; i++) {
        await until(() => clock.pendingTimers === 0, 'the retry');
        await sleeping();
        clock.advance(4000);
      }
      const steps = [...(await reading), ...(await take(feed, BARS - (await reading).length))];
      expectCsvSteps(steps, spy);
      expect(feed.stats().retries).toBe(3);
      expect(records.map((record) => record.msg)).toContain('ccxt feed: a request to binance failed; retrying with back-off');
      expect(records[0]).toMatchObject({ retryInMs: 7000, symbol: 'SPY/USDT' });
    });

    it('ends with an error naming the exchange URL once requests failed for giveUpAfterMs', async () => {
      fake.inject({ kind: 'status', status: 503 }, 1000, '/api/v3/klines');
      try {
        const feed = await open({ symbols: ['SPY/USDT'], giveUpAfterMs: 30_000, retryDelayMs: 5000, maxRetryDelayMs: 5000 });
        const reading = feed.read();
        for (let i = 0; i < 6; i++) {
          await until(() => clock.pendingTimers === 1, 'the feed to wait for its retry');
          clock.advance(5000);
          await until(() => clock.pendingTimers === 0, 'the retry');
        }
        const error = await reading.then(() => undefined, (failure: unknown) => failure);
        expect(error).toBeInstanceOf(ExchangeUnreachableError);
        expect(String((error as Error).message)).toContain(`binance at ${fake.url} for 30 s`);
      } finally {
        fake.clearFaults();
      }
    });

    it('resumes after a time', async () => {
      const feed = await open({ start: { afterTimeMs: (spy[50] as Bar).timeMs } });
      const steps = await feed.read(5);
      expect(steps[0]).toMatchObject({ index: 0, timeMs: (spy[51] as Bar).timeMs });
      const saved = feed.position();
      const resumed = await open({ start: saved });
      const next = await resumed.read(3);
      expect(next[0]?.index).toBe(5);
      expect(next[0]?.timeMs).toBe(Math.min(...[...spy, ...qqq].map((bar) => bar.timeMs).filter((time) => time > (saved.lastTimeMs as number))));
    });
  });

  describe('trades', () => {
    runFeedContract({
      name: 'ccxt feed, bars built from trades',
      resumes: 'after-time',
      sampleSteps: 40,
      makeFeed: (from?: FeedStart) => open({ mode: 'trades', symbols: ['SPY/USDT'], ...(from === undefined ? {} : { start: from }) }),
    });

    it('builds the CSV bars from the trades, across hours without trades', async () => {
      const feed = await open({ mode: 'trades' });
      const steps = await take(feed, BARS);
      expectCsvSteps(steps, [...spy, ...qqq]);
    });
  });
});
