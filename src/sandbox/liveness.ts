import { readFileSync, readlinkSync } from 'node:fs';

/**
 * Whether the process that made a sandbox still runs, so that a pool starting up kills only what a
 * crashed run left behind and never the sandboxes of a pool running now (another service on the same
 * E2B account, a one-off `tradeswarm exec` beside `tradeswarm exec serve`).
 *
 * A process is named by a tag: the machine's boot id, its pid namespace, its pid and its start time
 * (in clock ticks since boot, which tells a reused pid apart). Only a process of this boot and pid
 * namespace can be looked up; any other is `unknown`, and its sandboxes are left to their own lifetime
 * (a pool extends its sandboxes' lifetime while it runs, so those of a pool that is gone end by themselves).
 */
export interface ProcessLiveness {
  /** This process's tag (`unknown` where it cannot be made, e.g. without Linux's /proc). */
  readonly tag: string;
  /** The tag of the running process `pid` of this machine and pid namespace (`unknown` when there is none). */
  tagOf(pid: number): string;
  /** The state of the process with `tag`. */
  stateOf(tag: string): ProcessState;
}

/** `ended`: it ran on this machine since its boot, in this pid namespace, and is gone. */
export type ProcessState = 'running' | 'ended' | 'unknown';

const UNKNOWN = 'unknown';
const TAG = /^([0-9a-f-]{36})\.(\d+)\.(\d+)\.(\d+)$/;

/** {@link ProcessLiveness} from Linux's /proc. */
export function procLiveness(proc = '/proc'): ProcessLiveness {
  const host = hostOf(proc);
  const tagOf = (pid: number): string => {
    const startTicks = host === undefined ? undefined : startTicksOf(proc, pid);
    return startTicks === undefined ? UNKNOWN : `${host}.${pid}.${startTicks}`;
  };
  return {
    tag: tagOf(process.pid),
    tagOf,
    stateOf(other) {
      const match = TAG.exec(other);
      if (host === undefined || match === null || `${match[1]}.${match[2]}` !== host) return 'unknown';
      const started = startTicksOf(proc, Number(match[3]));
      return started !== undefined && String(started) === match[4] ? 'running' : 'ended';
    },
  };
}

/** Boot id and pid namespace of this process, or undefined without them. */
function hostOf(proc: string): string | undefined {
  try {
    const bootId = readFileSync(`${proc}/sys/kernel/random/boot_id`, 'utf8').trim();
    const namespace = /^pid:\[(\d+)\]$/.exec(readlinkSync(`${proc}/self/ns/pid`))?.[1];
    return /^[0-9a-f-]{36}$/.test(bootId) && namespace !== undefined ? `${bootId}.${namespace}` : undefined;
  } catch {
    return undefined;
  }
}

/** Field 22 of /proc/<pid>/stat (start time after boot, in clock ticks), or undefined when there is no such process. */
function startTicksOf(proc: string, pid: number): number | undefined {
  try {
    const stat = readFileSync(`${proc}/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses; the fields after its last ')' are plain.
    const value = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
    return Number.isInteger(value) ? value : undefined;
  } catch {
    return undefined;
  }
}
