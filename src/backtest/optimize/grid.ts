import { InvalidInputError } from '../../core/index.js';
import type { ParameterValue } from '../../search/index.js';

/** One `--param`: the field it sets and the values it takes, in the order given. */
export interface Parameter {
  /** As the user wrote it (`fastPeriod`, `sizing.fraction`, `strategies[1].slowPeriod`): the name in tables and constraints. */
  readonly name: string;
  /** Where it is set in the spec document: `['strategies', 0, 'fastPeriod']`. */
  readonly path: ReadonlyArray<string | number>;
  readonly values: readonly ParameterValue[];
}

/** One point of the grid: a value per parameter, in the order of the parameters. */
export type Combination = readonly ParameterValue[];

/** The spec's own top-level fields: a parameter starting with one of these is a path in the spec, not in its strategy. */
const SPEC_FIELDS = new Set(['name', 'data', 'strategies', 'risk', 'consensus', 'allocator', 'venue', 'portfolio', 'endOfData', 'periodsPerYear', 'statistics', 'gaps']);

/** A range's or list's size past which its text is refused before it is expanded (the grid limit is checked after). */
const MAX_VALUES_PER_PARAMETER = 1_000_000;

/**
 * Parses one `--param` text: `NAME=FROM..TO:STEP` (both ends included when the step lands on TO;
 * `:STEP` may be left out for 1), `NAME=V1,V2,…` or `NAME=V`. A name that is not one of the spec's
 * top-level fields is a field of its one strategy (`fastPeriod` → `strategies[0].fastPeriod`);
 * with several strategies, say which: `strategies[1].fastPeriod`.
 * @param strategyCount how many strategies the spec lists.
 * @throws InvalidInputError naming `--param` and saying what form is expected.
 */
export function parseParameter(text: string, strategyCount: number): Parameter {
  const equals = text.indexOf('=');
  const form = 'NAME=FROM..TO:STEP (fastPeriod=5..50:5), NAME=V1,V2,... (slowPeriod=50,100,200) or NAME=V';
  if (equals <= 0) throw new InvalidInputError('--param', `${JSON.stringify(text)} is not of the form ${form}`);
  const name = text.slice(0, equals).trim();
  const valueText = text.slice(equals + 1).trim();
  const path = fieldPath(name, text);
  if (path.length === 0) throw new InvalidInputError('--param', `${JSON.stringify(text)} has no parameter name; use ${form}`);
  const first = path[0] as string | number;
  let resolved: Array<string | number>;
  if (first === 'data') {
    throw new InvalidInputError('--param', `${name}: the data is loaded once for the whole search and cannot vary; search the strategies' fields (or venue, portfolio, risk, ...) and give the data in the spec`);
  } else if (typeof first === 'string' && SPEC_FIELDS.has(first)) {
    resolved = path;
  } else if (strategyCount === 1) {
    resolved = ['strategies', 0, ...path];
  } else {
    throw new InvalidInputError('--param', `${name}: the spec has ${strategyCount} strategies; say whose field it is, e.g. strategies[0].${name}`);
  }
  return { name, path: resolved, values: parseValues(name, valueText, form) };
}

function parseValues(name: string, text: string, form: string): ParameterValue[] {
  const range = /^(-?[\d.]+(?:e-?\d+)?)\.\.(-?[\d.]+(?:e-?\d+)?)(?::([\d.]+(?:e-?\d+)?))?$/i.exec(text);
  if (range !== null) {
    const from = Number(range[1]);
    const to = Number(range[2]);
    const step = range[3] === undefined ? 1 : Number(range[3]);
    if (![from, to, step].every(Number.isFinite)) throw new InvalidInputError('--param', `${name}=${text}: FROM, TO and STEP must be numbers (${form})`);
    if (step <= 0) throw new InvalidInputError('--param', `${name}=${text}: STEP must be > 0`);
    if (to < from) throw new InvalidInputError('--param', `${name}=${text}: TO must not be below FROM`);
    // The small tolerance keeps TO when decimal steps add up to a hair under it (0.1 + 0.2).
    const count = Math.floor((to - from) / step + 1e-9) + 1;
    if (count > MAX_VALUES_PER_PARAMETER) throw new InvalidInputError('--param', `${name}=${text} has ${count} values; at most ${MAX_VALUES_PER_PARAMETER}`);
    const decimals = Math.max(decimalsOf(range[1] as string), decimalsOf(range[3] ?? '1'));
    return Array.from({ length: count }, (_, i) => Number((from + i * step).toFixed(decimals)));
  }
  const items = text.split(',').map((item) => item.trim());
  if (items.some((item) => item === '')) throw new InvalidInputError('--param', `${name}=${text}: an empty value; use ${form}`);
  if (items.length > MAX_VALUES_PER_PARAMETER) throw new InvalidInputError('--param', `${name} has ${items.length} values; at most ${MAX_VALUES_PER_PARAMETER}`);
  const values = items.map((item) => (/^-?(\d+\.?\d*|\.\d+)(e-?\d+)?$/i.test(item) ? Number(item) : item));
  const seen = new Set<ParameterValue>();
  for (const value of values) {
    if (seen.has(value)) throw new InvalidInputError('--param', `${name}=${text}: ${value} is listed twice`);
    seen.add(value);
  }
  return values;
}

function decimalsOf(number: string): number {
  const exponent = /e(-?\d+)$/i.exec(number);
  const mantissa = number.replace(/e-?\d+$/i, '');
  const dot = mantissa.indexOf('.');
  return Math.max(0, (dot < 0 ? 0 : mantissa.length - dot - 1) - (exponent === null ? 0 : Number(exponent[1])));
}

/** `strategies[1].sizing.fraction` → `['strategies', 1, 'sizing', 'fraction']`. */
function fieldPath(name: string, text: string): Array<string | number> {
  if (!/^[A-Za-z_][\w]*(\[\d+\])*(\.[A-Za-z_][\w]*(\[\d+\])*)*$/.test(name)) {
    throw new InvalidInputError('--param', `${JSON.stringify(text)}: ${JSON.stringify(name)} is not a field name (letters, digits, _; nested fields joined by dots, list items as [0])`);
  }
  return [...name.matchAll(/([^.[\]]+)|\[(\d+)\]/g)].map((match) => (match[2] === undefined ? (match[1] as string) : Number(match[2])));
}

/** How many combinations the parameters make (their values multiplied). */
export function gridSize(parameters: readonly Parameter[]): number {
  return parameters.reduce((size, parameter) => size * parameter.values.length, 1);
}

/**
 * Every combination, the last parameter varying fastest (`fastPeriod=5..10:5 slowPeriod=20,30` gives
 * 5/20, 5/30, 10/20, 10/30): the grid order results are kept in, whatever finished first.
 */
export function expandGrid(parameters: readonly Parameter[]): Combination[] {
  let combinations: ParameterValue[][] = [[]];
  for (const parameter of parameters) combinations = combinations.flatMap((combination) => parameter.values.map((value) => [...combination, value]));
  return combinations;
}

/** A copy of the spec document with a combination's values set at their parameters' paths (objects created where missing). */
export function withCombination(document: unknown, parameters: readonly Parameter[], combination: Combination): unknown {
  const copy = structuredClone(document) as Record<string | number, unknown>;
  parameters.forEach((parameter, i) => {
    let node = copy;
    parameter.path.forEach((key, depth) => {
      if (depth === parameter.path.length - 1) {
        node[key] = combination[i];
        return;
      }
      const next = node[key];
      if (typeof next !== 'object' || next === null) node[key] = typeof parameter.path[depth + 1] === 'number' ? [] : {};
      node = node[key] as Record<string | number, unknown>;
    });
  });
  return copy;
}

/** `fastPeriod=5 slowPeriod=20`: a combination in words. */
export function describeCombination(parameters: readonly Parameter[], combination: Combination): string {
  return parameters.map((parameter, i) => `${parameter.name}=${String(combination[i])}`).join(' ');
}
