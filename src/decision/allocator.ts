import { getStandardDeviation } from 'trading-signals';
import { InvalidInputError } from '../core/index.js';
import type { Bar } from '../market/index.js';
import { type StrategyIntent, optionalBoolean, requireBars } from '../strategy/index.js';
import { type QuantitiesBySymbol, splitIntent, toQuantityMap } from './quantities.js';

/** Slack when rounding a scaled quantity down to whole units. */
const WHOLE_UNIT_TOLERANCE = 1e-9;

/** What a strategy's intents on one bar may spend, and what else {@link allocate} needs to know. */
export interface AllocationContext {
  /** Account equity now; budgets are fractions of it (none when it is <= 0). */
  readonly equity: number;
  /** Signed units held by symbol before these intents (missing = 0). */
  readonly positions: QuantitiesBySymbol;
  /** The latest price by symbol; needed for every symbol an intent opens a position in. */
  readonly prices: QuantitiesBySymbol;
  /** Each strategy's share of equity, by strategy name (fractions >= 0; their sum should be <= 1). */
  readonly weights: QuantitiesBySymbol;
  /** Round scaled-down quantities down to whole units. @default false */
  readonly wholeUnits?: boolean;
}

/** One intent whose quantity the allocator changed (to 0 when dropped). */
export interface AllocationChange {
  readonly strategy: string;
  readonly symbol: string;
  readonly intent: string;
  readonly from: number;
  readonly to: number;
}

/** The outcome of {@link allocate}. */
export interface Allocation {
  /** The intents to pass on: by strategy name, each strategy's in its own order; dropped ones left out. */
  readonly intents: StrategyIntent[];
  /** Intents cut to fit their strategy's budget. */
  readonly scaled: AllocationChange[];
  /** Intents cut or dropped because another intent on the same symbol went the other way. */
  readonly netted: AllocationChange[];
  /** Each strategy's budget on this bar: weight × max(equity, 0). */
  readonly budgets: ReadonlyMap<string, number>;
}

/**
 * Fits several strategies' intents for one bar into one account. Pure and deterministic.
 *
 * 1. Order: intents are taken by strategy name, each strategy's in the order it gave them.
 * 2. Budgets: strategy `s` may open at most `weight_s × max(equity, 0)` of notional on this bar.
 *    Each intent is split against the account position (moved by the strategy's earlier intents on
 *    the same symbol) into a reducing part (trades against the position, up to its size) and an
 *    opening part; notional = opening units × price. When a strategy's opening notional exceeds its
 *    budget, every opening part is multiplied by `budget / notional` (so a pair's legs keep their
 *    ratio) and, with `wholeUnits`, rounded down; reducing parts are never cut. Intents left with
 *    nothing are dropped; when that leaves part of a group (a strategy's intents with the same
 *    `intent` label, such as a pair's two legs) empty, the whole group opens nothing.
 * 3. Netting: for each symbol with market intents on both sides, the smaller side is dropped and its
 *    total is taken off the larger side's intents, largest first (ties by strategy name, then
 *    intent). The account ends where it would have without netting, with fewer and smaller orders.
 *    Limit and stop intents are neither netted nor counted.
 * @throws InvalidInputError naming the field when equity is not finite, a strategy has no weight, a
 *   weight is negative, or an intent opens a position in a symbol without a price.
 */
export function allocate(intents: readonly StrategyIntent[], context: AllocationContext): Allocation {
  const equity = context.equity;
  if (typeof equity !== 'number' || !Number.isFinite(equity)) throw new InvalidInputError('equity', `must be a finite number, got ${String(equity)}`);
  const positions = toQuantityMap('positions', context.positions);
  const prices = toQuantityMap('prices', context.prices);
  const weights = toQuantityMap('weights', context.weights);
  const wholeUnits = optionalBoolean('wholeUnits', context.wholeUnits, false);

  const byStrategy = new Map<string, StrategyIntent[]>();
  intents.forEach((intent, i) => {
    const strategy: unknown = intent.strategy;
    if (typeof strategy !== 'string' || !weights.has(strategy)) {
      throw new InvalidInputError(`weights.${String(strategy)}`, `is missing: intents[${i}] comes from ${JSON.stringify(strategy)}, which has no weight`);
    }
    const list = byStrategy.get(strategy);
    if (list) list.push(intent);
    else byStrategy.set(strategy, [intent]);
  });
  const budgets = new Map<string, number>();
  for (const [strategy, weight] of weights) {
    if (weight < 0) throw new InvalidInputError(`weights.${strategy}`, `must be >= 0, got ${weight}`);
    budgets.set(strategy, weight * Math.max(equity, 0));
  }

  const scaled: AllocationChange[] = [];
  const sized: StrategyIntent[] = [];
  for (const strategy of [...byStrategy.keys()].sort(compareText)) {
    const own = byStrategy.get(strategy) as StrategyIntent[];
    const budget = budgets.get(strategy) as number;
    const priceOf = (symbol: string): number => {
      const price = prices.get(symbol);
      if (price === undefined || !(price > 0)) throw new InvalidInputError(`prices.${symbol}`, `is needed (an intent of ${strategy} opens a position in ${symbol}), got ${String(price)}`);
      return price;
    };
    // Pass 1: the opening notional as asked, for the common factor.
    let asked = 0;
    walk(own, positions, (intent, parts) => {
      if (parts.opening > 0) asked += parts.opening * priceOf(intent.symbol);
      return intent.quantity;
    });
    const factor = asked > budget ? budget / asked : 1;
    // Pass 2: scale, classifying against the positions the scaled intents leave; never past the
    // budget. A group (same intent label) that rounding leaves partly empty opens nothing at all, so
    // the pass reruns without that group's opening parts until no group is left half-done.
    const scale = (dropped: ReadonlySet<string>): Array<{ intent: StrategyIntent; quantity: number; opened: boolean }> => {
      const out: Array<{ intent: StrategyIntent; quantity: number; opened: boolean }> = [];
      let remaining = budget;
      walk(own, positions, (intent, parts) => {
        if (parts.opening === 0) {
          out.push({ intent, quantity: intent.quantity, opened: false });
          return intent.quantity;
        }
        const price = priceOf(intent.symbol);
        let opening = dropped.has(intent.intent) ? 0 : parts.opening * factor;
        if (opening * price > remaining + 1e-9 * budget) opening = Math.max(0, remaining / price);
        if (opening !== parts.opening && wholeUnits) opening = Math.floor(opening + WHOLE_UNIT_TOLERANCE);
        remaining -= opening * price;
        // Unchanged stays exactly as asked (reducing + opening may differ from it in the last bit).
        const quantity = opening === parts.opening ? intent.quantity : parts.reducing + opening;
        out.push({ intent, quantity, opened: opening > 0 });
        return quantity;
      });
      return out;
    };
    const dropped = new Set<string>();
    let result = scale(dropped);
    for (;;) {
      const halfDone = result
        .filter(({ intent, quantity }) => quantity === 0 && !dropped.has(intent.intent))
        .map(({ intent }) => intent.intent)
        .filter((label) => result.some(({ intent, opened }) => opened && intent.intent === label));
      if (halfDone.length === 0) break;
      for (const label of halfDone) dropped.add(label);
      result = scale(dropped);
    }
    for (const { intent, quantity } of result) {
      if (quantity !== intent.quantity) scaled.push(change(intent, quantity));
      if (quantity > 0) sized.push(quantity === intent.quantity ? intent : { ...intent, quantity });
    }
  }

  const netted: AllocationChange[] = [];
  // Indices into `sized` of the market intents of each symbol.
  const bySymbol = new Map<string, number[]>();
  sized.forEach((intent, index) => {
    if (intent.type !== 'market') return;
    const list = bySymbol.get(intent.symbol);
    if (list) list.push(index);
    else bySymbol.set(intent.symbol, [index]);
  });
  const quantities = sized.map((intent) => intent.quantity);
  const at = (index: number): StrategyIntent => sized[index] as StrategyIntent;
  const total = (indices: readonly number[]): number => indices.reduce((sum, index) => sum + at(index).quantity, 0);
  for (const indices of bySymbol.values()) {
    const buys = indices.filter((index) => at(index).side === 'buy');
    const sells = indices.filter((index) => at(index).side === 'sell');
    if (buys.length === 0 || sells.length === 0) continue;
    const [larger, smaller] = total(buys) >= total(sells) ? [buys, sells] : [sells, buys];
    let offset = total(smaller);
    for (const index of smaller) quantities[index] = 0;
    const order = [...larger].sort((x, y) => at(y).quantity - at(x).quantity || compareText(at(x).strategy, at(y).strategy) || compareText(at(x).intent, at(y).intent) || x - y);
    for (const index of order) {
      if (offset <= 0) break;
      const cut = Math.min(at(index).quantity, offset);
      offset -= cut;
      quantities[index] = at(index).quantity - cut;
    }
  }
  const out: StrategyIntent[] = [];
  sized.forEach((intent, index) => {
    const quantity = quantities[index] as number;
    if (quantity !== intent.quantity) netted.push(change(intent, quantity));
    if (quantity > 0) out.push(quantity === intent.quantity ? intent : { ...intent, quantity });
  });
  return { intents: out, scaled, netted, budgets };
}

/** Calls `visit` on each intent with its parts against the running positions, moved by the quantity `visit` returns. */
function walk(
  intents: readonly StrategyIntent[],
  start: ReadonlyMap<string, number>,
  visit: (intent: StrategyIntent, parts: ReturnType<typeof splitIntent>) => number,
): void {
  const running = new Map<string, number>();
  for (const intent of intents) {
    const position = running.get(intent.symbol) ?? start.get(intent.symbol) ?? 0;
    const quantity = visit(intent, splitIntent(intent.side, intent.quantity, position));
    running.set(intent.symbol, position + (intent.side === 'buy' ? quantity : -quantity));
  }
}

function change(intent: StrategyIntent, to: number): AllocationChange {
  return { strategy: intent.strategy, symbol: intent.symbol, intent: intent.intent, from: intent.quantity, to };
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** How a {@link PortfolioAllocator} splits equity between strategies. */
export const Weighting = {
  /** `1 / n` each. */
  equal: 'equal',
  /** The given `weights`. */
  fixed: 'fixed',
  /** Proportional to `1 / volatility` of each strategy's symbols over the last `lookbackBars` bars. */
  inverseVolatility: 'inverse-volatility',
} as const;
export type Weighting = (typeof Weighting)[keyof typeof Weighting];

/** A strategy as the allocator knows it (a `Strategy` fits). */
export interface AllocatedStrategy {
  readonly name: string;
  /** The symbols it trades; required for `inverse-volatility`. */
  readonly symbols?: readonly string[];
}

/** Options of {@link createPortfolioAllocator}. */
export interface PortfolioAllocatorOptions {
  /** Every strategy that may send intents (names unique). */
  strategies: readonly AllocatedStrategy[];
  /** @default 'equal' */
  weighting?: Weighting;
  /** Fraction of equity per strategy name, each >= 0, summing to <= 1; required for (and only for) `fixed`. */
  weights?: Readonly<Record<string, number>>;
  /** Bars of closes whose log returns give the volatility (`inverse-volatility` only); >= 2. @default 20 */
  lookbackBars?: number;
  /** Round scaled-down quantities down to whole units. @default false */
  wholeUnits?: boolean;
}

/** The compiled, complete form of {@link PortfolioAllocatorOptions}. */
export interface PortfolioAllocatorConfig {
  readonly strategies: readonly { readonly name: string; readonly symbols: readonly string[] }[];
  readonly weighting: Weighting;
  /** The fixed weights (`fixed`), else empty. */
  readonly weights: ReadonlyMap<string, number>;
  readonly lookbackBars: number;
  readonly wholeUnits: boolean;
}

/** Tolerance on the sum of fixed weights. */
const WEIGHT_SUM_TOLERANCE = 1e-9;

/**
 * Fills in defaults and checks every option.
 * @throws InvalidInputError naming the field, e.g. `weights.momentum-AAA-20` or `strategies[1].symbols`.
 */
export function compilePortfolioAllocatorOptions(options: PortfolioAllocatorOptions): PortfolioAllocatorConfig {
  const list: unknown = options?.strategies;
  if (!Array.isArray(list) || list.length === 0) throw new InvalidInputError('strategies', 'must list at least one strategy ({ name, symbols })');
  const weighting: unknown = options.weighting ?? Weighting.equal;
  if (!Object.values(Weighting).includes(weighting as Weighting)) {
    throw new InvalidInputError('weighting', `must be one of ${Object.values(Weighting).map((w) => `'${w}'`).join(', ')}, got ${JSON.stringify(weighting)}`);
  }
  const names = new Set<string>();
  const strategies = (list as AllocatedStrategy[]).map((strategy, i) => {
    const name: unknown = strategy?.name;
    if (typeof name !== 'string' || name.trim() === '') throw new InvalidInputError(`strategies[${i}].name`, `must be a non-empty string, got ${JSON.stringify(name)}`);
    if (names.has(name)) throw new InvalidInputError(`strategies[${i}].name`, `${JSON.stringify(name)} is used twice; names must be unique`);
    names.add(name);
    const symbols: unknown = strategy.symbols ?? [];
    if (!Array.isArray(symbols) || symbols.some((symbol) => typeof symbol !== 'string' || symbol === '')) {
      throw new InvalidInputError(`strategies[${i}].symbols`, 'must be a list of symbols');
    }
    if (weighting === Weighting.inverseVolatility && symbols.length === 0) {
      throw new InvalidInputError(`strategies[${i}].symbols`, `must name the symbols ${name} trades: inverse-volatility weighting reads their volatility`);
    }
    return Object.freeze({ name, symbols: Object.freeze([...(symbols as string[])]) });
  });
  const weights = new Map<string, number>();
  if (weighting === Weighting.fixed) {
    const given: unknown = options.weights;
    if (typeof given !== 'object' || given === null) throw new InvalidInputError('weights', 'is required with weighting fixed: a fraction of equity per strategy name');
    for (const name of Object.keys(given)) {
      if (!names.has(name)) throw new InvalidInputError(`weights.${name}`, `is not one of the strategies (${[...names].join(', ')})`);
    }
    let sum = 0;
    for (const { name } of strategies) {
      const weight: unknown = (given as Record<string, unknown>)[name];
      if (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0) {
        throw new InvalidInputError(`weights.${name}`, `must be a fraction of equity >= 0 (every strategy needs one), got ${String(weight)}`);
      }
      weights.set(name, weight);
      sum += weight;
    }
    if (sum > 1 + WEIGHT_SUM_TOLERANCE) throw new InvalidInputError('weights', `must sum to <= 1 (fractions of equity), got ${sum}`);
  } else if (options.weights !== undefined) {
    throw new InvalidInputError('weights', `only applies with weighting fixed (weighting is ${String(weighting)})`);
  }
  return Object.freeze({
    strategies: Object.freeze(strategies),
    weighting: weighting as Weighting,
    weights,
    lookbackBars: requireBars('lookbackBars', options.lookbackBars ?? 20, 2),
    wholeUnits: optionalBoolean('wholeUnits', options.wholeUnits, false),
  });
}

/** Everything a {@link PortfolioAllocator} remembers, as plain data. */
export interface PortfolioAllocatorSnapshot {
  /** `inverse-volatility`: the last closes (at most `lookbackBars + 1`) of each strategy symbol, oldest first; else empty. */
  readonly closes: ReadonlyArray<readonly [string, readonly number[]]>;
}

/**
 * A portfolio allocator for hubs and coordinators: holds the weighting (and, for
 * `inverse-volatility`, recent closes) and applies {@link allocate} to each bar's intents.
 * Deterministic: fed the same bars and intents, it answers the same.
 *
 * Inverse-volatility weights: a symbol's volatility is the population standard deviation of its
 * last `lookbackBars` log returns (closes fed with {@link PortfolioAllocator.onBar}); a strategy's
 * is the mean over its symbols; weights are `(1/σ_s) / Σ(1/σ)`. Until every strategy has a
 * volatility > 0, weights are equal.
 */
export class PortfolioAllocator {
  readonly config: PortfolioAllocatorConfig;
  readonly #closes = new Map<string, number[]>();

  /**
   * @param snapshot what an allocator of the same options remembered ({@link PortfolioAllocator.snapshot}), to go on from.
   * @throws InvalidInputError naming the field of a bad option or snapshot.
   */
  constructor(options: PortfolioAllocatorOptions, snapshot?: PortfolioAllocatorSnapshot) {
    this.config = compilePortfolioAllocatorOptions(options);
    if (this.config.weighting === Weighting.inverseVolatility) {
      for (const { symbols } of this.config.strategies) for (const symbol of symbols) this.#closes.set(symbol, []);
    }
    for (const [symbol, closes] of snapshot?.closes ?? []) {
      const kept = this.#closes.get(symbol);
      if (kept === undefined) throw new InvalidInputError(`snapshot.closes.${symbol}`, 'is not a symbol whose closes this allocator keeps (inverse-volatility weighting of a strategy symbol)');
      if (closes.length > this.config.lookbackBars + 1) throw new InvalidInputError(`snapshot.closes.${symbol}`, `must hold at most lookbackBars + 1 = ${this.config.lookbackBars + 1} closes, got ${closes.length}`);
      kept.push(...closes);
    }
  }

  /** What it remembers, to go on with `new PortfolioAllocator(options, snapshot)`. */
  snapshot(): PortfolioAllocatorSnapshot {
    return { closes: [...this.#closes].map(([symbol, closes]) => [symbol, [...closes]] as const) };
  }

  /** Feeds a bar (needed only for `inverse-volatility`; other bars are ignored). */
  onBar(bar: Bar): void {
    const closes = this.#closes.get(bar.symbol);
    if (closes === undefined) return;
    closes.push(bar.close);
    if (closes.length > this.config.lookbackBars + 1) closes.shift();
  }

  /** Each strategy's share of equity now. */
  weights(): ReadonlyMap<string, number> {
    const { strategies, weighting } = this.config;
    if (weighting === Weighting.fixed) return this.config.weights;
    const equal = (): Map<string, number> => new Map(strategies.map(({ name }) => [name, 1 / strategies.length]));
    if (weighting === Weighting.equal) return equal();
    const inverse: number[] = [];
    for (const { symbols } of strategies) {
      const volatilities = symbols.map((symbol) => this.volatility(symbol));
      if (volatilities.some((v) => v === undefined || !(v > 0))) return equal();
      const mean = (volatilities as number[]).reduce((sum, v) => sum + v, 0) / volatilities.length;
      inverse.push(1 / mean);
    }
    const total = inverse.reduce((sum, v) => sum + v, 0);
    return new Map(strategies.map(({ name }, i) => [name, (inverse[i] as number) / total]));
  }

  /**
   * {@link allocate} with this allocator's weights and rounding.
   * @throws InvalidInputError as {@link allocate} does.
   */
  allocate(intents: readonly StrategyIntent[], context: Omit<AllocationContext, 'weights' | 'wholeUnits'>): Allocation {
    return allocate(intents, { ...context, weights: this.weights(), wholeUnits: this.config.wholeUnits });
  }

  private volatility(symbol: string): number | undefined {
    const closes = this.#closes.get(symbol);
    if (closes === undefined || closes.length < this.config.lookbackBars + 1) return undefined;
    const returns = closes.slice(1).map((close, i) => Math.log(close / (closes[i] as number)));
    return getStandardDeviation(returns);
  }
}

/**
 * A portfolio allocator (see {@link PortfolioAllocator}).
 * @throws InvalidInputError naming the field of a bad option.
 */
export function createPortfolioAllocator(options: PortfolioAllocatorOptions): PortfolioAllocator {
  return new PortfolioAllocator(options);
}
