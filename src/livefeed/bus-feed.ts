import type { Bus, Envelope, Subscription } from '../bus/index.js';
import { type Clock, InvalidInputError, type Logger, type TimerHandle, createLogger } from '../core/index.js';
import type { Bar, Feed, FeedStart } from '../market/index.js';
import { BarMessage, parseBarPayload } from './bar-message.js';
import { LiveStepQueue, RateLimitedWarner, compileLiveStart, compileSymbols, requireClock, wholeOption } from './live-feed.js';
import { StepAssembler } from './step-assembler.js';

/** Options of {@link openBusFeed}. */
export interface BusFeedOptions {
  /** The deployment's bus; its registry must contain {@link BarMessage}. */
  bus: Bus;
  /** Where bars come in: `swarmTopics(id).marketBars()` (`ts/<swarm>/market/bars`). */
  topic: string;
  /** The symbols served; bars of other symbols are dropped and counted. */
  symbols: readonly string[];
  /** Times `stepAfterMs` and rate-limits warnings: `SystemClock`, or `ManualClock` in tests. */
  clock: Clock;
  /**
   * A step is handed out once every symbol has sent a bar of a later time, or `stepAfterMs` after
   * its first bar arrived, whichever comes first, so a symbol that stopped trading does not stall
   * the feed (that step then lacks it). `Infinity`: only when every symbol moved on.
   * @default 5000
   */
  stepAfterMs?: number;
  /** Steps held for the reader; past it the oldest unread step is dropped with a warning (a bus cannot slow its publishers down). @default 10_000 */
  maxBuffered?: number;
  /** Where to start: `{ afterTimeMs }` or a saved position `{ step, lastTimeMs }`; bars at or before that time are ignored. @default whatever comes */
  start?: FeedStart;
  /** Warnings of one kind (malformed, late, unknown symbol, buffer full) are logged at most once per this many ms. @default 60_000 */
  warnEveryMs?: number;
  /** @default createLogger('bus-feed') */
  logger?: Logger;
}

/** Counters of a {@link BusFeed}. */
export interface BusFeedStats {
  /** Valid bars taken into a step (replacements included). */
  readonly bars: number;
  /** Bars that replaced one of the same symbol and time not yet handed out (the later one wins). */
  readonly replaced: number;
  /** Messages dropped because they were not a valid bar. */
  readonly malformed: number;
  /** Bars dropped because their time was at or before the last step handed out (or the start). */
  readonly late: number;
  /** Bars dropped because their symbol is not one of the feed's. */
  readonly unknownSymbol: number;
  /** Steps dropped unread because the buffer was full. */
  readonly droppedSteps: number;
}

/** A {@link Feed} of bars published on a bus topic, with its counters. */
export interface BusFeed extends Feed {
  stats(): BusFeedStats;
}

/**
 * Opens an endless feed of the `bar` messages published on `options.topic`: bars are grouped by
 * time into steps (see `stepAfterMs` for when a step is complete). A duplicate (symbol, time) not yet
 * handed out replaces the earlier bar; once its step is out, it is late. Late bars, bars of other
 * symbols and malformed messages are dropped, counted ({@link BusFeed.stats}) and warned about,
 * naming the field and what it allows; none of them stops the feed. Resolves once subscribed.
 * @throws InvalidInputError naming the first invalid option.
 */
export async function openBusFeed(options: BusFeedOptions): Promise<BusFeed> {
  const feed = new BusBarFeed(options);
  await feed.subscribe(options.bus, options.topic);
  return feed;
}

class BusBarFeed extends LiveStepQueue implements BusFeed {
  readonly #clock: Clock;
  readonly #stepAfterMs: number;
  readonly #assembler: StepAssembler;
  readonly #warner: RateLimitedWarner;
  /** When the first bar of each pending step arrived, on the clock. */
  readonly #firstSeen = new Map<number, number>();
  #subscription: Subscription | undefined;
  #timer: TimerHandle | undefined;
  #counts = { bars: 0, replaced: 0, malformed: 0, late: 0, unknownSymbol: 0 };

  constructor(options: BusFeedOptions) {
    if (typeof options !== 'object' || options === null) throw new InvalidInputError('options', 'must be an object { bus, topic, symbols, clock }');
    const clock = requireClock(options.clock);
    const symbols = compileSymbols(options.symbols);
    const start = compileLiveStart(options.start);
    const warner = new RateLimitedWarner(options.logger ?? createLogger('bus-feed'), clock, wholeOption('warnEveryMs', options.warnEveryMs, 60_000, 0));
    let stopping: () => Promise<void> = () => Promise.resolve();
    super({ symbols, start, maxBuffered: wholeOption('maxBuffered', options.maxBuffered, 10_000, 1), warner, onClose: () => stopping() });
    stopping = () => this.#stop();
    this.#clock = clock;
    this.#warner = warner;
    this.#stepAfterMs = wholeOption('stepAfterMs', options.stepAfterMs, 5000, 0);
    this.#assembler = new StepAssembler(symbols, start.afterTimeMs);
    if (typeof options.topic !== 'string' || options.topic === '') throw new InvalidInputError('topic', `must be a topic name such as swarmTopics(id).marketBars(), got ${JSON.stringify(options.topic)}`);
    if (typeof options.bus !== 'object' || options.bus === null || typeof options.bus.subscribe !== 'function') throw new InvalidInputError('bus', 'must be a Bus (connectBus, createMemoryBus)');
  }

  async subscribe(bus: Bus, topic: string): Promise<void> {
    this.#subscription = await bus.subscribe(topic, (envelope) => this.#receive(envelope, topic));
  }

  stats(): BusFeedStats {
    return { ...this.#counts, droppedSteps: this.droppedSteps };
  }

  #receive(envelope: Envelope, topic: string): void {
    if (this.closed) return;
    if (!BarMessage.is(envelope)) {
      this.#counts.malformed += 1;
      this.#warner.warn('malformed', { topic, field: 'type', from: envelope.from, malformed: this.#counts.malformed }, `bus feed: dropped a '${envelope.type}' message on the bars topic; only 'bar' messages are allowed there`);
      return;
    }
    const parsed = parseBarPayload(envelope.payload);
    if (!parsed.ok) {
      this.#counts.malformed += 1;
      this.#warner.warn('malformed', { topic, field: `payload.${parsed.field}`, from: envelope.from, malformed: this.#counts.malformed }, `bus feed: dropped a malformed bar: payload.${parsed.field} ${parsed.problem}`);
      return;
    }
    this.#take(parsed.bar, topic);
  }

  #take(bar: Bar, topic: string): void {
    const result = this.#assembler.add(bar);
    if (result === 'unknown-symbol') {
      this.#counts.unknownSymbol += 1;
      this.#warner.warn('unknown-symbol', { topic, symbol: bar.symbol, unknownSymbol: this.#counts.unknownSymbol }, `bus feed: dropped a bar of ${JSON.stringify(bar.symbol)}, not one of the feed's symbols (${this.symbols.join(', ')})`);
      return;
    }
    if (result === 'late') {
      this.#counts.late += 1;
      this.#warner.warn(
        'late',
        { topic, symbol: bar.symbol, timeMs: bar.timeMs, lastStepMs: this.#assembler.lastEmittedMs, late: this.#counts.late },
        'bus feed: dropped a late bar: its time is at or before the last step handed out (or the start); publish bars in time order',
      );
      return;
    }
    this.#counts.bars += 1;
    if (result === 'replaced') this.#counts.replaced += 1;
    if (!this.#firstSeen.has(bar.timeMs)) this.#firstSeen.set(bar.timeMs, this.#clock.now());
    this.#hand(this.#assembler.takeComplete());
    this.#schedule();
  }

  #hand(steps: readonly (readonly Bar[])[]): void {
    for (const bars of steps) {
      this.#firstSeen.delete((bars[0] as Bar).timeMs);
      this.push(bars);
    }
  }

  /** Sets the timer for the earliest step deadline (`stepAfterMs` after its first bar). */
  #schedule(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#firstSeen.size === 0 || this.#stepAfterMs === Infinity) return;
    const due = Math.min(...this.#firstSeen.values()) + this.#stepAfterMs;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      const now = this.#clock.now();
      let through = -Infinity;
      for (const [timeMs, seenMs] of this.#firstSeen) if (seenMs + this.#stepAfterMs <= now) through = Math.max(through, timeMs);
      this.#hand(this.#assembler.flushThrough(through));
      this.#schedule();
    }, due - this.#clock.now());
  }

  async #stop(): Promise<void> {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#subscription?.unsubscribe();
  }
}
