import type { Bar } from '../market/index.js';
import type { Intent, Strategy, StrategyIntent } from './strategy.js';

/**
 * The account as the strategies of one bar time step see it: taken after the step's fills (with
 * next-open fills) and its mark to market, before any of the step's orders.
 */
export interface StrategyAccount {
  /** Cash + positions at the step's marks. */
  readonly equity: number;
  /** Signed units held by symbol; flat symbols are absent. */
  readonly positions: ReadonlyMap<string, number>;
}

const NO_INTENTS: readonly StrategyIntent[] = Object.freeze([]);

/**
 * Feeds one time step's bars to strategies and collects their intents, tagged with the strategy's
 * name: strategies in the given order, each seeing the step's bars in the given order (symbols
 * alphabetical). The one way a step's intents are produced, by the backtest engine and by swarm
 * agents alike, so both see the same intents in the same order.
 */
export function collectIntents(strategies: readonly Strategy[], step: readonly Bar[], account: StrategyAccount, barIndex: number): readonly StrategyIntent[] {
  const positions = account.positions;
  const positionOf = readerOf(positions);
  let intents: StrategyIntent[] | undefined;
  for (const strategy of strategies) {
    for (const bar of step) {
      const decided = strategy.onBar(bar, { position: positions.get(bar.symbol) ?? 0, equity: account.equity, barIndex, positionOf });
      // Indexed: most bars answer a shared frozen empty array, and for-of over a frozen array makes an iterator object.
      for (let k = 0; k < decided.length; k++) (intents ??= []).push({ ...(decided[k] as Intent), strategy: strategy.name });
    }
  }
  return intents ?? NO_INTENTS;
}

/**
 * One `positionOf` function per positions map: runners keep the map until the next fill, so the
 * function is made once per fill rather than once per bar (a closure per bar costs more than the
 * strategy itself in a long backtest).
 */
const readers = new WeakMap<ReadonlyMap<string, number>, (symbol: string) => number>();

function readerOf(positions: ReadonlyMap<string, number>): (symbol: string) => number {
  let reader = readers.get(positions);
  if (reader === undefined) {
    reader = newReader(positions);
    readers.set(positions, reader);
  }
  return reader;
}

/** Made apart from {@link readerOf}: a closure there would make a context object on every call, found or not. */
function newReader(positions: ReadonlyMap<string, number>): (symbol: string) => number {
  return (symbol) => positions.get(symbol) ?? 0;
}
