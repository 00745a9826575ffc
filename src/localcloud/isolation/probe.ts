import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { findMkfs } from './disk.js';
import { probeRoutedNetwork } from './firewall.js';

/** The cgroup v1 controllers a sandbox uses, and what each is for. */
export const CGROUP_CONTROLLERS = {
  memory: 'memory limit and usage',
  pids: 'process count limit (fork bombs)',
  freezer: 'pause and resume',
  cpuacct: 'CPU usage metrics',
  cpu: "CPU quota (a template's cpuCount)",
} as const;

export type CgroupController = keyof typeof CGROUP_CONTROLLERS;

/** What this host lets the local cloud do, found by trying it. */
export interface IsolationSupport {
  /** PID and mount namespaces (required for every sandbox). */
  readonly namespaces: boolean;
  /** A private network namespace (required for `allowInternetAccess: false`). */
  readonly networkNamespace: boolean;
  /**
   * What a routed network with an egress firewall lacks on this host (required for egress rules,
   * `updateNetwork` and `sandboxNetwork: 'routed'`, see firewall.ts); empty when it has everything.
   */
  readonly routedNetworkMissing: readonly string[];
  /** A disk of its own per sandbox: loop devices, ext4 and mkfs.ext4 (required for every sandbox). */
  readonly disk: boolean;
  /** The cgroup v1 controllers we could create a child group in. */
  readonly cgroups: Readonly<Record<CgroupController, boolean>>;
  /** One sentence per missing capability, saying what it costs. Empty when everything works. */
  readonly problems: readonly string[];
}

const REQUIRED_TOOLS = ['/usr/bin/unshare', '/usr/bin/nsenter', '/usr/bin/setpriv'];

/** The root of cgroup v1 controller hierarchies. */
export const CGROUP_ROOT = '/sys/fs/cgroup';

/**
 * Probes the host once: tries to create the namespaces and cgroups a sandbox needs.
 * Needs root; as another user every check fails and `problems` says why.
 */
export function probeIsolation(): IsolationSupport {
  const problems: string[] = [];
  const missingTools = REQUIRED_TOOLS.filter((tool) => !existsSync(tool));
  if (missingTools.length > 0) problems.push(`missing ${missingTools.join(', ')}: install util-linux`);
  if (process.getuid?.() !== 0) problems.push('the local cloud runs as a non-root user, so it cannot create namespaces or cgroups: run it as root');

  const tryUnshare = (flags: string[]): boolean =>
    missingTools.length === 0 && spawnSync('/usr/bin/unshare', [...flags, '--fork', '/bin/true'], { stdio: 'ignore', timeout: 5000 }).status === 0;
  const namespaces = tryUnshare(['--mount', '--pid', '--uts', '--ipc', '--propagation', 'private']);
  if (!namespaces) problems.push('the kernel refused PID and mount namespaces: no sandbox can be started');
  const networkNamespace = tryUnshare(['--net']);
  if (!networkNamespace) problems.push('the kernel refused network namespaces: sandboxes asking for allowInternetAccess: false will be refused');

  const routedNetworkMissing = networkNamespace ? probeRoutedNetwork() : ['network namespaces'];
  if (routedNetworkMissing.length > 0) {
    problems.push(`no routed sandbox network (missing ${routedNetworkMissing.join(', ')}): sandboxes with egress rules (network.allowOut, network.denyOut) will be refused, and so will every sandbox with internet access under sandboxNetwork: 'routed'`);
  }

  const disk = canMakeDisks();
  if (!disk) problems.push('no loop devices (/dev/loop-control), ext4 or mkfs.ext4 (e2fsprogs): sandboxes cannot get a disk of their own, so none can be started');

  const cgroups = {} as Record<CgroupController, boolean>;
  for (const controller of Object.keys(CGROUP_CONTROLLERS) as CgroupController[]) {
    cgroups[controller] = canCreateCgroup(controller);
    if (!cgroups[controller]) problems.push(`cgroup controller '${controller}' is not writable under ${CGROUP_ROOT}: no ${CGROUP_CONTROLLERS[controller]}`);
  }
  return { namespaces, networkNamespace, routedNetworkMissing, disk, cgroups, problems };
}

function canMakeDisks(): boolean {
  try {
    accessSync('/dev/loop-control', constants.R_OK | constants.W_OK);
    return findMkfs() !== undefined && /\text4$/m.test(readFileSync('/proc/filesystems', 'utf8'));
  } catch {
    return false;
  }
}

function canCreateCgroup(controller: CgroupController): boolean {
  const probe = join(CGROUP_ROOT, controller, `tradeswarm-probe-${process.pid}`);
  try {
    accessSync(join(CGROUP_ROOT, controller), constants.W_OK);
    mkdirSync(probe);
    rmdirSync(probe);
    return true;
  } catch {
    return false;
  }
}
