import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LatencySummary } from './stats.js';

/** One row of a benchmark table. */
export interface BenchRow {
  readonly name: string;
  readonly summary?: LatencySummary;
  /** A figure that is not a latency distribution (throughput, counts), with its unit. */
  readonly value?: { readonly amount: number; readonly unit: string };
  /** Ratio to this run's baseline row, and what it is compared with. */
  readonly ratio?: { readonly to: string; readonly value: number };
  /** The target from the issue, and whether this run met it. */
  readonly target?: { readonly text: string; readonly met: boolean };
}

const RESULTS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'results');

function format(value: number): string {
  return Number.isFinite(value) ? (value >= 100 ? value.toFixed(0) : value.toFixed(2)) : '-';
}

/** Prints the rows as a table and writes them, with the machine's description, to bench/results/<name>.json. */
export function report(benchName: string, rows: readonly BenchRow[], extra: Record<string, unknown> = {}): string {
  const header = ['measurement', 'n', 'p50 ms', 'p95 ms', 'p99 ms', 'value', 'ratio', 'target'];
  const lines = rows.map((row) => [
    row.name,
    row.summary ? String(row.summary.count) : '',
    row.summary ? format(row.summary.p50) : '',
    row.summary ? format(row.summary.p95) : '',
    row.summary ? format(row.summary.p99) : '',
    row.value ? `${format(row.value.amount)} ${row.value.unit}` : '',
    row.ratio ? `${format(row.ratio.value)}x ${row.ratio.to}` : '',
    row.target ? `${row.target.met ? 'met' : 'MISSED'}: ${row.target.text}` : '',
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...lines.map((line) => line[column]!.length)));
  const render = (cells: readonly string[]): string => cells.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd();
  const table = [render(header), render(widths.map((width) => '-'.repeat(width))), ...lines.map(render)].join('\n');
  process.stdout.write(`\n${benchName}\n${table}\n`);
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, `${benchName}.json`);
  const machine = { cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryBytes: totalmem(), node: process.version, platform: process.platform };
  writeFileSync(file, `${JSON.stringify({ bench: benchName, measuredAt: new Date().toISOString(), machine, rows, ...extra }, null, 2)}\n`);
  process.stdout.write(`written to ${file}\n`);
  return file;
}
