import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse/sync';
import { InvalidInputError, errorMessage } from '../core/index.js';
import { type Bar, freezeBar, validateBar } from './bars.js';

/** Options of {@link loadCsvBars}. */
export interface CsvBarsOptions {
  /**
   * IANA time zone of zone-less `datetime` values (exchange local time). Ignored for `date` files
   * (a date is UTC midnight) and for datetimes that carry their own `Z` or `±HH:MM` offset.
   * @default 'America/New_York' (US equities and ETFs, as in `../shared/data/minute`)
   */
  timeZone?: string;
}

const VALUE_COLUMNS = ['open', 'high', 'low', 'close', 'volume'] as const;
type ValueColumn = (typeof VALUE_COLUMNS)[number];
const EXPECTED_HEADER = 'date,open,high,low,close,volume (or datetime,open,high,low,close,volume)';
const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATETIME = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?(Z|[+-]\d{2}:?\d{2})?$/;

interface ParsedRow {
  readonly record: string[];
  readonly info: { readonly lines: number };
}

/**
 * Reads bars for `symbol` from a CSV file in the format of `../shared/data`: a header whose first
 * column is `date` or `datetime`, then `open,high,low,close,volume` (any order; extra columns are
 * ignored), one row per bar, times strictly ascending.
 *
 * Times:
 * - `date` (`YYYY-MM-DD`) is UTC midnight of that day.
 * - `datetime` (`YYYY-MM-DDTHH:MM[:SS[.mmm]]`) without a zone is wall-clock time in
 *   `options.timeZone` (default US/Eastern) and is converted to UTC with the zone's offset on that
 *   date, daylight saving included (EDT = UTC-4 in summer, EST = UTC-5 in winter), using the tz
 *   database that `Intl` carries. A wall-clock time that occurs twice (the hour repeated when
 *   clocks go back) is read as the first occurrence; one that does not exist (the hour skipped
 *   when clocks go forward) is an error. A datetime with `Z` or an offset is taken as written.
 *
 * @throws InvalidInputError for anything wrong in the file, naming the file, the line, the column
 *   and what to do, e.g. `AAPL.csv line 17, column close: "abc" is not a number; ...`. Nothing is
 *   returned on error. Also when the file cannot be read or `options.timeZone` is unknown.
 */
export async function loadCsvBars(path: string | URL, symbol: string, options: CsvBarsOptions = {}): Promise<Bar[]> {
  const filePath = typeof path === 'string' ? path : fileURLToPath(path);
  const file = basename(filePath);
  if (symbol.trim() === '') throw new InvalidInputError('symbol', 'must be a non-empty string');
  const timeZone = options.timeZone ?? 'America/New_York';
  const zone = zoneOffsets(timeZone);
  let text: string;
  try {
    text = await readFile(filePath, 'utf8');
  } catch (error) {
    throw new InvalidInputError(file, `cannot read ${filePath} (${errorMessage(error)}); check the path`, { cause: error });
  }
  return parseCsvBars(text, file, symbol, zone);
}

function parseCsvBars(text: string, file: string, symbol: string, zone: ZoneOffsets): Bar[] {
  const fail = (line: number, column: string | undefined, message: string): never => {
    throw new InvalidInputError(`${file} line ${line}${column === undefined ? '' : `, column ${column}`}`, message);
  };
  let rows: ParsedRow[];
  try {
    rows = parse(text, {
      bom: true,
      info: true,
      trim: true,
      skip_empty_lines: true,
      relax_column_count: true,
    }) as unknown as ParsedRow[];
  } catch (error) {
    const line = (error as { lines?: unknown }).lines;
    throw new InvalidInputError(
      `${file} line ${typeof line === 'number' ? line : '?'}`,
      `is not valid CSV (${errorMessage(error)}); fix the quoting or delimiters`,
      { cause: error },
    );
  }

  const header = rows[0];
  if (header === undefined) return fail(1, undefined, `the file is empty; expected a header ${EXPECTED_HEADER} and rows of bars`);
  const names = header.record.map((name) => name.toLowerCase());
  const timeColumn = names[0];
  if (timeColumn !== 'date' && timeColumn !== 'datetime') {
    return fail(header.info.lines, JSON.stringify(header.record[0] ?? ''), `the first column must be date or datetime; expected a header ${EXPECTED_HEADER}`);
  }
  const indexOf = {} as Record<ValueColumn, number>;
  for (const column of VALUE_COLUMNS) {
    const index = names.indexOf(column);
    if (index < 0) {
      return fail(header.info.lines, column, `missing from the header "${header.record.join(',')}"; expected a header ${EXPECTED_HEADER}`);
    }
    indexOf[column] = index;
  }
  if (rows.length === 1) return fail(header.info.lines, undefined, 'the file has a header but no rows; add bars or use another file');

  const bars: Bar[] = [];
  let previous: { timeMs: number; text: string; line: number } | undefined;
  for (let r = 1; r < rows.length; r++) {
    const { record, info } = rows[r] as ParsedRow;
    const line = info.lines;
    const cell = (index: number, column: string): string => {
      const value = record[index];
      if (value === undefined || value === '') return fail(line, column, 'is empty; every row needs a value in every column');
      return value;
    };
    const timeText = cell(0, timeColumn);
    const timeMs =
      timeColumn === 'date' ? parseDate(timeText, (message) => fail(line, 'date', message)) : parseDateTime(timeText, zone, (message) => fail(line, 'datetime', message));
    if (previous !== undefined && timeMs <= previous.timeMs) {
      if (timeMs === previous.timeMs) {
        fail(line, timeColumn, `${timeText} repeats line ${previous.line}; remove the duplicate row`);
      }
      fail(line, timeColumn, `${timeText} is earlier than ${previous.text} on line ${previous.line}; sort the rows by ${timeColumn}, oldest first`);
    }
    const values = {} as Record<ValueColumn, number>;
    for (const column of VALUE_COLUMNS) {
      const raw = cell(indexOf[column], column);
      if (!NUMBER.test(raw)) fail(line, column, `${JSON.stringify(raw)} is not a number; write a plain decimal such as 12.34`);
      values[column] = Number(raw);
    }
    const bar = freezeBar({ symbol, timeMs, ...values });
    const problem = validateBar(bar)[0];
    if (problem !== undefined) fail(line, problem.field, `${problem.message}; fix or remove the row`);
    bars.push(bar);
    previous = { timeMs, text: timeText, line };
  }
  return bars;
}

function parseDate(text: string, fail: (message: string) => never): number {
  const match = DATE.exec(text);
  if (!match) return fail(`${JSON.stringify(text)} is not a date; write YYYY-MM-DD`);
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const timeMs = Date.UTC(year, month - 1, day);
  if (!sameCalendarFields(timeMs, year, month, day, 0, 0, 0)) return fail(`${JSON.stringify(text)} is not a calendar date; check month and day`);
  return timeMs;
}

function parseDateTime(text: string, zone: ZoneOffsets, fail: (message: string) => never): number {
  const match = DATETIME.exec(text);
  if (!match) return fail(`${JSON.stringify(text)} is not a datetime; write YYYY-MM-DDTHH:MM:SS (exchange local time, no zone)`);
  const [year, month, day, hour, minute, second] = [1, 2, 3, 4, 5, 6].map((i) => Number(match[i] ?? 0)) as [number, number, number, number, number, number];
  const millis = Number((match[7] ?? '').padEnd(3, '0'));
  const wallMs = Date.UTC(year, month - 1, day, hour, minute, second, millis);
  if (!sameCalendarFields(wallMs, year, month, day, hour, minute, second)) {
    return fail(`${JSON.stringify(text)} is not a valid date and time; check each field`);
  }
  const offsetText = match[8];
  if (offsetText !== undefined) {
    if (offsetText === 'Z') return wallMs;
    const sign = offsetText.startsWith('-') ? -1 : 1;
    const digits = offsetText.slice(1).replace(':', '');
    return wallMs - sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2))) * 60_000;
  }
  const utcMs = zone.wallToUtc(wallMs);
  if (utcMs === undefined) {
    return fail(`${JSON.stringify(text)} does not exist in ${zone.timeZone} (clocks jumped forward over it); check the data's time zone`);
  }
  return utcMs;
}

function sameCalendarFields(timeMs: number, year: number, month: number, day: number, hour: number, minute: number, second: number): boolean {
  const date = new Date(timeMs);
  return (
    date.getUTCFullYear() === year &&
    date.getUTCMonth() === month - 1 &&
    date.getUTCDate() === day &&
    date.getUTCHours() === hour &&
    date.getUTCMinutes() === minute &&
    date.getUTCSeconds() === second
  );
}

interface ZoneOffsets {
  readonly timeZone: string;
  /** UTC instant of a wall-clock time (given as if it were UTC); `undefined` when it falls in a gap. */
  wallToUtc(wallMs: number): number | undefined;
}

/**
 * Offsets of an IANA zone from `Intl`: the offset at an instant is the zone's wall clock at that
 * instant minus the instant, cached per UTC minute (zone transitions fall on whole minutes).
 */
function zoneOffsets(timeZone: string): ZoneOffsets {
  let format: Intl.DateTimeFormat;
  try {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
  } catch (error) {
    throw new InvalidInputError('timeZone', `${JSON.stringify(timeZone)} is not an IANA time zone such as "America/New_York"`, { cause: error });
  }
  const cache = new Map<number, number>();
  const offsetAt = (utcMs: number): number => {
    const minuteKey = Math.floor(utcMs / 60_000);
    const cached = cache.get(minuteKey);
    if (cached !== undefined) return cached;
    const parts: Partial<Record<Intl.DateTimeFormatPartTypes, number>> = {};
    for (const part of format.formatToParts(minuteKey * 60_000)) parts[part.type] = Number(part.value);
    const wall = Date.UTC(parts.year ?? 0, (parts.month ?? 1) - 1, parts.day ?? 1, parts.hour ?? 0, parts.minute ?? 0, parts.second ?? 0);
    const offset = wall - minuteKey * 60_000;
    if (cache.size > 100_000) cache.clear();
    cache.set(minuteKey, offset);
    return offset;
  };
  return {
    timeZone,
    wallToUtc(wallMs) {
      // The offsets in force a day either side bracket every offset that can apply to this wall time.
      const candidates = new Set([offsetAt(wallMs - 86_400_000), offsetAt(wallMs), offsetAt(wallMs + 86_400_000)]);
      let earliest: number | undefined;
      for (const offset of candidates) {
        const utcMs = wallMs - offset;
        if (offsetAt(utcMs) === offset && (earliest === undefined || utcMs < earliest)) earliest = utcMs;
      }
      return earliest;
    },
  };
}
