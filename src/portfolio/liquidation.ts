import { InvalidInputError } from '../core/index.js';
import type { Bar } from '../market/index.js';
import type { EquityPoint } from './curve.js';
import type { Portfolio, PortfolioFill } from './portfolio.js';

/** What happens to open positions when the data ends. */
export const EndOfDataRule = {
  /** Close every position at its last bar's open. */
  liquidateAtOpen: 'liquidate-at-open',
  /** Close every position at its last bar's close. */
  liquidateAtClose: 'liquidate-at-close',
  /** Keep positions open and value them at their last bar's close. */
  markToMarket: 'mark-to-market',
} as const;
export type EndOfDataRule = (typeof EndOfDataRule)[keyof typeof EndOfDataRule];

/** Options of {@link settleEndOfData}. */
export interface SettleEndOfDataOptions {
  /** @default 'mark-to-market' */
  rule?: EndOfDataRule;
  /** Fee of a liquidating fill, from its quantity and price. @default () => 0 */
  feeForFill?: (quantity: number, price: number) => number;
}

/** What {@link settleEndOfData} did. */
export interface EndOfDataSettlement {
  readonly rule: EndOfDataRule;
  /** The liquidating fills applied, by symbol (empty for `mark-to-market`). */
  readonly fills: readonly PortfolioFill[];
  /** The final equity point, at the latest time of `lastBars`, valued at their closes. */
  readonly finalPoint: EquityPoint;
}

/**
 * Applies the end-of-data rule. Liquidating fills have the client order id
 * `end-of-data:<symbol>:<timeMs>`, the bar's time and the opposite side of the position. Then the
 * portfolio is marked at the latest bar time with every bar's close (replacing a point already
 * recorded at that time), so the last equity point is the settled one.
 * @param lastBars the last bar of each symbol; every symbol with an open position must have one.
 * @throws InvalidInputError when `lastBars` is empty, a symbol appears twice, an open position has no bar, or the rule is unknown.
 */
export function settleEndOfData(
  portfolio: Portfolio,
  lastBars: readonly Bar[],
  options: SettleEndOfDataOptions = {},
): EndOfDataSettlement {
  const rule = options.rule ?? EndOfDataRule.markToMarket;
  if (!Object.values(EndOfDataRule).includes(rule)) {
    throw new InvalidInputError('rule', `must be one of ${Object.values(EndOfDataRule).join(', ')}, got ${JSON.stringify(rule)}`);
  }
  if (lastBars.length === 0) throw new InvalidInputError('lastBars', 'must hold the last bar of every traded symbol, got none');
  const barBySymbol = new Map<string, Bar>();
  for (const bar of lastBars) {
    if (barBySymbol.has(bar.symbol)) {
      throw new InvalidInputError('lastBars', `must hold one bar per symbol, got two for ${bar.symbol}`);
    }
    barBySymbol.set(bar.symbol, bar);
  }
  const open = portfolio.openPositions();
  for (const position of open) {
    if (!barBySymbol.has(position.symbol)) {
      throw new InvalidInputError('lastBars', `has no bar for ${position.symbol}, which has an open position of ${position.quantity}`);
    }
  }

  const fills: PortfolioFill[] = [];
  if (rule !== EndOfDataRule.markToMarket) {
    const feeForFill = options.feeForFill ?? (() => 0);
    for (const position of open) {
      const bar = barBySymbol.get(position.symbol) as Bar;
      const price = rule === EndOfDataRule.liquidateAtOpen ? bar.open : bar.close;
      const quantity = Math.abs(position.quantity);
      const fill: PortfolioFill = Object.freeze({
        clientOrderId: `end-of-data:${position.symbol}:${bar.timeMs}`,
        symbol: position.symbol,
        side: position.quantity > 0 ? 'sell' : 'buy',
        quantity,
        price,
        fee: feeForFill(quantity, price),
        timeMs: bar.timeMs,
      });
      portfolio.apply(fill);
      fills.push(fill);
    }
  }
  const timeMs = Math.max(...lastBars.map((bar) => bar.timeMs));
  const finalPoint = portfolio.markToMarket(timeMs, lastBars);
  return Object.freeze({ rule, fills: Object.freeze(fills), finalPoint });
}
