import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CGROUP_ROOT, type CgroupController } from './probe.js';

/** Limits applied to one sandbox through its cgroups. */
export interface CgroupLimits {
  readonly memoryBytes: number;
  readonly maxProcesses: number;
  /** CPU cores the sandbox may use at once (a CFS quota of this many periods per period). */
  readonly cpus: number;
}

/** The CFS period: the quota is `cpus` times it, so a sandbox of one core gets 100 ms of CPU per 100 ms. */
const CPU_PERIOD_US = 100_000;

const GROUP_PREFIX = 'tradeswarm';

/**
 * The cgroups of one sandbox, one per available controller, under
 * `<controller>/tradeswarm/<server instance>/<sandbox id>`.
 */
export class SandboxCgroups {
  private constructor(
    private readonly paths: ReadonlyMap<CgroupController, string>,
  ) {}

  /** Creates the groups and writes the limits. Controllers not in `available` are skipped. */
  static create(instance: string, sandboxId: string, limits: CgroupLimits, available: Readonly<Record<CgroupController, boolean>>): SandboxCgroups {
    const paths = new Map<CgroupController, string>();
    for (const controller of Object.keys(available) as CgroupController[]) {
      if (!available[controller]) continue;
      const path = join(CGROUP_ROOT, controller, GROUP_PREFIX, instance, sandboxId);
      mkdirSync(path, { recursive: true });
      paths.set(controller, path);
    }
    const groups = new SandboxCgroups(paths);
    groups.write('memory', 'memory.limit_in_bytes', String(limits.memoryBytes));
    // Without a memsw limit the kernel would swap a memory hog out instead of stopping it.
    groups.write('memory', 'memory.memsw.limit_in_bytes', String(limits.memoryBytes), { optional: true });
    groups.write('pids', 'pids.max', String(limits.maxProcesses));
    groups.write('cpu', 'cpu.cfs_period_us', String(CPU_PERIOD_US));
    groups.write('cpu', 'cpu.cfs_quota_us', String(Math.round(limits.cpus * CPU_PERIOD_US)));
    return groups;
  }

  /** The `cgroup.procs` files a new process must write its pid into to join the sandbox. */
  get procsFiles(): string[] {
    return [...this.paths.values()].map((path) => join(path, 'cgroup.procs'));
  }

  /** Memory in use by the sandbox's processes (bytes), including page cache. */
  memoryUsageBytes(): number | undefined {
    return this.readNumber('memory', 'memory.usage_in_bytes');
  }

  /** Memory the sandbox's processes use, without reclaimable page cache (bytes). */
  memoryRssBytes(): number | undefined {
    const stat = this.read('memory', 'memory.stat');
    if (stat === undefined) return undefined;
    const fields = new Map(stat.split('\n').map((line) => line.split(' ') as [string, string]));
    return Number(fields.get('total_rss') ?? 0) + Number(fields.get('total_mapped_file') ?? 0);
  }

  /** Processes the kernel's OOM killer ended in this sandbox for going over its memory limit. */
  oomKillCount(): number | undefined {
    const control = this.read('memory', 'memory.oom_control');
    const line = control?.split('\n').find((entry) => entry.startsWith('oom_kill '));
    return line === undefined ? undefined : Number(line.split(' ')[1]);
  }

  /** The CPU cores the sandbox may use at once (its CFS quota over its period); undefined without the cpu controller or a quota. */
  cpuQuotaCores(): number | undefined {
    const quota = this.readNumber('cpu', 'cpu.cfs_quota_us');
    const period = this.readNumber('cpu', 'cpu.cfs_period_us');
    return quota === undefined || period === undefined || quota < 0 ? undefined : quota / period;
  }

  /** CPU time used by all processes of the sandbox, ever (nanoseconds). */
  cpuUsageNs(): number | undefined {
    return this.readNumber('cpuacct', 'cpuacct.usage');
  }

  /** Host pids of every process in the sandbox. */
  pids(): number[] {
    const path = this.paths.get('pids') ?? this.paths.get('memory') ?? this.paths.values().next().value;
    if (!path) return [];
    return readPids(path);
  }

  get canFreeze(): boolean {
    return this.paths.has('freezer');
  }

  /** Stops every process of the sandbox (they keep their state) and waits until the kernel says so. */
  async freeze(): Promise<void> {
    await this.setFreezerState('FROZEN');
  }

  async thaw(): Promise<void> {
    await this.setFreezerState('THAWED');
  }

  /** Kills whatever is left in the groups and removes them. Safe to call twice. */
  async destroy(): Promise<void> {
    if (this.paths.has('freezer')) this.write('freezer', 'freezer.state', 'THAWED', { optional: true });
    for (const path of this.paths.values()) {
      for (const pid of readPids(path)) killQuietly(pid);
    }
    for (const path of this.paths.values()) await removeGroup(path);
  }

  private async setFreezerState(state: 'FROZEN' | 'THAWED'): Promise<void> {
    if (!this.paths.has('freezer')) throw new Error('the freezer cgroup is not available on this host, so sandboxes cannot be paused');
    this.write('freezer', 'freezer.state', state);
    for (let attempt = 0; attempt < 200; attempt++) {
      if (this.read('freezer', 'freezer.state')?.trim() === state) return;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    throw new Error(`the kernel did not reach freezer state ${state} within 1 s`);
  }

  private read(controller: CgroupController, file: string): string | undefined {
    const path = this.paths.get(controller);
    if (!path) return undefined;
    try {
      return readFileSync(join(path, file), 'utf8');
    } catch {
      return undefined;
    }
  }

  private readNumber(controller: CgroupController, file: string): number | undefined {
    const text = this.read(controller, file);
    return text === undefined ? undefined : Number(text.trim());
  }

  private write(controller: CgroupController, file: string, value: string, options: { optional?: boolean } = {}): void {
    const path = this.paths.get(controller);
    if (!path) return;
    try {
      writeFileSync(join(path, file), value);
    } catch (error) {
      if (!options.optional) throw error;
    }
  }
}

function readPids(path: string): number[] {
  try {
    return readFileSync(join(path, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

async function removeGroup(path: string): Promise<void> {
  // A group can only be removed once its last process has been reaped; that takes a moment after SIGKILL.
  for (let attempt = 0; attempt < 200; attempt++) {
    try {
      if (existsSync(path)) rmdirSync(path);
      return;
    } catch (error) {
      // Busy means processes are still being reaped; anything else will not get better by waiting.
      if ((error as NodeJS.ErrnoException).code !== 'EBUSY') return;
      for (const pid of readPids(path)) killQuietly(pid);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
}

/** Removes the (empty) cgroup folders of one server instance, once its sandboxes are gone. */
export async function removeInstanceCgroups(instance: string, controllers: readonly CgroupController[]): Promise<void> {
  for (const controller of controllers) await removeGroup(join(CGROUP_ROOT, controller, GROUP_PREFIX, instance));
}

/**
 * Kills and removes the cgroups of server instances that are no longer running (a crashed earlier run).
 * Instance names are `srv-<pid>-<random>`; an instance whose pid is dead is stale.
 * @returns how many stale sandbox groups were cleaned.
 */
export async function cleanStaleCgroups(controllers: readonly CgroupController[]): Promise<number> {
  let cleaned = 0;
  for (const controller of controllers) {
    const base = join(CGROUP_ROOT, controller, GROUP_PREFIX);
    if (!existsSync(base)) continue;
    for (const instance of subdirectories(base)) {
      const owner = /^srv-(\d+)-/.exec(instance)?.[1];
      // Only groups this project names are touched, and only when the server that made them is gone.
      if (owner === undefined || isAlive(Number(owner))) continue;
      const instancePath = join(base, instance);
      for (const sandbox of subdirectories(instancePath)) {
        const path = join(instancePath, sandbox);
        if (controller === 'freezer') {
          try {
            writeFileSync(join(path, 'freezer.state'), 'THAWED');
          } catch {
            // Not a freezer group or already gone.
          }
        }
        for (const stalePid of readPids(path)) killQuietly(stalePid);
        await removeGroup(path);
        cleaned++;
      }
      await removeGroup(instancePath);
    }
  }
  return cleaned;
}

function subdirectories(path: string): string[] {
  try {
    return readdirSync(path, { withFileTypes: true }).filter((entry) => entry.isDirectory()).map((entry) => entry.name);
  } catch {
    return [];
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
