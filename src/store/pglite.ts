import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { type DirLock, startModuleWorker } from '../core/index.js';
import { StoreError, mapDriverError } from './errors.js';
import { lockDataDir } from './lockfile.js';
import { loadMigrations, migrate } from './migrations.js';
import { type Reply, type Request, type WorkerSetup, fromWire } from './pglite-protocol.js';
import { type Queryable, type Store, type StoreConfig, refuseInsideTransaction, runGuarded } from './store.js';

/** A request to the worker before it is numbered. */
type Call = Request extends infer R ? (R extends { readonly id: number } ? Omit<R, 'id'> : never) : never;

/**
 * The main thread's end of the PGlite worker thread (pglite-worker.ts): numbered requests, their
 * answers, and the worker's death, which fails every pending and later request.
 *
 * Hand-written because PGlite's own worker (`@electric-sql/pglite/worker`) is for browsers: it needs
 * `navigator.locks` and a Web `Worker`, which Node 20 does not have, and it elects a leader among tabs,
 * which one process does not need. The protocol is four requests (pglite-protocol.ts).
 */
class WorkerLink {
  /** Settles once PGlite opened in the worker (rejects with why it could not). */
  readonly ready: Promise<void>;
  /** Set once the worker is gone: every request fails with it. */
  #failure: StoreError | undefined;
  #opening = true;
  #closing = false;
  #nextId = 1;
  readonly #pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: unknown) => void }>();
  readonly #worker: Worker;
  readonly #where: string;
  #opened: () => void = () => undefined;
  #openFailed: (error: unknown) => void = () => undefined;

  constructor(worker: Worker, where: string) {
    this.#worker = worker;
    this.#where = where;
    this.ready = new Promise<void>((resolve, reject) => {
      this.#opened = resolve;
      this.#openFailed = reject;
    });
    // The worker keeps the process alive only while something waits for it, as PGlite on the main
    // thread did: a program that forgot to close its store still exits.
    const settleOpening = (): void => {
      this.#opening = false;
      this.#unrefWhenIdle();
    };
    this.ready.then(settleOpening, settleOpening);
    worker.on('message', (reply: Reply) => this.#receive(reply));
    worker.on('error', (error) => this.#fail(`crashed (${error.message})`));
    worker.on('exit', (code) => this.#fail(`ended (exit code ${code})`));
  }

  /** Whether the worker is gone (crashed, ended or terminated). */
  get dead(): boolean {
    return this.#failure !== undefined;
  }

  /** Sends `call`; resolves with the worker's answer, rejects with the driver's error (fields kept) or the worker's death. */
  call(call: Call): Promise<unknown> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const id = this.#nextId++;
    return new Promise<unknown>((resolve, reject) => {
      try {
        this.#worker.postMessage({ ...call, id });
      } catch (error) {
        // A parameter the structured clone algorithm cannot copy (a function, a symbol).
        reject(
          new StoreError(
            `a query parameter cannot be sent to PGlite on ${this.#where}: ${(error as Error).message}. Pass strings, numbers, bigints, booleans, Dates, Uint8Arrays, null, or JSON text`,
            { cause: error },
          ),
        );
        return;
      }
      this.#pending.set(id, { resolve, reject });
      this.#worker.ref();
    });
  }

  /** Ends the worker; later calls fail with "closed". */
  async terminate(): Promise<void> {
    this.#closing = this.#failure === undefined;
    await this.#worker.terminate();
  }

  #receive(reply: Reply): void {
    if (reply.kind === 'ready') return this.#opened();
    if (reply.kind === 'failed') return this.#openFailed(fromWire(reply.error));
    const pending = this.#pending.get(reply.id);
    if (pending === undefined) return;
    this.#pending.delete(reply.id);
    this.#unrefWhenIdle();
    if (reply.kind === 'answer') pending.resolve(reply.value);
    else pending.reject(fromWire(reply.error));
  }

  /** The worker is gone: every pending and later request fails, saying so. */
  #fail(how: string): void {
    if (this.#failure !== undefined) return;
    this.#failure = new StoreError(
      this.#closing
        ? `the store on ${this.#where} is closed: open it again with openStore`
        : `the worker thread that runs PGlite for ${this.#where} ${how}: this query and every later one on this store fail. ` +
            'Close the store and open it again (restart tradeswarm serve); the data dir opens as after a crash',
    );
    this.#openFailed(this.#failure);
    for (const pending of this.#pending.values()) pending.reject(this.#failure);
    this.#pending.clear();
  }

  #unrefWhenIdle(): void {
    if (this.#pending.size === 0 && !this.#opening) this.#worker.unref();
  }
}

/** The worker of each open PGlite store, for tests that kill it. */
const workers = new WeakMap<Store, Worker>();

/** The worker thread that runs PGlite for `store` (undefined for another kind of store). For tests. */
export function pgliteWorkerOf(store: Store): Worker | undefined {
  return workers.get(store);
}

/**
 * In-memory databases this process opened, and the data dir the second one had once migrated, by
 * migrations and schema: later ones start from a copy of it instead of initdb (measured 2.4 s to
 * open fresh, 0.3 s from the copy; a copy is 40 MB, kept only by a process that opens more than one,
 * as the tests do).
 */
const memoryOpens = new Map<string, number>();
const memoryTemplates = new Map<string, Promise<Uint8Array | undefined>>();

/**
 * Opens PGlite (embedded PostgreSQL in WASM; its binaries ship in the package, nothing is downloaded)
 * in `config.dataDir` (or in memory) and applies the migrations. PGlite runs in a worker thread,
 * started at once: it opens while the caller goes on, and its queries (synchronous WebAssembly) never
 * block the caller's event loop. One PGlite is one connection: PGlite runs a query outside a
 * transaction only between transactions, never inside one.
 * @throws StoreError when the data dir is in use by another process, or cannot be created or opened.
 */
export async function openPglite(config: StoreConfig): Promise<Store> {
  const memory = config.dataDir === 'memory';
  const dataDir = memory ? undefined : resolve(config.dataDir);
  const where = dataDir === undefined ? 'the in-memory PGlite database' : `the PGlite data dir ${dataDir}`;
  let lock: DirLock | undefined;
  if (dataDir !== undefined) {
    try {
      mkdirSync(dataDir, { recursive: true });
    } catch (error) {
      throw new StoreError(`cannot create the PGlite data dir ${dataDir}: ${(error as Error).message}. Check the path and its permissions, or set another dataDir`, {
        cause: error,
      });
    }
    lock = lockDataDir(dataDir);
  }
  const templateKey = `${config.migrationsDir}\u0000${config.schema ?? ''}`;
  const opensBefore = memory ? (memoryOpens.get(templateKey) ?? 0) : 0;
  if (memory) memoryOpens.set(templateKey, opensBefore + 1);
  const template = memory ? await memoryTemplates.get(templateKey) : undefined;
  const setup: WorkerSetup = { dataDir, ...(template === undefined ? {} : { template }) };
  const worker = startModuleWorker(import.meta.url, 'pglite-worker', { workerData: setup });
  const link = new WorkerLink(worker, where);
  try {
    await link.ready;
    const query = async (sql: string, params?: readonly unknown[]): Promise<never> => (await link.call({ op: 'query', sql, params, tx: undefined })) as never;
    if (config.schema !== undefined) {
      // Created (under the migrations' lock) before anything uses it; the search_path names it already.
      await query(`SET search_path TO "${config.schema}"`);
    }
    await migrate({ where, query }, loadMigrations(config.migrationsDir), config.schema, config.logger);
    if (memory && template === undefined && opensBefore > 0 && !memoryTemplates.has(templateKey)) {
      // Taken before anything else is written; a dump that fails leaves the next opens to initdb.
      const dumped = (link.call({ op: 'dump' }) as Promise<Uint8Array>).catch(() => undefined);
      memoryTemplates.set(templateKey, dumped);
      await dumped;
    }
    const store = pgliteStore(link, where, lock);
    workers.set(store, worker);
    return store;
  } catch (error) {
    await link.terminate();
    lock?.release();
    throw mapDriverError(error, `opening ${where}`);
  }
}

function pgliteStore(link: WorkerLink, where: string, lock: DirLock | undefined): Store {
  const run = async <R>(sql: string, params: readonly unknown[] | undefined, tx: number | undefined): Promise<R[]> => {
    try {
      return (await link.call({ op: 'query', sql, params, tx })) as R[];
    } catch (error) {
      throw mapDriverError(error, `query on ${where}`);
    }
  };
  const control = async (call: Call, context: string): Promise<unknown> => {
    try {
      return await link.call(call);
    } catch (error) {
      throw mapDriverError(error, `${context} on ${where}`);
    }
  };
  let closed = false;
  const refuseClosed = (): void => {
    if (closed) throw new StoreError(`the store on ${where} is closed: open it again with openStore`);
  };
  return {
    kind: 'pglite',
    async query<R extends Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<R[]> {
      refuseClosed();
      refuseInsideTransaction('query');
      return run<R>(sql, params, undefined);
    },
    async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      refuseClosed();
      refuseInsideTransaction('transaction');
      const tx = (await control({ op: 'begin' }, 'transaction')) as number;
      let result: T;
      try {
        result = await runGuarded({ query: <R extends Record<string, unknown>>(sql: string, params?: readonly unknown[]) => run<R>(sql, params, tx) }, fn);
      } catch (error) {
        // What fn threw is what the caller sees; a ROLLBACK that fails too (the worker gone) adds nothing to it.
        await control({ op: 'end', tx, commit: false }, 'transaction').catch(() => undefined);
        throw error;
      }
      await control({ op: 'end', tx, commit: true }, 'transaction');
      return result;
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      try {
        if (!link.dead) await control({ op: 'close' }, 'closing');
      } finally {
        await link.terminate();
        lock?.release();
      }
    },
  };
}
