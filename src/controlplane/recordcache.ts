/** What the cache needs of a deployment's record (the repository's `DeploymentRecord`). */
export interface CacheableRecord {
  readonly id: string;
  readonly name: string;
  readonly createdAtMs: number;
}

/** A position as the store keeps it. */
export interface PositionRecord {
  readonly symbol: string;
  readonly quantity: number;
}

/** A deployment's row as the store returned it, and whether it holds a report. */
export interface CachedRow<R extends CacheableRecord = CacheableRecord> {
  readonly record: R;
  readonly hasReport: boolean;
}

interface Entry<R extends CacheableRecord> extends CachedRow<R> {
  /** Its positions as last stored; absent until read or written. */
  readonly positions?: readonly PositionRecord[];
  /** Changes when its positions are written or it is read anew, so that a read of positions that raced either is not kept. */
  readonly positionStamp: number;
}

/**
 * The deployment records a leading control plane has read or written, so that `ps` and `status`
 * ask nothing of the store, whose one connection (PGlite) is busy storing the deployments' steps.
 * Sound because the leader is the store's only writer of these rows (followers answer 503, a server
 * that steps down stops everything and drops its cache): every write of a row goes through
 * {@link RecordCache.serial}, and the row it returned is kept only once its transaction committed,
 * so the cache never shows what is not durable, and writes of one row land in the order they
 * committed. A write that failed may or may not have committed: its row is forgotten and read again.
 */
export class RecordCache<R extends CacheableRecord> {
  readonly #entries = new Map<string, Entry<R>>();
  /** Deployments pruned from the store: a read that raced the prune does not bring them back. */
  readonly #gone = new Set<string>();
  /** When each forgotten deployment was forgotten, by {@link RecordCache.#generation}. */
  readonly #forgotten = new Map<string, number>();
  readonly #chains = new Map<string, Promise<void>>();
  #generation = 0;
  #stamp = 0;
  /** Every deployment of the store is here: none was forgotten since the last full read. */
  #complete = false;
  /** The read of every row under way, and the generation it started at. */
  #loading: { readonly generation: number; readonly rows: Promise<CachedRow<R>[]> } | undefined;

  /** Runs `write` after the writes of deployment `id` that came before it settled. */
  serial<T>(id: string, write: () => Promise<T>): Promise<T> {
    const result = (this.#chains.get(id) ?? Promise.resolve()).then(write);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.#chains.set(id, tail);
    void tail.then(() => {
      if (this.#chains.get(id) === tail) this.#chains.delete(id);
    });
    return result;
  }

  /** Keeps a row the store returned from a committed write. */
  put(row: CachedRow<R>): void {
    const id = row.record.id;
    if (this.#gone.has(id)) return;
    const entry = this.#entries.get(id);
    this.#entries.set(id, { ...entry, ...row, positionStamp: entry?.positionStamp ?? ++this.#stamp });
  }

  /** Keeps the positions a committed write stored for deployment `id`. */
  putPositions(id: string, positions: readonly PositionRecord[]): void {
    const entry = this.#entries.get(id);
    if (entry === undefined) return;
    this.#entries.set(id, { ...entry, positions: sortedPositions(positions), positionStamp: ++this.#stamp });
  }

  /** A write of deployment `id` failed and may have committed: its row is read from the store again. */
  forget(id: string): void {
    this.#generation += 1;
    this.#forgotten.set(id, this.#generation);
    this.#entries.delete(id);
    this.#complete = false;
  }

  /** Deployments that were deleted from the store. */
  remove(ids: readonly string[]): void {
    for (const id of ids) {
      this.#gone.add(id);
      this.#entries.delete(id);
    }
  }

  /** Forgets everything (the server no longer leads: another may write). */
  clear(): void {
    this.#generation += 1;
    this.#entries.clear();
    this.#forgotten.clear();
    this.#complete = false;
  }

  /**
   * Every deployment, newest first (then by id, byte order, as the store sorts them). Reads them
   * all from the store (`load`) the first time, and again after a write failed.
   */
  async all(load: () => Promise<CachedRow<R>[]>): Promise<R[]> {
    const fresh = await this.#ensure(load);
    const records = fresh ?? [...this.#entries.values()].map((entry) => entry.record);
    return records.sort(newestFirst);
  }

  /** The deployment whose id or name is `ref` (the id first). */
  async find(ref: string, load: () => Promise<CachedRow<R>[]>): Promise<R | undefined> {
    const fresh = await this.#ensure(load);
    if (fresh !== undefined) return fresh.find((record) => record.id === ref) ?? fresh.find((record) => record.name === ref);
    const byId = this.#entries.get(ref);
    if (byId !== undefined) return byId.record;
    for (const entry of this.#entries.values()) if (entry.record.name === ref) return entry.record;
    return undefined;
  }

  /** Whether deployment `id`'s row holds a report; `undefined` when it is not known here. */
  hasReport(id: string): boolean | undefined {
    return this.#entries.get(id)?.hasReport;
  }

  /** Deployment `id`'s positions, from `load` the first time (kept unless a write stored others meanwhile). */
  async positions(id: string, load: () => Promise<PositionRecord[]>): Promise<PositionRecord[]> {
    const entry = this.#entries.get(id);
    if (entry?.positions !== undefined) return [...entry.positions];
    const positions = await load();
    const now = this.#entries.get(id);
    if (entry !== undefined && now !== undefined && now.positionStamp === entry.positionStamp) this.#entries.set(id, { ...now, positions: sortedPositions(positions) });
    return positions;
  }

  /**
   * Reads every row once when the cache is not complete. A row read here does not replace one a
   * write kept meanwhile (that one is newer), nor one forgotten while the read ran.
   * @returns the rows read when the cache could not be completed (a write failed meanwhile): the answer, uncached.
   */
  async #ensure(load: () => Promise<CachedRow<R>[]>): Promise<R[] | undefined> {
    if (this.#complete) return undefined;
    if (this.#loading === undefined) {
      const loading = { generation: this.#generation, rows: load() };
      const done = (): void => {
        if (this.#loading === loading) this.#loading = undefined;
      };
      loading.rows.then(done, done);
      this.#loading = loading;
    }
    const { generation, rows: reading } = this.#loading;
    const rows = await reading;
    if (this.#complete) return undefined;
    for (const row of rows) {
      const id = row.record.id;
      if (this.#entries.has(id) || this.#gone.has(id) || (this.#forgotten.get(id) ?? 0) > generation) continue;
      this.#entries.set(id, { ...row, positionStamp: ++this.#stamp });
    }
    if (this.#generation !== generation) return rows.map((row) => row.record).filter((record) => !this.#gone.has(record.id));
    this.#complete = true;
    this.#forgotten.clear();
    return undefined;
  }
}

/**
 * The latest events of each deployment, for `status`, kept as {@link RecordCache} keeps rows: an
 * event is added once its write committed; a tail is read from the store the first time it is asked
 * for, merged with what was added meanwhile; an append that failed (it may have committed) drops its
 * deployment's tail, and a prune (which deletes old events) drops them all.
 */
export class EventTails<E extends { readonly id: number }> {
  readonly #size: number;
  readonly #tails = new Map<string, Tail<E>>();

  /** @param size how many of each deployment's latest events are kept */
  constructor(size: number) {
    this.#size = size;
  }

  /** An event of deployment `id` whose write committed. */
  add(id: string, event: E): void {
    const tail = this.#tails.get(id);
    if (tail !== undefined) tail.events = latestOf([...tail.events, event], this.#size);
  }

  /** An event of deployment `id` failed to store and may have committed: its tail is read again. */
  forget(id: string): void {
    this.#tails.delete(id);
  }

  /** Events were deleted from the store: every tail is read again. */
  clear(): void {
    this.#tails.clear();
  }

  /** The last `count` events of deployment `id`, oldest first; `load(n)` reads the last n from the store. */
  async latest(id: string, count: number, load: (count: number) => Promise<E[]>): Promise<E[]> {
    if (count > this.#size) return load(count);
    let tail = this.#tails.get(id);
    if (tail === undefined) {
      tail = { events: [], loaded: false, reading: undefined };
      this.#tails.set(id, tail);
    }
    if (!tail.loaded) {
      const current = tail;
      if (current.reading === undefined) {
        const reading = load(this.#size).then((events) => {
          if (this.#tails.get(id) !== current) return;
          current.events = latestOf([...current.events, ...events], this.#size);
          current.loaded = true;
        });
        const done = (): void => {
          current.reading = undefined;
        };
        reading.then(done, done);
        current.reading = reading;
      }
      await current.reading;
      // Dropped while it was read: the store answers this once.
      if (!current.loaded) return load(count);
    }
    return tail.events.slice(-count);
  }
}

interface Tail<E> {
  events: E[];
  loaded: boolean;
  reading: Promise<void> | undefined;
}

/** The `size` events of highest id among `events` (each id once), oldest first. */
function latestOf<E extends { readonly id: number }>(events: readonly E[], size: number): E[] {
  const byId = new Map(events.map((event): [number, E] => [event.id, event]));
  return [...byId.values()].sort((a, b) => a.id - b.id).slice(-size);
}

/** The store's order of `list`: newest first, then by id in byte order (COLLATE "C"). */
function newestFirst(a: CacheableRecord, b: CacheableRecord): number {
  return b.createdAtMs - a.createdAtMs || byteOrder(a.id, b.id);
}

/** Positions by symbol, in byte order (COLLATE "C"), as the store returns them. */
function sortedPositions(positions: readonly PositionRecord[]): PositionRecord[] {
  return positions.map((position) => ({ symbol: position.symbol, quantity: position.quantity })).sort((a, b) => byteOrder(a.symbol, b.symbol));
}

function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
