// Test support for the bus: server-backed suites and polling with a deadline. Imports vitest, so it
// is not exported from index.ts; only test files use it.
import { connect as connectTcp } from 'node:net';
import { pino } from 'pino';
import { describe, it } from 'vitest';
import type { Logger } from '../core/index.js';

/** Whether an external server a suite needs is reachable. */
export interface ServerProbe {
  /** How the server is named in skip messages and failures: `Mosquitto at 127.0.0.1:1883`. */
  readonly name: string;
  readonly available: boolean;
  /** Why it is not available (the connection error), or `reachable`. */
  readonly detail: string;
}

/** Opens (and closes) a TCP connection to `host:port` to see whether a server listens there. */
export function probeTcp(name: string, host: string, port: number, timeoutMs = 1000): Promise<ServerProbe> {
  return new Promise((resolve) => {
    const socket = connectTcp({ host, port });
    const finish = (available: boolean, detail: string): void => {
      socket.destroy();
      resolve({ name, available, detail });
    };
    socket.setTimeout(timeoutMs, () => finish(false, `no answer within ${timeoutMs} ms`));
    socket.once('connect', () => finish(true, 'reachable'));
    socket.once('error', (error) => finish(false, error.message));
  });
}

/**
 * A `describe` that needs an external server. When `probe` says the server is reachable, the suite
 * runs. When it is not: under CI (`CI=true`) the suite fails with one test saying what is missing;
 * elsewhere it is skipped, with a warning and a title naming the server.
 */
export function describeServerBacked(probe: ServerProbe, title: string, body: () => void): void {
  if (probe.available) {
    describe(title, body);
    return;
  }
  if (process.env.CI === 'true') {
    describe(title, () => {
      it(`needs ${probe.name}`, () => {
        throw new Error(`${probe.name} is not reachable (${probe.detail}), and CI=true: CI must provide it`);
      });
    });
    return;
  }
  console.warn(`skipping "${title}": ${probe.name} is not reachable (${probe.detail})`);
  describe.skip(`${title} (skipped: ${probe.name} is not reachable)`, body);
}

/**
 * Resolves once `condition()` is true, checking every few milliseconds; rejects after `timeoutMs`
 * naming `what`. For waiting on network delivery, where no event says "done".
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
