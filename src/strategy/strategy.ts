import type { Bar } from '../market/index.js';
import type { BracketExits } from '../venue/index.js';

/** What a strategy knows about its account when it sees a bar. */
export interface StrategyContext {
  /** Signed units held in `bar.symbol` now (> 0 long, < 0 short, 0 flat). */
  readonly position: number;
  /** Account equity now (cash + positions at the latest marks), in cash units. */
  readonly equity: number;
  /** Index of the bar time step, 0-based, shared by every symbol's bar at that time. */
  readonly barIndex: number;
  /**
   * Signed units held in any symbol now. Runners (the backtest engine, the swarm agent) provide it;
   * strategies that trade two symbols (`pairs`, `crossVenueArbitrage`) require it.
   */
  readonly positionOf?: (symbol: string) => number;
}

/**
 * An order a strategy wants, before it has an id. The runner (backtest engine or swarm agent) turns
 * it into a venue order with `clientOrderId({ swarm, role: strategy.name, barIndex, symbol, intent })`,
 * so a strategy may return at most one intent per (symbol, `intent`) per bar.
 */
export interface Intent {
  readonly symbol: string;
  readonly side: 'buy' | 'sell';
  /** Units; finite and > 0. */
  readonly quantity: number;
  readonly type: 'market' | 'limit' | 'stop';
  /** Required for (and only for) `limit`. */
  readonly limitPrice?: number;
  /** Required for (and only for) `stop`. */
  readonly stopPrice?: number;
  /**
   * What the order is for, e.g. `enter-long`, `exit-long`; part of the client order id. An intent
   * starting `exit-` also cancels the open exits of the strategy's entries in the symbol (runners do it).
   */
  readonly intent: string;
  /** Exits the venue places when this entry fills (a bracket, one-cancels-other; see `BracketExits`). */
  readonly exits?: BracketExits;
  /**
   * How sure the strategy is; weights its vote in consensus (see `Consensus` in `src/decision/`). In (0, 1].
   * @default 1
   */
  readonly confidence?: number;
}

/** Sizes an entry: units to buy at `price` with `equity` (the portfolio's `Sizer` fits). */
export interface StrategySizer {
  quantity(price: number, equity: number): number;
}

/**
 * What a strategy must see before it can first decide: `bars` bars of each of its symbols (time
 * steps with both legs, for two-leg strategies), because its option `field` is `value`. A run with
 * fewer bars cannot trade; runners say so.
 */
export interface StrategyWarmUp {
  /** The option that sets the warm-up, e.g. `slowPeriod`. */
  readonly field: string;
  readonly value: number;
  /** Bars up to and including the first on which it can decide. */
  readonly bars: number;
}

/**
 * One strategy code path for backtest and swarm (DESIGN decision 6): a pure-ish object fed bars in
 * time order that answers intents. It holds only its own indicator state; it never reads clocks,
 * randomness, the venue or the portfolio: everything it may use comes in `bar` and `context`. Feed
 * one instance one run (create a fresh instance for each run).
 */
export interface Strategy {
  /** The role name: unique within a run, part of every client order id. */
  readonly name: string;
  /**
   * The symbols it trades, when it declares them (every strategy here does): allocators weighting
   * by volatility read them, and a runner may feed it only these.
   */
  readonly symbols?: readonly string[];
  /** Its warm-up, when it has one (every strategy here but cross-venue arbitrage). */
  readonly warmUp?: StrategyWarmUp;
  /**
   * Called once per bar of every symbol in the run, in time order (symbols at the same time in
   * alphabetical order); a strategy ignores symbols it does not trade.
   * @returns the orders to place, decided on this bar (empty for none).
   */
  onBar(bar: Bar, context: StrategyContext): readonly Intent[];
}

/** An intent tagged with the strategy (role) that decided it, as allocators and risk filters pass it on. */
export interface StrategyIntent extends Intent {
  /** The deciding strategy's {@link Strategy.name}: the `role` of the client order id. */
  readonly strategy: string;
}
