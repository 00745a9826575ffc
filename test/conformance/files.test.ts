import { describe, expect, it } from 'vitest';
import { FileNotFoundError, FileType, FilesystemEventType, NotEnoughSpaceError, Sandbox, type FilesystemEvent } from 'e2b';
import { itLocal, useBackend } from '../fixtures/backend.js';
import { useSandbox, waitFor } from '../fixtures/localcloud.js';

const backend = useBackend({ templates: [{ name: 'small-disk', diskMB: 16 }] });
const sandbox = useSandbox(backend);

describe('files through the unmodified e2b SDK', () => {
  it('writes and reads text and bytes, visible to commands', async () => {
    const info = await sandbox().files.write('/home/user/notes/hello.txt', 'héllo\n');
    expect(info).toMatchObject({ name: 'hello.txt', path: '/home/user/notes/hello.txt' });
    expect(await sandbox().files.read('/home/user/notes/hello.txt')).toBe('héllo\n');
    expect((await sandbox().commands.run('cat notes/hello.txt; stat -c %U notes/hello.txt')).stdout).toBe('héllo\nuser\n');

    const bytes = Uint8Array.from({ length: 256 }, (_, index) => index);
    await sandbox().files.write('/tmp/all-bytes.bin', bytes.buffer);
    expect(Buffer.from(await sandbox().files.read('/tmp/all-bytes.bin', { format: 'bytes' }))).toEqual(Buffer.from(bytes));
    expect((await sandbox().commands.run('wc -c < /tmp/all-bytes.bin')).stdout).toBe('256\n');
  });

  it('writes several files at once, and with gzip', async () => {
    await sandbox().files.write([
      { path: '/home/user/batch/a.txt', data: 'A' },
      { path: '/home/user/batch/b.txt', data: 'B' },
    ]);
    await sandbox().files.write('/home/user/batch/c.txt', 'C'.repeat(10_000), { gzip: true });
    expect((await sandbox().commands.run('cat batch/a.txt batch/b.txt; wc -c < batch/c.txt')).stdout).toBe('AB10000\n');
  });

  it('lists with depth, checks existence, stats, renames, removes and makes dirs', async () => {
    await sandbox().commands.run('mkdir -p tree/sub/deeper && echo 1 > tree/one && echo 2 > tree/sub/two && ln -s one tree/link');
    const shallow = await sandbox().files.list('/home/user/tree');
    expect(shallow.map((entry) => entry.name).sort()).toEqual(['link', 'one', 'sub']);
    const deep = await sandbox().files.list('/home/user/tree', { depth: 2 });
    expect(deep.map((entry) => entry.path).sort()).toEqual(['/home/user/tree/link', '/home/user/tree/one', '/home/user/tree/sub', '/home/user/tree/sub/deeper', '/home/user/tree/sub/two']);
    expect(deep.find((entry) => entry.name === 'sub')?.type).toBe(FileType.DIR);

    expect(await sandbox().files.exists('/home/user/tree/one')).toBe(true);
    expect(await sandbox().files.exists('/home/user/tree/nope')).toBe(false);
    const stat = await sandbox().files.getInfo('/home/user/tree/one');
    expect(stat).toMatchObject({ name: 'one', type: FileType.FILE, size: 2, owner: 'user' });

    await sandbox().files.rename('/home/user/tree/one', '/home/user/tree/uno');
    expect(await sandbox().files.read('/home/user/tree/uno')).toBe('1\n');
    await sandbox().files.remove('/home/user/tree/sub');
    expect(await sandbox().files.exists('/home/user/tree/sub')).toBe(false);
    expect(await sandbox().files.makeDir('/home/user/tree/new')).toBe(true);
    expect(await sandbox().files.makeDir('/home/user/tree/new')).toBe(false);
    await expect(sandbox().files.read('/home/user/tree/missing.txt')).rejects.toBeInstanceOf(FileNotFoundError);
  });

  it('writes anywhere in the sandbox: at the root, in /opt, /usr/local and /etc, and user makes folders at the root', async () => {
    const written = { '/at-the-root.txt': 'root of the tree', '/opt/tool/config.json': '{}', '/usr/local/foo': 'local', '/etc/myconf': 'key=value' };
    for (const [path, data] of Object.entries(written)) {
      expect(await sandbox().files.write(path, data, { user: 'root' })).toMatchObject({ path });
      expect(await sandbox().files.read(path, { user: 'root' })).toBe(data);
    }
    expect((await sandbox().commands.run(`cat ${Object.keys(written).join(' ')}; stat -c %U /etc/myconf`)).stdout).toBe(`${Object.values(written).join('')}root\n`);
    // E2B's own suite writes /0/file as user: the missing folder is made, and given to user.
    await sandbox().files.write([{ path: '/0/multi.txt', data: 'zero' }, { path: '/home/user/multi.txt', data: 'home' }]);
    expect((await sandbox().commands.run('cat /0/multi.txt /home/user/multi.txt; echo; stat -c %U /0 /0/multi.txt')).stdout).toBe('zerohome\nuser\nuser\n');
    expect(await sandbox().files.makeDir('/srv/data', { user: 'root' })).toBe(true);
    // Moves between the sandbox's filesystems (its root's overlays, its disk's folders) copy, as mv does.
    await sandbox().files.rename('/usr/local/foo', '/srv/data/foo', { user: 'root' });
    await sandbox().commands.run('mkdir -p /home/user/moving/sub && echo deep > /home/user/moving/sub/file && ln -s sub/file /home/user/moving/link');
    await sandbox().files.rename('/home/user/moving', '/tmp/moved');
    expect((await sandbox().commands.run('cat /tmp/moved/link; stat -c "%U %F" /tmp/moved/sub/file /tmp/moved/link; ls /home/user/moving 2>&1 || true')).stdout).toMatch(/^deep\nuser regular file\nuser symbolic link\n.*No such file/);
    await sandbox().files.remove('/etc/myconf', { user: 'root' });
    expect((await sandbox().commands.run('cat /srv/data/foo; ls /usr/local/foo /etc/myconf 2>&1 || true')).stdout).toMatch(/^local.*No such file.*\n.*No such file/s);
  });

  itLocal("E2B's envd writes as root for any user; the local cloud keeps user to its permissions outside /home/user and /tmp")('refuses user a root file or folder outside /home/user and /tmp, even through a symlink', async () => {
    await expect(sandbox().files.write('/usr/bin/by-user', 'x')).rejects.toThrow(/permission denied on \/usr\/bin\/by-user/);
    await expect(sandbox().files.write('/etc/passwd', 'x')).rejects.toThrow(/permission denied on \/etc\/passwd/);
    await sandbox().commands.run('ln -sfn /etc /home/user/etc-link');
    await expect(sandbox().files.write('/home/user/etc-link/escaped', 'x')).rejects.toThrow(/permission denied on \/etc\/escaped/);
    expect((await sandbox().commands.run('ls /usr/bin/by-user /etc/escaped 2>&1 || true; head -c 5 /etc/passwd')).stdout).toMatch(/No such file.*No such file.*\nroot:/s);
    expect(await sandbox().files.write('/usr/bin/by-root', 'x', { user: 'root' })).toMatchObject({ path: '/usr/bin/by-root' });
  });

  itLocal('it needs a template with a 16 MB disk, registered in the local cloud')("refuses an upload past the sandbox's disk size with the SDK's NotEnoughSpaceError", async () => {
    const small = await Sandbox.create('small-disk', backend().connection);
    try {
      await small.files.write('/home/user/fits.bin', new Uint8Array(8 * 1024 * 1024).buffer);
      await expect(small.files.write('/tmp/too-big.bin', new Uint8Array(12 * 1024 * 1024).buffer)).rejects.toBeInstanceOf(NotEnoughSpaceError);
      expect((await small.files.getInfo('/tmp/too-big.bin')).size).toBe(0);
      expect((await small.files.getInfo('/home/user/fits.bin')).size).toBe(8 * 1024 * 1024);
    } finally {
      await small.kill();
    }
  });

  it('watches a directory and streams create, write and remove events', async () => {
    await sandbox().files.makeDir('/home/user/watched');
    const events: FilesystemEvent[] = [];
    const watcher = await sandbox().files.watchDir('/home/user/watched', (event) => void events.push(event));
    try {
      await sandbox().files.write('/home/user/watched/file.txt', 'one');
      await waitFor(() => events.some((event) => event.name === 'file.txt' && event.type === FilesystemEventType.CREATE), 'a create event');
      await sandbox().commands.run('echo more >> watched/file.txt');
      await waitFor(() => events.some((event) => event.name === 'file.txt' && event.type === FilesystemEventType.WRITE), 'a write event');
      await sandbox().files.remove('/home/user/watched/file.txt');
      await waitFor(() => events.some((event) => event.name === 'file.txt' && event.type === FilesystemEventType.REMOVE), 'a remove event');
    } finally {
      await watcher.stop();
    }
  });

  it('keeps file metadata as user.e2b.* extended attributes: written, read, listed, kept by a move, replaced by a rewrite', async () => {
    const metadata = { author: 'mish', purpose: 'upload' };
    expect((await sandbox().files.write('/home/user/meta/a.txt', 'A', { metadata })).metadata).toEqual(metadata);
    expect((await sandbox().files.write('/home/user/meta/b.txt', 'B', { metadata: { tag: 'octet' }, useOctetStream: true })).metadata).toEqual({ tag: 'octet' });
    expect((await sandbox().files.getInfo('/home/user/meta/a.txt')).metadata).toEqual(metadata);
    expect((await sandbox().files.list('/home/user/meta')).map((entry) => [entry.name, entry.metadata])).toEqual([['a.txt', metadata], ['b.txt', { tag: 'octet' }]]);
    expect((await sandbox().commands.run('getfattr -n user.e2b.author --only-values meta/a.txt 2>/dev/null || python3 -c "import os; print(os.getxattr(\'meta/a.txt\', \'user.e2b.author\').decode())"')).stdout.trim()).toBe('mish');
    // Across filesystems (the sandbox's disk to its root's overlay), a move copies: the metadata goes along.
    expect((await sandbox().files.rename('/home/user/meta/a.txt', '/opt/moved.txt', { user: 'root' })).metadata).toEqual(metadata);
    expect((await sandbox().files.rename('/home/user/meta/b.txt', '/home/user/meta/c.txt')).metadata).toEqual({ tag: 'octet' });
    const rewritten = await sandbox().files.write('/opt/moved.txt', 'again', { user: 'root' });
    expect(rewritten.metadata).toBeUndefined();
    expect((await sandbox().files.getInfo('/opt/moved.txt')).metadata).toBeUndefined();
    await sandbox().commands.run(`python3 -c "import os; os.setxattr('/home/user/meta/c.txt', 'user.e2b.set', b'inside')"`);
    expect((await sandbox().files.getInfo('/home/user/meta/c.txt')).metadata).toEqual({ tag: 'octet', set: 'inside' });
  });

  it('serves signed download and upload URLs without the access token, and refuses a wrong or expired signature with 401', async () => {
    await sandbox().files.write('/home/user/signed.txt', 'signed content');
    const download = await sandbox().downloadUrl('signed.txt', { useSignatureExpiration: 60 });
    const read = await fetch(download);
    expect([read.status, await read.text()]).toEqual([200, 'signed content']);

    const form = new FormData();
    form.append('file', 'uploaded');
    const upload = await fetch(await sandbox().uploadUrl('uploaded.txt', { user: 'root' }), { method: 'POST', body: form });
    expect([upload.status, await upload.json()]).toEqual([200, [{ name: 'uploaded.txt', path: '/root/uploaded.txt', type: 'file' }]]);
    expect(await sandbox().files.read('/root/uploaded.txt', { user: 'root' })).toBe('uploaded');

    const expired = await fetch(await sandbox().downloadUrl('signed.txt', { useSignatureExpiration: -10 }));
    expect([expired.status, await expired.json()]).toEqual([401, { code: 401, message: 'signature is already expired' }]);
    // A signature is for one path, operation and user: another path with it is refused.
    const otherPath = new URL(download);
    otherPath.searchParams.set('path', '/etc/hostname');
    const forged = await fetch(otherPath);
    expect([forged.status, await forged.json()]).toEqual([401, { code: 401, message: 'invalid signature' }]);
    const readAsWrite = await fetch(download, { method: 'POST', body: form });
    expect(readAsWrite.status).toBe(401);
  });

  it('watches with the entry of each event (includeEntry) and with allowNetworkMounts', async () => {
    await sandbox().files.makeDir('/home/user/watched-entry');
    const events: FilesystemEvent[] = [];
    const watcher = await sandbox().files.watchDir('/home/user/watched-entry', (event) => void events.push(event), { includeEntry: true, allowNetworkMounts: true });
    try {
      await sandbox().files.write('/home/user/watched-entry/file.txt', 'one');
      await waitFor(() => events.some((event) => event.name === 'file.txt' && event.entry !== undefined), 'an event with its entry');
      const event = events.find((candidate) => candidate.name === 'file.txt' && candidate.entry !== undefined)!;
      expect(event.entry).toMatchObject({ name: 'file.txt', path: '/home/user/watched-entry/file.txt', type: FileType.FILE });
    } finally {
      await watcher.stop();
    }
  });
});
