import { TradeswarmError, type TradeswarmErrorOptions, errorChain } from '../core/index.js';

/**
 * The root of the store's errors: a database that cannot be opened, a migration that failed, a query
 * PostgreSQL refused. `retryable` says whether the same call may succeed later (a lost connection, a
 * serialization failure, a deadlock) or not (bad SQL, a violated constraint). `code` is PostgreSQL's
 * SQLSTATE when the database gave one.
 */
export class StoreError extends TradeswarmError {
  override readonly name: string = 'StoreError';
  /** Marker for {@link isStoreError}; survives bundling and realm boundaries where `instanceof` may not. */
  readonly isStoreError = true;
  /** PostgreSQL's SQLSTATE (`23505`, `42P01`, …), when the error came from the database. */
  readonly code: string | undefined;

  constructor(message: string, options: TradeswarmErrorOptions & { code?: string } = {}) {
    super(message, options);
    this.code = options.code;
  }
}

/** Whether `error` is a {@link StoreError}. */
export function isStoreError(error: unknown): error is StoreError {
  return typeof error === 'object' && error !== null && (error as Partial<StoreError>).isStoreError === true;
}

/**
 * A row would repeat a key a unique constraint or primary key forbids (SQLSTATE 23505): the row is
 * already there. Not retryable: the same insert is refused again; read the existing row, or upsert
 * (`INSERT … ON CONFLICT`) when a repeat is expected (an order resubmitted after a failover).
 */
export class DuplicateError extends StoreError {
  override readonly name = 'DuplicateError';
  /** Marker for {@link isDuplicateError}. */
  readonly isDuplicateError = true;

  constructor(
    /** The violated constraint's name, e.g. `orders_pkey`. */
    readonly constraint: string,
    /** PostgreSQL's detail: the key and its value, e.g. `Key (id)=(d1) already exists.` */
    readonly detail: string,
    options: Omit<TradeswarmErrorOptions, 'retryable'> = {},
  ) {
    super(
      `duplicate key: unique constraint "${constraint}" already holds this value${detail === '' ? '' : ` (${detail})`}. ` +
        'The row is already stored: read it instead, or write with INSERT … ON CONFLICT where a repeat is expected',
      { ...options, code: UNIQUE_VIOLATION, retryable: false },
    );
  }
}

/** Whether `error` is a {@link DuplicateError}. */
export function isDuplicateError(error: unknown): error is DuplicateError {
  return typeof error === 'object' && error !== null && (error as Partial<DuplicateError>).isDuplicateError === true;
}

const UNIQUE_VIOLATION = '23505';

/**
 * SQLSTATEs after which the same work may succeed when tried again: serialization failure, deadlock,
 * lock not available, the connection's classes (08), the server shutting down or restarting (57P01–57P03).
 */
const RETRYABLE_CODES = new Set(['40001', '40P01', '55P03', '57P01', '57P02', '57P03']);

/** What both drivers put on an error that came from PostgreSQL (pg's DatabaseError, PGlite's own). */
interface DriverErrorFields {
  readonly code?: unknown;
  readonly constraint?: unknown;
  readonly detail?: unknown;
  readonly message?: unknown;
}

/**
 * Turns anything the drivers threw into a store error: 23505 becomes a {@link DuplicateError}; another
 * database error a {@link StoreError} with its SQLSTATE and `context` (what was being done) in the
 * message. Store errors pass through unchanged. The one place driver errors are mapped.
 */
export function mapDriverError(error: unknown, context: string): StoreError {
  if (isStoreError(error)) return error;
  const fields = (typeof error === 'object' && error !== null ? error : {}) as DriverErrorFields;
  const code = typeof fields.code === 'string' ? fields.code : undefined;
  if (code === UNIQUE_VIOLATION) {
    return new DuplicateError(typeof fields.constraint === 'string' ? fields.constraint : 'unknown', typeof fields.detail === 'string' ? fields.detail : '', { cause: error });
  }
  const retryable = code !== undefined && (RETRYABLE_CODES.has(code) || code.startsWith('08'));
  const sqlstate = code !== undefined && /^[0-9A-Z]{5}$/.test(code) ? ` (SQLSTATE ${code})` : '';
  return new StoreError(`${context}: ${errorChain(error)}${sqlstate}`, { cause: error, retryable, ...(code === undefined ? {} : { code }) });
}
