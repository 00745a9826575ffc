import { describe, expect, it } from 'vitest';
import { applySlippage, compileFees, compileSlippage, feeForFill } from './index.js';

describe('applySlippage', () => {
  it.each([
    [{ model: 'none' } as const, 'buy', 50, 50],
    [{ model: 'bps', bps: 100 } as const, 'buy', 50, 50.5],
    [{ model: 'bps', bps: 100 } as const, 'sell', 50, 49.5],
    [{ model: 'fixed', amountPerShare: 0.5 } as const, 'buy', 50, 50.5],
    [{ model: 'fixed', amountPerShare: 0.5 } as const, 'sell', 50, 49.5],
    [{ model: 'fixed', amountPerShare: 0.5 } as const, 'sell', 0.25, 0], // never below 0
  ] as const)('%j %s at %d → %d', (options, side, base, expected) => {
    expect(applySlippage(compileSlippage(options), side, base)).toBeCloseTo(expected, 12);
  });
});

describe('feeForFill', () => {
  const first = { fillCount: 0, rawTotal: 0, charged: 0 };
  it.each([
    [{ model: 'none' } as const, 20, 5, first, 0],
    [{ model: 'fixed', amountPerOrder: 1.5 } as const, 20, 5, first, 1.5],
    [{ model: 'fixed', amountPerOrder: 1.5 } as const, 20, 5, { fillCount: 1, rawTotal: 0, charged: 1.5 }, 0],
    [{ model: 'bps', bps: 10 } as const, 20, 5, first, 0.1],
    [{ model: 'bps', bps: 10, minimumPerOrder: 1 } as const, 20, 5, first, 1],
    [{ model: 'per-share', amountPerShare: 0.02 } as const, 20, 5, first, 0.1],
    [{ model: 'per-share', amountPerShare: 0.02, minimumPerOrder: 0.25 } as const, 20, 5, first, 0.25],
    // minimum still binding after this fill: 0.1 + 0.1 = 0.2 < 0.25 charged → 0
    [{ model: 'per-share', amountPerShare: 0.02, minimumPerOrder: 0.25 } as const, 20, 5, { fillCount: 1, rawTotal: 0.1, charged: 0.25 }, 0],
    // minimum no longer binding after this fill: 0.1 + 0.2 = 0.3 → 0.05 more
    [{ model: 'per-share', amountPerShare: 0.02, minimumPerOrder: 0.25 } as const, 20, 10, { fillCount: 1, rawTotal: 0.1, charged: 0.25 }, 0.05],
    // minimum long passed: each fill pays its raw fee
    [{ model: 'per-share', amountPerShare: 0.02, minimumPerOrder: 0.25 } as const, 20, 10, { fillCount: 2, rawTotal: 0.3, charged: 0.3 }, 0.2],
  ] as const)('%j price %d × %d after %j → %d', (options, price, quantity, soFar, expected) => {
    expect(feeForFill(compileFees(options), price, quantity, soFar).fee).toBeCloseTo(expected, 12);
  });
});
