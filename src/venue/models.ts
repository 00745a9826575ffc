import { InvalidInputError } from '../core/index.js';
import type { FeeConfig, FeeOptions, Side, SlippageConfig, SlippageOptions } from './types.js';

const BPS = 10_000;

/**
 * Checks slippage options and fills in defaults.
 * @throws InvalidInputError naming the field (`slippage.bps`, …) when a value is invalid.
 */
export function compileSlippage(options: SlippageOptions | undefined, field = 'slippage'): SlippageConfig {
  if (options === undefined) return Object.freeze({ model: 'none' });
  const model = (options as { model?: unknown }).model;
  switch (model) {
    case 'none':
      return Object.freeze({ model: 'none' });
    case 'bps': {
      const { bps } = options as { bps: number };
      return Object.freeze({ model: 'bps', bps: nonNegative(`${field}.bps`, bps) });
    }
    case 'fixed': {
      const { amountPerShare } = options as { amountPerShare: number };
      return Object.freeze({ model: 'fixed', amountPerShare: nonNegative(`${field}.amountPerShare`, amountPerShare) });
    }
    default:
      throw new InvalidInputError(`${field}.model`, `must be 'none', 'bps' or 'fixed', got ${JSON.stringify(model)}`);
  }
}

/**
 * Checks fee options and fills in defaults (`minimumPerOrder` 0).
 * @throws InvalidInputError naming the field (`fees.amountPerShare`, …) when a value is invalid.
 */
export function compileFees(options: FeeOptions | undefined, field = 'fees'): FeeConfig {
  if (options === undefined) return Object.freeze({ model: 'none' });
  const model = (options as { model?: unknown }).model;
  switch (model) {
    case 'none':
      return Object.freeze({ model: 'none' });
    case 'fixed': {
      const { amountPerOrder } = options as { amountPerOrder: number };
      return Object.freeze({ model: 'fixed', amountPerOrder: nonNegative(`${field}.amountPerOrder`, amountPerOrder) });
    }
    case 'bps': {
      const { bps, minimumPerOrder } = options as { bps: number; minimumPerOrder?: number };
      return Object.freeze({
        model: 'bps',
        bps: nonNegative(`${field}.bps`, bps),
        minimumPerOrder: nonNegative(`${field}.minimumPerOrder`, minimumPerOrder ?? 0),
      });
    }
    case 'per-share': {
      const { amountPerShare, minimumPerOrder } = options as { amountPerShare: number; minimumPerOrder?: number };
      return Object.freeze({
        model: 'per-share',
        amountPerShare: nonNegative(`${field}.amountPerShare`, amountPerShare),
        minimumPerOrder: nonNegative(`${field}.minimumPerOrder`, minimumPerOrder ?? 0),
      });
    }
    default:
      throw new InvalidInputError(
        `${field}.model`,
        `must be 'none', 'fixed', 'bps' or 'per-share', got ${JSON.stringify(model)}`,
      );
  }
}

/** The execution price of `side` at `basePrice` after slippage (always against the trader, never below 0). */
export function applySlippage(config: SlippageConfig, side: Side, basePrice: number): number {
  const direction = side === 'buy' ? 1 : -1;
  switch (config.model) {
    case 'none':
      return basePrice;
    case 'bps':
      return Math.max(0, basePrice * (1 + (direction * config.bps) / BPS));
    case 'fixed':
      return Math.max(0, basePrice + direction * config.amountPerShare);
  }
}

/** What an order has been charged so far, as {@link feeForFill} needs it. */
export interface FeeSoFar {
  /** Fills the order has had before this one. */
  readonly fillCount: number;
  /** Sum of the model's raw per-fill fees before any minimum. */
  readonly rawTotal: number;
  /** Sum of the fees actually charged. */
  readonly charged: number;
}

/**
 * The fee of one fill (>= 0) and the order's new raw total. See {@link FeeOptions} for the rules.
 */
export function feeForFill(
  config: FeeConfig,
  price: number,
  quantity: number,
  soFar: FeeSoFar,
): { fee: number; rawTotal: number } {
  switch (config.model) {
    case 'none':
      return { fee: 0, rawTotal: 0 };
    case 'fixed':
      return { fee: soFar.fillCount === 0 ? config.amountPerOrder : 0, rawTotal: 0 };
    case 'bps':
    case 'per-share': {
      const raw = config.model === 'bps' ? (price * quantity * config.bps) / BPS : quantity * config.amountPerShare;
      const rawTotal = soFar.rawTotal + raw;
      if (soFar.fillCount === 0) return { fee: Math.max(raw, config.minimumPerOrder), rawTotal };
      // While the minimum is still binding, a fill pays only what the running raw total exceeds it by.
      const fee = soFar.charged > soFar.rawTotal ? Math.max(0, rawTotal - soFar.charged) : raw;
      return { fee, rawTotal };
    }
  }
}

function nonNegative(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new InvalidInputError(field, `must be a finite number >= 0, got ${JSON.stringify(value)}`);
  }
  return value;
}
