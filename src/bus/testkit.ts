// Test support for the bus: server-backed suites and polling with a deadline. Imports vitest, so it
// is not exported from index.ts; only test files use it.
import { pino } from 'pino';
import type { Logger } from '../core/index.js';

export { type ServerProbe, probeTcp, describeServerBacked } from '../../test/fixtures/servers.js';

/**
 * Resolves once `condition()` is true, checking every few milliseconds; rejects after `timeoutMs`
 * naming `what`. For waiting on network delivery, where no event says "done". Reads Date.now on
 * purpose: the deadline bounds real time spent waiting for sockets, which no test clock drives.
 */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** A logger at `warn` that keeps its records (parsed JSON) in `records`, synchronously. */
export function capturingLogger(): { logger: Logger; records: Record<string, unknown>[] } {
  const records: Record<string, unknown>[] = [];
  const destination = {
    write(line: string): void {
      records.push(JSON.parse(line) as Record<string, unknown>);
    },
  };
  return { logger: pino({ level: 'warn' }, destination), records };
}
