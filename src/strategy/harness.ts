/**
 * A test harness for strategies (used by this domain's tests): feeds time steps of closes and fills
 * every intent at once, at the close, so a table of closes maps to a table of intents by hand.
 */
import { flatBar } from '../../test/fixtures/bars.js';
import type { Intent, Strategy } from './strategy.js';

/** One time step: the close of each symbol that has a bar then. */
export type Closes = Readonly<Record<string, number>>;

/** Steps of one symbol's closes. */
export function closesOf(symbol: string, closes: readonly number[]): Closes[] {
  return closes.map((close) => ({ [symbol]: close }));
}

/**
 * Feeds `steps` to `strategy` (symbols of a step in alphabetical order), applying each intent to
 * the positions at once; returns `[barIndex, intent]` for every intent, in order.
 */
export function runSteps(
  strategy: Strategy,
  steps: readonly Closes[],
  options: { equity?: number; positions?: Readonly<Record<string, number>> } = {},
): Array<[number, Intent]> {
  const positions = new Map(Object.entries(options.positions ?? {}));
  const positionOf = (symbol: string): number => positions.get(symbol) ?? 0;
  const out: Array<[number, Intent]> = [];
  steps.forEach((step, barIndex) => {
    for (const symbol of Object.keys(step).sort()) {
      const bar = flatBar(symbol, barIndex, step[symbol] as number);
      const intents = strategy.onBar(bar, { position: positionOf(symbol), equity: options.equity ?? 10_000, barIndex, positionOf });
      for (const intent of intents) {
        out.push([barIndex, intent]);
        positions.set(intent.symbol, positionOf(intent.symbol) + (intent.side === 'buy' ? intent.quantity : -intent.quantity));
      }
    }
  });
  return out;
}

/** `[barIndex, intent label, side, quantity, symbol]` rows, for compact tables. */
export function rows(intents: ReadonlyArray<[number, Intent]>): Array<[number, string, string, number, string]> {
  return intents.map(([barIndex, intent]) => [barIndex, intent.intent, intent.side, intent.quantity, intent.symbol]);
}
