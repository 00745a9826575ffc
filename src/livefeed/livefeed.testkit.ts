// Test helpers of the live feeds; not exported from index.ts.
import { pino } from 'pino';
import type { Logger } from '../core/index.js';

/** A logger at `warn` that keeps its records (parsed JSON) in `records`, synchronously. */
export function capturingLogger(): { logger: Logger; records: Record<string, unknown>[] } {
  const records: Record<string, unknown>[] = [];
  return { logger: pino({ level: 'warn' }, { write: (line: string) => void records.push(JSON.parse(line) as Record<string, unknown>) }), records };
}
