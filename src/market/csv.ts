import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
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
 * Errors quote a cell of a bar row at most (cut to 32 characters), and nothing of a file whose first
 * line is not a header of bars: such a file may be anything (a path mistyped as `/etc/shadow`).
 *
 * @throws InvalidInputError for anything wrong in the file, naming the file, the line, the column
 *   and what to do, e.g. `AAPL.csv line 17, column close: "abc" is not a number; ...`. Nothing is
 *   returned on error. Also when the path is not a regular file, the file is larger than
 *   {@link MAX_CSV_BYTES}, it cannot be read, or `options.timeZone` is unknown.
 */
export async function loadCsvBars(path: string | URL, symbol: string, options: CsvBarsOptions = {}): Promise<Bar[]> {
  const filePath = typeof path === 'string' ? path : fileURLToPath(path);
  const file = basename(filePath);
  if (symbol.trim() === '') throw new InvalidInputError('symbol', 'must be a non-empty string');
  const timeZone = options.timeZone ?? 'America/New_York';
  const zone = zoneOffsets(timeZone);
  return parseCsvBars(await readCsvText(filePath, file), file, symbol, zone);
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

function parseCsvBars(text: string, file: string, symbol: string, zone: ZoneOffsets): Bar[] {
  const fail = (line: number, column: string | undefined, message: string): never => {
    throw new InvalidInputError(`${file} line ${line}${column === undefined ? '' : `, column ${column}`}`, message);
  };
  const header = readHeader(text, file);
  const { names, timeColumn } = header;
  let rows: ParsedRow[];
  try {
    rows = parse(text, { ...PARSE_OPTIONS, info: true }) as unknown as ParsedRow[];
  } catch (error) {
    const line = (error as { lines?: unknown }).lines;
    // No `cause`: the parser's error holds the whole field it choked on, and the CLI prints causes.
    throw new InvalidInputError(`${file} line ${typeof line === 'number' ? line : '?'}`, `is not valid CSV (${parserMessage(error)}); fix the quoting or delimiters`);
  }
  const indexOf = {} as Record<ValueColumn, number>;
  for (const column of VALUE_COLUMNS) indexOf[column] = names.indexOf(column);
  if (rows.length === 1) return fail(header.line, undefined, 'the file has a header but no rows; add bars or use another file');

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
      if (!NUMBER.test(raw)) fail(line, column, `${quoteCell(raw)} is not a number; write a plain decimal such as 12.34`);
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

const PARSE_OPTIONS = { bom: true, trim: true, skip_empty_lines: true, relax_column_count: true } as const;

/** A bar file's header: its line and its column names, lower-cased. */
interface Header {
  readonly line: number;
  readonly names: readonly string[];
  readonly timeColumn: 'date' | 'datetime';
}

/**
 * The header of a CSV of bars, read from the first line that is not blank.
 * @throws InvalidInputError when that line is not such a header, saying what was expected and how
 *   many columns the line has, and quoting nothing of it: the file may be anything.
 */
function readHeader(text: string, file: string): Header {
  const first = firstLine(text);
  if (first === undefined) throw new InvalidInputError(`${file} line 1`, `the file is empty; expected a header ${EXPECTED_HEADER} and rows of bars`);
  const notBars = (why: string): never => {
    throw new InvalidInputError(`${file} line ${first.line}`, `is not a CSV of bars (${why}); expected a header ${EXPECTED_HEADER}`);
  };
  // NUL, and U+FFFD where the UTF-8 decoder met bytes it could not decode.
  if (first.text.includes('\u0000') || first.text.includes('\uFFFD')) return notBars('its first line is not text: it holds NUL or bytes that are not UTF-8');
  let record: readonly string[];
  try {
    record = parse(first.text, PARSE_OPTIONS)[0] ?? [];
  } catch {
    return notBars('its first line is not valid CSV');
  }
  const names = record.map((name) => name.toLowerCase());
  const columns = `its first line has ${names.length} column${names.length === 1 ? '' : 's'}`;
  const timeColumn = names[0];
  if (timeColumn !== 'date' && timeColumn !== 'datetime') return notBars(`${columns}, the first not date or datetime`);
  const missing = VALUE_COLUMNS.filter((column) => !names.includes(column));
  if (missing.length > 0) return notBars(`${columns}, without ${missing.join(', ')}`);
  return { line: first.line, names, timeColumn };
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

function parseDate(text: string, fail: (message: string) => never): number {
  const match = DATE.exec(text);
  if (!match) return fail(`${quoteCell(text)} is not a date; write YYYY-MM-DD`);
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const timeMs = Date.UTC(year, month - 1, day);
  if (!sameCalendarFields(timeMs, year, month, day, 0, 0, 0)) return fail(`${JSON.stringify(text)} is not a calendar date; check month and day`);
  return timeMs;
}

function parseDateTime(text: string, zone: ZoneOffsets, fail: (message: string) => never): number {
  const match = DATETIME.exec(text);
  if (!match) return fail(`${quoteCell(text)} is not a datetime; write YYYY-MM-DDTHH:MM:SS (exchange local time, no zone)`);
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
