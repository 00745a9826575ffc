import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../core/index.js';
import { fixedQuantity } from '../portfolio/index.js';
import { CLOSES } from '../../test/fixtures/bars.js';
import { type ExitsOptions } from './exits.js';
import { closesOf, runSteps } from './harness.js';
import { smaCrossover } from './crossover.js';
import { momentumStrategy } from './momentum.js';
import { meanReversion } from './mean-reversion.js';

const crossover = (exits: ExitsOptions | undefined, side: 'long' | 'short' | 'both' = 'long'): ReturnType<typeof smaCrossover> =>
  smaCrossover({ symbol: 'AAA', fastPeriod: 1, slowPeriod: 3, sizing: fixedQuantity(10), side, ...(exits === undefined ? {} : { exits }) });

describe('strategy exits', () => {
  it('attaches points and percent exits to every entry, long and short, and none to the signal exits', () => {
    const exits = { stopLoss: { percent: 2 }, takeProfit: { points: 3 }, trailingStop: { percent: 1.5 } };
    // SMA(1/3) on CLOSES: crosses below on bar 3, above on bar 4, below on bar 6 (see crossover.test.ts).
    const intents = runSteps(crossover(exits, 'both'), closesOf('AAA', CLOSES));
    expect(intents.map(([barIndex, intent]) => [barIndex, intent.intent, intent.exits])).toEqual([
      [3, 'enter-short', exits],
      [4, 'exit-short', undefined],
      [4, 'enter-long', exits],
      [6, 'exit-long', undefined],
      [6, 'enter-short', exits],
    ]);
  });

  it('turns an ATR exit into points with the ATR of the signal bar', () => {
    // Flat bars: true range |close − previous close| from bar 1: 0, 0, 1, 3. ATR(3) (Wilder, from bar 1):
    // bar 3 (0 + 0 + 1) / 3 = 1/3; bar 4 (2 × 1/3 + 3) / 3 = 11/9. The entry of bar 4: 2 × 11/9 points.
    const intents = runSteps(crossover({ stopLoss: { atr: { period: 3, multiple: 2 } }, takeProfit: { percent: 5 } }), closesOf('AAA', CLOSES));
    const entry = intents.find(([, intent]) => intent.intent === 'enter-long');
    expect(entry?.[0]).toBe(4);
    expect(entry?.[1].exits?.takeProfit).toEqual({ percent: 5 });
    expect(entry?.[1].exits?.stopLoss?.points).toBeCloseTo(22 / 9, 12);
  });

  it('makes no entry while the ATR has no value, and reports the ATR warm-up when it is the longer', () => {
    const strategy = crossover({ stopLoss: { atr: { period: 5, multiple: 1 } } });
    // ATR(5) has its first value at bar 5 (6 bars); the cross above of bar 4 is then not taken.
    expect(runSteps(strategy, closesOf('AAA', CLOSES)).map(([, intent]) => intent.intent)).toEqual([]);
    expect(strategy.warmUp).toEqual({ field: 'exits.stopLoss.atr.period', value: 5, bars: 6 });
    expect(crossover({ stopLoss: { atr: { period: 2, multiple: 1 } } }).warmUp).toEqual({ field: 'slowPeriod', value: 3, bars: 4 });
  });

  it('keeps the ATR in its snapshot: a restored strategy sizes its exits as the one that never stopped', () => {
    const exits = { trailingStop: { atr: { period: 2, multiple: 1.5 } } };
    const straight = runSteps(crossover(exits), closesOf('AAA', CLOSES));
    const first = crossover(exits);
    runSteps(first, closesOf('AAA', CLOSES.slice(0, 3)));
    const resumed = crossover(exits);
    resumed.restore(JSON.parse(JSON.stringify(first.snapshot())) as never);
    const rest = runSteps(resumed, closesOf('AAA', CLOSES).map((step, i) => (i < 3 ? {} : step)));
    expect(rest).toEqual(straight);
    expect(first.snapshot().spec).toMatchObject({ exitsAtrPeriods: [2] });
    // Without ATR exits the snapshot is as before.
    expect(crossover({ stopLoss: { percent: 1 } }).snapshot()).toEqual(crossover(undefined).snapshot());
  });

  it('is an option of momentum and mean reversion too', () => {
    const exits = { stopLoss: { points: 1 } };
    const momentum = momentumStrategy({ symbol: 'AAA', lookback: 1, entryThreshold: 0.1, exitThreshold: -0.5, sizing: fixedQuantity(1), exits });
    expect(runSteps(momentum, closesOf('AAA', [10, 12])).map(([, intent]) => intent.exits)).toEqual([exits]);
    const reversion = meanReversion({ indicator: 'rsi', symbol: 'AAA', period: 2, sizing: fixedQuantity(1), exits });
    expect(runSteps(reversion, closesOf('AAA', [10, 9, 8, 7])).map(([, intent]) => intent.exits)).toEqual([exits]);
  });

  it.each([
    [{ stopLoss: { percent: 100 } }, 'exits.stopLoss.percent', 'must be > 0 and < 100'],
    [{ stopLoss: { percent: 2, atr: { period: 14, multiple: 2 } } }, 'exits.stopLoss', 'give one of percent and atr, not both'],
    [{ takeProfit: { atr: { period: 0, multiple: 2 } } }, 'exits.takeProfit.atr.period', 'must be a whole number of bars >= 1'],
    [{ takeProfit: { atr: { period: 3, multiple: -1 } } }, 'exits.takeProfit.atr.multiple', 'must be a finite number > 0'],
    [{ stopLose: { points: 1 } }, 'exits.stopLose', 'is not an exit'],
    [{}, 'exits', 'must name at least one of'],
  ])('refuses exits %j, naming %s', (exits, field, message) => {
    const build = (): unknown => crossover(exits as ExitsOptions);
    expect(build).toThrow(InvalidInputError);
    expect(build).toThrow(`${field}: ${message}`);
  });
});
