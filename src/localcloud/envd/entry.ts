/**
 * Entries of a sandbox's filesystem as the envd handlers reach them on the host, and as E2B's
 * `EntryInfo` describes them.
 *
 * `LocalSandbox.resolvePath` follows symlinks inside the sandbox's view, but the sandbox can swap a
 * directory for a symlink between that resolution and the moment this server (running as root) opens
 * the path; a plain `open(hostPath)` would then follow the new link on the host. So every handler walks
 * from a trusted host directory (the home or tmp directory, or the sandbox's root view) one component at
 * a time with `O_NOFOLLOW`, naming each step through `/proc/self/fd/<fd>/<name>`: the `openat` +
 * `O_NOFOLLOW` walk that Node has no direct API for. A link planted mid-walk fails the call instead of
 * escaping the sandbox.
 *
 * What `user` may do through the files API: in /home/user and /tmp, anything (this server acts there as
 * envd does on E2B, with root's power, giving new files to the user); elsewhere what Linux lets a process
 * of that user do (read what it may read, write a file it may write, make, remove or rename an entry in a
 * folder it may write, sticky folders included), except that the missing folders of a path are made for
 * it anywhere, as envd's upload does (E2B's own tests write `/0/file` as `user`). Root may do anything
 * but touch /proc and /dev, whose files are the kernel's.
 */
import { constants, type Stats } from 'node:fs';
import { lchown, lstat, mkdir, open, readdir, readlink, rmdir, stat, symlink, unlink, type FileHandle } from 'node:fs/promises';
import { posix } from 'node:path';
import type { LocalSandbox, SandboxUser } from '../sandboxes/index.js';
import { ConnectError, toConnectError } from './connect.js';
import { readMetadata, replaceMetadata, type FileMetadata } from './metadata.js';

/** What of a sandbox the filesystem handlers use: a `LocalSandbox`, or a stand-in in tests. */
export type SandboxFilesystem = Pick<LocalSandbox, 'resolvePath' | 'idsOf' | 'homeOf' | 'onKilled'>;

/** A uid and gid, on the host and in the sandbox alike (sandboxes have no user namespace). */
export interface Identity {
  readonly uid: number;
  readonly gid: number;
}

/** A sandbox path placed on the host as a trusted directory plus the components below it. */
export interface SandboxLocation {
  /** Canonical absolute path as the sandbox sees it. */
  readonly sandboxPath: string;
  /** Under /home/user or /tmp, where `user` may do what root may (see the top of this file). */
  readonly homeOrTmp: boolean;
  /** Host directory the walk starts from: the home or tmp directory, or the sandbox's root view. */
  readonly base: string;
  /** Components from `base` down to the entry; empty for `base` itself. */
  readonly parts: readonly string[];
}

/** How a walk treats the directories it passes. */
export interface WalkOptions {
  /** Create missing directories (mode 0755), owned by these ids. */
  readonly create?: Identity;
  /** Require search permission for this identity on every directory passed. */
  readonly access?: Identity;
}

/** proto3 JSON of `filesystem.FileType`. */
export type FileTypeName = 'FILE_TYPE_UNSPECIFIED' | 'FILE_TYPE_FILE' | 'FILE_TYPE_DIRECTORY' | 'FILE_TYPE_SYMLINK';

/** proto3 JSON of `filesystem.EntryInfo` (int64 `size` as a string, `modifiedTime` as RFC 3339). */
export interface EntryInfoMessage {
  readonly name: string;
  readonly type: FileTypeName;
  readonly path: string;
  readonly size: string;
  readonly mode: number;
  readonly permissions: string;
  readonly owner: string;
  readonly group: string;
  readonly modifiedTime: string;
  readonly symlinkTarget?: string;
  /** The entry's `user.e2b.*` extended attributes (envd's file metadata), when it has any. */
  readonly metadata?: FileMetadata;
}

/** Permission bits of the "other" class; shift left 3 for group, 6 for owner. */
export const ACCESS = { read: 4, write: 2, search: 1 } as const;

const DIRECTORY_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
/** What {@link copyTree} reads and writes at a time. */
const COPY_CHUNK_BYTES = 1024 * 1024;
const HOME_AND_TMP = ['/home/user', '/tmp'] as const;
/** Where the files API never writes: the kernel's files, which this server (host root, every capability) must not touch for a sandbox. */
const KERNEL_PREFIXES = ['/proc', '/dev'] as const;
/** The fixed /etc/passwd and /etc/group of every sandbox (see the sandbox manager). */
const NOBODY_ID = 65534;
/** Set-user-ID, set-group-ID and sticky bits (not in Node's typed `fs.constants`). */
const SET_USER_ID = 0o4000;
const SET_GROUP_ID = 0o2000;
const STICKY = 0o1000;

/**
 * Resolves `path` (relative paths start at the user's home) inside the sandbox and places it on the host.
 * @param followLast whether a symlink as the last component is followed (false to act on the link itself).
 * @throws ConnectError failed_precondition on a symlink loop, invalid_argument on a NUL character.
 */
export function locate(sandbox: SandboxFilesystem, path: string, user: SandboxUser, followLast: boolean): SandboxLocation {
  if (path.includes('\0')) throw new ConnectError('invalid_argument', `${JSON.stringify(path)} contains a NUL character, which no path can hold: remove it`);
  let resolved;
  try {
    resolved = sandbox.resolvePath(path, user, followLast);
  } catch (error) {
    throw fileError(error, path);
  }
  const { sandboxPath, hostPath, homeOrTmp } = resolved;
  // The host path is a root directory followed by the part of the sandbox path below that root's mount point.
  const mountPoint = homeOrTmp ? HOME_AND_TMP.find((prefix) => isAtOrBelow(sandboxPath, prefix)) ?? '' : '';
  const below = sandboxPath.slice(mountPoint.length);
  const base = hostPath.slice(0, hostPath.length - below.length) || '/';
  return { sandboxPath, homeOrTmp, base, parts: below.split('/').filter(Boolean) };
}

function isAtOrBelow(path: string, prefix: string): boolean {
  return path === prefix || path.startsWith(`${prefix}/`);
}

/** The location of `relative` (slash-separated, no `..`) below a directory's location. */
export function childOf(location: SandboxLocation, relative: string): SandboxLocation {
  const names = relative.split('/').filter(Boolean);
  return { ...location, sandboxPath: posix.join(location.sandboxPath, ...names), parts: [...location.parts, ...names] };
}

/** The entry's name as E2B reports it (`/` for the root). */
export function nameOf(location: SandboxLocation): string {
  return posix.basename(location.sandboxPath) || '/';
}

/** @throws ConnectError permission_denied when the location is the kernel's (/proc, /dev), which the files API never changes. */
export function requireWritable(location: SandboxLocation): void {
  if (KERNEL_PREFIXES.some((prefix) => isAtOrBelow(location.sandboxPath, prefix))) {
    throw new ConnectError('permission_denied', `${location.sandboxPath} belongs to the kernel: change it from inside the sandbox with sandbox.commands.run (as root)`);
  }
}

/** The identity whose permissions apply to reads, or undefined where the sandbox owns everything. */
export function readerOf(sandbox: SandboxFilesystem, user: SandboxUser, location: SandboxLocation): Identity | undefined {
  return location.homeOrTmp ? undefined : sandbox.idsOf(user);
}

/** The identity whose permissions apply to changes: `user` outside /home/user and /tmp, else none. */
export function writerOf(sandbox: SandboxFilesystem, user: SandboxUser, location: SandboxLocation): Identity | undefined {
  return user === 'root' ? undefined : readerOf(sandbox, user, location);
}

/** How a change touches an entry, for {@link checkChange}. */
export type ChangeKind = 'create' | 'unlink';

/**
 * Checks that `identity` may make a change to the entry at `path` (a no-follow path from {@link atEntry}),
 * as Linux checks it for a process without capabilities: `create` asks for write and search permission
 * on the folder; `unlink` (remove, or rename from or over) for those and, in a sticky folder (/var/tmp),
 * owning the entry or the folder. Nothing is checked without an identity.
 * @throws Error with code EACCES when it may not.
 */
export async function checkChange(identity: Identity | undefined, path: string, kind: ChangeKind): Promise<void> {
  if (!identity) return;
  const denied = (): Error => Object.assign(new Error('permission denied'), { code: 'EACCES' });
  const folder = await stat(posix.dirname(path));
  if (!permits(folder, identity, ACCESS.write) || !permits(folder, identity, ACCESS.search)) throw denied();
  if (kind === 'unlink' && (folder.mode & STICKY) !== 0 && folder.uid !== identity.uid) {
    const entry = await lstat(path);
    if (entry.uid !== identity.uid) throw denied();
  }
}

/** Whether classic Unix permissions give `identity` the `bit` access (sandbox users have no capabilities). */
export function permits(stats: Pick<Stats, 'uid' | 'gid' | 'mode'>, identity: Identity, bit: number): boolean {
  const shift = stats.uid === identity.uid ? 6 : stats.gid === identity.gid ? 3 : 0;
  return ((stats.mode >> shift) & bit) !== 0;
}

/** The `/proc/self/fd` name of an open directory, usable as a path prefix that follows no symlink. */
export function pathOf(handle: FileHandle): string {
  return `/proc/self/fd/${handle.fd}`;
}

/**
 * Opens `parts` below `base` as a directory, refusing any symlink on the way.
 * @throws Node errors (ENOENT, ENOTDIR for a file or a symlink in the way) or ConnectError permission_denied.
 */
export async function openDirectory(base: string, parts: readonly string[], options: WalkOptions = {}): Promise<FileHandle> {
  let handle = await open(base, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    for (const part of parts) {
      await checkSearch(handle, options.access);
      const next = `${pathOf(handle)}/${part}`;
      let child: FileHandle;
      try {
        child = await open(next, DIRECTORY_FLAGS);
      } catch (error) {
        if (!options.create || (error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        child = await makeDirectory(next, options.create);
      }
      await handle.close();
      handle = child;
    }
    await checkSearch(handle, options.access);
    return handle;
  } catch (error) {
    await handle.close();
    throw error;
  }
}

async function makeDirectory(path: string, owner: Identity): Promise<FileHandle> {
  let created = true;
  try {
    await mkdir(path, 0o755);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    created = false;
  }
  const handle = await open(path, DIRECTORY_FLAGS);
  if (created) await handle.chown(owner.uid, owner.gid);
  return handle;
}

async function checkSearch(handle: FileHandle, identity: Identity | undefined): Promise<void> {
  if (identity && !permits(await handle.stat(), identity, ACCESS.search)) {
    throw Object.assign(new Error('permission denied'), { code: 'EACCES' });
  }
}

/**
 * Runs `action` with a path naming the location's entry that follows no symlink on the way (the last
 * component is passed as is: use lstat, `O_NOFOLLOW`, rename or unlink on it). The root of a location is
 * named `<dir>/.`.
 */
export async function atEntry<T>(location: SandboxLocation, options: WalkOptions, action: (path: string) => Promise<T>): Promise<T> {
  const name = location.parts.at(-1);
  const parent = await openDirectory(location.base, location.parts.slice(0, -1), options);
  try {
    return await action(`${pathOf(parent)}/${name ?? '.'}`);
  } finally {
    await parent.close();
  }
}

/** lstat of the entry, or undefined when it does not exist. */
export async function lstatEntry(location: SandboxLocation, access?: Identity): Promise<Stats | undefined> {
  try {
    return await atEntry(location, { access }, (path) => lstat(path));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw error;
  }
}

/** Removes a file, link or whole directory tree named `name` inside the open directory `directory`, without following links. */
export async function removeTree(directory: string, name: string): Promise<void> {
  const path = `${directory}/${name}`;
  try {
    await unlink(path);
    return;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    if (code !== 'EISDIR' && code !== 'EPERM') throw error;
  }
  let handle: FileHandle;
  try {
    handle = await open(path, DIRECTORY_FLAGS);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  try {
    await removeChildren(handle);
  } finally {
    await handle.close();
  }
  try {
    await rmdir(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/** Empties an open directory. */
export async function removeChildren(handle: FileHandle): Promise<void> {
  for (const child of await readdir(pathOf(handle))) await removeTree(pathOf(handle), child);
}

/**
 * Copies the file, link or whole directory tree at `from` to the new entry `to` (both no-follow paths
 * from {@link atEntry}), keeping modes, owners, link texts and file metadata: how a move crosses from one of the
 * sandbox's filesystems to another (rename(2) fails with EXDEV between its disk's folders and its root's
 * overlays, and for a folder of an overlay's lower layer), as `mv` does.
 *
 * Written here rather than with `fs.cp`: that follows paths from the host's root, so a link the sandbox
 * swaps in while it runs would be followed on the host; this opens every entry with `O_NOFOLLOW` and
 * names its children through the open folder.
 * @throws Node errors (ENOSPC when the disk fills; what was copied stays, for the caller to remove), or
 * EXDEV for a device, FIFO or socket, which it does not copy.
 */
export async function copyTree(from: string, to: string): Promise<void> {
  const stats = await lstat(from);
  if (stats.isSymbolicLink()) {
    await symlink(await readlink(from), to);
    await lchown(to, stats.uid, stats.gid);
    return;
  }
  if (stats.isDirectory()) {
    await copyOpened(
      from,
      DIRECTORY_FLAGS,
      async () => {
        await mkdir(to, 0o700);
        return open(to, DIRECTORY_FLAGS);
      },
      async (source, target) => {
        for (const name of await readdir(pathOf(source))) await copyTree(`${pathOf(source)}/${name}`, `${pathOf(target)}/${name}`);
      },
    );
    return;
  }
  const special = (): Error => Object.assign(new Error('a special file cannot be copied'), { code: 'EXDEV' });
  if (!stats.isFile()) throw special();
  await copyOpened(
    from,
    constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK,
    async (opened) => {
      if (!opened.isFile()) throw special();
      return open(to, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    },
    async (source, target) => {
      const buffer = Buffer.alloc(COPY_CHUNK_BYTES);
      for (let read = await source.read(buffer, 0, buffer.length, null); read.bytesRead > 0; read = await source.read(buffer, 0, buffer.length, null)) {
        await target.write(buffer, 0, read.bytesRead);
      }
    },
  );
}

/** Opens `from`, makes and opens its copy, copies, gives the copy the owner and mode of what was opened, and closes both. */
async function copyOpened(
  from: string,
  flags: number,
  makeTarget: (opened: Stats) => Promise<FileHandle>,
  copy: (source: FileHandle, target: FileHandle) => Promise<void>,
): Promise<void> {
  const source = await open(from, flags);
  try {
    const opened = await source.stat();
    const target = await makeTarget(opened);
    try {
      await copy(source, target);
      await target.chown(opened.uid, opened.gid);
      await target.chmod(opened.mode & 0o7777);
      const metadata = await readMetadata(pathOf(source), true);
      if (metadata) await replaceMetadata(pathOf(target), metadata);
    } finally {
      await target.close();
    }
  } finally {
    await source.close();
  }
}

/**
 * Describes an entry as E2B's `EntryInfo`. A symlink is reported as FILE_TYPE_SYMLINK with the canonical
 * sandbox path it resolves to as `symlinkTarget`, and its target's permission bits as `mode`.
 * @param stats the entry's lstat.
 * @param path a no-follow path to the entry (from {@link atEntry}), to read a symlink's text when it cannot be resolved.
 * @param known its metadata, when read already (a listing reads a folder's at once).
 */
export async function describeEntry(sandbox: SandboxFilesystem, user: SandboxUser, location: SandboxLocation, stats: Stats, path: string, known?: { readonly metadata: FileMetadata | undefined }): Promise<EntryInfoMessage> {
  let mode = stats.mode & 0o777;
  let symlinkTarget: string | undefined;
  if (stats.isSymbolicLink()) {
    try {
      const target = locate(sandbox, location.sandboxPath, user, true);
      symlinkTarget = target.sandboxPath;
      const targetStats = await lstatEntry(target);
      if (targetStats) mode = targetStats.mode & 0o777;
    } catch {
      symlinkTarget = await readlink(path);
    }
  }
  const metadata = known ? known.metadata : await readMetadata(path);
  return {
    name: nameOf(location),
    type: fileTypeOf(stats),
    path: location.sandboxPath,
    size: String(stats.size),
    mode,
    permissions: permissionString(stats.mode),
    owner: ownerName(sandbox, stats.uid),
    group: groupName(sandbox, stats.gid),
    // Truncated to the millisecond like the SDK does (`stats.mtime` rounds instead).
    modifiedTime: new Date(Math.floor(stats.mtimeMs)).toISOString(),
    ...(symlinkTarget === undefined ? {} : { symlinkTarget }),
    ...(metadata === undefined ? {} : { metadata }),
  };
}

/** lstat + {@link describeEntry} in one walk. @throws Node errors such as ENOENT. */
export async function statEntry(sandbox: SandboxFilesystem, user: SandboxUser, location: SandboxLocation): Promise<EntryInfoMessage> {
  return atEntry(location, { access: readerOf(sandbox, user, location) }, async (path) => describeEntry(sandbox, user, location, await lstat(path), path));
}

function fileTypeOf(stats: Stats): FileTypeName {
  if (stats.isSymbolicLink()) return 'FILE_TYPE_SYMLINK';
  if (stats.isDirectory()) return 'FILE_TYPE_DIRECTORY';
  if (stats.isFile()) return 'FILE_TYPE_FILE';
  return 'FILE_TYPE_UNSPECIFIED';
}

function ownerName(sandbox: SandboxFilesystem, uid: number): string {
  if (uid === sandbox.idsOf('root').uid) return 'root';
  if (uid === sandbox.idsOf('user').uid) return 'user';
  return uid === NOBODY_ID ? 'nobody' : String(uid);
}

function groupName(sandbox: SandboxFilesystem, gid: number): string {
  if (gid === sandbox.idsOf('root').gid) return 'root';
  if (gid === sandbox.idsOf('user').gid) return 'user';
  return gid === NOBODY_ID ? 'nogroup' : String(gid);
}

const TYPE_LETTERS: ReadonlyArray<readonly [number, string]> = [
  [constants.S_IFDIR, 'd'],
  [constants.S_IFLNK, 'l'],
  [constants.S_IFCHR, 'c'],
  [constants.S_IFBLK, 'b'],
  [constants.S_IFIFO, 'p'],
  [constants.S_IFSOCK, 's'],
];

/** `ls -l` style permissions, e.g. `-rw-r--r--`, `drwxrwxrwt`. */
export function permissionString(mode: number): string {
  const type = TYPE_LETTERS.find(([bits]) => (mode & constants.S_IFMT) === bits)?.[1] ?? '-';
  const triplet = (shift: number, special: number, letter: string): string => {
    const bits = (mode >> shift) & 7;
    const read = bits & 4 ? 'r' : '-';
    const write = bits & 2 ? 'w' : '-';
    const plainExecute = bits & 1 ? 'x' : '-';
    const execute = mode & special ? (bits & 1 ? letter : letter.toUpperCase()) : plainExecute;
    return read + write + execute;
  };
  return type + triplet(6, SET_USER_ID, 's') + triplet(3, SET_GROUP_ID, 's') + triplet(0, STICKY, 't');
}

/**
 * Turns a failed file operation into a Connect error whose message names the sandbox path (never the
 * host path) and says what to do.
 */
export function fileError(error: unknown, sandboxPath: string): ConnectError {
  if (error instanceof ConnectError) return error;
  switch ((error as NodeJS.ErrnoException | undefined)?.code) {
    case 'ENOENT':
      return new ConnectError('not_found', `${sandboxPath} does not exist: check the path, or create it first`);
    case 'ENOTDIR':
      return new ConnectError('invalid_argument', `a parent of ${sandboxPath} is not a directory: check the path`);
    case 'EISDIR':
      return new ConnectError('invalid_argument', `${sandboxPath} is a directory: give the path of a file`);
    case 'EEXIST':
      return new ConnectError('already_exists', `${sandboxPath} already exists`);
    case 'ENOTEMPTY':
      return new ConnectError('invalid_argument', `${sandboxPath} is a directory that is not empty: remove its contents first`);
    case 'EACCES':
    case 'EPERM':
      return new ConnectError('permission_denied', `permission denied on ${sandboxPath}: run as a user that may access it (for example root)`);
    case 'EROFS':
      return new ConnectError('permission_denied', `${sandboxPath} is on a read-only mount of the sandbox (such as /opt/tradeswarm): write somewhere else`);
    case 'ELOOP':
      return new ConnectError('failed_precondition', `${sandboxPath} has a symlink loop or a symlink that changed while it was used: fix the link and retry`);
    case 'ENOSPC':
    case 'EDQUOT':
    case 'EFBIG':
      return new ConnectError('resource_exhausted', `not enough disk space for ${sandboxPath}: remove files from the sandbox or write less`);
    default: {
      const code = (error as NodeJS.ErrnoException | undefined)?.code;
      if (code === undefined) return toConnectError(error);
      return new ConnectError('internal', `the operation on ${sandboxPath} failed with ${code}: retry, and report it if it persists`);
    }
  }
}
