/**
 * Sandboxes paused without their memory, kept in a data folder that outlives the server, so a cloud
 * started again on it lists them paused and `connect` boots them again, as E2B keeps a paused sandbox
 * whatever becomes of any one of its servers. Each is kept as two files: its disk (`<id>.img`, the copy
 * the pause took) and its record (`<id>.json`: its settings, access tokens included, so the clients
 * that hold them reach it again). Written here rather than in the store: the disk is a file the
 * sandbox boots from, and the record is the little that goes with it.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { Logger } from '../../core/index.js';
import type { LocalSandbox, SandboxSettings } from './sandbox.js';
import { type Snapshot, templateOfRecord, templateRecordOf, templateRecordSchema } from './snapshots.js';

const RECORD_VERSION = 1;
const rulesSchema = z.object({
  allowOut: z.array(z.string()),
  denyOut: z.array(z.string()),
  allowHosts: z.array(z.string()).optional(),
  rules: z.record(z.string(), z.array(z.object({ transform: z.object({ headers: z.record(z.string(), z.string()).optional() }).optional() }))).optional(),
});
const recordSchema = z.object({
  version: z.literal(RECORD_VERSION),
  id: z.string().regex(/^[a-z0-9]+$/),
  /** The id of the disk's copy (a snapshot id, never listed). */
  diskId: z.string(),
  pausedAtMs: z.number(),
  endAtMs: z.number(),
  settings: z.object({
    template: templateRecordSchema,
    templateId: z.string(),
    clientId: z.string(),
    metadata: z.record(z.string(), z.string()),
    envVars: z.record(z.string(), z.string()),
    allowInternetAccess: z.boolean(),
    network: z.enum(['host', 'none', 'routed']),
    egress: rulesSchema,
    autoPause: z.boolean(),
    autoPauseKeepsMemory: z.boolean().optional(),
    autoResume: z.boolean().optional(),
    publicTraffic: z.boolean().optional(),
    maskRequestHost: z.string().optional(),
    accessToken: z.string(),
    trafficAccessToken: z.string(),
    startedAtMs: z.number(),
  }),
});
type PausedRecord = z.infer<typeof recordSchema>;

/** A kept paused sandbox, as a server started on the folder finds it. */
export interface KeptPause {
  readonly settings: SandboxSettings;
  readonly endAtMs: number;
  /** Its disk, which `connect` boots it from. */
  readonly disk: Snapshot;
}

/** The paused sandboxes kept in one folder. */
export class PausedSandboxes {
  constructor(
    private readonly dir: string,
    private readonly logger: Logger,
  ) {}

  /**
   * Keeps `sandbox`, just paused without its memory, and `disk`, the copy its pause took: the image is
   * moved into the folder first, then its record appears whole (written aside, then renamed), so a
   * server killed in between leaves an image without a record, which the next one removes.
   * @returns the disk where it now is.
   */
  keep(sandbox: LocalSandbox, disk: Snapshot, nowMs: number): Snapshot {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const image = join(this.dir, `${sandbox.id}.img`);
    renameSync(disk.image, image);
    const { template, id: _id, egress, ...settings } = sandbox.settings;
    const record: PausedRecord = {
      version: RECORD_VERSION,
      id: sandbox.id,
      diskId: disk.id,
      pausedAtMs: nowMs,
      endAtMs: sandbox.endAtMs,
      settings: { ...settings, metadata: { ...settings.metadata }, envVars: { ...settings.envVars }, egress: structuredClone(egress) as PausedRecord['settings']['egress'], template: templateRecordOf(template) },
    };
    const aside = join(this.dir, `${sandbox.id}.json.part`);
    writeFileSync(aside, JSON.stringify(record), { mode: 0o600 });
    // Its access tokens are in it: for the server's user alone.
    chmodSync(aside, 0o600);
    renameSync(aside, join(this.dir, `${sandbox.id}.json`));
    return { ...disk, image };
  }

  /** Removes a kept sandbox's files, its record first (no later server lists a sandbox whose disk is going). */
  forget(id: string): void {
    rmSync(join(this.dir, `${id}.json`), { force: true });
    rmSync(join(this.dir, `${id}.img`), { force: true });
  }

  /** Whether `id` is kept here. */
  has(id: string): boolean {
    return existsSync(join(this.dir, `${id}.json`));
  }

  /**
   * The sandboxes kept in the folder. A record that cannot be read is left alone and logged; an image
   * without a record (a server killed as it kept it) or a half-written record is removed.
   */
  load(): KeptPause[] {
    if (!existsSync(this.dir)) return [];
    const names = readdirSync(this.dir);
    const kept: KeptPause[] = [];
    for (const name of names) {
      const path = join(this.dir, name);
      if (name.endsWith('.json.part') || (name.endsWith('.img') && !names.includes(name.replace(/\.img$/, '.json')))) {
        rmSync(path, { force: true });
        continue;
      }
      if (!name.endsWith('.json')) continue;
      try {
        const record = recordSchema.parse(JSON.parse(readFileSync(path, 'utf8')));
        const image = join(this.dir, `${record.id}.img`);
        if (!existsSync(image)) throw new Error(`its disk ${image} is missing`);
        const template = templateOfRecord(record.settings.template);
        kept.push({
          settings: { ...record.settings, id: record.id, template },
          endAtMs: record.endAtMs,
          disk: { id: record.diskId, names: [], sandboxId: record.id, template, templateId: record.settings.templateId, image, createdAtMs: record.pausedAtMs, listed: false },
        });
      } catch (error) {
        this.logger.warn({ path, error: (error as Error).message }, 'a kept paused sandbox could not be read; it is not listed (remove it, with its .img, if it is not wanted)');
      }
    }
    return kept;
  }
}
