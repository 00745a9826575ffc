/**
 * Snapshots of sandboxes' filesystems: `sandbox.createSnapshot()` keeps a copy of the sandbox's disk
 * (everything it wrote, anywhere: /home/user, /tmp and the upper layers of its root's overlays), and
 * `Sandbox.create(snapshotId)` starts a sandbox whose disk begins as that copy, as a template's image
 * would. Running processes and memory are not in a snapshot: a sandbox made from one boots afresh.
 *
 * A listed snapshot is kept as two files, its image and its record (`<id>.img`, `<id>.json`), in a
 * folder that outlives the server when the user gave the cloud a data folder, so a cloud started
 * again on it lists them and starts sandboxes from them, as E2B's snapshots outlive any one client.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { randomId, type Logger } from '../../core/index.js';
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

/** Where a snapshot store keeps its files. */
export interface SnapshotFolders {
  /** The listed snapshots' images and records; read back by the next store opened on it. */
  readonly kept: string;
  /** Images nobody lists (a fork's, a filesystem-only pause's disk) and copies being made: this server's own. */
  readonly scratch: string;
}

const RECORD_VERSION = 1;
/** What a kept record holds of a template: all but its files, which are in the kept image already. */
export const templateRecordSchema = z.object({
  name: z.string(),
  envs: z.record(z.string(), z.string()),
  cpuCount: z.number(),
  requestedCpuCount: z.number(),
  memoryMB: z.number(),
  diskMB: z.number(),
  maxProcesses: z.number(),
  maxOpenFiles: z.number(),
  startCommand: z.string().optional(),
  memoryBytes: z.number(),
  diskBytes: z.number(),
});

/** A template's kept record (see {@link templateRecordSchema}). */
export function templateRecordOf(template: Template): z.infer<typeof templateRecordSchema> {
  const { files: _inImage, ...kept } = template;
  return kept;
}

/** The template a kept record describes: its files are in the image. */
export function templateOfRecord(record: z.infer<typeof templateRecordSchema>): Template {
  return Object.freeze({ ...record, files: {} });
}

const recordSchema = z.object({
  version: z.literal(RECORD_VERSION),
  id: z.string().regex(/^snap_[A-Za-z0-9]+$/),
  names: z.array(z.string()),
  sandboxId: z.string(),
  templateId: z.string(),
  createdAtMs: z.number(),
  template: templateRecordSchema,
});

function recordOf(snapshot: Snapshot): z.infer<typeof recordSchema> {
  return { version: RECORD_VERSION, id: snapshot.id, names: [...snapshot.names], sandboxId: snapshot.sandboxId, templateId: snapshot.templateId, createdAtMs: snapshot.createdAtMs, template: templateRecordOf(snapshot.template) };
}

/** The snapshots of one local cloud: the listed ones in a folder that may outlive it, the rest in its own. */
export class SnapshotStore {
  private readonly snapshots = new Map<string, Snapshot>();
  /** Sandboxes being started from a snapshot, whose image must stay until their init has copied it. */
  private readonly users = new Map<string, number>();
  private readonly doomed = new Set<string>();

  /** Opens the store, listing the snapshots kept in `folders.kept` by earlier servers; a record it cannot read is left alone and logged. */
  constructor(
    private readonly folders: SnapshotFolders,
    logger: Logger,
  ) {
    if (!existsSync(folders.kept)) return;
    for (const name of readdirSync(folders.kept).filter((file) => file.endsWith('.json'))) {
      const path = join(folders.kept, name);
      try {
        const record = recordSchema.parse(JSON.parse(readFileSync(path, 'utf8')));
        const image = join(folders.kept, `${record.id}.img`);
        // A record whose image never arrived: the server writing it died in between (see take).
        if (!existsSync(image)) continue;
        this.snapshots.set(record.id, { ...record, template: templateOfRecord(record.template), image, listed: true });
      } catch (error) {
        logger.warn({ path, error: (error as Error).message }, 'a kept snapshot record could not be read; it is not listed (remove it, with its .img, if it is not wanted)');
      }
    }
  }

  /**
   * Copies the sandbox's disk as it is now. A running sandbox is frozen for the copy (its processes
   * cannot change the disk half-way), its filesystem flushed to the image first (`sync -f`), then thawed.
   */
  async take(sandbox: LocalSandbox, options: { readonly name?: string; readonly listed: boolean; readonly templateId?: string; readonly nowMs: number; readonly stoppedDisk?: string }): Promise<Snapshot> {
    mkdirSync(this.folders.scratch, { recursive: true });
    const id = `snap_${randomId(16)}`;
    const copy = join(this.folders.scratch, `${id}.img`);
    // A sandbox paused without its memory has no processes, only the disk it was stopped with.
    const freeze = options.stoppedDisk === undefined && sandbox.state === 'running' && sandbox.cgroups.canFreeze;
    if (freeze) await sandbox.cgroups.freeze();
    try {
      if (options.stoppedDisk === undefined) await run(['/bin/sync', '-f', `/proc/${sandbox.init.pid}/root/tmp`], "flushing the sandbox's disk");
      // cp keeps the image sparse: only what the sandbox wrote takes space on the host.
      await run(['/bin/cp', '--sparse=always', options.stoppedDisk ?? sandbox.dirs.diskImage, copy], "copying the sandbox's disk");
    } catch (error) {
      rmSync(copy, { force: true });
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
      image: options.listed ? join(this.folders.kept, `${id}.img`) : copy,
      createdAtMs: options.nowMs,
      listed: options.listed,
    };
    if (options.listed) this.keep(snapshot, copy);
    this.snapshots.set(id, snapshot);
    return snapshot;
  }

  /**
   * Moves a listed snapshot's finished copy into the kept folder, its record first: a server killed in
   * between leaves a record without an image, which no store lists, never an image nobody can find.
   * Each file appears whole (written aside, then renamed), so a store opened meanwhile reads either
   * nothing or all of it.
   */
  private keep(snapshot: Snapshot, copy: string): void {
    try {
      mkdirSync(this.folders.kept, { recursive: true });
      const record = join(this.folders.scratch, `${snapshot.id}.json`);
      writeFileSync(record, JSON.stringify(recordOf(snapshot)));
      renameSync(record, join(this.folders.kept, `${snapshot.id}.json`));
      renameSync(copy, snapshot.image);
    } catch (error) {
      rmSync(copy, { force: true });
      this.forget(snapshot);
      throw error;
    }
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
    if (snapshot) this.forget(snapshot);
  }

  /** Removes a snapshot's files, its record first (so no later store lists a snapshot whose image is going). */
  private forget(snapshot: Snapshot): void {
    if (snapshot.listed) rmSync(join(this.folders.kept, `${snapshot.id}.json`), { force: true });
    rmSync(snapshot.image, { force: true });
  }
}
