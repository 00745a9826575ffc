// The worker thread that runs PGlite for the store (pglite.ts), so that PostgreSQL's work (PGlite runs
// each query synchronously in WebAssembly) and its opening never hold up the main thread's event loop.
// It starts each request in arrival order; PGlite's own mutexes run them one at a time, and keep a
// query sent outside a transaction waiting until the open transaction ends, as on the main thread.
import { parentPort, workerData } from 'node:worker_threads';
import { PGlite, type Transaction, types } from '@electric-sql/pglite';
import { type Reply, type Request, type WorkerSetup, toWire } from './pglite-protocol.js';
import { parseInt8, parseNumeric } from './values.js';

/** An open transaction: its PGlite handle, and how to end it. */
interface OpenTransaction {
  readonly tx: Transaction;
  /** Lets PGlite's transaction callback return (COMMIT) or throw {@link ROLLBACK} (ROLLBACK). */
  readonly end: (commit: boolean) => void;
  /** Settles when PGlite has committed or rolled back. */
  readonly done: Promise<void>;
}

/**
 * PostgreSQL's buffer cache in PGlite. initdb's 128MB is allocated and set up in WebAssembly memory at
 * every open: measured on a 423 MB data dir, 1.0 s to open with it and 0.6 s with 32MB, which is most of
 * what `serve` spends before it can resume deployments after a crash. The files stay in the OS's page
 * cache (PGlite reads them through Node's fs), so a smaller cache costs little: see bench:store.
 */
const SHARED_BUFFERS = '32MB';

/** Thrown in a transaction's callback to have PGlite roll it back (and recognised after). */
class Rollback extends Error {}

if (parentPort !== null) {
  const port = parentPort;
  const setup = workerData as WorkerSetup;
  const send = (reply: Reply): void => port.postMessage(reply);
  const transactions = new Map<number, OpenTransaction>();
  let nextTransaction = 1;

  const begin = (db: PGlite): Promise<number> =>
    new Promise<number>((resolve, reject) => {
      const number = nextTransaction++;
      let end: (commit: boolean) => void = () => undefined;
      const decided = new Promise<boolean>((decide) => (end = decide));
      const done = db
        .transaction(async (tx) => {
          transactions.set(number, { tx, end, done });
          resolve(number);
          if (!(await decided)) throw new Rollback('rolled back as asked');
        })
        .then(
          () => undefined,
          (error: unknown) => {
            if (!(error instanceof Rollback)) throw error;
          },
        )
        .finally(() => transactions.delete(number));
      // A BEGIN that failed: the callback never ran.
      done.catch(reject);
    });

  const handle = async (db: PGlite, request: Request): Promise<unknown> => {
    switch (request.op) {
      case 'query': {
        const target = request.tx === undefined ? db : transactions.get(request.tx)?.tx;
        if (target === undefined) throw new Error(`transaction ${request.tx} is not open in the PGlite worker`);
        return (await target.query(request.sql, request.params === undefined ? undefined : [...request.params])).rows;
      }
      case 'begin':
        return begin(db);
      case 'end': {
        const open = transactions.get(request.tx);
        if (open === undefined) throw new Error(`transaction ${request.tx} is not open in the PGlite worker`);
        open.end(request.commit);
        await open.done;
        return undefined;
      }
      case 'dump':
        return new Uint8Array(await (await db.dumpDataDir('none')).arrayBuffer());
      case 'close':
        await db.close();
        return undefined;
    }
  };

  // Messages that arrive while PGlite opens wait for it.
  const opening = PGlite.create({
    ...(setup.dataDir === undefined ? {} : { dataDir: setup.dataDir }),
    ...(setup.template === undefined ? {} : { loadDataDir: new Blob([setup.template]) }),
    startParams: [...PGlite.defaultStartParams, '-c', `shared_buffers=${SHARED_BUFFERS}`],
    parsers: { [types.INT8]: parseInt8, [types.NUMERIC]: parseNumeric },
  });
  port.on('message', (request: Request) => {
    void opening
      .then((db) => handle(db, request))
      .then((value) => send({ kind: 'answer', id: request.id, value }))
      // A failed request, or an answer that cannot be cloned: the error is the answer.
      .catch((error: unknown) => send({ kind: 'error', id: request.id, error: toWire(error) }));
  });
  opening.then(
    () => send({ kind: 'ready' }),
    (error: unknown) => send({ kind: 'failed', error: toWire(error) }),
  );
}
