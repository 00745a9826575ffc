import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse/sync';
import { InvalidInputError, errorMessage } from '../core/index.js';
import { type Bar, freezeBar, validateBar } from './bars.js';

/** The fields of a bar a CSV column can hold. */
const CSV_FIELDS = ['date', 'open', 'high', 'low', 'close', 'volume'] as const;
/** A column read besides the bar's own fields: the adjusted close, read with `prices: 'adjusted'` only. */
const ADJ_CLOSE = 'adjClose';
export type CsvField = (typeof CSV_FIELDS)[number] | typeof ADJ_CLOSE;

/**
 * Which column of a file holds each field, by its header name (compared ignoring case and any
 * character that is not a letter or digit, so `Adj Close` also finds `adj_close`). A field not given
 * is found by its usual names (see {@link loadCsvBars}). `adjClose` is read only with `prices: 'adjusted'`.
 */
export type CsvColumns = Partial<Record<CsvField, string>>;

/** Which prices a file's bars carry. */
export const CsvPrices = {
  /** The open, high, low and close columns as the file writes them. */
  asWritten: 'as-written',
  /**
   * Split- and dividend-adjusted: each row's open, high, low and close multiplied by its adjusted
   * close / close (as "auto adjust" does in other backtesters); volume as written. Needs an
   * adjusted close column besides the close.
   */
  adjusted: 'adjusted',
} as const;
export type CsvPrices = (typeof CsvPrices)[keyof typeof CsvPrices];

/** Options of {@link loadCsvBars}. */
export interface CsvBarsOptions {
  /**
   * IANA time zone of zone-less date-times (exchange local time). Ignored for plain dates (a date is
   * UTC midnight), epoch timestamps, and date-times that carry their own `Z` or `±HH:MM` offset.
   * @default 'America/New_York' (US equities and ETFs, as in `../shared/data/minute`)
   */
  timeZone?: string;
  /** Header names of the columns, for a file whose names are not the usual ones. @default found by name */
  columns?: CsvColumns;
  /** The prices the bars carry; see {@link CsvPrices}. @default 'as-written' */
  prices?: CsvPrices;
}

/**
 * Largest CSV file {@link loadCsvBars} reads, in bytes (64 MiB). Parsing holds the text, the parser's
 * records and the bars at once, about 21 bytes of memory per byte of file (measured: 898 MB for a
 * 43 MB file of a million daily rows, read in 9 s), so a file at the limit peaks near 1.4 GB, about
 * what a synthetic market at its own limit takes. That is some 1.5 million rows; the daily files in
 * `../shared/data` are under 0.4 MB.
 */
export const MAX_CSV_BYTES = 64 * 1024 * 1024;

/** Characters of a cell an error quotes: enough to recognise it, never a whole line of some other file. */
const QUOTED_CELL_CHARS = 32;

const VALUE_COLUMNS = ['open', 'high', 'low', 'close', 'volume'] as const;
type ValueColumn = (typeof VALUE_COLUMNS)[number];
/**
 * The names each field is found by when `columns` does not name its column, in order of preference
 * (normalised: lower case, letters and digits only). `close` wins over `adj close`: a bar's open, high
 * and low are of the same (unadjusted) series as its close, and an adjusted close beside them can fall
 * outside the day's range. `adj close` is read only when the file has no `close`.
 */
const ADJUSTED_CLOSE_NAMES = ['adjclose', 'adjustedclose'];
const USUAL_NAMES: Readonly<Record<CsvField, readonly string[]>> = {
  date: ['date', 'datetime', 'timestamp', 'time'],
  open: ['open'],
  high: ['high'],
  low: ['low'],
  close: ['close', ...ADJUSTED_CLOSE_NAMES],
  volume: ['volume'],
  adjClose: ADJUSTED_CLOSE_NAMES,
};
/** With `prices: 'adjusted'` the close is the unadjusted one: an adjusted close is its own column then. */
const USUAL_NAMES_ADJUSTED: Readonly<Record<CsvField, readonly string[]>> = { ...USUAL_NAMES, close: ['close'] };
const EXPECTED_HEADER =
  'a header naming a time column (date, datetime, timestamp or time, or an unnamed first column as pandas writes it) and open, high, low, close, volume, in any case and order (or columns mapped by name)';
const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATETIME = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:?\d{2})?$/;
/** Unix time: 9 or 10 digits are seconds (1973-03-03 to 2286-11-20), 12 or 13 digits milliseconds (the same span). */
const EPOCH_SECONDS = /^\d{9,10}$/;
const EPOCH_MILLISECONDS = /^\d{12,13}$/;
const TIME_FORMS = 'write YYYY-MM-DD, YYYY-MM-DD HH:MM[:SS] (in the data\'s time zone, or ending in Z or ±HH:MM), or Unix time in seconds (10 digits) or milliseconds (13 digits)';

interface ParsedRow {
  readonly record: string[];
  readonly info: { readonly lines: number };
}

/**
 * Reads bars for `symbol` from a CSV file with a header, one row per bar, times strictly ascending:
 * the format of `../shared/data`, and the files pandas (`DataFrame.to_csv`), Yahoo Finance and most
 * data vendors write.
 *
 * Columns are found by their header names, ignoring case and any character that is not a letter or
 * digit, in any order (other columns are ignored):
 * - time: `options.columns.date` when given; else the first column named `date`, `datetime`,
 *   `timestamp` or `time`; else the first column when its name is empty (the index pandas writes).
 * - `open`, `high`, `low`, `close`, `volume`, or the names `options.columns` gives. `close` wins over
 *   `adj close` when a file has both (open, high and low are unadjusted, and an adjusted close can
 *   fall outside their range); `adj close` is the close only in a file without `close`. To trade an
 *   adjusted series, give a file whose every price is adjusted, or `options.prices: 'adjusted'`.
 * - With `options.prices: 'adjusted'`, also an adjusted close (`adj close`, `adjusted close` or
 *   `options.columns.adjClose`) beside `close`: each row's open, high, low and close are multiplied
 *   by `adj close / close` of that row, so the close becomes the adjusted close (to the last bit:
 *   close × (adj close / close) is computed like the others, so that the scaled high stays at or
 *   above the scaled close and the low at or below), and volume is kept as written.
 *
 * Times, in any time column:
 * - `YYYY-MM-DD` is UTC midnight of that day.
 * - `YYYY-MM-DDTHH:MM[:SS[.fraction]]` (a space for the `T` too) without a zone is wall-clock time in
 *   `options.timeZone` (default US/Eastern) and is converted to UTC with the zone's offset on that
 *   date, daylight saving included (EDT = UTC-4 in summer, EST = UTC-5 in winter), using the tz
 *   database that `Intl` carries. A wall-clock time that occurs twice (the hour repeated when
 *   clocks go back) is read as the first occurrence; one that does not exist (the hour skipped
 *   when clocks go forward) is an error. A datetime with `Z` or an offset is taken as written;
 *   digits past milliseconds are dropped.
 * - Unix time: 9 or 10 digits are seconds, 12 or 13 digits milliseconds (both from 1973-03-03 to
 *   2286-11-20; other digit counts are refused rather than guessed).
 *
 * Errors quote a cell of a bar row at most (cut to 32 characters), and nothing of a file whose first
 * line is not a header of bars: such a file may be anything (a path mistyped as `/etc/shadow`).
 *
 * @throws InvalidInputError for anything wrong in the file, naming the file, the line, the column
 *   and what to do, e.g. `AAPL.csv line 17, column close: "abc" is not a number; ...`, or how many
 *   fields a short row has against the header's. Nothing is returned on error. Also when the path is
 *   not a regular file, the file is larger than {@link MAX_CSV_BYTES}, it cannot be read,
 *   `options.timeZone` is unknown, or a column `options.columns` names is not in the header.
 */
export async function loadCsvBars(path: string | URL, symbol: string, options: CsvBarsOptions = {}): Promise<Bar[]> {
  const filePath = typeof path === 'string' ? path : fileURLToPath(path);
  const file = basename(filePath);
  if (symbol.trim() === '') throw new InvalidInputError('symbol', 'must be a non-empty string');
  const timeZone = options.timeZone ?? 'America/New_York';
  const zone = zoneOffsets(timeZone);
  const prices = options.prices ?? CsvPrices.asWritten;
  if (!Object.values(CsvPrices).includes(prices)) {
    throw new InvalidInputError('prices', `must be one of ${Object.values(CsvPrices).map((value) => JSON.stringify(value)).join(', ')}, got ${JSON.stringify(prices)}`);
  }
  if (options.columns?.adjClose !== undefined && prices !== CsvPrices.adjusted) {
    throw new InvalidInputError('columns.adjClose', `is read only with prices: adjusted, and prices is ${prices}; set prices: adjusted to scale the bars by it, or remove columns.adjClose`);
  }
  return parseCsvBars(await readCsvText(filePath, file), file, symbol, zone, options.columns ?? {}, prices);
}

/**
 * The text of a regular file of at most {@link MAX_CSV_BYTES}. It is opened without blocking (a
 * named pipe would wait for a writer) and checked through the open handle, so the file read is the
 * file checked; a device such as `/dev/zero` would otherwise be read for ever.
 */
async function readCsvText(filePath: string, file: string): Promise<string> {
  const cannotRead = (error: unknown): never => {
    throw new InvalidInputError(file, `cannot read ${filePath} (${errorMessage(error)}); check the path`, { cause: error });
  };
  const handle = await open(filePath, constants.O_RDONLY | constants.O_NONBLOCK).catch(cannotRead);
  try {
    const stats = await handle.stat().catch(cannotRead);
    if (!stats.isFile()) throw new InvalidInputError(file, `cannot read ${filePath}: it is ${fileKind(stats)}, not a regular file; give the path of a CSV file`);
    if (stats.size > MAX_CSV_BYTES) {
      throw new InvalidInputError(
        file,
        `is ${stats.size} bytes, more than the ${MAX_CSV_BYTES} (64 MiB) a CSV of bars may have: parsing takes about 21 bytes of memory per byte of file; split the file or keep fewer rows`,
      );
    }
    return await handle.readFile({ encoding: 'utf8' }).catch(cannotRead);
  } finally {
    await handle.close();
  }
}

function fileKind(stats: { isDirectory(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean; isFIFO(): boolean; isSocket(): boolean }): string {
  if (stats.isDirectory()) return 'a directory';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  if (stats.isFIFO()) return 'a named pipe';
  if (stats.isSocket()) return 'a socket';
  return 'not a file';
}

function parseCsvBars(text: string, file: string, symbol: string, zone: ZoneOffsets, columns: CsvColumns, prices: CsvPrices): Bar[] {
  const fail = (line: number, column: string | undefined, message: string): never => {
    throw new InvalidInputError(`${file} line ${line}${column === undefined ? '' : `, column ${column}`}`, message);
  };
  const adjusted = prices === CsvPrices.adjusted;
  const header = readHeader(text, file, columns, adjusted);
  let rows: ParsedRow[];
  try {
    rows = parse(text, { ...PARSE_OPTIONS, info: true }) as unknown as ParsedRow[];
  } catch (error) {
    const line = (error as { lines?: unknown }).lines;
    // No `cause`: the parser's error holds the whole field it choked on, and the CLI prints causes.
    throw new InvalidInputError(`${file} line ${typeof line === 'number' ? line : '?'}`, `is not valid CSV (${parserMessage(error)}); fix the quoting or delimiters`);
  }
  if (rows.length === 1) return fail(header.line, undefined, 'the file has a header but no rows; add bars or use another file');
  const { indexOf, label, fieldCount } = header;

  const bars: Bar[] = [];
  let previous: { timeMs: number; text: string; line: number } | undefined;
  for (let r = 1; r < rows.length; r++) {
    const { record, info } = rows[r] as ParsedRow;
    const line = info.lines;
    if (record.length < fieldCount) {
      fail(line, undefined, `the row has ${record.length} field${record.length === 1 ? '' : 's'} and the header ${fieldCount}; every row needs a value in every column (check for a missing comma)`);
    }
    const cell = (field: CsvField): string => {
      const value = record[indexOf[field]] ?? '';
      if (value === '') return fail(line, label[field], 'is empty; every row needs a value in every column');
      return value;
    };
    const timeText = cell('date');
    const timeMs = parseTime(timeText, zone, (message) => fail(line, label.date, message));
    if (previous !== undefined && timeMs <= previous.timeMs) {
      if (timeMs === previous.timeMs) {
        fail(line, label.date, `${timeText} repeats line ${previous.line}; remove the duplicate row`);
      }
      fail(line, label.date, `${timeText} is earlier than ${previous.text} on line ${previous.line}; sort the rows by ${label.date}, oldest first`);
    }
    const number = (column: ValueColumn | typeof ADJ_CLOSE): number => {
      const raw = cell(column);
      if (!NUMBER.test(raw)) fail(line, label[column], `${quoteCell(raw)} is not a number; write a plain decimal such as 12.34`);
      return Number(raw);
    };
    const values = {} as Record<ValueColumn, number>;
    for (const column of VALUE_COLUMNS) values[column] = number(column);
    if (adjusted) {
      const adjClose = number(ADJ_CLOSE);
      if (!(adjClose > 0)) fail(line, label.adjClose, `${quoteCell(cell(ADJ_CLOSE))} is not above 0; an adjusted close scales the row's prices (prices: adjusted), so it must be a positive price`);
      if (!(values.close > 0)) fail(line, label.close, `${quoteCell(cell('close'))} is not above 0; prices: adjusted divides the adjusted close by it`);
      const factor = adjClose / values.close;
      values.open *= factor;
      values.high *= factor;
      values.low *= factor;
      values.close *= factor;
    }
    const bar = freezeBar({ symbol, timeMs, ...values });
    const problem = validateBar(bar)[0];
    if (problem !== undefined) fail(line, label[problem.field as CsvField] ?? problem.field, `${problem.message}; fix or remove the row`);
    bars.push(bar);
    previous = { timeMs, text: timeText, line };
  }
  return bars;
}

const PARSE_OPTIONS = { bom: true, trim: true, skip_empty_lines: true, relax_column_count: true } as const;

/** A bar file's header: its line, its number of fields, and where each field is. */
interface Header {
  readonly line: number;
  readonly fieldCount: number;
  /** Index of each field's column. */
  readonly indexOf: Readonly<Record<CsvField, number>>;
  /** Each field's column as errors name it: its header name, or the field's own name for an unnamed column. */
  readonly label: Readonly<Record<CsvField, string>>;
}

/** The fields a header must have: the bar's, and the adjusted close for adjusted prices. */
const ADJUSTED_FIELDS: readonly CsvField[] = [...CSV_FIELDS, ADJ_CLOSE];

/** A header name as columns are compared: lower case, letters and digits only (`Adj Close` → `adjclose`). */
function normalise(name: string): string {
  return name.toLowerCase().replace(/[^\p{L}\p{N}]/gu, '');
}

/**
 * The header of a CSV of bars, read from the first line that is not blank.
 * @throws InvalidInputError when that line is not such a header, saying what was expected and how
 *   many columns the line has, and quoting nothing of it (the file may be anything) but the names
 *   `columns` gives.
 */
function readHeader(text: string, file: string, columns: CsvColumns, adjusted: boolean): Header {
  const first = firstLine(text);
  if (first === undefined) throw new InvalidInputError(`${file} line 1`, `the file is empty; expected ${EXPECTED_HEADER}, then rows of bars`);
  const notBars = (why: string): never => {
    throw new InvalidInputError(`${file} line ${first.line}`, `is not a CSV of bars (${why}); expected ${EXPECTED_HEADER}`);
  };
  // NUL, and U+FFFD where the UTF-8 decoder met bytes it could not decode.
  if (first.text.includes('\u0000') || first.text.includes('\uFFFD')) return notBars('its first line is not text: it holds NUL or bytes that are not UTF-8');
  let record: readonly string[];
  try {
    record = parse(first.text, PARSE_OPTIONS)[0] ?? [];
  } catch {
    return notBars('its first line is not valid CSV');
  }
  const names = record.map(normalise);
  const columnCount = `its first line has ${names.length} column${names.length === 1 ? '' : 's'}`;
  const indexOf = { adjClose: -1 } as Record<CsvField, number>;
  const missing: string[] = [];
  const fields = adjusted ? ADJUSTED_FIELDS : CSV_FIELDS;
  const usualNames = adjusted ? USUAL_NAMES_ADJUSTED : USUAL_NAMES;
  for (const field of fields) {
    const mapped = columns[field];
    if (mapped !== undefined) {
      const index = names.indexOf(normalise(mapped));
      if (index < 0) {
        throw new InvalidInputError(`${file} line ${first.line}`, `has no column named ${JSON.stringify(mapped)} (columns.${field}); ${columnCount}; check the name in columns.${field}`);
      }
      indexOf[field] = index;
      continue;
    }
    const index = usualNames[field].map((usual) => names.indexOf(usual)).find((found) => found >= 0) ?? (field === 'date' && names[0] === '' ? 0 : -1);
    if (index < 0) missing.push(field === 'date' ? 'a time column' : field);
    indexOf[field] = index;
  }
  if (missing.length > 0) {
    if (missing.length === 1 && missing[0] === ADJ_CLOSE) {
      throw new InvalidInputError(
        `${file} line ${first.line}`,
        `prices: adjusted needs an adjusted close column beside close (named Adj Close or Adjusted Close, or mapped with columns.adjClose), and this header has none; add the column, map it, or use prices: as-written`,
      );
    }
    return notBars(`${columnCount}, without ${missing.join(', ')}`);
  }
  const twice = fields.filter((field) => fields.some((other) => other !== field && indexOf[other] === indexOf[field]));
  if (twice.length > 0) throw new InvalidInputError(`${file} line ${first.line}`, `one column is read as ${twice.join(' and ')}; map each field to a column of its own in columns`);
  const label = {} as Record<CsvField, string>;
  for (const field of fields) label[field] = (record[indexOf[field]] ?? '').trim() || field;
  if (!adjusted) label.adjClose = ADJ_CLOSE;
  return { line: first.line, fieldCount: record.length, indexOf, label };
}

/** The first line of `text` that is not blank (after a byte order mark), and its number from 1. */
function firstLine(text: string): { line: number; text: string } | undefined {
  const lines = /[^\r\n]*(?:\r\n|\r|\n|$)/gy;
  lines.lastIndex = text.startsWith('\uFEFF') ? 1 : 0;
  for (let line = 1; lines.lastIndex < text.length; line++) {
    const match = lines.exec(text);
    if (match === null) return undefined;
    if (match[0].trim() !== '') return { line, text: match[0].replace(/\r?\n$|\r$/, '') };
  }
  return undefined;
}

/** A cell as errors quote it: JSON-quoted, cut to {@link QUOTED_CELL_CHARS} characters (with its length) when longer. */
function quoteCell(text: string): string {
  return text.length <= QUOTED_CELL_CHARS ? JSON.stringify(text) : `${JSON.stringify(text.slice(0, QUOTED_CELL_CHARS))}… (${text.length} characters)`;
}

/** The CSV parser's message, with the field it may quote whole (`value is "..."`) cut as {@link quoteCell} cuts a cell. */
function parserMessage(error: unknown): string {
  return errorMessage(error).replace(/value is ("(?:[^"\\]|\\.)*")/, (_match, quoted: string) => `value is ${quoteCell(JSON.parse(quoted) as string)}`);
}

/** A time cell in any of the forms {@link loadCsvBars} reads, as UTC milliseconds. */
function parseTime(text: string, zone: ZoneOffsets, fail: (message: string) => never): number {
  if (DATE.test(text)) return parseDate(text, fail);
  if (DATETIME.test(text)) return parseDateTime(text, zone, fail);
  if (EPOCH_SECONDS.test(text)) return Number(text) * 1000;
  if (EPOCH_MILLISECONDS.test(text)) return Number(text);
  return fail(`${quoteCell(text)} is not a date or time; ${TIME_FORMS}`);
}

function parseDate(text: string, fail: (message: string) => never): number {
  const match = DATE.exec(text) as RegExpExecArray;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const timeMs = Date.UTC(year, month - 1, day);
  if (!sameCalendarFields(timeMs, year, month, day, 0, 0, 0)) return fail(`${JSON.stringify(text)} is not a calendar date; check month and day`);
  return timeMs;
}

function parseDateTime(text: string, zone: ZoneOffsets, fail: (message: string) => never): number {
  const match = DATETIME.exec(text) as RegExpExecArray;
  const [year, month, day, hour, minute, second] = [1, 2, 3, 4, 5, 6].map((i) => Number(match[i] ?? 0)) as [number, number, number, number, number, number];
  const millis = Number((match[7] ?? '').slice(0, 3).padEnd(3, '0'));
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
