import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * The project logger. Level from `LOG_LEVEL` (default `warn`, so commands print only their own output);
 * JSON lines on stderr.
 */
export function createLogger(name: string, level = process.env.LOG_LEVEL ?? 'warn'): Logger {
  return pino({ name, level }, pino.destination(2));
}

/** A logger that drops everything (tests). */
export const silentLogger: Logger = pino({ level: 'silent' });
