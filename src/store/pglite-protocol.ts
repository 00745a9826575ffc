// The messages between the store (serve's main thread) and the worker thread that runs PGlite
// (pglite-worker.ts). Values cross by the structured clone algorithm, which keeps what the Store
// contract promises: Date, bigint, Uint8Array (bytea), null, and the plain objects and arrays of parsed
// json. Errors do not keep their own fields across it (PostgreSQL's `code`, `constraint`, `detail`), so
// they cross as {@link WireError}.

/** What the worker is started with (`workerData`). */
export interface WorkerSetup {
  /** The absolute data dir, or undefined for an in-memory database. */
  readonly dataDir: string | undefined;
  /** An in-memory database starts from this data dir (a `dump`'s tarball) instead of initdb. */
  readonly template?: Uint8Array;
}

/** A request to the worker; `id` pairs it with its answer. */
export type Request =
  | { readonly id: number; readonly op: 'query'; readonly sql: string; readonly params: readonly unknown[] | undefined; readonly tx: number | undefined }
  /** Starts a transaction (BEGIN, under PGlite's transaction mutex); answered with its number once begun. */
  | { readonly id: number; readonly op: 'begin' }
  /** Ends transaction `tx`: COMMIT when `commit`, else ROLLBACK; answered once done. */
  | { readonly id: number; readonly op: 'end'; readonly tx: number; readonly commit: boolean }
  /** The data dir as a tarball (PGlite's dumpDataDir, uncompressed), answered as a Uint8Array. */
  | { readonly id: number; readonly op: 'dump' }
  | { readonly id: number; readonly op: 'close' };

/** The worker's messages: once `ready` (PGlite opened) or `failed` (it could not), then one answer per request. */
export type Reply =
  | { readonly kind: 'ready' }
  | { readonly kind: 'failed'; readonly error: WireError }
  | { readonly kind: 'answer'; readonly id: number; readonly value: unknown }
  | { readonly kind: 'error'; readonly id: number; readonly error: WireError };

/** An error as it crosses the thread: its message, name, stack and every own field of a simple value. */
export interface WireError {
  readonly message: string;
  readonly name: string;
  readonly stack: string | undefined;
  readonly fields: Readonly<Record<string, string | number | boolean>>;
}

/** `error` (whatever was thrown) as a {@link WireError}. */
export function toWire(error: unknown): WireError {
  if (!(error instanceof Error)) return { message: String(error), name: 'Error', stack: undefined, fields: {} };
  const fields: Record<string, string | number | boolean> = {};
  for (const [key, value] of Object.entries(error)) {
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') fields[key] = value;
  }
  return { message: error.message, name: error.name, stack: error.stack, fields };
}

/** A {@link WireError} as an Error again, with its fields (`code`, `severity`, …) on it, as the driver threw it. */
export function fromWire(wire: WireError): Error {
  const error = Object.assign(new Error(wire.message), wire.fields);
  error.name = wire.name;
  if (wire.stack !== undefined) error.stack = wire.stack;
  return error;
}
