import { describe, expect, it } from 'vitest';
import { DAY, series } from '../../test/fixtures/bars.js';
import { InvalidInputError } from '../core/index.js';
import type { Bar } from './bars.js';
import { Timeline, groupByTime } from './timeline.js';

function walk(timeline: Timeline): Bar[][] {
  const steps: Bar[][] = [];
  const step: Bar[] = [];
  while (timeline.next(step)) steps.push([...step]);
  return steps;
}

describe('Timeline', () => {
  it('walks one symbol bar by bar, reusing the caller\'s step array', () => {
    const bars = series([1, 2, 3], [1, 2, 3]);
    const timeline = new Timeline(bars);
    const step: Bar[] = [];
    const seen: Bar[] = [];
    while (timeline.next(step)) {
      expect(step).toHaveLength(1);
      seen.push(step[0] as Bar);
    }
    expect(seen).toEqual(bars);
    expect(step).toEqual([]);
    expect(timeline.next(step)).toBe(false);
    expect(timeline).toMatchObject({ symbols: ['AAA'], count: 3 });
  });

  it('walks the same steps again after a rewind', () => {
    const a = series([1, 2, 3], [1, 2, 3], 'AAA');
    const b = series([5, 6], [5, 6], 'BBB');
    const timeline = new Timeline([...a, ...b]);
    const first = walk(timeline);
    timeline.rewind();
    expect(walk(timeline)).toEqual(first);
    expect(first).toHaveLength(3);
  });

  it('merges symbols by time, alphabetical at equal times, trimming the step when fewer symbols trade', () => {
    const a = series([1, 2, 3], [1, 2, 3], 'AAA');
    const b = series([5, 6], [5, 6], 'BBB').map((bar, i) => ({ ...bar, timeMs: (i + 1) * DAY }));
    const steps = walk(new Timeline(new Map([['BBB', b], ['AAA', a]])));
    expect(steps.map((step) => step.map((bar) => `${bar.symbol}@${bar.timeMs / DAY}`))).toEqual([['AAA@0'], ['AAA@1', 'BBB@1'], ['AAA@2', 'BBB@2']]);
    const interleaved = [a[0], b[0], a[1], b[1], a[2]] as Bar[];
    expect(walk(new Timeline(interleaved))).toEqual(steps);
    expect(walk(new Timeline([b[0], b[1], a[0]] as Bar[])).map((step) => step.map((bar) => bar.symbol))).toEqual([['AAA'], ['BBB'], ['BBB']]);
  });

  it('checks the bars before any step, naming the field', () => {
    expect(() => new Timeline([])).toThrow(expect.objectContaining({ field: 'bars' }) as Error);
    expect(() => new Timeline(new Map([['AAA', []]]))).toThrow(expect.objectContaining({ field: 'bars.AAA' }) as Error);
    const [first, second] = series([1, 2], [1, 2]) as [Bar, Bar];
    expect(() => new Timeline([second, first])).toThrow(expect.objectContaining({ field: 'bars.AAA[1].timeMs' }) as Error);
    expect(() => new Timeline(new Map([['BBB', [first]]]))).toThrow(InvalidInputError);
  });
});

describe('groupByTime', () => {
  it('gives the timeline\'s steps as arrays of their own', () => {
    const bars = [...series([1, 2], [1, 2], 'AAA'), ...series([3, 4], [3, 4], 'BBB')];
    const { symbols, steps, count } = groupByTime(bars);
    expect(symbols).toEqual(['AAA', 'BBB']);
    expect(count).toBe(4);
    expect(steps).toEqual(walk(new Timeline(bars)));
    expect(steps[0]).not.toBe(steps[1]);
  });
});
