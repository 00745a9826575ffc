import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidInputError, errorChain } from '../core/index.js';
import { type Bar, loadCsvBars, validateBar } from './index.js';

const dataUrl = new URL('../../../shared/data/', import.meta.url);
const dataDir = fileURLToPath(dataUrl);
const haveData = existsSync(dataDir);
const inCi = process.env.CI === 'true';
if (!haveData && !inCi) console.warn(`csv.test.ts: skipping the real-data tests: ${dataDir} is absent`);

describe('real data folder', () => {
  // CI always has the shared data; a missing folder there is a broken checkout, not a reason to skip.
  it.runIf(!haveData && inCi)(`exists under CI (${dataDir})`, () => {
    throw new Error(`${dataDir} is absent but CI=true: the shared market data must be present in CI`);
  });
});

describe.skipIf(!haveData)(`loadCsvBars on ${dataDir} (skipped when that folder is absent)`, () => {
  it('reads daily/AAPL.csv exactly', async () => {
    const bars = await loadCsvBars(new URL('daily/AAPL.csv', dataUrl), 'AAPL');
    expect(bars).toHaveLength(5402);
    expect(bars[0]).toEqual({
      symbol: 'AAPL',
      timeMs: Date.UTC(1999, 10, 1),
      open: 0.61518,
      high: 0.620486,
      low: 0.594956,
      close: 0.596879,
      volume: 2487300,
    });
    expect(bars.at(-1)).toEqual({
      symbol: 'AAPL',
      timeMs: Date.UTC(2021, 3, 21),
      open: 132.36,
      high: 133.75,
      low: 131.3001,
      close: 133.5,
      volume: 68538237,
    });
    expect(Object.isFrozen(bars[0])).toBe(true);
  });

  it('reads minute/SPY_minute.csv, converting US/Eastern wall time to UTC', async () => {
    const bars = await loadCsvBars(join(dataDir, 'minute', 'SPY_minute.csv'), 'SPY');
    expect(bars).toHaveLength(5786);
    // 2013-10-04T04:06:00 New York (EDT, UTC-4).
    expect(new Date(bars[0]?.timeMs ?? 0).toISOString()).toBe('2013-10-04T08:06:00.000Z');
    expect(bars[0]).toEqual({ symbol: 'SPY', timeMs: Date.UTC(2013, 9, 4, 8, 6), open: 167.65, high: 167.65, low: 167.65, close: 167.65, volume: 20000 });
    // 2023-08-03T19:59:00 New York (EDT).
    expect(bars.at(-1)).toEqual({ symbol: 'SPY', timeMs: Date.UTC(2023, 7, 3, 23, 59), open: 449.85, high: 449.9, low: 449.84, close: 449.88, volume: 2984 });
    // 2023-08-03T04:00:00 New York is the first bar of that day.
    const first2023 = bars.find((bar) => bar.timeMs >= Date.UTC(2023, 0, 1));
    expect(first2023?.timeMs).toBe(Date.UTC(2023, 7, 3, 8, 0));
    expect(first2023?.open).toBe(447.91);
  });

  it('reads reference/GOOG_2004_2013.csv as pandas wrote it (an unnamed first column, capitalised names)', async () => {
    const bars = await loadCsvBars(new URL('reference/GOOG_2004_2013.csv', dataUrl), 'GOOG');
    expect(bars).toHaveLength(2148);
    expect(bars[0]).toEqual({ symbol: 'GOOG', timeMs: Date.UTC(2004, 7, 19), open: 100, high: 104.06, low: 95.96, close: 100.34, volume: 22351900 });
  });

  it('reads reference/index_2006_daily.csv (Date, ..., OpenInterest), ignoring the extra column', async () => {
    const bars = await loadCsvBars(new URL('reference/index_2006_daily.csv', dataUrl), 'IDX');
    expect(bars).toHaveLength(255);
    expect(bars[0]).toEqual({ symbol: 'IDX', timeMs: Date.UTC(2006, 0, 2), open: 3578.73, high: 3605.95, low: 3578.73, close: 3604.33, volume: 0 });
  });

  it('loads and validates every daily file', async () => {
    const files = (await readdir(join(dataDir, 'daily'))).filter((name) => name.endsWith('.csv'));
    expect(files.length).toBeGreaterThanOrEqual(18);
    for (const file of files) {
      const symbol = file.replace(/\.csv$/, '');
      const bars = await loadCsvBars(join(dataDir, 'daily', file), symbol);
      expect(bars.length, file).toBeGreaterThan(3000);
      expect(bars.flatMap((bar) => validateBar(bar).map((problem) => `${file} ${bar.timeMs}: ${problem.message}`))).toEqual([]);
      expect(bars.filter((bar, i) => i > 0 && bar.timeMs <= (bars[i - 1] as Bar).timeMs)).toEqual([]);
    }
  });
});

describe('loadCsvBars on small files', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tradeswarm-csv-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function write(name: string, text: string | Uint8Array): Promise<string> {
    const path = join(dir, name);
    await writeFile(path, text);
    return path;
  }

  async function failure(name: string, text: string | Uint8Array): Promise<InvalidInputError> {
    const error: unknown = await loadCsvBars(await write(name, text), 'TEST').then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    expect(error).toBeInstanceOf(InvalidInputError);
    return error as InvalidInputError;
  }

  const header = 'date,open,high,low,close,volume\n';
  const TIME_FORMS = "write YYYY-MM-DD, YYYY-MM-DD HH:MM[:SS] (in the data's time zone, or ending in Z or ±HH:MM), or Unix time in seconds (10 digits) or milliseconds (13 digits)";

  it('reads dates as UTC midnight, tolerating CRLF, a BOM and blank lines', async () => {
    const path = await write('ok.csv', `\uFEFF${header.replace('\n', '\r\n')}2020-01-02,1,2,0.5,1.5,100\r\n\r\n2020-01-03,1.5,1.5,1,1,0\r\n`);
    expect(await loadCsvBars(path, 'OK')).toEqual([
      { symbol: 'OK', timeMs: Date.UTC(2020, 0, 2), open: 1, high: 2, low: 0.5, close: 1.5, volume: 100 },
      { symbol: 'OK', timeMs: Date.UTC(2020, 0, 3), open: 1.5, high: 1.5, low: 1, close: 1, volume: 0 },
    ]);
  });

  it.each([
    // Standard time (EST, UTC-5) and daylight time (EDT, UTC-4), with both 2013 and 2023 switch days.
    ['2013-01-15T09:30:00', '2013-01-15T14:30:00.000Z'],
    ['2013-03-10T01:59:00', '2013-03-10T06:59:00.000Z'],
    ['2013-03-10T03:00:00', '2013-03-10T07:00:00.000Z'],
    ['2013-10-04T09:30:00', '2013-10-04T13:30:00.000Z'],
    ['2013-11-03T00:59:00', '2013-11-03T04:59:00.000Z'],
    // 01:30 happens twice on 2013-11-03; the first (EDT) is taken.
    ['2013-11-03T01:30:00', '2013-11-03T05:30:00.000Z'],
    ['2013-11-03T02:00:00', '2013-11-03T07:00:00.000Z'],
    ['2023-03-12T03:30', '2023-03-12T07:30:00.000Z'],
    ['2023-08-03T16:00:00', '2023-08-03T20:00:00.000Z'],
    ['2023-11-06T09:30:00', '2023-11-06T14:30:00.000Z'],
    // An explicit zone is taken as written.
    ['2023-11-06T09:30:00Z', '2023-11-06T09:30:00.000Z'],
    ['2023-11-06T09:30:00+01:00', '2023-11-06T08:30:00.000Z'],
  ])('reads datetime %s as %s', async (local, utc) => {
    const path = await write(`dt-${local.replace(/[:+]/g, '_')}.csv`, `datetime,open,high,low,close,volume\n${local},1,1,1,1,1\n`);
    const bars = await loadCsvBars(path, 'SPY');
    expect(new Date(bars[0]?.timeMs ?? 0).toISOString()).toBe(utc);
  });

  it('converts in another time zone when asked', async () => {
    const path = await write('london.csv', 'datetime,open,high,low,close,volume\n2023-08-03T08:00:00,1,1,1,1,1\n');
    const bars = await loadCsvBars(path, 'X', { timeZone: 'Europe/London' });
    expect(bars[0]?.timeMs).toBe(Date.UTC(2023, 7, 3, 7, 0));
    await expect(loadCsvBars(path, 'X', { timeZone: 'Mars/Olympus' })).rejects.toThrow(/^timeZone: "Mars\/Olympus" is not an IANA time zone/);
  });

  it.each([
    ['bad number', `${header}2020-01-02,1,2,0.5,1.5,100\n2020-01-03,1,2,0.5,abc,100\n`, 'bad-number.csv line 3, column close: "abc" is not a number; write a plain decimal such as 12.34'],
    ['empty cell', `${header}2020-01-02,1,2,,1.5,100\n`, 'empty-cell.csv line 2, column low: is empty; every row needs a value in every column'],
    ['short row', `${header}2020-01-02,1,2,0.5,1.5,100\n2020-01-03,1,2,0.5,1.5\n`, 'short-row.csv line 3: the row has 5 fields and the header 6; every row needs a value in every column (check for a missing comma)'],
    ['short row unused', `date,open,high,low,close,volume,note\n2020-01-02,1,2,0.5,1.5,100\n`, 'short-row-unused.csv line 2: the row has 6 fields and the header 7; every row needs a value in every column (check for a missing comma)'],
    [
      'missing column',
      'date,open,high,low,close\n2020-01-02,1,2,0.5,1.5\n',
      'missing-column.csv line 1: is not a CSV of bars (its first line has 5 columns, without volume); expected a header naming a time column (date, datetime, timestamp or time, or an unnamed first column as pandas writes it) and open, high, low, close, volume, in any case and order (or columns mapped by name)',
    ],
    [
      'no time column',
      'when,open,high,low,close,volume\n2020-01-02,1,2,0.5,1.5,1\n',
      'no-time-column.csv line 1: is not a CSV of bars (its first line has 6 columns, without a time column); expected a header naming a time column (date, datetime, timestamp or time, or an unnamed first column as pandas writes it) and open, high, low, close, volume, in any case and order (or columns mapped by name)',
    ],
    [
      'unsorted dates',
      `${header}2020-01-02,1,2,0.5,1.5,100\n2020-01-06,1,2,0.5,1.5,100\n2020-01-03,1,2,0.5,1.5,100\n`,
      'unsorted-dates.csv line 4, column date: 2020-01-03 is earlier than 2020-01-06 on line 3; sort the rows by date, oldest first',
    ],
    [
      'duplicate date',
      `${header}2020-01-02,1,2,0.5,1.5,100\n\n2020-01-02,1,2,0.5,1.5,100\n`,
      'duplicate-date.csv line 4, column date: 2020-01-02 repeats line 2; remove the duplicate row',
    ],
    [
      'duplicate datetime',
      'datetime,open,high,low,close,volume\n2013-10-04T09:30:00,1,1,1,1,1\n2013-10-04T09:30:00,1,1,1,1,1\n',
      'duplicate-datetime.csv line 3, column datetime: 2013-10-04T09:30:00 repeats line 2; remove the duplicate row',
    ],
    ['high below low', `${header}2020-01-02,1,2,0.5,1.5,100\n2020-01-03,1,0.9,1.1,1,100\n`, 'high-below-low.csv line 3, column high: high 0.9 is below low 1.1; fix or remove the row'],
    ['high below close', `${header}2020-01-02,1,1.2,0.5,1.5,100\n`, 'high-below-close.csv line 2, column high: high 1.2 is below max(open, close) 1.5; fix or remove the row'],
    ['low above open', `${header}2020-01-02,1,2,1.1,1.5,100\n`, 'low-above-open.csv line 2, column low: low 1.1 is above min(open, close) 1; fix or remove the row'],
    ['negative volume', `${header}2020-01-02,1,2,0.5,1.5,-5\n`, 'negative-volume.csv line 2, column volume: volume must be a finite number >= 0, got -5; fix or remove the row'],
    ['bad date', `${header}2020-02-30,1,2,0.5,1.5,100\n`, 'bad-date.csv line 2, column date: "2020-02-30" is not a calendar date; check month and day'],
    ['date format', `${header}02/01/2020,1,2,0.5,1.5,100\n`, 'date-format.csv line 2, column date: "02/01/2020" is not a date or time; write YYYY-MM-DD, YYYY-MM-DD HH:MM[:SS] (in the data\'s time zone, or ending in Z or ±HH:MM), or Unix time in seconds (10 digits) or milliseconds (13 digits)'],
    ['ambiguous number of digits', `${header}20200102,1,2,0.5,1.5,100\n`, 'ambiguous-number-of-digits.csv line 2, column date: "20200102" is not a date or time; write YYYY-MM-DD, YYYY-MM-DD HH:MM[:SS] (in the data\'s time zone, or ending in Z or ±HH:MM), or Unix time in seconds (10 digits) or milliseconds (13 digits)'],
    [
      'skipped hour',
      'datetime,open,high,low,close,volume\n2023-03-12T02:30:00,1,1,1,1,1\n',
      'skipped-hour.csv line 2, column datetime: "2023-03-12T02:30:00" does not exist in America/New_York (clocks jumped forward over it); check the data\'s time zone',
    ],
    ['empty file', '', 'empty-file.csv line 1: the file is empty; expected a header naming a time column (date, datetime, timestamp or time, or an unnamed first column as pandas writes it) and open, high, low, close, volume, in any case and order (or columns mapped by name), then rows of bars'],
    ['header only', header, 'header-only.csv line 1: the file has a header but no rows; add bars or use another file'],
  ])('reports %s with file, line and column', async (name, text, message) => {
    const error = await failure(`${name.replace(/ /g, '-')}.csv`, text);
    expect(error.message).toBe(message);
  });

  const ohlcv = (bars: Bar[]): number[][] => bars.map((bar) => [bar.timeMs, bar.open, bar.high, bar.low, bar.close, bar.volume]);

  it('reads a pandas-style file: an unnamed index column of date-times, capitalised names, extra columns', async () => {
    const path = await write('pandas.csv', ',Open,High,Low,Close,Volume,Dividends\n2023-08-03 09:30:00,10,11,9,10.5,100,0\n2023-08-03 09:31:00,10.5,10.6,10.1,10.2,50,0\n');
    expect(ohlcv(await loadCsvBars(path, 'PD'))).toEqual([
      [Date.UTC(2023, 7, 3, 13, 30), 10, 11, 9, 10.5, 100],
      [Date.UTC(2023, 7, 3, 13, 31), 10.5, 10.6, 10.1, 10.2, 50],
    ]);
  });

  it('reads a Yahoo-style file: Date,Open,High,Low,Close,Adj Close,Volume, close winning over Adj Close', async () => {
    const yahoo = 'Date,Open,High,Low,Close,Adj Close,Volume\n2020-01-02,74.06,75.15,73.80,75.09,73.45,135480400\n';
    expect(ohlcv(await loadCsvBars(await write('yahoo.csv', yahoo), 'AAPL'))).toEqual([[Date.UTC(2020, 0, 2), 74.06, 75.15, 73.8, 75.09, 135480400]]);
    // Only an adjusted close: it is the close.
    const adjusted = 'DATE,OPEN,HIGH,LOW,ADJ_CLOSE,VOLUME\n2020-01-02,74,75,73,74.5,1\n';
    expect(ohlcv(await loadCsvBars(await write('adjusted.csv', adjusted), 'AAPL'))).toEqual([[Date.UTC(2020, 0, 2), 74, 75, 73, 74.5, 1]]);
  });

  it('with prices: adjusted, scales each row\'s open, high, low and close by its Adj Close / Close, volume as written', async () => {
    // Factors 0.5 and 0.25, exact in binary: every scaled price is the hand-computed one.
    const yahoo = 'Date,Open,High,Low,Close,Adj Close,Volume\n2020-01-02,98,102,96,100,50,7000\n2020-01-03,104,108,100,100,25,9000\n';
    const path = await write('yahoo-adjust.csv', yahoo);
    expect(ohlcv(await loadCsvBars(path, 'AAPL', { prices: 'adjusted' }))).toEqual([
      [Date.UTC(2020, 0, 2), 49, 51, 48, 50, 7000],
      [Date.UTC(2020, 0, 3), 26, 27, 25, 25, 9000],
    ]);
    // As written by default: the close wins over Adj Close.
    expect(ohlcv(await loadCsvBars(path, 'AAPL'))[0]).toEqual([Date.UTC(2020, 0, 2), 98, 102, 96, 100, 7000]);
    // An inexact factor (73.45 / 75.09) on a bar whose high and close are equal: the scaled high stays the scaled close.
    const inexact = await loadCsvBars(await write('inexact.csv', 'Date,Open,High,Low,Close,Adj Close,Volume\n2020-01-02,74.06,75.09,73.80,75.09,73.45,1\n'), 'A', { prices: 'adjusted' });
    const factor = 73.45 / 75.09;
    expect(ohlcv(inexact)).toEqual([[Date.UTC(2020, 0, 2), 74.06 * factor, 75.09 * factor, 73.8 * factor, 75.09 * factor, 1]]);
    expect(inexact[0]?.close).toBeCloseTo(73.45, 12);
    // A column of another name, mapped.
    const mapped = await write('mapped-adjust.csv', 'date,open,high,low,close,volume,factorised\n2020-01-02,98,102,96,100,1,50\n');
    expect(ohlcv(await loadCsvBars(mapped, 'M', { prices: 'adjusted', columns: { adjClose: 'Factorised' } }))).toEqual([[Date.UTC(2020, 0, 2), 49, 51, 48, 50, 1]]);
  });

  it('refuses prices: adjusted without an adjusted close column, a bad one, or columns.adjClose without it, naming the field', async () => {
    const plain = await write('plain.csv', 'date,open,high,low,close,volume\n2020-01-02,1,2,0.5,1.5,100\n');
    await expect(loadCsvBars(plain, 'P', { prices: 'adjusted' })).rejects.toThrow(
      'plain.csv line 1: prices: adjusted needs an adjusted close column beside close (named Adj Close or Adjusted Close, or mapped with columns.adjClose), and this header has none; add the column, map it, or use prices: as-written',
    );
    const zero = await write('zero-adjust.csv', 'Date,Open,High,Low,Close,Adj Close,Volume\n2020-01-02,1,2,0.5,1.5,0,100\n');
    await expect(loadCsvBars(zero, 'Z', { prices: 'adjusted' })).rejects.toThrow(
      'zero-adjust.csv line 2, column Adj Close: "0" is not above 0; an adjusted close scales the row\'s prices (prices: adjusted), so it must be a positive price',
    );
    await expect(loadCsvBars(plain, 'P', { columns: { adjClose: 'close' } })).rejects.toThrow(
      'columns.adjClose: is read only with prices: adjusted, and prices is as-written; set prices: adjusted to scale the bars by it, or remove columns.adjClose',
    );
    await expect(loadCsvBars(plain, 'P', { prices: 'auto' as never })).rejects.toThrow('prices: must be one of "as-written", "adjusted", got "auto"');
  });

  it.each([
    ['timestamp', '1691069400', Date.UTC(2023, 7, 3, 13, 30)],
    ['timestamp', '1691069400000', Date.UTC(2023, 7, 3, 13, 30)],
    ['Time', '2023-08-03T13:30:00.123456Z', Date.UTC(2023, 7, 3, 13, 30, 0, 123)],
    ['Datetime', '2023-08-03 09:30:00-04:00', Date.UTC(2023, 7, 3, 13, 30)],
  ])('reads a %s column holding %s', async (column, value, timeMs) => {
    const path = await write(`time-${value.replace(/[:+ .]/g, '_')}.csv`, `${column},open,high,low,close,volume\n${value},1,1,1,1,1\n`);
    expect((await loadCsvBars(path, 'T'))[0]?.timeMs).toBe(timeMs);
  });

  it('reads the columns a mapping names, whatever they are called', async () => {
    const path = await write('mapped.csv', 'Day,o,h,l,c,Adj Close,v\n2020-01-02,10,12,9,11,10.5,7\n');
    const bars = await loadCsvBars(path, 'M', { columns: { date: 'day', open: 'O', high: 'H', low: 'L', close: 'adj close', volume: 'V' } });
    expect(ohlcv(bars)).toEqual([[Date.UTC(2020, 0, 2), 10, 12, 9, 10.5, 7]]);
    // Errors name the column as the file spells it.
    const bad = await write('mapped-bad.csv', 'Day,o,h,l,c,Adj Close,v\n2020-01-02,10,12,9,11,x,7\n');
    await expect(loadCsvBars(bad, 'M', { columns: { date: 'Day', open: 'o', high: 'h', low: 'l', close: 'Adj Close', volume: 'v' } })).rejects.toThrow(
      'mapped-bad.csv line 2, column Adj Close: "x" is not a number; write a plain decimal such as 12.34',
    );
  });

  it('refuses a mapping that names no column of the file, or reads one column as two fields', async () => {
    const path = await write('unmapped.csv', 'Date,Open,High,Low,Close,Volume\n2020-01-02,1,2,0.5,1.5,100\n');
    await expect(loadCsvBars(path, 'U', { columns: { close: 'Adj Close' } })).rejects.toThrow(
      'unmapped.csv line 1: has no column named "Adj Close" (columns.close); its first line has 6 columns; check the name in columns.close',
    );
    await expect(loadCsvBars(path, 'U', { columns: { open: 'Close' } })).rejects.toThrow('unmapped.csv line 1: one column is read as open and close; map each field to a column of its own in columns');
  });

  it('converts naive date-times in the given zone: New York and Chicago across the 2023 switch to daylight time, checked by hand', async () => {
    const text = 'Datetime,Open,High,Low,Close,Volume\n2023-03-10 09:30:00,1,1,1,1,1\n2023-03-13 09:30:00,1,1,1,1,1\n';
    const path = await write('zones.csv', text);
    // New York: EST (UTC-5) on Friday 10 March, EDT (UTC-4) from Sunday 12 March.
    expect((await loadCsvBars(path, 'Z')).map((bar) => new Date(bar.timeMs).toISOString())).toEqual(['2023-03-10T14:30:00.000Z', '2023-03-13T13:30:00.000Z']);
    // Chicago: CST (UTC-6), then CDT (UTC-5).
    expect((await loadCsvBars(path, 'Z', { timeZone: 'America/Chicago' })).map((bar) => new Date(bar.timeMs).toISOString())).toEqual([
      '2023-03-10T15:30:00.000Z',
      '2023-03-13T14:30:00.000Z',
    ]);
  });

  it('reports broken CSV quoting with its line', async () => {
    const error = await failure('quote.csv', `${header}2020-01-02,1,2,0.5,1.5,100\n"2020-01-03,1,2,0.5,1.5,100\n`);
    expect(error.message).toMatch(/^quote\.csv line 3: is not valid CSV \(.*\); fix the quoting or delimiters$/);
  });

  it.each([
    ['bad number', 'close', `${'x'.repeat(1000)}`, 'long-cell.csv line 2, column close: "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"… (1000 characters) is not a number; write a plain decimal such as 12.34'],
    ['bad date', 'date', `2020-01-02${'y'.repeat(200)}`, `long-cell.csv line 2, column date: "2020-01-02yyyyyyyyyyyyyyyyyyyyyy"… (210 characters) is not a date or time; ${TIME_FORMS}`],
  ])('quotes at most 32 characters of a cell (%s)', async (_name, column, value, message) => {
    const row = column === 'date' ? `${value},1,2,0.5,1.5,100` : `2020-01-02,1,2,0.5,${value},100`;
    expect((await failure('long-cell.csv', `${header}${row}\n`)).message).toBe(message);
  });

  it('quotes at most 32 characters of a field the CSV parser refuses, and not its own unbounded message', async () => {
    const field = 's'.repeat(500);
    const error = await failure('quote-in-field.csv', `${header}2020-01-02,1,2,0.5,1.5,100\n2020-01-03,${field}"x,2,0.5,1.5,100\n`);
    expect(error.message).toBe(
      `quote-in-field.csv line 3: is not valid CSV (Invalid Opening Quote: a quote is found on field 1 at line 3, value is "${'s'.repeat(32)}"… (500 characters)); fix the quoting or delimiters`,
    );
    expect(errorChain(error)).not.toContain('s'.repeat(33));
  });

  it('reports a missing file', async () => {
    await expect(loadCsvBars(join(dir, 'does-not-exist.csv'), 'X')).rejects.toThrow(/^does-not-exist\.csv: cannot read .*does-not-exist\.csv \(.*ENOENT.*\); check the path$/);
  });

  describe('files that are not CSVs of bars: their content is never quoted', () => {
    const EXPECTED = 'expected a header naming a time column (date, datetime, timestamp or time, or an unnamed first column as pandas writes it) and open, high, low, close, volume, in any case and order (or columns mapped by name)';
    const SECRET = 'root:$6$secretSalt$Zm9vYmFyYmF6cXV4c2VjcmV0aGFzaA:19000:0:99999:7:::';

    it.each([
      ['shadow', `${SECRET}\ndaemon:*:19000:0:99999:7:::\n`, `shadow line 1: is not a CSV of bars (its first line has 1 column, without a time column, open, high, low, close, volume); ${EXPECTED}`],
      ['blank lines, then a secret', `\n\n${SECRET},more,${SECRET}\n`, `blank-lines line 3: is not a CSV of bars (its first line has 3 columns, without a time column, open, high, low, close, volume); ${EXPECTED}`],
      ['a bar header with a secret for a column', `date,open,high,low,close,${SECRET}\n2020-01-02,1,2,0.5,1.5,100\n`, `extra-column line 1: is not a CSV of bars (its first line has 6 columns, without volume); ${EXPECTED}`],
      ['a secret with a quote in it', `${SECRET}"oops\n`, `quoted line 1: is not a CSV of bars (its first line is not valid CSV); ${EXPECTED}`],
    ])('%s: says what was expected and how many columns it found, not what it found', async (_name, content, message) => {
      const name = message.slice(0, message.indexOf(' '));
      const error = await failure(name, content);
      expect(error.message).toBe(message);
      expect(errorChain(error)).not.toContain('secret');
    });

    it('a binary file: says it is not text and echoes no byte of it', async () => {
      const bytes = Uint8Array.from({ length: 4096 }, (_, i) => (i * 7919 + 14) % 256);
      const error = await failure('random.bin', bytes);
      expect(error.message).toBe(`random.bin line 1: is not a CSV of bars (its first line is not text: it holds NUL or bytes that are not UTF-8); ${EXPECTED}`);
      expect(errorChain(error)).toBe(error.message);
    });

    it('a path that is not a regular file (a device, a folder): says so without reading it', async () => {
      await expect(loadCsvBars('/dev/null', 'X')).rejects.toThrow(/^null: cannot read \/dev\/null: it is a character device, not a regular file; give the path of a CSV file$/);
      await expect(loadCsvBars(dir, 'X')).rejects.toThrow(/^tradeswarm-csv-\w+: cannot read .*tradeswarm-csv-\w+: it is a directory, not a regular file; give the path of a CSV file$/);
    });

    const MAX_CSV_BYTES = 64 * 1024 * 1024;
    it('a file larger than 64 MiB: refused before it is read', async () => {
      const path = join(dir, 'huge.csv');
      // A real header and row, then blank lines: a loader that reads the file whole finds one bar in it.
      const content = Buffer.alloc(MAX_CSV_BYTES + 1, '\n');
      content.write('date,open,high,low,close,volume\n2020-01-02,1,2,0.5,1.5,100\n');
      await writeFile(path, content);
      await expect(loadCsvBars(path, 'X')).rejects.toThrow(
        `huge.csv: is ${MAX_CSV_BYTES + 1} bytes, more than the ${MAX_CSV_BYTES} (64 MiB) a CSV of bars may have: parsing takes about 21 bytes of memory per byte of file; split the file or keep fewer rows`,
      );
    });
  });
});

describe('validateBar', () => {
  const good: Bar = { symbol: 'X', timeMs: 0, open: 10, high: 12, low: 9, close: 11, volume: 5 };

  it.each<[string, Partial<Bar>, string[]]>([
    ['a valid bar', {}, []],
    ['NaN close', { close: Number.NaN }, ['close must be a finite number, got NaN']],
    ['infinite high', { high: Number.POSITIVE_INFINITY }, ['high must be a finite number, got Infinity']],
    ['zero low', { low: 0 }, ['low must be > 0, got 0']],
    ['high < low', { high: 8, low: 9 }, ['high 8 is below low 9', 'high 8 is below max(open, close) 11']],
    ['low above close', { low: 10.5, close: 10.2 }, ['low 10.5 is above min(open, close) 10']],
    ['fractional timeMs', { timeMs: 1.5 }, ['timeMs must be an integer number of milliseconds, got 1.5']],
    ['empty symbol', { symbol: ' ' }, ['symbol must be a non-empty string, got " "']],
    ['negative volume', { volume: -1 }, ['volume must be a finite number >= 0, got -1']],
  ])('%s', (_name, change, messages) => {
    expect(validateBar({ ...good, ...change }).map((problem) => problem.message)).toEqual(messages);
  });
});
