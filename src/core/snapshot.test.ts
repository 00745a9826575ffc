import { describe, expect, it } from 'vitest';
import { IncompatibleSnapshotError, SnapshotProblem } from './errors.js';
import { SnapshotReader, openSnapshot, toJsonNumber, toJsonNumbers } from './snapshot.js';

describe('JSON numbers', () => {
  it.each<[number, number | string]>([
    [0, 0],
    [-0, '-0'],
    [1.1, 1.1],
    [Number.MIN_VALUE, Number.MIN_VALUE],
    [-Number.MAX_VALUE, -Number.MAX_VALUE],
    [Number.NaN, 'NaN'],
    [Infinity, 'Infinity'],
    [-Infinity, '-Infinity'],
  ])('%d goes as %j and comes back through JSON text as the same double', (value, written) => {
    expect(toJsonNumber(value)).toBe(written);
    const [back] = new SnapshotReader('test', JSON.parse(JSON.stringify({ values: toJsonNumbers([value]) })), 'state').numbers('values');
    expect(Object.is(back, value)).toBe(true);
  });

  it('every double of a random sample survives JSON text exactly', () => {
    const view = new DataView(new ArrayBuffer(8));
    for (let i = 0; i < 10_000; i++) {
      view.setUint32(0, (i * 2654435761) >>> 0);
      view.setUint32(4, (i * 40503 + 12345) >>> 0);
      const value = view.getFloat64(0);
      const back = new SnapshotReader('test', JSON.parse(JSON.stringify({ x: toJsonNumber(value) })), '').number('x');
      expect(Object.is(back, value)).toBe(true);
    }
  });
});

describe('openSnapshot', () => {
  const expected = { subject: 'thing "a"', kind: 'thing', version: 3, spec: { name: 'a', sizes: [1, 2], nested: { period: 5 } } };
  const snapshot = { kind: 'thing', version: 3, spec: { name: 'a', sizes: [1, 2], nested: { period: 5 } }, state: { x: 1 } };

  it('returns a reader of the state when kind, version and spec match', () => {
    expect(openSnapshot(snapshot, expected).integer('x')).toBe(1);
  });

  it('names every differing field of the spec by its path', () => {
    const other = { ...snapshot, spec: { name: 'b', sizes: [1, 3, 4], nested: { period: 6 }, extra: true } };
    try {
      openSnapshot(other, expected);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(IncompatibleSnapshotError);
      const refused = error as IncompatibleSnapshotError;
      expect(refused.problem).toBe(SnapshotProblem.spec);
      expect(refused.differences).toEqual([
        { field: 'name', snapshot: 'b', expected: 'a' },
        { field: 'sizes', snapshot: [1, 3, 4], expected: [1, 2] },
        { field: 'nested.period', snapshot: 6, expected: 5 },
        { field: 'extra', snapshot: true, expected: undefined },
      ]);
      expect(refused.detail).toBe(
        'it was made from a different spec: name is "b" in the snapshot and "a" here; sizes has 3 items in the snapshot and 2 here; ' +
          'nested.period is 6 in the snapshot and 5 here; extra is true in the snapshot and absent here',
      );
    }
  });

  it.each<[string, unknown, string, string]>([
    ['another version', { ...snapshot, version: 4 }, SnapshotProblem.version, 'it is in format version 4, and this build reads version 3 only'],
    ['another kind', { ...snapshot, kind: 'other' }, SnapshotProblem.invalid, 'kind must be "thing", got "other"'],
    ['no spec', { ...snapshot, spec: null }, SnapshotProblem.invalid, 'spec must be an object, got null'],
    ['an array', [snapshot], SnapshotProblem.invalid, 'the snapshot must be an object, got [{"kind":"thing","version":3,"spec":{"name":"a","sizes":[1,2],"nested":{"peri...'],
  ])('refuses %s', (_case, value, problem, detail) => {
    expect(() => openSnapshot(value, expected)).toThrow(expect.objectContaining({ problem, detail }));
  });
});

describe('SnapshotReader', () => {
  const reader = new SnapshotReader('thing', { n: 'Infinity', i: 2.5, list: [1, 'x'], flag: 'yes', name: 'c', empty: null }, 'state');

  it.each<[string, () => unknown, string]>([
    ['a finite number', () => reader.finite('n'), 'state.n must be a finite number, got "Infinity"'],
    ['a whole number', () => reader.integer('i', 0), 'state.i must be a whole number >= 0, got 2.5'],
    ['numbers', () => reader.numbers('list'), 'state.list[1] must be a number, got "x"'],
    ['a boolean', () => reader.boolean('flag'), 'state.flag must be true or false, got "yes"'],
    ['one of some strings', () => reader.string('name', ['a', 'b']), 'state.name must be one of "a", "b", got "c"'],
    ['an array of bounded length', () => reader.array('list', { max: 1 }), 'state.list must hold at most 1 items, got 2'],
    ['an object', () => reader.object('empty'), 'state.empty must be an object, got null'],
  ])('names the path of a value that is not %s', (_case, read, detail) => {
    expect(read).toThrow(expect.objectContaining({ problem: SnapshotProblem.invalid, detail }));
  });

  it('reads null as undefined where a value is optional', () => {
    expect(reader.optionalNumber('empty')).toBeUndefined();
    expect(reader.optionalObject('empty')).toBeUndefined();
    expect(reader.number('n')).toBe(Infinity);
  });
});
