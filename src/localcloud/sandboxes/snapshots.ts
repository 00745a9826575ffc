/**
 * Snapshots of sandboxes' filesystems: `sandbox.createSnapshot()` keeps a copy of the sandbox's disk
 * (everything it wrote, anywhere: /home/user, /tmp and the upper layers of its root's overlays), and
 * `Sandbox.create(snapshotId)` starts a sandbox whose disk begins as that copy, as a template's image
 * would. Running processes and memory are not in a snapshot: a sandbox made from one boots afresh.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { randomId } from '../../core/index.js';
import type { Template } from '../templates/index.js';
import type { LocalSandbox } from './sandbox.js';

/** A kept copy of a sandbox's disk. */
export interface Snapshot {
  /** What `Sandbox.create` takes as its template to start from it. */
  readonly id: string;
  readonly names: readonly string[];
  /** The sandbox it was taken of. */
  readonly sandboxId: string;
  /** The template of that sandbox: its limits, envs and start command apply to sandboxes made from the snapshot. */
  readonly template: Template;
  /** The template id sandboxes made from it report. */
  readonly templateId: string;
  /** The image file, a sparse copy of the sandbox's disk. */
  readonly image: string;
  readonly createdAtMs: number;
  /** Listed by `Sandbox.listSnapshots` (a fork's own snapshot is not). */
  readonly listed: boolean;
}

async function run(argv: readonly [string, ...string[]], what: string): Promise<void> {
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  if (code !== 0) throw new Error(`${what} failed (${signal ?? `exit code ${code}`}): ${stderr.trim() || 'no error output'}`);
}

/** The snapshots of one local cloud, kept in its data folder (so they end with it). */
export class SnapshotStore {
  private readonly snapshots = new Map<string, Snapshot>();
  /** Sandboxes being started from a snapshot, whose image must stay until their init has copied it. */
  private readonly users = new Map<string, number>();
  private readonly doomed = new Set<string>();

  constructor(private readonly folder: string) {}

  /**
   * Copies the sandbox's disk as it is now. A running sandbox is frozen for the copy (its processes
   * cannot change the disk half-way), its filesystem flushed to the image first (`sync -f`), then thawed.
   */
  async take(sandbox: LocalSandbox, options: { readonly name?: string; readonly listed: boolean; readonly templateId?: string; readonly nowMs: number; readonly stoppedDisk?: string }): Promise<Snapshot> {
    mkdirSync(this.folder, { recursive: true });
    const id = `snap_${randomId(16)}`;
    const image = join(this.folder, `${id}.img`);
    // A sandbox paused without its memory has no processes, only the disk it was stopped with.
    const freeze = options.stoppedDisk === undefined && sandbox.state === 'running' && sandbox.cgroups.canFreeze;
    if (freeze) await sandbox.cgroups.freeze();
    try {
      if (options.stoppedDisk === undefined) await run(['/bin/sync', '-f', `/proc/${sandbox.init.pid}/root/tmp`], "flushing the sandbox's disk");
      // cp keeps the image sparse: only what the sandbox wrote takes space on the host.
      await run(['/bin/cp', '--sparse=always', options.stoppedDisk ?? sandbox.dirs.diskImage, image], "copying the sandbox's disk");
    } catch (error) {
      rmSync(image, { force: true });
      throw error;
    } finally {
      if (freeze && sandbox.state === 'running') await sandbox.cgroups.thaw();
    }
    const snapshot: Snapshot = {
      id,
      names: options.name === undefined ? [] : [options.name],
      sandboxId: sandbox.id,
      template: sandbox.template,
      templateId: options.templateId ?? id,
      image,
      createdAtMs: options.nowMs,
      listed: options.listed,
    };
    this.snapshots.set(id, snapshot);
    return snapshot;
  }

  get(id: string): Snapshot | undefined {
    return this.doomed.has(id) ? undefined : this.snapshots.get(id);
  }

  /** Listed snapshots, newest first (ties by id), of one sandbox and with one name when asked. */
  list(filter: { readonly sandboxId?: string; readonly name?: string }): Snapshot[] {
    return [...this.snapshots.values()]
      .filter((snapshot) => snapshot.listed && !this.doomed.has(snapshot.id))
      .filter((snapshot) => filter.sandboxId === undefined || snapshot.sandboxId === filter.sandboxId)
      .filter((snapshot) => filter.name === undefined || snapshot.names.includes(filter.name))
      .sort((a, b) => b.createdAtMs - a.createdAtMs || a.id.localeCompare(b.id));
  }

  /** Holds the snapshot's image while `start` copies it into a new sandbox. */
  async using<T>(snapshot: Snapshot, start: () => Promise<T>): Promise<T> {
    this.users.set(snapshot.id, (this.users.get(snapshot.id) ?? 0) + 1);
    try {
      return await start();
    } finally {
      const left = this.users.get(snapshot.id)! - 1;
      if (left > 0) this.users.set(snapshot.id, left);
      else {
        this.users.delete(snapshot.id);
        if (this.doomed.has(snapshot.id)) this.drop(snapshot.id);
      }
    }
  }

  /** Deletes the snapshot (its image once no sandbox is starting from it). @returns false when there is none. */
  remove(id: string): boolean {
    if (!this.get(id)) return false;
    this.doomed.add(id);
    if (!this.users.has(id)) this.drop(id);
    return true;
  }

  private drop(id: string): void {
    const snapshot = this.snapshots.get(id);
    this.snapshots.delete(id);
    this.doomed.delete(id);
    if (snapshot) rmSync(snapshot.image, { force: true });
  }
}
