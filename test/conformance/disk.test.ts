import { lstatSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { expect, it } from 'vitest';
import { CommandExitError, NotEnoughSpaceError, Sandbox } from 'e2b';
import { describeLocal, useBackend } from '../fixtures/backend.js';
import { loopBackingFiles, waitFor } from '../fixtures/localcloud.js';

const MiB = 1024 * 1024;
const backend = useBackend({ templates: [{ name: 'disk-32', diskMB: 32 }] });
const cloud = () => backend().local;

/** Bytes the host's disk holds for everything under `path` (allocated blocks, so holes in sparse files count nothing). */
function allocatedBytes(path: string): number {
  const stats = lstatSync(path);
  if (!stats.isDirectory()) return stats.blocks * 512;
  return readdirSync(path).reduce((total, name) => total + allocatedBytes(join(path, name)), stats.blocks * 512);
}

async function run(sandbox: Sandbox, command: string, user: 'user' | 'root' = 'user'): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  try {
    const result = await sandbox.commands.run(command, { user });
    return { exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr };
  } catch (error) {
    if (error instanceof CommandExitError) return { exitCode: error.exitCode, stdout: error.stdout, stderr: error.stderr };
    throw error;
  }
}

describeLocal("a sandbox's disk: everything it writes, at most its template's diskMB", "it checks the local cloud's disk images on this machine's disk, with a template registered in it", () => {
  it('stops writes past it inside the sandbox with ENOSPC, and the host keeps the rest of its disk', async () => {
    const sandbox = await Sandbox.create('disk-32', cloud().connection);
    const sandboxDir = dirname(cloud().sandboxes.get(sandbox.sandboxId).dirs.root);
    try {
      // Three files of 12 MiB, none of them over the disk size on its own, nor two of them.
      const filled = await run(sandbox, 'for target in /tmp/a /home/user/b /tmp/c; do dd if=/dev/zero of=$target bs=1M count=12 status=none || exit 1; done');
      expect(filled.exitCode).toBe(1);
      expect(filled.stderr).toMatch(/No space left on device/);
      expect(allocatedBytes(sandboxDir)).toBeLessThan(32 * MiB + 2 * MiB);
      // Root has no more room than user.
      const asRoot = await run(sandbox, 'dd if=/dev/zero of=/tmp/root-file bs=1M count=8 status=none', 'root');
      expect(asRoot.stderr).toMatch(/No space left on device/);

      const [metric] = (await sandbox.getMetrics()).slice(-1);
      expect(metric!.diskTotal).toBeGreaterThan(28 * MiB);
      expect(metric!.diskTotal).toBeLessThanOrEqual(32 * MiB);
      expect(metric!.diskUsed).toBeGreaterThan(metric!.diskTotal - 2 * MiB);

      // Removing files gives the room back.
      await sandbox.commands.run('rm -f /tmp/a /home/user/b /tmp/c');
      await sandbox.commands.run('rm -f /tmp/root-file', { user: 'root' });
      expect((await run(sandbox, 'dd if=/dev/zero of=/tmp/again bs=1M count=24 status=none && echo written')).stdout).toBe('written\n');
    } finally {
      await sandbox.kill();
    }
  });

  it('refuses an upload past it with 507 (the SDK\'s NotEnoughSpaceError) and leaves an empty file', async () => {
    const sandbox = await Sandbox.create('disk-32', cloud().connection);
    try {
      await sandbox.commands.run('dd if=/dev/zero of=/tmp/filler bs=1M count=20 status=none');
      await expect(sandbox.files.write('/home/user/upload.bin', new Uint8Array(16 * MiB).buffer)).rejects.toBeInstanceOf(NotEnoughSpaceError);
      expect((await sandbox.files.getInfo('/home/user/upload.bin')).size).toBe(0);

      const local = cloud().sandboxes.get(sandbox.sandboxId);
      const response = await fetch(`${cloud().sandboxUrl}/files?path=/tmp/raw.bin`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream', 'e2b-sandbox-id': sandbox.sandboxId, 'e2b-sandbox-port': '49983', 'x-access-token': local.accessToken },
        body: new Uint8Array(16 * MiB),
      });
      expect(response.status).toBe(507);
      expect(((await response.json()) as { message: string }).message).toMatch(/\/tmp\/raw\.bin does not fit: the sandbox's disk .* is full/);

      // What the files API writes counts against the same disk that commands see.
      await sandbox.commands.run('rm /tmp/filler');
      await sandbox.files.write('/home/user/upload.bin', new Uint8Array(16 * MiB).buffer);
      expect((await run(sandbox, 'dd if=/dev/zero of=/tmp/more bs=1M count=20 status=none')).stderr).toMatch(/No space left on device/);
    } finally {
      await sandbox.kill();
    }
  });

  it('holds writes anywhere else in the sandbox to it too: root in /opt, user in /var/tmp, uploads to /etc', async () => {
    const sandbox = await Sandbox.create('disk-32', cloud().connection);
    const sandboxDir = dirname(cloud().sandboxes.get(sandbox.sandboxId).dirs.root);
    try {
      const asRoot = await run(sandbox, 'mkdir -p /opt/big && dd if=/dev/zero of=/opt/big/file bs=1M count=40 status=none', 'root');
      expect(asRoot.exitCode).toBe(1);
      expect(asRoot.stderr).toMatch(/No space left on device/);
      expect(allocatedBytes(sandboxDir)).toBeLessThan(32 * MiB + 2 * MiB);
      await sandbox.commands.run('rm -r /opt/big', { user: 'root' });
      const asUser = await run(sandbox, 'dd if=/dev/zero of=/var/tmp/big bs=1M count=40 status=none');
      expect(asUser.stderr).toMatch(/No space left on device/);
      // What the server writes outside /home/user and /tmp counts against the same disk.
      await expect(sandbox.files.write('/etc/upload.bin', new Uint8Array(16 * MiB).buffer, { user: 'root' })).rejects.toBeInstanceOf(NotEnoughSpaceError);
      expect((await sandbox.files.getInfo('/etc/upload.bin', { user: 'root' })).size).toBe(0);
      await sandbox.commands.run('rm /var/tmp/big');
      await sandbox.files.write('/etc/upload.bin', new Uint8Array(16 * MiB).buffer, { user: 'root' });
      expect((await run(sandbox, 'df -B1 --output=used / /usr /etc /tmp | tail -n 4 | sort -u | wc -l')).stdout).toBe('1\n');
    } finally {
      await sandbox.kill();
    }
  });

  it("gives the built-in templates 1 GiB, and a killed sandbox's disk is detached and removed", async () => {
    const sandbox = await Sandbox.create('base', cloud().connection);
    const sandboxDir = dirname(cloud().sandboxes.get(sandbox.sandboxId).dirs.root);
    try {
      const sizes = (await sandbox.commands.run('df -B1 --output=size /home/user /tmp | tail -n 2')).stdout.trim().split('\n').map(Number);
      expect(sizes[0]).toBe(sizes[1]);
      expect(sizes[0]).toBeGreaterThan(950 * MiB);
      expect(sizes[0]).toBeLessThanOrEqual(1024 * MiB);
      expect(loopBackingFiles().some((file) => file.startsWith(sandboxDir))).toBe(true);
    } finally {
      await sandbox.kill();
    }
    await waitFor(() => !loopBackingFiles().some((file) => file.startsWith(sandboxDir)), 'the killed sandbox\'s loop device to be detached');
    expect(() => lstatSync(sandboxDir)).toThrow(/ENOENT/);
  });
});
