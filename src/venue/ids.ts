import { createHash } from 'node:crypto';
import { InvalidInputError } from '../core/index.js';

/** What a client order id is derived from (DESIGN decision 5). */
export interface ClientOrderIdParts {
  /** The swarm (or backtest run) name. */
  swarm: string;
  /** The agent role that decided the order, e.g. `executor`. */
  role: string;
  /** Index of the bar the decision was made on; an integer >= 0. */
  barIndex: number;
  symbol: string;
  /** What the order is for, e.g. `enter-long`, `exit`, `rebalance`. */
  intent: string;
}

/** Longest readable piece kept from each text part. */
const MAX_PART_LENGTH = 24;
/** Hex digits of the SHA-256 suffix (48 bits: collisions need ~16 million ids in one swarm). */
const HASH_LENGTH = 12;

/**
 * A deterministic client order id: the same parts always give the same id, so an order submitted
 * again after a failover (by the restarted agent or a peer that decided the same thing) is
 * recognised by the venue as a duplicate.
 *
 * Shape: `swarm:role:barIndex:symbol:intent:hash`, e.g. `demo:executor:42:AAA:enter-long:1f0c…`.
 * The readable parts keep letters, digits, `.`, `_` and `-` (others become `_`) and are cut to 24
 * characters; the 12-hex-digit SHA-256 suffix over the exact parts keeps ids distinct when that
 * cleaning makes two of them look alike.
 * @throws InvalidInputError naming the part when a text part is empty or `barIndex` is not an integer >= 0.
 */
export function clientOrderId(parts: ClientOrderIdParts): string {
  const { swarm, role, barIndex, symbol, intent } = parts;
  const texts = { swarm, role, symbol, intent };
  for (const [field, value] of Object.entries(texts) as [string, unknown][]) {
    if (typeof value !== 'string' || value.trim() === '') {
      throw new InvalidInputError(field, `must be a non-empty string, got ${JSON.stringify(value)}`);
    }
  }
  if (!Number.isSafeInteger(barIndex) || barIndex < 0) {
    throw new InvalidInputError('barIndex', `must be an integer >= 0, got ${barIndex}`);
  }
  const hash = createHash('sha256')
    .update(JSON.stringify([swarm, role, barIndex, symbol, intent]))
    .digest('hex')
    .slice(0, HASH_LENGTH);
  return [readable(swarm), readable(role), String(barIndex), readable(symbol), readable(intent), hash].join(':');
}

function readable(text: string): string {
  return text.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, MAX_PART_LENGTH);
}
