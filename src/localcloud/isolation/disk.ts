/**
 * A sandbox's disk: one ext4 filesystem in a sparse image file, holding its /home/user and /tmp and the
 * upper layers of its root's overlays (what it writes anywhere else), so that everything the sandbox
 * writes (its processes, and the server's file uploads alike) stops at the template's size with ENOSPC. The server formats one image per template here; the sandbox's init copies
 * it, attaches the copy to a loop device and mounts it in the sandbox's own mount namespace (see
 * `copy_sparse` and `attach_disk` in guest/supervisor.py).
 *
 * Why this, of the three ways to limit a sandbox's writable storage (`npm run bench:disk` measures
 * them in one run; figures of one run on this project's 2-core machine, shared, 2026-12-06):
 * - a tmpfs with `size=`: set up in 0.01 ms, and the fastest to write (3.1 GB/s against 1.6 GB/s for a
 *   host folder), but it is memory: the kernel charges its pages to the writer's memory cgroup, so a
 *   writer in a 64 MiB cgroup filling a 256 MiB tmpfs was OOM-killed at 63 MiB instead of getting
 *   ENOSPC, and a sandbox's files would take its memory.
 * - one shared filesystem with project quotas (plain folders, or an overlay's upper layer, on it): a
 *   quota per sandbox would cost an ioctl and a quotactl, but this machine's kernel has no quota format
 *   for ext4 (CONFIG_QFMT_V2) nor XFS quotas, so the mount is refused; elsewhere it would be one more
 *   image, mounted on the host, which a SIGKILLed server leaves mounted, and root with CAP_SYS_RESOURCE
 *   (this server, writing uploads) passes an ext4 quota.
 * - an image per sandbox (this): 2.4 ms to copy the template's image and mount it (an mkfs per sandbox
 *   would take 6.8 ms, and 8–18 ms under heavier load: it fsyncs the image four times), done ahead of
 *   time by the warm pool; a cold create took 75 ms to first command at p50 in the same run, a warm
 *   one 15 ms. Writes at 1.5 GB/s (direct I/O to the image, no second copy in the host's page cache);
 *   the unmount at the sandbox's end takes 1.1 ms. The filesystem is full for root too. It is mounted
 *   in the sandbox's mount namespace only and its loop device detaches itself when that mount goes
 *   (autoclear), so nothing is mounted on the host, and a SIGKILLed server leaves only image files
 *   (sparse: as large as what was written), which the next server removes with the rest of its folder.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { randomId } from '../../core/index.js';
import { SANDBOX_USER_ID } from './launcher.js';

/** Where mkfs.ext4 (e2fsprogs) is looked for. */
export const MKFS_CANDIDATES = ['/usr/sbin/mkfs.ext4', '/sbin/mkfs.ext4'] as const;

/** The mkfs.ext4 of this host, or undefined when e2fsprogs is missing. */
export function findMkfs(): string | undefined {
  return MKFS_CANDIDATES.find((path) => existsSync(path));
}

/** What {@link makeDiskImage} makes. */
export interface DiskImageSpec {
  /** The image file to create (sparse: it takes host disk space only as the sandbox writes). */
  readonly image: string;
  /** Size of the filesystem, bytes (ext4's own metadata takes 1–2% of it). */
  readonly sizeBytes: number;
  /**
   * A folder whose contents become the filesystem's (owners and modes kept): `home` and `tmp`, with a
   * template's files already in `home`.
   */
  readonly seed: string;
}

/**
 * Makes a disk image: an ext4 filesystem without a journal (a sandbox's disk does not outlive a crash
 * of the sandbox, so there is nothing to recover) and without blocks reserved for root.
 * @throws Error when mkfs.ext4 is missing or fails (its output is in the message).
 */
export async function makeDiskImage(spec: DiskImageSpec): Promise<void> {
  const mkfs = findMkfs();
  if (mkfs === undefined) throw new Error(`mkfs.ext4 was not found (looked for ${MKFS_CANDIDATES.join(', ')}): install e2fsprogs`);
  const file = await open(spec.image, 'wx', 0o600);
  try {
    await file.truncate(spec.sizeBytes);
  } finally {
    await file.close();
  }
  const child = spawn(mkfs, ['-q', '-F', '-O', '^has_journal', '-m', '0', '-E', 'root_owner=0:0,nodiscard', '-d', spec.seed, spec.image], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  if (code !== 0) throw new Error(`mkfs.ext4 failed (${signal ?? `exit code ${code}`}) making a sandbox disk of ${spec.sizeBytes} bytes: ${stderr.trim() || 'no error output'}`);
}

const MiB = 1024 * 1024;

/** What a template's sandboxes find on their disk when they start. */
export interface DiskTemplate {
  readonly name: string;
  /** Size of the disk, bytes. */
  readonly diskBytes: number;
  /** Files in /home/user (relative paths), owned by `user`. */
  readonly files: Readonly<Record<string, string | Uint8Array>>;
}

/**
 * The formatted disk image of each template, made once with mkfs.ext4 and copied into every new
 * sandbox of that template by the sandbox's init (a sparse copy of the image's ~600 KiB of data, see
 * `copy_sparse` in guest/supervisor.py): 0.5 ms per sandbox instead of an mkfs, which took 8–18 ms
 * because it fsyncs the image four times (measured on this project's machine under load).
 */
export class TemplateDisks {
  private readonly images = new WeakMap<DiskTemplate, Promise<string>>();

  /** @param folder where the images are kept (removed with the server's data folder). */
  constructor(private readonly folder: string) {}

  /**
   * The image every sandbox of `template` starts from, made on first use. A template object is never
   * changed (registering a name again makes a new one), so it is the key.
   * @throws Error when the image cannot be made (mkfs.ext4 missing or failing); the next call tries again.
   */
  imageOf(template: DiskTemplate): Promise<string> {
    let image = this.images.get(template);
    if (image === undefined) {
      image = this.make(template);
      this.images.set(template, image);
      image.catch(() => this.images.delete(template));
    }
    return image;
  }

  private async make(template: DiskTemplate): Promise<string> {
    mkdirSync(this.folder, { recursive: true });
    const base = join(this.folder, `${template.name}-${randomId(8)}`);
    const seed = `${base}.seed`;
    try {
      seedDisk(seed, template.files);
      await makeDiskImage({ image: `${base}.img`, sizeBytes: template.diskBytes, seed });
      return `${base}.img`;
    } catch (error) {
      rmSync(`${base}.img`, { force: true });
      if (!/Could not allocate block/.test((error as Error).message)) throw error;
      throw new Error(`the files of template '${template.name}' do not fit its disk of ${template.diskBytes / MiB} MiB (ext4 keeps about 2% of it): raise its diskMB or give it fewer files`, { cause: error });
    } finally {
      rmSync(seed, { recursive: true, force: true });
    }
  }
}

/** Lays out in `seed` what a new disk holds: `home` (the files, owned by `user`) and `tmp` (sticky, for all). */
function seedDisk(seed: string, files: Readonly<Record<string, string | Uint8Array>>): void {
  const home = join(seed, 'home');
  const tmp = join(seed, 'tmp');
  for (const dir of [home, tmp]) mkdirSync(dir, { recursive: true });
  for (const [path, content] of Object.entries(files)) {
    const target = join(home, path);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, content);
  }
  chownTree(home, SANDBOX_USER_ID);
  chmodSync(tmp, 0o1777);
}

function chownTree(root: string, id: number): void {
  chownSync(root, id, id);
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    const path = join(root, entry.name);
    if (entry.isDirectory()) chownTree(path, id);
    else chownSync(path, id, id);
  }
}
