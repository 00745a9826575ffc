import { describe, expect, it } from 'vitest';
import { compileConstraint } from './constraint.js';
import { describeCombination, expandGrid, gridSize, parseParameter, withCombination } from './grid.js';
import { walkForwardFolds } from './search.js';

describe('parseParameter', () => {
  it.each([
    ['fastPeriod=5..20:5', ['strategies', 0, 'fastPeriod'], [5, 10, 15, 20]],
    ['fastPeriod=5..22:5', ['strategies', 0, 'fastPeriod'], [5, 10, 15, 20]],
    ['fastPeriod=3..5', ['strategies', 0, 'fastPeriod'], [3, 4, 5]],
    ['sizing.fraction=0.1..0.3:0.1', ['strategies', 0, 'sizing', 'fraction'], [0.1, 0.2, 0.3]],
    ['slowPeriod=50,100,200', ['strategies', 0, 'slowPeriod'], [50, 100, 200]],
    ['side=long,both', ['strategies', 0, 'side'], ['long', 'both']],
    ['venue.slippage.bps=0,1.5', ['venue', 'slippage', 'bps'], [0, 1.5]],
    ['strategies[0].lookback=7', ['strategies', 0, 'lookback'], [7]],
  ])('%s', (text, path, values) => {
    expect(parseParameter(text, 1)).toEqual({ name: text.slice(0, text.indexOf('=')), path, values });
  });

  it.each([
    ['fastPeriod', /--param: "fastPeriod" is not of the form NAME=FROM..TO:STEP/],
    ['=5', /is not of the form/],
    ['fastPeriod=20..5:5', /TO must not be below FROM/],
    ['fastPeriod=5..20:0', /STEP must be > 0/],
    ['fastPeriod=5,,6', /an empty value/],
    ['fastPeriod=5,5', /5 is listed twice/],
    ['fast-period=5', /"fast-period" is not a field name/],
    ['fastPeriod=1..1e9:1', /has 1000000000 values; at most 1000000/],
    ['data.from=2010-01-01', /data\.from: the data is loaded once for the whole search and cannot vary/],
  ])('refuses %s', (text, message) => {
    expect(() => parseParameter(text, 1)).toThrow(message);
  });

  it('asks whose field it is when the spec has several strategies', () => {
    expect(() => parseParameter('fastPeriod=5', 2)).toThrow('--param: fastPeriod: the spec has 2 strategies; say whose field it is, e.g. strategies[0].fastPeriod');
    expect(parseParameter('strategies[1].fastPeriod=5', 2).path).toEqual(['strategies', 1, 'fastPeriod']);
  });
});

describe('the grid', () => {
  const parameters = [parseParameter('fastPeriod=5..10:5', 1), parseParameter('slowPeriod=20,30,40', 1)];

  it('expands in grid order, the last parameter fastest', () => {
    expect(gridSize(parameters)).toBe(6);
    expect(expandGrid(parameters)).toEqual([[5, 20], [5, 30], [5, 40], [10, 20], [10, 30], [10, 40]]);
    expect(describeCombination(parameters, [10, 30])).toBe('fastPeriod=10 slowPeriod=30');
  });

  it('sets a combination in a copy of the spec document, creating objects on the way', () => {
    const document = { strategies: [{ type: 'sma-crossover', fastPeriod: 1 }] };
    const withVenue = [...parameters, parseParameter('venue.slippage.bps=1', 1)];
    expect(withCombination(document, withVenue, [5, 20, 1])).toEqual({ strategies: [{ type: 'sma-crossover', fastPeriod: 5, slowPeriod: 20 }], venue: { slippage: { bps: 1 } } });
    expect(document).toEqual({ strategies: [{ type: 'sma-crossover', fastPeriod: 1 }] });
  });
});

describe('compileConstraint', () => {
  const parameters = [parseParameter('fastPeriod=5..10:5', 1), parseParameter('slowPeriod=20,30', 1), parseParameter('sizing.fraction=0.5', 1), parseParameter('side=long,both', 1)];

  it.each([
    ['fastPeriod < slowPeriod', [5, 20, 0.5, 'long'], true],
    ['fastPeriod * 4 >= slowPeriod', [5, 30, 0.5, 'long'], false],
    ['fastPeriod * 4 >= slowPeriod or side == "both"', [5, 30, 0.5, 'both'], true],
    ['slowPeriod - fastPeriod > 10 and sizing.fraction <= 0.5', [10, 30, 0.5, 'long'], true],
    ['slowPeriod - fastPeriod > 10 && not (sizing.fraction <= 0.5)', [10, 30, 0.5, 'long'], false],
    ['(fastPeriod + slowPeriod) % 2 == 1 || !(side != "long")', [5, 20, 0.5, 'long'], true],
  ])('%s on %j is %s', (text, combination, expected) => {
    expect(compileConstraint(text, parameters).accepts(combination)).toBe(expected);
  });

  it.each([
    ['fastPeriod < slowPerod', /"fastPeriod < slowPerod": slowPerod is not a parameter of the search; the parameters are fastPeriod, slowPeriod, sizing.fraction, side/],
    ['fastPeriod <', /does not parse: Expected expression after </],
    ['Math.max(fastPeriod, 1) > 2', /CallExpression is not allowed/],
    ['fastPeriod << 2', /the operator << is not allowed/],
    ['fastPeriod = 5', /does not parse|not allowed/],
  ])('refuses %s', (text, message) => {
    expect(() => compileConstraint(text, parameters)).toThrow(message);
  });

  it('refuses a constraint that is not true or false, or that compares a word by order', () => {
    expect(() => compileConstraint('fastPeriod + slowPeriod', parameters).accepts([5, 20, 0.5, 'long'])).toThrow('gives 25, not true or false; write a comparison');
    expect(() => compileConstraint('side < 3', parameters).accepts([5, 20, 0.5, 'long'])).toThrow('"long" is not a number');
  });
});

describe('walkForwardFolds', () => {
  // 10 time steps, 3 folds: 4 parts starting at floor(j × 10 / 4) = 0, 2, 5, 7 (and the end at 10).
  const times = Array.from({ length: 10 }, (_, i) => 1000 * i);

  it('rolling: each fold searches the part before the one it tests', () => {
    expect(walkForwardFolds(times, 3, 'rolling').map((fold) => [fold.inSample.from, fold.inSample.to, fold.outOfSample.from, fold.outOfSample.to])).toEqual([
      [0, 2, 2, 5],
      [2, 5, 5, 7],
      [5, 7, 7, 10],
    ]);
  });

  it('anchored: each fold searches everything before the part it tests', () => {
    const folds = walkForwardFolds(times, 3, 'anchored');
    expect(folds.map((fold) => [fold.inSample.from, fold.inSample.to, fold.outOfSample.from, fold.outOfSample.to])).toEqual([
      [0, 2, 2, 5],
      [0, 5, 5, 7],
      [0, 7, 7, 10],
    ]);
    expect(folds[2]?.outOfSample).toEqual({ from: 7, to: 10, firstTimeMs: 7000, lastTimeMs: 9000 });
  });

  it('refuses parts of fewer than 2 steps', () => {
    expect(() => walkForwardFolds(times, 5, 'rolling')).toThrow("--walk-forward: 5 folds cut the data's 10 time steps into 6 parts of fewer than 2 steps; use fewer folds or more data");
    expect(() => walkForwardFolds(times, 0, 'rolling')).toThrow('must be a whole number of folds >= 1');
  });
});
