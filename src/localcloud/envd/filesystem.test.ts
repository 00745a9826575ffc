import { randomBytes } from 'node:crypto';
import { chmod, chown, lstat, mkdir, mkdtemp, readFile, readlink, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { LocalSandbox, SandboxUser } from '../sandboxes/index.js';
import { resolveSandboxPath, type WritableRoots } from '../sandboxes/paths.js';
import { encodeEnvelope } from './connect.js';
import type { EnvdRequestContext, EnvdService } from './context.js';
import { copyTree, locate, openDirectory, type EntryInfoMessage } from './entry.js';
import { MultipartReader, filenameOf, handleFilesDownload, handleFilesUpload, parseHeaderParameters, prefersGzip } from './files.js';
import { createFilesystemService, type FilesystemEventMessage } from './filesystem.js';
import { readMetadata } from './metadata.js';

const RUN_AS_ROOT = process.getuid?.() === 0;
/** The ids files written for `user` get: the real sandbox user when the tests run as root, else our own. */
const USER_IDS = RUN_AS_ROOT ? { uid: 1000, gid: 1000 } : { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
/** Tests of what `user` may not do need root-owned files, which only root can make. */
const itAsRoot = it.skipIf(!RUN_AS_ROOT);

interface FakeSandbox {
  readonly sandbox: LocalSandbox;
  readonly roots: WritableRoots;
  /** Host directory holding everything of this test (roots included). */
  readonly scratch: string;
  kill(): void;
}

/** A stand-in for LocalSandbox over temp directories, resolving paths with the real resolver. */
async function createFakeSandbox(): Promise<FakeSandbox> {
  const scratch = await mkdtemp(join(tmpdir(), 'envd-fs-test-'));
  const roots: WritableRoots = { home: join(scratch, 'home'), tmp: join(scratch, 'tmp'), rootView: join(scratch, 'root') };
  for (const dir of [roots.home, roots.tmp, join(roots.rootView, 'etc'), join(roots.rootView, 'usr/bin'), join(roots.rootView, 'home/user'), join(roots.rootView, 'tmp'), join(roots.rootView, 'proc'), join(roots.rootView, 'var/tmp')]) {
    await mkdir(dir, { recursive: true });
  }
  await chown(roots.home, USER_IDS.uid, USER_IDS.gid);
  await writeFile(join(roots.rootView, 'etc/hostname'), 'sandbox\n');
  await writeFile(join(roots.rootView, 'etc/shadow'), 'root:*:1::::::\n', { mode: 0o600 });
  await chown(join(roots.rootView, 'etc/shadow'), 0, 0).catch(() => undefined);
  await writeFile(join(roots.rootView, 'proc/kcore'), 'host memory');
  await chmod(join(roots.rootView, 'var/tmp'), 0o1777);
  const listeners: Array<() => void> = [];
  let killed = false;
  const homeOf = (user: SandboxUser): string => (user === 'root' ? '/root' : '/home/user');
  const fake = {
    homeOf,
    idsOf: (user: SandboxUser) => (user === 'root' ? { uid: 0, gid: 0 } : USER_IDS),
    resolvePath: (path: string, user: SandboxUser = 'user', followLast = true) => resolveSandboxPath(roots, path, homeOf(user), followLast),
    onKilled: (listener: () => void) => {
      if (killed) listener();
      else listeners.push(listener);
    },
  };
  return {
    sandbox: fake as unknown as LocalSandbox,
    roots,
    scratch,
    kill: () => {
      killed = true;
      for (const listener of listeners.splice(0)) listener();
    },
  };
}

let server: Server;
let baseUrl: string;
let current: FakeSandbox;
const service: EnvdService = createFilesystemService();
/** Handlers still running on the server (a closed stream must bring this back to 0). */
let running = 0;

beforeAll(async () => {
  server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const user: SandboxUser = request.headers['x-user'] === 'root' ? 'root' : 'user';
    const context: EnvdRequestContext = { sandbox: current.sandbox, user, request, response, query: url.searchParams };
    const method = /^\/filesystem\.Filesystem\/(\w+)$/.exec(url.pathname)?.[1];
    const handler = url.pathname === '/files' ? (request.method === 'GET' ? handleFilesDownload : handleFilesUpload) : method ? service[method] : undefined;
    if (!handler) {
      response.writeHead(404).end();
      return;
    }
    running++;
    void handler(context).finally(() => running--);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(async () => {
  current = await createFakeSandbox();
});

afterEach(async () => {
  current.kill();
  await rm(current.scratch, { recursive: true, force: true });
});

/** Any answer of the service (each test reads the fields of its method). */
interface RpcBody {
  readonly entry?: EntryInfoMessage;
  readonly entries?: EntryInfoMessage[];
  readonly events?: FilesystemEventMessage[];
  readonly watcherId?: string;
  readonly code?: string;
  readonly message?: string;
}

interface RpcResult {
  readonly status: number;
  readonly body: RpcBody;
}

/** One message of a WatchDir stream. */
interface WatchMessage {
  readonly start?: object;
  readonly keepalive?: object;
  readonly filesystem?: FilesystemEventMessage;
}

async function rpc(method: string, input: unknown, user: SandboxUser = 'user'): Promise<RpcResult> {
  const response = await fetch(`${baseUrl}/filesystem.Filesystem/${method}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-user': user },
    body: JSON.stringify(input),
  });
  return { status: response.status, body: (await response.json()) as RpcBody };
}

/** Creates a file in the sandbox's home, owned like the SDK would leave it. */
async function homeFile(relative: string, content: string | Buffer): Promise<string> {
  const path = join(current.roots.home, relative);
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, content, { mode: 0o644 });
  await chmod(path, 0o644);
  await chown(path, USER_IDS.uid, USER_IDS.gid);
  return path;
}

describe('Stat', () => {
  it('describes a file', async () => {
    await homeFile('file.txt', 'hello');
    const { status, body } = await rpc('Stat', { path: 'file.txt' });
    expect(status).toBe(200);
    expect(body.entry).toMatchObject({
      name: 'file.txt',
      type: 'FILE_TYPE_FILE',
      path: '/home/user/file.txt',
      size: '5',
      mode: 0o644,
      permissions: '-rw-r--r--',
      owner: 'user',
      group: 'user',
    });
    expect(Date.parse(body.entry!.modifiedTime)).toBe(Math.floor((await stat(join(current.roots.home, 'file.txt'))).mtimeMs));
    expect(body.entry!.symlinkTarget).toBeUndefined();
  });

  it('describes a directory', async () => {
    await mkdir(join(current.roots.home, 'dir'), { mode: 0o755 });
    await chmod(join(current.roots.home, 'dir'), 0o755);
    const { body } = await rpc('Stat', { path: '/home/user/dir' });
    expect(body.entry).toMatchObject({ name: 'dir', type: 'FILE_TYPE_DIRECTORY', path: '/home/user/dir', mode: 0o755, permissions: 'drwxr-xr-x' });
  });

  it('describes a symlink as a link to its target inside the sandbox', async () => {
    await homeFile('file.txt', 'hello');
    await symlink('file.txt', join(current.roots.home, 'link'));
    await symlink('/etc', join(current.roots.home, 'etc-link'));
    const link = (await rpc('Stat', { path: 'link' })).body.entry;
    expect(link).toMatchObject({ name: 'link', type: 'FILE_TYPE_SYMLINK', path: '/home/user/link', symlinkTarget: '/home/user/file.txt', mode: 0o644, permissions: 'lrwxrwxrwx' });
    const etc = (await rpc('Stat', { path: 'etc-link' })).body.entry;
    expect(etc).toMatchObject({ type: 'FILE_TYPE_SYMLINK', symlinkTarget: '/etc' });
    const through = (await rpc('Stat', { path: 'etc-link/hostname' })).body.entry;
    expect(through).toMatchObject({ name: 'hostname', type: 'FILE_TYPE_FILE', path: '/etc/hostname', size: '8' });
  });

  it('answers not_found for a missing path, also below a file', async () => {
    await homeFile('file.txt', 'hello');
    for (const path of ['missing.txt', 'file.txt/below']) {
      const { status, body } = await rpc('Stat', { path });
      expect(status).toBe(404);
      expect(body.code).toBe('not_found');
      expect(body.message).toContain('does not exist');
    }
  });
});

describe('MakeDir', () => {
  it('creates a directory with its parents, owned by the user', async () => {
    const { status, body } = await rpc('MakeDir', { path: 'a/b/c' });
    expect(status).toBe(200);
    expect(body.entry).toMatchObject({ name: 'c', type: 'FILE_TYPE_DIRECTORY', path: '/home/user/a/b/c' });
    for (const dir of ['a', 'a/b', 'a/b/c']) {
      const stats = await stat(join(current.roots.home, dir));
      expect(stats.isDirectory()).toBe(true);
      expect([stats.uid, stats.gid]).toEqual([USER_IDS.uid, USER_IDS.gid]);
    }
  });

  it('answers already_exists for an existing directory and invalid_argument for a file', async () => {
    await mkdir(join(current.roots.home, 'dir'));
    await homeFile('file.txt', 'x');
    expect(await rpc('MakeDir', { path: 'dir' })).toMatchObject({ status: 409, body: { code: 'already_exists' } });
    expect(await rpc('MakeDir', { path: '/etc' })).toMatchObject({ status: 409, body: { code: 'already_exists' } });
    expect(await rpc('MakeDir', { path: 'file.txt' })).toMatchObject({ status: 400, body: { code: 'invalid_argument' } });
  });

  it('makes missing folders for the user anywhere, as envd does, but never in /proc or /dev', async () => {
    expect(await rpc('MakeDir', { path: '/opt/new' })).toMatchObject({ status: 200, body: { entry: { path: '/opt/new', owner: 'user' } } });
    expect(await rpc('MakeDir', { path: '/proc/new' }, 'root')).toMatchObject({ status: 403, body: { code: 'permission_denied' } });
    expect(await rpc('MakeDir', { path: '/dev/new' }, 'root')).toMatchObject({ status: 403, body: { code: 'permission_denied' } });
    await expect(lstat(join(current.roots.rootView, 'proc/new'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('Move', () => {
  it('moves a file, creating the destination directories', async () => {
    await homeFile('file.txt', 'hello');
    const { status, body } = await rpc('Move', { source: 'file.txt', destination: '/tmp/moved/dir/file2.txt' });
    expect(status).toBe(200);
    expect(body.entry).toMatchObject({ name: 'file2.txt', type: 'FILE_TYPE_FILE', path: '/tmp/moved/dir/file2.txt', size: '5' });
    expect(await readFile(join(current.roots.tmp, 'moved/dir/file2.txt'), 'utf8')).toBe('hello');
    await expect(lstat(join(current.roots.home, 'file.txt'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('answers not_found for a missing source', async () => {
    expect(await rpc('Move', { source: 'missing', destination: 'x' })).toMatchObject({ status: 404, body: { code: 'not_found' } });
  });

  itAsRoot("answers permission_denied where user may not write outside /home/user and /tmp, and moves there for root", async () => {
    await homeFile('file.txt', 'hello');
    expect(await rpc('Move', { source: 'file.txt', destination: '/etc/file.txt' })).toMatchObject({ status: 403, body: { code: 'permission_denied' } });
    expect(await rpc('Move', { source: '/etc/hostname', destination: 'hostname' })).toMatchObject({ status: 403, body: { code: 'permission_denied' } });
    expect(await rpc('Move', { source: '/home/user/file.txt', destination: '/etc/file.txt' }, 'root')).toMatchObject({ status: 200 });
    expect(await readFile(join(current.roots.rootView, 'etc/file.txt'), 'utf8')).toBe('hello');
  });
});

describe('ListDir', () => {
  beforeEach(async () => {
    await homeFile('dir/a.txt', 'a');
    await homeFile('dir/sub/b.txt', 'bb');
    await homeFile('dir/sub/deeper/c.txt', 'ccc');
  });

  it('lists direct children at depth 1', async () => {
    const { status, body } = await rpc('ListDir', { path: 'dir', depth: 1 });
    expect(status).toBe(200);
    expect(body.entries!.map((entry) => [entry.path, entry.type])).toEqual([
      ['/home/user/dir/a.txt', 'FILE_TYPE_FILE'],
      ['/home/user/dir/sub', 'FILE_TYPE_DIRECTORY'],
    ]);
    expect(body.entries![0]).toMatchObject({ name: 'a.txt', size: '1', owner: 'user' });
  });

  it('goes one level further at depth 2', async () => {
    const { body } = await rpc('ListDir', { path: '/home/user/dir', depth: 2 });
    expect(body.entries!.map((entry) => entry.path)).toEqual([
      '/home/user/dir/a.txt',
      '/home/user/dir/sub',
      '/home/user/dir/sub/b.txt',
      '/home/user/dir/sub/deeper',
    ]);
  });

  it('lists through a symlink inside the sandbox view, not the host', async () => {
    await symlink('/etc', join(current.roots.home, 'etc-link'));
    const { body } = await rpc('ListDir', { path: 'etc-link' });
    expect(body.entries!.map((entry) => entry.path)).toEqual(['/etc/hostname', '/etc/shadow']);
  });

  it('answers not_found for a missing directory and invalid_argument for a file', async () => {
    expect(await rpc('ListDir', { path: 'missing' })).toMatchObject({ status: 404, body: { code: 'not_found' } });
    expect(await rpc('ListDir', { path: 'dir/a.txt' })).toMatchObject({ status: 400, body: { code: 'invalid_argument' } });
  });
});

describe('Remove', () => {
  it('removes a file, a directory tree, and succeeds on a missing path', async () => {
    await homeFile('file.txt', 'x');
    await homeFile('tree/a/b/c.txt', 'x');
    for (const path of ['file.txt', 'tree', 'missing']) expect(await rpc('Remove', { path })).toEqual({ status: 200, body: {} });
    await expect(lstat(join(current.roots.home, 'file.txt'))).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(lstat(join(current.roots.home, 'tree'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('removes a symlink, not what it points to', async () => {
    await homeFile('dir/keep.txt', 'keep');
    await symlink('dir', join(current.roots.home, 'link'));
    await rpc('Remove', { path: 'link' });
    await expect(lstat(join(current.roots.home, 'link'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await readFile(join(current.roots.home, 'dir/keep.txt'), 'utf8')).toBe('keep');
  });

  itAsRoot('refuses what user may not remove outside /home/user and /tmp; root removes it', async () => {
    expect(await rpc('Remove', { path: '/etc/hostname' })).toMatchObject({ status: 403, body: { code: 'permission_denied' } });
    expect(await readFile(join(current.roots.rootView, 'etc/hostname'), 'utf8')).toBe('sandbox\n');
    // A sticky folder: user removes its own file, not root's.
    await writeFile(join(current.roots.rootView, 'var/tmp/roots.txt'), 'r');
    expect(await rpc('MakeDir', { path: '/var/tmp/mine' })).toMatchObject({ status: 200 });
    expect(await rpc('Remove', { path: '/var/tmp/roots.txt' })).toMatchObject({ status: 403, body: { code: 'permission_denied' } });
    expect(await rpc('Remove', { path: '/var/tmp/mine' })).toMatchObject({ status: 200 });
    expect(await rpc('Remove', { path: '/etc/hostname' }, 'root')).toMatchObject({ status: 200 });
    await expect(lstat(join(current.roots.rootView, 'etc/hostname'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses to remove the root, and anything in /proc', async () => {
    expect(await rpc('Remove', { path: '/' }, 'root')).toMatchObject({ status: 400, body: { code: 'invalid_argument' } });
    expect(await rpc('Remove', { path: '/proc/kcore' }, 'root')).toMatchObject({ status: 403, body: { code: 'permission_denied' } });
    expect(await readFile(join(current.roots.rootView, 'proc/kcore'), 'utf8')).toBe('host memory');
  });
});

describe('symlinks out of the writable directories', () => {
  itAsRoot("user's write through a link to a root file of /etc is refused and leaves the file untouched", async () => {
    await symlink('/etc/hostname', join(current.roots.home, 'hostname-link'));
    const response = await fetch(`${baseUrl}/files?path=/home/user/hostname-link`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: 'owned' });
    expect(response.status).toBe(403);
    expect(await response.json()).toMatchObject({ code: 403, message: expect.stringContaining('permission denied on /etc/hostname') as unknown });
    expect(await readFile(join(current.roots.rootView, 'etc/hostname'), 'utf8')).toBe('sandbox\n');
  });

  it('a link to an absolute host path lands inside the sandbox, never on the host', async () => {
    const hostFile = join(current.scratch, 'host-secret.txt');
    await writeFile(hostFile, 'secret');
    await symlink(hostFile, join(current.roots.home, 'host-link'));
    const response = await fetch(`${baseUrl}/files?path=host-link`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: 'written' });
    // The host path starts with /tmp, which the sandbox sees as its own /tmp.
    expect(response.status).toBe(hostFile.startsWith('/tmp/') ? 200 : 403);
    expect(await readFile(hostFile, 'utf8')).toBe('secret');
    if (hostFile.startsWith('/tmp/')) expect(await readFile(join(current.roots.tmp, hostFile.slice('/tmp'.length)), 'utf8')).toBe('written');
  });

  it('a directory swapped for a symlink after resolution is not followed', async () => {
    await mkdir(join(current.roots.home, 'dir'));
    const location = locate(current.sandbox, 'dir/file.txt', 'user', true);
    await rm(join(current.roots.home, 'dir'), { recursive: true });
    await symlink(join(current.roots.rootView, 'etc'), join(current.roots.home, 'dir'));
    await expect(openDirectory(location.base, location.parts.slice(0, -1))).rejects.toMatchObject({ code: 'ENOTDIR' });
  });

  it('reads in the read-only part obey the user’s permissions', async () => {
    if (process.getuid?.() !== 0) return; // Needs a root-owned file, which only root can make.
    const asUser = await fetch(`${baseUrl}/files?path=/etc/shadow`);
    expect(asUser.status).toBe(403);
    const asRoot = await fetch(`${baseUrl}/files?path=/etc/shadow`, { headers: { 'x-user': 'root' } });
    expect(await asRoot.text()).toBe('root:*:1::::::\n');
    expect((await fetch(`${baseUrl}/files?path=/proc/kcore`, { headers: { 'x-user': 'root' } })).status).toBe(403);
  });
});

describe('copyTree (a move between two of the sandbox\'s filesystems)', () => {
  it('copies files, folders and links with their modes and owners, and never follows a link', async () => {
    const from = join(current.roots.home, 'tree');
    await mkdir(join(from, 'sub'), { recursive: true });
    await writeFile(join(from, 'sub/script.sh'), 'echo hi\n');
    await chmod(join(from, 'sub/script.sh'), 0o750);
    await chmod(join(from, 'sub'), 0o710);
    await writeFile(join(from, 'big.bin'), Buffer.alloc(3 * 1024 * 1024 + 5, 7));
    const hostFile = join(current.scratch, 'host-only.txt');
    await writeFile(hostFile, 'host');
    await symlink(hostFile, join(from, 'host-link'));
    await chown(join(from, 'sub/script.sh'), USER_IDS.uid, USER_IDS.gid);
    await copyTree(from, join(current.roots.tmp, 'copy'));
    const to = join(current.roots.tmp, 'copy');
    expect(await readFile(join(to, 'sub/script.sh'), 'utf8')).toBe('echo hi\n');
    expect((await stat(join(to, 'sub/script.sh'))).mode & 0o7777).toBe(0o750);
    expect((await stat(join(to, 'sub'))).mode & 0o7777).toBe(0o710);
    expect([(await stat(join(to, 'sub/script.sh'))).uid, (await stat(join(to, 'sub/script.sh'))).gid]).toEqual([USER_IDS.uid, USER_IDS.gid]);
    expect((await readFile(join(to, 'big.bin'))).equals(Buffer.alloc(3 * 1024 * 1024 + 5, 7))).toBe(true);
    expect((await lstat(join(to, 'host-link'))).isSymbolicLink()).toBe(true);
    expect(await readlink(join(to, 'host-link'))).toBe(hostFile);
  });
});

describe('POST /files', () => {
  it('writes one multipart file at the path of the query, owned by the user', async () => {
    const form = new FormData();
    form.append('file', new Blob(['hello multipart']), 'notes/one.txt');
    const response = await fetch(`${baseUrl}/files?path=notes/one.txt&username=user`, { method: 'POST', body: form });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual([{ name: 'one.txt', type: 'file', path: '/home/user/notes/one.txt' }]);
    const path = join(current.roots.home, 'notes/one.txt');
    expect(await readFile(path, 'utf8')).toBe('hello multipart');
    const stats = await stat(path);
    expect([stats.uid, stats.gid, stats.mode & 0o777]).toEqual([USER_IDS.uid, USER_IDS.gid, 0o644]);
    expect((await stat(join(current.roots.home, 'notes'))).uid).toBe(USER_IDS.uid);
  });

  it('writes several multipart files at the paths in their filenames', async () => {
    const big = randomBytes(3 * 1024 * 1024 + 17);
    const form = new FormData();
    form.append('file', new Blob(['first']), 'a.txt');
    form.append('ignored', 'not a file');
    form.append('file', new Blob([big]), '/tmp/deep/big.bin');
    form.append('file', new Blob(['quoted']), 'odd "name".txt');
    const response = await fetch(`${baseUrl}/files`, { method: 'POST', body: form });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual([
      { name: 'a.txt', type: 'file', path: '/home/user/a.txt' },
      { name: 'big.bin', type: 'file', path: '/tmp/deep/big.bin' },
      { name: 'odd "name".txt', type: 'file', path: '/home/user/odd "name".txt' },
    ]);
    expect(await readFile(join(current.roots.home, 'a.txt'), 'utf8')).toBe('first');
    expect((await readFile(join(current.roots.tmp, 'deep/big.bin'))).equals(big)).toBe(true);
    expect(await readFile(join(current.roots.home, 'odd "name".txt'), 'utf8')).toBe('quoted');
  });

  it('overwrites an existing file', async () => {
    await homeFile('file.txt', 'a much longer original content');
    const response = await fetch(`${baseUrl}/files?path=file.txt`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: 'short' });
    expect(response.status).toBe(200);
    expect(await readFile(join(current.roots.home, 'file.txt'), 'utf8')).toBe('short');
  });

  itAsRoot('writes anywhere for root; for user, makes missing folders but writes only where user may', async () => {
    const upload = (path: string, user: SandboxUser, body: string): Promise<Response> =>
      fetch(`${baseUrl}/files?path=${path}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'x-user': user }, body });
    expect((await upload('/usr/bin/tool', 'root', 'root tool')).status).toBe(200);
    expect((await upload('/etc/hostname', 'root', 'renamed\n')).status).toBe(200);
    expect(await readFile(join(current.roots.rootView, 'etc/hostname'), 'utf8')).toBe('renamed\n');
    // As on E2B, where envd makes the missing folders: its own tests write /0/file as user.
    expect((await upload('/0/file.txt', 'user', 'at the root')).status).toBe(200);
    const made = await stat(join(current.roots.rootView, '0/file.txt'));
    expect([made.uid, made.gid]).toEqual([USER_IDS.uid, USER_IDS.gid]);
    // Root's files and folders, as Linux would refuse them to a process of user.
    for (const path of ['/usr/bin/tool', '/usr/bin/new', '/etc/hostname']) {
      const refused = await upload(path, 'user', 'user was here');
      expect(refused.status, path).toBe(403);
      expect(((await refused.json()) as { message: string }).message).toBe(`permission denied on ${path}: run as a user that may access it (for example root)`);
    }
    expect(await readFile(join(current.roots.rootView, 'usr/bin/tool'), 'utf8')).toBe('root tool');
    await expect(lstat(join(current.roots.rootView, 'usr/bin/new'))).rejects.toMatchObject({ code: 'ENOENT' });
    // A file root left writable for everyone is written, and becomes user's, as envd does.
    await writeFile(join(current.roots.rootView, 'etc/shared.conf'), 'old', { mode: 0o666 });
    await chmod(join(current.roots.rootView, 'etc/shared.conf'), 0o666);
    expect((await upload('/etc/shared.conf', 'user', 'new')).status).toBe(200);
    expect(await readFile(join(current.roots.rootView, 'etc/shared.conf'), 'utf8')).toBe('new');
    expect((await upload('/proc/kcore', 'root', 'x')).status).toBe(403);
    expect(await readFile(join(current.roots.rootView, 'proc/kcore'), 'utf8')).toBe('host memory');
  });

  it('writes an octet-stream body, plain and gzip-encoded', async () => {
    const plain = await fetch(`${baseUrl}/files?path=raw/plain.bin`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from([0, 1, 2, 255]) });
    expect(await plain.json()).toEqual([{ name: 'plain.bin', type: 'file', path: '/home/user/raw/plain.bin' }]);
    expect([...(await readFile(join(current.roots.home, 'raw/plain.bin')))]).toEqual([0, 1, 2, 255]);

    const content = 'gzip '.repeat(10_000);
    const gzipped = await fetch(`${baseUrl}/files?path=/tmp/zipped.txt`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', 'content-encoding': 'gzip' },
      body: gzipSync(content),
    });
    expect(gzipped.status).toBe(200);
    expect(await readFile(join(current.roots.tmp, 'zipped.txt'), 'utf8')).toBe(content);
  });

  it('stores X-Metadata-* headers as user.e2b.* extended attributes, lowercased, and refuses a value the SDK would not send', async () => {
    const stored = await fetch(`${baseUrl}/files?path=meta.txt`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'X-Metadata-Author': 'me', 'x-metadata-': 'dropped' }, body: 'x' });
    expect(await stored.json()).toEqual([{ name: 'meta.txt', type: 'file', path: '/home/user/meta.txt', metadata: { author: 'me' } }]);
    expect(await readMetadata(join(current.roots.home, 'meta.txt'))).toEqual({ author: 'me' });
    const refused = await fetch(`${baseUrl}/files?path=meta.txt`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'x-metadata-author': 'tab\there' }, body: 'y' });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { message: string }).message).toContain('metadata value of "author" (header x-metadata-author) is not printable US-ASCII');
    expect(await readFile(join(current.roots.home, 'meta.txt'), 'utf8')).toBe('x');
    const tooLarge = await fetch(`${baseUrl}/files?path=meta.txt`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'x-metadata-big': 'x'.repeat(8000) }, body: 'w' });
    expect(tooLarge.status).toBe(400);
    expect(((await tooLarge.json()) as { message: string }).message).toBe('the metadata of /home/user/meta.txt does not fit in its extended attributes (ext4 keeps about 4 KiB of them per file, keys included): send less');
    // A write without metadata leaves the file none, as envd's does.
    expect(await (await fetch(`${baseUrl}/files?path=meta.txt`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: 'z' })).json()).toEqual([{ name: 'meta.txt', type: 'file', path: '/home/user/meta.txt' }]);
    expect(await readMetadata(join(current.roots.home, 'meta.txt'))).toBeUndefined();
  });

  it('answers 400 for a broken body and a missing path', async () => {
    const broken = await fetch(`${baseUrl}/files?path=x`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'content-encoding': 'gzip' }, body: 'not gzip' });
    expect(broken.status).toBe(400);
    const noPath = await fetch(`${baseUrl}/files`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: 'x' });
    expect(noPath.status).toBe(400);
    expect(((await noPath.json()) as { message: string }).message).toContain('?path=');
    const directory = await fetch(`${baseUrl}/files?path=/tmp`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: 'x' });
    expect(directory.status).toBe(400);
  });
});

describe('GET /files', () => {
  it('returns the exact bytes, with or without gzip', async () => {
    const content = randomBytes(200_000);
    await homeFile('data.bin', content);
    const plain = await fetch(`${baseUrl}/files?path=data.bin`, { headers: { 'accept-encoding': 'identity' } });
    expect(plain.status).toBe(200);
    expect(plain.headers.get('content-length')).toBe('200000');
    expect(Buffer.from(await plain.arrayBuffer()).equals(content)).toBe(true);
    const gzipped = await fetch(`${baseUrl}/files?path=/home/user/data.bin`, { headers: { 'accept-encoding': 'gzip' } });
    expect(gzipped.headers.get('content-encoding')).toBe('gzip');
    expect(Buffer.from(await gzipped.arrayBuffer()).equals(content)).toBe(true);
  });

  it('reads an empty file as empty', async () => {
    await homeFile('empty.txt', '');
    const response = await fetch(`${baseUrl}/files?path=empty.txt`);
    expect(response.headers.get('content-length')).toBe('0');
    expect(await response.text()).toBe('');
  });

  it('answers 404 JSON for a missing file and 400 for a directory', async () => {
    const missing = await fetch(`${baseUrl}/files?path=missing.txt`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ code: 404, message: '/home/user/missing.txt does not exist: check the path, or create it first' });
    const directory = await fetch(`${baseUrl}/files?path=/tmp`);
    expect(directory.status).toBe(400);
  });
});

/** One Connect stream: its messages as they come, then its end frame. */
class ConnectStream {
  readonly messages: WatchMessage[] = [];
  end: { error?: { code: string; message: string } } | undefined;
  readonly done: Promise<void>;
  private waiters: Array<() => void> = [];

  constructor(
    body: ReadableStream<Uint8Array>,
    readonly abort: () => void,
  ) {
    this.done = this.read(Readable.fromWeb(body));
  }

  /** Waits until a message matches, failing after `timeoutMs`. */
  async waitFor(predicate: (message: WatchMessage) => boolean, timeoutMs = 5000): Promise<WatchMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.find(predicate);
      if (found) return found;
      if (this.end || Date.now() > deadline) throw new Error(`no matching message; got ${JSON.stringify(this.messages)}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  private async read(stream: Readable): Promise<void> {
    let buffered = Buffer.alloc(0);
    try {
      for await (const chunk of stream) {
        buffered = Buffer.concat([buffered, chunk as Buffer]);
        while (buffered.length >= 5 && buffered.length >= 5 + buffered.readUInt32BE(1)) {
          const length = buffered.readUInt32BE(1);
          const parsed: unknown = JSON.parse(buffered.subarray(5, 5 + length).toString('utf8'));
          if (buffered.readUInt8(0) & 0x02) this.end = parsed as typeof this.end;
          else this.messages.push(parsed as WatchMessage);
          buffered = buffered.subarray(5 + length);
          for (const wake of this.waiters.splice(0)) wake();
        }
      }
    } catch {
      // Aborted by the test.
    }
  }
}

async function watchDir(input: unknown): Promise<ConnectStream> {
  const controller = new AbortController();
  const response = await fetch(`${baseUrl}/filesystem.Filesystem/WatchDir`, {
    method: 'POST',
    headers: { 'content-type': 'application/connect+json', 'keepalive-ping-interval': '50' },
    body: encodeEnvelope(input),
    signal: controller.signal,
  });
  expect(response.status).toBe(200);
  return new ConnectStream(response.body!, () => controller.abort());
}

const event = (name: string, type: string) => (message: WatchMessage) => message.filesystem?.name === name && message.filesystem.type === type;

async function eventually(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('WatchDir', () => {
  it('streams create, write, chmod and remove events, then closes with the client', async () => {
    await mkdir(join(current.roots.home, 'watched'));
    const before = running;
    const stream = await watchDir({ path: 'watched' });
    await stream.waitFor((message) => 'start' in message);
    const file = join(current.roots.home, 'watched/file.txt');
    await writeFile(file, 'one');
    await stream.waitFor(event('file.txt', 'EVENT_TYPE_CREATE'));
    await stream.waitFor(event('file.txt', 'EVENT_TYPE_WRITE'));
    await chmod(file, 0o600);
    await stream.waitFor(event('file.txt', 'EVENT_TYPE_CHMOD'));
    await rm(file);
    await stream.waitFor(event('file.txt', 'EVENT_TYPE_REMOVE'));
    const names = stream.messages.flatMap((message) => (message.filesystem ? [`${message.filesystem.type} ${message.filesystem.name}`] : []));
    expect(names.indexOf('EVENT_TYPE_CREATE file.txt')).toBeLessThan(names.indexOf('EVENT_TYPE_REMOVE file.txt'));
    expect(running).toBe(before + 1);
    stream.abort();
    await eventually(() => running === before);
  });

  it('watches recursively, including directories created later, with entries', async () => {
    await mkdir(join(current.roots.home, 'root/existing'), { recursive: true });
    const stream = await watchDir({ path: '/home/user/root', recursive: true, includeEntry: true });
    await stream.waitFor((message) => 'start' in message);
    await writeFile(join(current.roots.home, 'root/existing/a.txt'), 'a');
    const created = await stream.waitFor(event('existing/a.txt', 'EVENT_TYPE_CREATE'));
    expect(created.filesystem?.entry).toMatchObject({ name: 'a.txt', path: '/home/user/root/existing/a.txt', type: 'FILE_TYPE_FILE' });
    await mkdir(join(current.roots.home, 'root/later'));
    await stream.waitFor(event('later', 'EVENT_TYPE_CREATE'));
    await writeFile(join(current.roots.home, 'root/later/b.txt'), 'b');
    await stream.waitFor(event('later/b.txt', 'EVENT_TYPE_WRITE'));
    await rename(join(current.roots.home, 'root/later'), join(current.roots.home, 'root/renamed'));
    await stream.waitFor(event('later', 'EVENT_TYPE_REMOVE'));
    await stream.waitFor(event('renamed', 'EVENT_TYPE_CREATE'));
    await writeFile(join(current.roots.home, 'root/renamed/b.txt'), 'again');
    await stream.waitFor(event('renamed/b.txt', 'EVENT_TYPE_WRITE'));
    stream.abort();
  });

  it('does not report changes in subdirectories without recursive', async () => {
    await mkdir(join(current.roots.home, 'flat/sub'), { recursive: true });
    const stream = await watchDir({ path: 'flat' });
    await stream.waitFor((message) => 'start' in message);
    await writeFile(join(current.roots.home, 'flat/sub/hidden.txt'), 'x');
    await writeFile(join(current.roots.home, 'flat/seen.txt'), 'x');
    await stream.waitFor(event('seen.txt', 'EVENT_TYPE_CREATE'));
    expect(stream.messages.some((message) => message.filesystem?.name.startsWith('sub/'))).toBe(false);
    stream.abort();
  });

  it('ends with not_found for a missing directory and invalid_argument for a file', async () => {
    const missing = await watchDir({ path: 'missing' });
    await missing.done;
    expect(missing.messages).toEqual([]);
    expect(missing.end?.error?.code).toBe('not_found');
    await homeFile('file.txt', 'x');
    const file = await watchDir({ path: 'file.txt' });
    await file.done;
    expect(file.end?.error?.code).toBe('invalid_argument');
  });

  it('ends when the sandbox is killed', async () => {
    await mkdir(join(current.roots.home, 'watched'));
    const stream = await watchDir({ path: 'watched' });
    await stream.waitFor((message) => 'start' in message);
    current.kill();
    await stream.done;
    expect(stream.end?.error?.code).toBe('unavailable');
  });
});

describe('CreateWatcher, GetWatcherEvents, RemoveWatcher', () => {
  it('collects events until the watcher is removed', async () => {
    await mkdir(join(current.roots.home, 'polled'));
    const created = await rpc('CreateWatcher', { path: 'polled', recursive: false, include_entry: false });
    expect(created.status).toBe(200);
    const watcherId = created.body.watcherId!;
    await writeFile(join(current.roots.home, 'polled/x.txt'), 'x');
    const events: FilesystemEventMessage[] = [];
    for (let attempt = 0; attempt < 100 && !events.some((entry) => entry.type === 'EVENT_TYPE_WRITE'); attempt++) {
      const polled = await rpc('GetWatcherEvents', { watcherId });
      events.push(...(polled.body.events ?? []));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(events[0]).toEqual({ name: 'x.txt', type: 'EVENT_TYPE_CREATE' });
    expect(events).toContainEqual({ name: 'x.txt', type: 'EVENT_TYPE_WRITE' });
    expect(await rpc('RemoveWatcher', { watcherId })).toEqual({ status: 200, body: {} });
    expect(await rpc('GetWatcherEvents', { watcherId })).toMatchObject({ status: 404, body: { code: 'not_found' } });
  });
});

describe('Accept-Encoding', () => {
  it('picks gzip the way envd does', () => {
    expect(prefersGzip(undefined)).toBe(false);
    expect(prefersGzip('gzip, deflate')).toBe(true);
    expect(prefersGzip('identity')).toBe(false);
    expect(prefersGzip('gzip;q=0.5, identity')).toBe(false);
    expect(prefersGzip('br, gzip;q=0')).toBe(false);
    expect(prefersGzip('*, identity;q=0')).toBe(true);
  });
});

describe('multipart parsing', () => {
  it('reads parts split at every byte', async () => {
    const boundary = 'XyZ';
    const body = Buffer.from(
      'preamble\r\n--XyZ\r\nContent-Disposition: form-data; name="file"; filename="dir/a%22b.txt"\r\n\r\nline1 --XyZ\r\n-XyZ\r\n' +
        '--XyZ  \r\nContent-Disposition: form-data; name="file"; filename*=UTF-8\'\'%C3%A9t%C3%A9.txt\r\n\r\n\r\n--XyZ--\r\nepilogue',
    );
    const oneByteAtATime = Array.from({ length: body.length }, (_unused, index) => body.subarray(index, index + 1));
    const reader = new MultipartReader(Readable.from(oneByteAtATime)[Symbol.asyncIterator](), boundary);
    const parts: Array<[string | undefined, string]> = [];
    for (let headers = await reader.nextPart(); headers; headers = await reader.nextPart()) {
      const chunks: Buffer[] = [];
      for await (const chunk of reader.body()) chunks.push(chunk);
      parts.push([filenameOf(parseHeaderParameters(headers.get('content-disposition') ?? '').parameters), Buffer.concat(chunks).toString('utf8')]);
    }
    expect(parts).toEqual([
      ['dir/a"b.txt', 'line1 --XyZ\r\n-XyZ'],
      ['été.txt', ''],
    ]);
  });

  it('rejects a body without its closing boundary', async () => {
    const truncated = Readable.from([Buffer.from('--b\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n\r\nno end')]);
    const reader = new MultipartReader(truncated[Symbol.asyncIterator](), 'b');
    await reader.nextPart();
    await expect(async () => {
      for await (const chunk of reader.body()) void chunk;
    }).rejects.toMatchObject({ code: 'invalid_argument' });
  });
});
