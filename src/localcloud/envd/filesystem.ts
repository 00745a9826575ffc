/**
 * The envd `filesystem.Filesystem` service: stat, make directories, move, list, remove and watch,
 * answering the e2b SDK's `sandbox.files` over Connect JSON.
 */
import { randomBytes } from 'node:crypto';
import { watch, type FSWatcher, type Stats } from 'node:fs';
import { lstat, readdir, rename, rmdir, unlink, type FileHandle } from 'node:fs/promises';
import { posix } from 'node:path';
import { z } from 'zod';
import type { SandboxUser } from '../sandboxes/index.js';
import { ConnectError, firstMessage, keepaliveIntervalMs, parseMessage, serveStream, serveUnary } from './connect.js';
import type { EnvdRequestContext, EnvdService } from './context.js';
import {
  ACCESS,
  atEntry,
  checkChange,
  childOf,
  copyTree,
  describeEntry,
  fileError,
  locate,
  lstatEntry,
  openDirectory,
  pathOf,
  permits,
  readerOf,
  removeChildren,
  removeTree,
  requireWritable,
  statEntry,
  writerOf,
  type EntryInfoMessage,
  type SandboxFilesystem,
  type SandboxLocation,
} from './entry.js';
import { readMetadataOf } from './metadata.js';

/** proto3 JSON of `filesystem.EventType`. */
export type EventTypeName = 'EVENT_TYPE_CREATE' | 'EVENT_TYPE_WRITE' | 'EVENT_TYPE_REMOVE' | 'EVENT_TYPE_RENAME' | 'EVENT_TYPE_CHMOD';

/** proto3 JSON of `filesystem.FilesystemEvent`: `name` is relative to the watched directory. */
export interface FilesystemEventMessage {
  readonly name: string;
  readonly type: EventTypeName;
  readonly entry?: EntryInfoMessage;
}

/** Events a polling watcher (CreateWatcher) holds before it gives up on a client that does not collect them. */
const MAX_PENDING_EVENTS = 10_000;

// proto3 JSON parsers accept the original snake_case field names as well as camelCase.
const camelCaseKeys = (input: unknown): unknown =>
  input !== null && typeof input === 'object' && !Array.isArray(input)
    ? Object.fromEntries(Object.entries(input).map(([key, value]) => [key.replace(/_([a-z])/g, (_match, letter: string) => letter.toUpperCase()), value]))
    : input;
const requestSchema = <T extends z.ZodRawShape>(shape: T) => z.preprocess(camelCaseKeys, z.object(shape));
const uint32 = z.union([z.number().int().nonnegative(), z.string().regex(/^\d+$/).transform(Number)]);

const pathRequest = requestSchema({ path: z.string().default('') });
const moveRequest = requestSchema({
  source: z.string().min(1, 'give the path to move'),
  destination: z.string().min(1, 'give the path to move to'),
});
const listRequest = requestSchema({ path: z.string().default(''), depth: uint32.default(1) });
const watchRequest = requestSchema({
  path: z.string().default(''),
  recursive: z.boolean().default(false),
  includeEntry: z.boolean().default(false),
  // envd refuses to watch a folder on a network mount (NFS, CIFS, FUSE) unless this is set; a local
  // sandbox has no network mounts, so every folder it can watch is allowed either way.
  allowNetworkMounts: z.boolean().default(false),
});
const watcherRequest = requestSchema({ watcherId: z.string().min(1, 'give the id CreateWatcher returned') });

/** Runs `action`, turning file errors into Connect errors that name `sandboxPath`. */
async function onPath<T>(sandboxPath: string, action: () => Promise<T>): Promise<T> {
  try {
    return await action();
  } catch (error) {
    throw fileError(error, sandboxPath);
  }
}

async function stat(sandbox: SandboxFilesystem, user: SandboxUser, path: string): Promise<{ entry: EntryInfoMessage }> {
  const location = locate(sandbox, path, user, false);
  try {
    return { entry: await statEntry(sandbox, user, location) };
  } catch (error) {
    // A path below a file does not exist either; `sandbox.files.exists` relies on not_found.
    if ((error as NodeJS.ErrnoException).code === 'ENOTDIR') throw fileError(Object.assign(new Error(), { code: 'ENOENT' }), location.sandboxPath);
    throw fileError(error, location.sandboxPath);
  }
}

async function makeDirectory(sandbox: SandboxFilesystem, user: SandboxUser, path: string): Promise<{ entry: EntryInfoMessage }> {
  const location = locate(sandbox, path, user, true);
  return onPath(location.sandboxPath, async () => {
    const existing = await lstatEntry(location);
    if (existing?.isDirectory()) throw new ConnectError('already_exists', `directory ${location.sandboxPath} already exists`);
    if (existing) throw new ConnectError('invalid_argument', `${location.sandboxPath} already exists and is not a directory: choose another path`);
    requireWritable(location);
    // Like envd's, for `user` too wherever the folders above it may be searched (see envd/entry.ts).
    const handle = await openDirectory(location.base, location.parts, { create: sandbox.idsOf(user), access: writerOf(sandbox, user, location) });
    await handle.close();
    return { entry: await statEntry(sandbox, user, location) };
  });
}

async function move(sandbox: SandboxFilesystem, user: SandboxUser, sourcePath: string, destinationPath: string): Promise<{ entry: EntryInfoMessage }> {
  const source = locate(sandbox, sourcePath, user, false);
  const destination = locate(sandbox, destinationPath, user, false);
  requireWritable(source);
  requireWritable(destination);
  for (const location of [source, destination]) {
    if (location.parts.length === 0) throw new ConnectError('invalid_argument', `${location.sandboxPath} itself cannot be moved or replaced: move what is inside it`);
  }
  const sourceWriter = writerOf(sandbox, user, source);
  const destinationWriter = writerOf(sandbox, user, destination);
  await onPath(source.sandboxPath, () =>
    atEntry(source, { access: sourceWriter }, async (from) => {
      await checkChange(sourceWriter, from, 'unlink');
      await onPath(destination.sandboxPath, () =>
        atEntry(destination, { create: sandbox.idsOf(user), access: destinationWriter }, async (to) => {
          const replaced = await lstat(to).then(() => true, () => false);
          await checkChange(destinationWriter, to, replaced ? 'unlink' : 'create');
          await renameOrMissing(from, to, source);
        }),
      );
    }),
  );
  return { entry: await onPath(destination.sandboxPath, () => statEntry(sandbox, user, destination)) };
}

async function renameOrMissing(from: string, to: string, source: SandboxLocation): Promise<void> {
  try {
    await rename(from, to);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // ENOENT from rename(2) means the source is missing: the destination's parents exist by now.
    if (code === 'ENOENT') throw fileError(error, source.sandboxPath);
    if (code !== 'EXDEV') throw error;
    await moveAcross(from, to);
  }
}

/**
 * A move between two of the sandbox's filesystems, as `mv` makes it: the destination replaced where
 * rename(2) would replace it, a copy, then the source removed. A copy the disk cannot hold is removed.
 */
async function moveAcross(from: string, to: string): Promise<void> {
  const source = await lstat(from);
  const existing = await lstat(to).catch(() => undefined);
  if (existing?.isDirectory()) {
    if (!source.isDirectory()) throw Object.assign(new Error(), { code: 'EISDIR' });
    await rmdir(to);
  } else if (existing) {
    if (source.isDirectory()) throw Object.assign(new Error(), { code: 'ENOTDIR' });
    await unlink(to);
  }
  try {
    await copyTree(from, to);
  } catch (error) {
    await removeTree(posix.dirname(to), posix.basename(to));
    throw error;
  }
  await removeTree(posix.dirname(from), posix.basename(from));
}

async function list(sandbox: SandboxFilesystem, user: SandboxUser, path: string, depth: number): Promise<{ entries: EntryInfoMessage[] }> {
  const location = locate(sandbox, path, user, true);
  const reader = readerOf(sandbox, user, location);
  const entries: EntryInfoMessage[] = [];
  const walk = async (directory: FileHandle, at: SandboxLocation, level: number): Promise<void> => {
    const children: { name: string; child: SandboxLocation; childPath: string; stats: Stats }[] = [];
    for (const name of (await readdir(pathOf(directory))).sort()) {
      const childPath = `${pathOf(directory)}/${name}`;
      try {
        children.push({ name, child: childOf(at, name), childPath, stats: await lstat(childPath) });
      } catch {
        continue; // Removed while listing.
      }
    }
    // One request to the metadata helper for the whole folder, not one per entry.
    const metadata = await readMetadataOf(children.map(({ childPath }) => childPath));
    for (const [index, { name, child, childPath, stats }] of children.entries()) {
      entries.push(await describeEntry(sandbox, user, child, stats, childPath, { metadata: metadata[index] }));
      if (level >= depth || !stats.isDirectory() || (reader && !permits(stats, reader, ACCESS.read))) continue;
      let subdirectory: FileHandle;
      try {
        subdirectory = await openDirectory(pathOf(directory), [name], { access: reader });
      } catch {
        continue; // Removed, replaced or not searchable: list what can be listed.
      }
      try {
        await walk(subdirectory, child, level + 1);
      } finally {
        await subdirectory.close();
      }
    }
  };
  await onPath(location.sandboxPath, async () => {
    let directory: FileHandle;
    try {
      directory = await openDirectory(location.base, location.parts, { access: reader });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOTDIR') throw new ConnectError('invalid_argument', `${location.sandboxPath} is not a directory: give the path of a directory to list`);
      throw error;
    }
    try {
      if (reader && !permits(await directory.stat(), reader, ACCESS.read)) throw Object.assign(new Error(), { code: 'EACCES' });
      await walk(directory, location, 1);
    } finally {
      await directory.close();
    }
  });
  return { entries };
}

async function remove(sandbox: SandboxFilesystem, user: SandboxUser, path: string): Promise<Record<string, never>> {
  const location = locate(sandbox, path, user, false);
  await onPath(location.sandboxPath, async () => {
    // Like envd's RemoveAll, removing what is not there succeeds.
    if (!(await lstatEntry(location))) return;
    requireWritable(location);
    if (location.parts.length === 0 && !location.homeOrTmp) throw new ConnectError('invalid_argument', `${location.sandboxPath} cannot be removed: remove what is inside it`);
    if (location.parts.length === 0) {
      // /home/user and /tmp are mount points inside the sandbox: empty them, keep them.
      const root = await openDirectory(location.base, []);
      try {
        await removeChildren(root);
      } finally {
        await root.close();
      }
      return;
    }
    const name = location.parts.at(-1)!;
    const writer = writerOf(sandbox, user, location);
    const parent = await openDirectory(location.base, location.parts.slice(0, -1), { access: writer });
    try {
      await checkChange(writer, `${pathOf(parent)}/${name}`, 'unlink');
      await removeTree(pathOf(parent), name);
    } finally {
      await parent.close();
    }
  });
  return {};
}

/** What a watch reports to and how it ends. */
interface WatchTarget {
  readonly sandbox: SandboxFilesystem;
  readonly user: SandboxUser;
  readonly location: SandboxLocation;
  readonly recursive: boolean;
  readonly includeEntry: boolean;
  readonly onEvent: (event: FilesystemEventMessage) => void;
  readonly onFailure: (error: ConnectError) => void;
}

interface WatchedDirectory {
  readonly watcher: FSWatcher;
  readonly inode: number;
}

/**
 * Watches a directory (and with `recursive`, every directory below it) with inotify through `fs.watch`.
 *
 * Written here instead of using `fs.watch(path, { recursive: true })`: on Linux, Node 20 emulates that
 * option by putting a watch on every file as well as every directory (exhausting
 * `fs.inotify.max_user_watches` on trees like node_modules), walks the tree synchronously, and stats
 * through symlinks, which would watch host files that sandbox links point at. This watcher adds one
 * native watch per directory, reached without following symlinks, and watches directories created later.
 *
 * inotify's events become E2B's: a name that appears is CREATE, one that disappears is REMOVE (a rename
 * shows as REMOVE of the old name and CREATE of the new one), a content change is WRITE and an attribute
 * change (ctime moved past mtime) is CHMOD.
 */
class TreeWatcher {
  private readonly directories = new Map<string, WatchedDirectory>();
  /** Entries reported as CREATE by the scan of a new directory, whose own inotify event would repeat it. */
  private readonly announced = new Set<string>();
  /** inotify events waiting to be handled, one at a time so that their order holds. */
  private queue: Promise<void> = Promise.resolve();
  private outbox: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(private readonly target: WatchTarget) {}

  /**
   * Starts watching. @throws Node errors (ENOENT, ENOTDIR, ENOSPC when the host's inotify watch limit is reached).
   */
  static async start(target: WatchTarget): Promise<TreeWatcher> {
    const watcher = new TreeWatcher(target);
    try {
      await watcher.watchDirectory('');
      if (target.recursive) await watcher.scan('', false);
    } catch (error) {
      watcher.close();
      throw watchFailure(error, target.location);
    }
    return watcher;
  }

  close(): void {
    this.closed = true;
    for (const { watcher } of this.directories.values()) watcher.close();
    this.directories.clear();
    this.announced.clear();
  }

  private async watchDirectory(relative: string): Promise<void> {
    const location = childOf(this.target.location, relative);
    const handle = await openDirectory(location.base, location.parts, { access: readerOf(this.target.sandbox, this.target.user, location) });
    try {
      const { ino } = await handle.stat();
      if (this.closed) return;
      // `<dir>/.` makes inotify's events about the directory itself arrive named `.`, a name no entry can have.
      const watcher = watch(`${pathOf(handle)}/.`, { persistent: false }, (eventType, filename) => {
        if (typeof filename === 'string') this.enqueue(() => this.handle(relative, eventType, filename));
      });
      watcher.on('error', (error) => this.fail(error));
      this.directories.get(relative)?.watcher.close();
      this.directories.set(relative, { watcher, inode: ino });
    } finally {
      await handle.close();
    }
  }

  private enqueue(task: () => Promise<void>): void {
    this.queue = this.queue.then(async () => {
      if (!this.closed) await task();
    }).catch((error: unknown) => this.fail(error));
  }

  private fail(error: unknown): void {
    if (this.closed) return;
    this.close();
    this.target.onFailure(watchFailure(error, this.target.location));
  }

  private async handle(directory: string, eventType: string, filename: string): Promise<void> {
    if (filename === '.') {
      // The directory itself changed: only the watched root's disappearance is news (its parent reports the others).
      if (directory === '' && !(await lstatEntry(this.target.location))) {
        this.emit('.', 'EVENT_TYPE_REMOVE', false);
        await this.outbox;
        this.close();
      }
      return;
    }
    const name = directory === '' ? filename : `${directory}/${filename}`;
    const location = childOf(this.target.location, name);
    const stats = await lstatEntry(location);
    if (eventType === 'change') {
      if (stats) this.emit(name, stats.ctimeMs !== stats.mtimeMs ? 'EVENT_TYPE_CHMOD' : 'EVENT_TYPE_WRITE', true);
      return;
    }
    if (!stats) {
      this.forget(name);
      this.emit(name, 'EVENT_TYPE_REMOVE', false);
      return;
    }
    if (this.announced.delete(name)) return;
    this.emit(name, 'EVENT_TYPE_CREATE', true);
    if (this.target.recursive && stats.isDirectory() && this.directories.get(name)?.inode !== stats.ino) {
      this.forget(name);
      await this.watchDirectory(name);
      await this.scan(name, true);
    }
  }

  /** Watches the directories below `relative`; with `announce`, reports what is found as created. */
  private async scan(relative: string, announce: boolean): Promise<void> {
    const location = childOf(this.target.location, relative);
    let names: string[];
    try {
      const handle = await openDirectory(location.base, location.parts);
      try {
        names = await readdir(pathOf(handle));
      } finally {
        await handle.close();
      }
    } catch {
      return; // Gone again, or replaced: its parent's events say so.
    }
    for (const child of names.sort()) {
      const name = relative === '' ? child : `${relative}/${child}`;
      const stats = await lstatEntry(childOf(this.target.location, name));
      if (!stats || this.closed) continue;
      if (announce) {
        this.announced.add(name);
        this.emit(name, 'EVENT_TYPE_CREATE', true);
      }
      if (stats.isDirectory()) {
        try {
          await this.watchDirectory(name);
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EACCES') continue;
          throw error;
        }
        await this.scan(name, announce);
      }
    }
  }

  /** Stops watching `name` and everything below it. */
  private forget(name: string): void {
    for (const [relative, { watcher }] of this.directories) {
      if (relative === name || relative.startsWith(`${name}/`)) {
        watcher.close();
        this.directories.delete(relative);
      }
    }
    for (const relative of this.announced) if (relative === name || relative.startsWith(`${name}/`)) this.announced.delete(relative);
  }

  /** Sends an event; with `includeEntry`, describes what exists first. Events leave in the order they were emitted. */
  private emit(name: string, type: EventTypeName, exists: boolean): void {
    if (this.closed) return;
    const location = name === '.' ? this.target.location : childOf(this.target.location, name);
    const describe = this.target.includeEntry && exists;
    this.outbox = this.outbox
      .then(async () => {
        let entry: EntryInfoMessage | undefined;
        if (describe) {
          try {
            entry = await atEntry(location, {}, async (path) => describeEntry(this.target.sandbox, this.target.user, location, await lstat(path), path));
          } catch {
            entry = undefined; // Gone by now: send the event without it.
          }
        }
        if (!this.closed) this.target.onEvent(entry ? { name, type, entry } : { name, type });
      })
      .catch((error: unknown) => this.fail(error));
  }
}

/** A failed watch as a Connect error: ENOSPC from inotify means its watch limit, not a full disk. */
function watchFailure(error: unknown, location: SandboxLocation): ConnectError {
  if ((error as NodeJS.ErrnoException | undefined)?.code === 'ENOSPC') {
    return new ConnectError('resource_exhausted', `the host's inotify watch limit (fs.inotify.max_user_watches) is reached: watch a smaller directory, watch without recursive, or raise the limit`);
  }
  return fileError(error, location.sandboxPath);
}

/** A CreateWatcher watcher: events wait until GetWatcherEvents collects them. */
class PollingWatcher {
  private pending: FilesystemEventMessage[] = [];
  private failure: ConnectError | undefined;
  private watcher: TreeWatcher | undefined;

  async start(target: Omit<WatchTarget, 'onEvent' | 'onFailure'>): Promise<void> {
    this.watcher = await TreeWatcher.start({
      ...target,
      onEvent: (event) => {
        this.pending.push(event);
        if (this.pending.length > MAX_PENDING_EVENTS) {
          this.fail(new ConnectError('resource_exhausted', `more than ${MAX_PENDING_EVENTS} events were not collected: call GetWatcherEvents more often, or watch a smaller directory`));
        }
      },
      onFailure: (error) => this.fail(error),
    });
  }

  /** @throws ConnectError when the watcher failed. */
  take(): FilesystemEventMessage[] {
    if (this.failure) throw this.failure;
    const events = this.pending;
    this.pending = [];
    return events;
  }

  close(): void {
    this.watcher?.close();
  }

  private fail(error: ConnectError): void {
    this.failure ??= error;
    this.pending = [];
    this.close();
  }
}

/** Everything a sandbox is watching, dropped when it is killed. */
interface SandboxWatches {
  /** Open WatchDir streams: each function ends its stream with the given error. */
  readonly streams: Set<(reason: ConnectError) => void>;
  readonly pollers: Map<string, PollingWatcher>;
}

/** Validates a directory to watch. @throws ConnectError not_found or invalid_argument. */
async function watchableDirectory(sandbox: SandboxFilesystem, user: SandboxUser, path: string): Promise<SandboxLocation> {
  const location = locate(sandbox, path, user, true);
  const reader = readerOf(sandbox, user, location);
  const stats = await onPath(location.sandboxPath, () => atEntry(location, { access: reader }, (entryPath) => lstat(entryPath)));
  if (!stats.isDirectory()) throw new ConnectError('invalid_argument', `${location.sandboxPath} is not a directory: watch the directory that holds it`);
  if (reader && !permits(stats, reader, ACCESS.read)) throw fileError(Object.assign(new Error(), { code: 'EACCES' }), location.sandboxPath);
  return location;
}

/**
 * The envd `filesystem.Filesystem` service, keyed by method name. Watches end when their stream closes
 * or their sandbox is killed.
 */
export function createFilesystemService(): EnvdService {
  const watches = new WeakMap<SandboxFilesystem, SandboxWatches>();
  const watchesOf = (sandbox: SandboxFilesystem): SandboxWatches => {
    let found = watches.get(sandbox);
    if (!found) {
      const created: SandboxWatches = { streams: new Set(), pollers: new Map() };
      watches.set(sandbox, created);
      sandbox.onKilled(() => {
        const killed = new ConnectError('unavailable', 'the sandbox was killed or paused: watch again in a running sandbox');
        for (const stop of created.streams) stop(killed);
        created.streams.clear();
        for (const poller of created.pollers.values()) poller.close();
        created.pollers.clear();
        watches.delete(sandbox);
      });
      found = created;
    }
    return found;
  };
  const unary = (handler: (context: EnvdRequestContext, input: unknown) => Promise<unknown>) => (context: EnvdRequestContext) =>
    serveUnary(context.request, context.response, (input) => handler(context, input));

  return {
    Stat: unary(({ sandbox, user }, input) => stat(sandbox, user, parseMessage(pathRequest, input).path)),
    MakeDir: unary(({ sandbox, user }, input) => makeDirectory(sandbox, user, parseMessage(pathRequest, input).path)),
    Move: unary(({ sandbox, user }, input) => {
      const { source, destination } = parseMessage(moveRequest, input);
      return move(sandbox, user, source, destination);
    }),
    ListDir: unary(({ sandbox, user }, input) => {
      const { path, depth } = parseMessage(listRequest, input);
      return list(sandbox, user, path, Math.max(1, depth));
    }),
    Remove: unary(({ sandbox, user }, input) => remove(sandbox, user, parseMessage(pathRequest, input).path)),

    WatchDir: (context) =>
      serveStream(
        context.response,
        async (writer) => {
          const { sandbox, user } = context;
          const { path, recursive, includeEntry } = parseMessage(watchRequest, await firstMessage(context.request, 'WatchDir'));
          const location = await watchableDirectory(sandbox, user, path);
          let stop!: (reason: ConnectError | undefined) => void;
          const stopped = new Promise<ConnectError | undefined>((resolve) => (stop = resolve));
          const watcher = await onPath(location.sandboxPath, () =>
            TreeWatcher.start({ sandbox, user, location, recursive, includeEntry, onEvent: (event) => writer.send({ filesystem: event }), onFailure: stop }),
          );
          const registry = watchesOf(sandbox);
          registry.streams.add(stop);
          try {
            writer.send({ start: {} });
            const reason = await Promise.race([writer.closed.then(() => undefined), stopped]);
            if (reason) throw reason;
          } finally {
            registry.streams.delete(stop);
            watcher.close();
          }
        },
        { keepaliveMs: keepaliveIntervalMs(context.request), keepaliveMessage: { keepalive: {} } },
      ),

    CreateWatcher: unary(async ({ sandbox, user }, input) => {
      const { path, recursive, includeEntry } = parseMessage(watchRequest, input);
      const location = await watchableDirectory(sandbox, user, path);
      const poller = new PollingWatcher();
      await onPath(location.sandboxPath, () => poller.start({ sandbox, user, location, recursive, includeEntry }));
      const watcherId = `w${randomBytes(8).toString('hex')}`;
      watchesOf(sandbox).pollers.set(watcherId, poller);
      return { watcherId };
    }),
    GetWatcherEvents: unary(({ sandbox }, input) => {
      const { watcherId } = parseMessage(watcherRequest, input);
      return Promise.resolve({ events: pollerOf(watchesOf(sandbox), watcherId).take() });
    }),
    RemoveWatcher: unary(({ sandbox }, input) => {
      const { watcherId } = parseMessage(watcherRequest, input);
      const registry = watchesOf(sandbox);
      pollerOf(registry, watcherId).close();
      registry.pollers.delete(watcherId);
      return Promise.resolve({});
    }),
  };
}

function pollerOf(registry: SandboxWatches, watcherId: string): PollingWatcher {
  const poller = registry.pollers.get(watcherId);
  if (!poller) throw new ConnectError('not_found', `watcher ${watcherId} not found: it was removed, or its sandbox restarted; create a new one`);
  return poller;
}
