import type { Bus } from '../bus/index.js';
import { swarmTopics } from '../bus/index.js';
import type { Clock, Logger } from '../core/index.js';
import { openBusFeed, openCcxtFeed } from '../livefeed/index.js';
import { type Bar, type Feed, type FeedPosition, type FeedStep, Timeline, openArrayFeed, openSyntheticFeed } from '../market/index.js';
import type { SwarmSpec } from './spec.js';

/** Options of {@link openSwarmFeed}. */
export interface SwarmFeedOptions {
  readonly spec: SwarmSpec;
  /** Names the bus topic a `bus` feed reads. */
  readonly swarmId: string;
  /** The control plane's bus (its registry knows `bar` messages). */
  readonly bus: Bus;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Where a resumed deployment stood: the feed gives the step after. @default the first step */
  readonly from?: FeedPosition;
}

/**
 * Opens the feed a spec's `swarm.feed` names, serving the symbols of its data: a replay of the data
 * (once, or looping for ever), bars published on the deployment's bus topic, or a public exchange
 * through ccxt (its markets relabelled as the data's symbols).
 */
export async function openSwarmFeed(options: SwarmFeedOptions): Promise<Feed> {
  const { spec, from } = options;
  const feed = spec.swarm.feed;
  switch (feed.source) {
    case 'data':
      // The same steps either way (a synthetic feed gives the steps of the market generated whole).
      if (spec.streamed !== undefined) return openSyntheticFeed({ ...spec.streamed.feed, ...(from === undefined ? {} : { from }) });
      return openArrayFeed(spec.backtest.bars, { loop: feed.loop, ...(from === undefined ? {} : { from }) });
    case 'bus': {
      const symbols = new Timeline(spec.backtest.bars).symbols;
      return openBusFeed({
        bus: options.bus,
        topic: swarmTopics(options.swarmId).marketBars(),
        symbols,
        clock: options.clock,
        logger: options.logger,
        ...(feed.stepAfterMs === undefined ? {} : { stepAfterMs: feed.stepAfterMs }),
        ...(feed.maxBuffered === undefined ? {} : { maxBuffered: feed.maxBuffered }),
        ...(from === undefined ? {} : { start: from }),
      });
    }
    case 'ccxt': {
      const symbols = new Timeline(spec.backtest.bars).symbols;
      const marketOf = (symbol: string): string => feed.markets?.[symbol] ?? symbol;
      const symbolOf = new Map(symbols.map((symbol) => [marketOf(symbol), symbol]));
      const exchange = await openCcxtFeed({
        exchange: feed.exchange,
        symbols: symbols.map(marketOf),
        timeframe: feed.timeframe,
        mode: feed.mode,
        clock: options.clock,
        logger: options.logger,
        ...(feed.pollMs === undefined ? {} : { pollMs: feed.pollMs }),
        ...(feed.apiUrl === undefined ? {} : { apiUrl: feed.apiUrl }),
        ...(from === undefined ? {} : { start: from }),
      });
      return relabel(exchange, symbols, (bar) => symbolOf.get(bar.symbol) ?? bar.symbol);
    }
  }
}

/** `feed` with each bar's symbol renamed (an exchange's market as the spec's symbol). */
function relabel(feed: Feed, symbols: readonly string[], symbolOf: (bar: Bar) => string): Feed {
  const rename = (step: FeedStep): FeedStep =>
    Object.freeze({ ...step, bars: Object.freeze(step.bars.map((bar) => Object.freeze({ ...bar, symbol: symbolOf(bar) })).sort((a, b) => (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0))) });
  return {
    symbols,
    get stepCount() {
      return feed.stepCount;
    },
    get closed() {
      return feed.closed;
    },
    position: () => feed.position(),
    read: async (maxSteps) => (await feed.read(maxSteps)).map(rename),
    close: () => feed.close(),
  };
}
