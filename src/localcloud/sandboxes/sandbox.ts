import { statfsSync } from 'node:fs';
import type { Clock } from '../../core/index.js';
import type { EgressRules, GuestProcess, SandboxCapability, SandboxCgroups, SandboxDirs, SandboxInit, SandboxLink, SandboxProcess, TerminalSize } from '../isolation/index.js';
import { GUEST_BIN_DIR, SANDBOX_USER_ID, spawnInSandbox } from '../isolation/index.js';
import type { Template } from '../templates/index.js';
import { needsProxy } from '../egress/index.js';
import { resolveSandboxPath, type ResolvedPath } from './paths.js';
import { transition, type SandboxEvent, type SandboxState } from './state.js';

/**
 * A sandbox's network: `host`, the host's own; `none`, an empty namespace of its own (loopback only);
 * `routed`, a namespace of its own joined to the host by a veth pair, behind its egress firewall.
 */
export type NetworkMode = 'host' | 'none' | 'routed';

/** What one boot of a sandbox runs on: its folders, its init, its cgroups and, on a routed network, its link. */
export interface SandboxMachine {
  readonly dirs: SandboxDirs;
  readonly init: SandboxInit;
  readonly cgroups: SandboxCgroups;
  readonly link?: SandboxLink | undefined;
}

/** A Linux user inside a sandbox. */
export type SandboxUser = 'user' | 'root';

/** One point of a sandbox's resource usage, in E2B's `SandboxMetric` shape. */
export interface SandboxMetric {
  readonly timestamp: string;
  readonly cpuUsedPct: number;
  readonly cpuCount: number;
  readonly memUsed: number;
  readonly memTotal: number;
  readonly memCache: number;
  readonly diskUsed: number;
  readonly diskTotal: number;
}

/** What to start inside a sandbox. */
export interface SpawnOptions {
  readonly argv: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  /** Working directory inside the sandbox; default the user's home. */
  readonly cwd?: string;
  readonly user?: SandboxUser;
  readonly extraFds?: number;
  /** Capabilities a `root` process keeps (see {@link SpawnSpec.capabilities}); only {@link LocalSandbox.spawn} uses it. */
  readonly capabilities?: readonly SandboxCapability[];
}

/** Settings a sandbox was created with. */
export interface SandboxSettings {
  readonly id: string;
  readonly template: Template;
  readonly templateId: string;
  readonly clientId: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly envVars: Readonly<Record<string, string>>;
  readonly allowInternetAccess: boolean;
  readonly network: NetworkMode;
  /** Its egress rules (enforced when `network` is `routed`). */
  readonly egress: EgressRules;
  readonly autoPause: boolean;
  /** Whether the timeout's pause keeps memory. @default true */
  readonly autoPauseKeepsMemory?: boolean;
  /** Whether a request for it wakes it once paused (E2B's `lifecycle.autoResume`). @default false */
  readonly autoResume?: boolean;
  /** Whether its own ports answer anyone (E2B's `network.allowPublicTraffic`). @default true */
  readonly publicTraffic?: boolean;
  /** The Host its own ports are sent requests with (E2B's `network.maskRequestHost`; `${PORT}` becomes the port). */
  readonly maskRequestHost?: string;
  readonly accessToken: string;
  /**
   * E2B's `trafficAccessToken`: the code-interpreter SDK sends it (as `E2B-Traffic-Access-Token`, and no
   * `X-Access-Token`) on its `/contexts` calls, so those are checked against it.
   */
  readonly trafficAccessToken: string;
  readonly startedAtMs: number;
}

/** Where a routed sandbox finds the egress proxy's authority: alone, and with the host's authorities (Debian's bundle, which curl and Python read). */
export const EGRESS_CA_FILE = '/etc/ssl/certs/tradeswarm-egress-ca.pem';
export const TRUSTED_CA_FILE = '/etc/ssl/certs/ca-certificates.crt';

const DEFAULT_PATH = `${GUEST_BIN_DIR}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`;
/** Samples kept per sandbox, oldest dropped first: an hour at the default interval of 5 s. */
const METRIC_HISTORY = 720;

/** A running (or paused) local sandbox: its namespaces, cgroups, directories and state. */
export class LocalSandbox {
  readonly id: string;
  readonly template: Template;
  readonly templateId: string;
  readonly clientId: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly envVars: Readonly<Record<string, string>>;
  readonly allowInternetAccess: boolean;
  readonly network: NetworkMode;
  /** Its egress rules now (the manager's `updateNetwork` replaces them); enforced when `network` is `routed`. */
  egress: EgressRules;
  readonly autoPause: boolean;
  /** Whether its timeout's pause keeps its memory (E2B's `autoPauseMemory`), or keeps only its filesystem. */
  readonly autoPauseKeepsMemory: boolean;
  /** Whether a request for it wakes it once paused (E2B's `lifecycle.autoResume`). */
  readonly autoResume: boolean;
  /** Whether its own ports answer anyone, or only requests with its traffic access token (E2B's `network.allowPublicTraffic`). */
  readonly publicTraffic: boolean;
  /** The Host its own ports are sent requests with (E2B's `network.maskRequestHost`; `${PORT}` becomes the port), or undefined: the Host the request came with. */
  readonly maskRequestHost: string | undefined;
  readonly accessToken: string;
  readonly trafficAccessToken: string;
  readonly startedAtMs: number;
  /** When the reaper acts on it (ms since epoch). */
  endAtMs: number;
  private current: SandboxState;
  private readonly killedListeners = new Set<() => void>();
  private readonly history: SandboxMetric[] = [];
  private lastCpu: { atMs: number; cpuNs: number };

  /**
   * What runs this boot of the sandbox: replaced when it boots again after a filesystem-only pause;
   * none while it is paused that way (it has only its disk then).
   */
  private machine: SandboxMachine | undefined;
  /** The settings it was created with. */
  private readonly given: SandboxSettings;

  /**
   * @param machine what it runs on; undefined for a sandbox paused without its memory, as one a server
   * finds kept in its data folder is: it is paused, and `reboot` gives it one.
   */
  constructor(
    settings: SandboxSettings,
    endAtMs: number,
    machine: SandboxMachine | undefined,
    private readonly clock: Clock,
  ) {
    this.given = settings;
    this.machine = machine;
    this.current = machine === undefined ? 'paused' : 'running';
    this.id = settings.id;
    this.template = settings.template;
    this.templateId = settings.templateId;
    this.clientId = settings.clientId;
    this.metadata = settings.metadata;
    this.envVars = settings.envVars;
    this.allowInternetAccess = settings.allowInternetAccess;
    this.network = settings.network;
    this.egress = settings.egress;
    this.autoPause = settings.autoPause;
    this.autoPauseKeepsMemory = settings.autoPauseKeepsMemory ?? true;
    this.autoResume = settings.autoResume ?? false;
    this.publicTraffic = settings.publicTraffic ?? true;
    this.maskRequestHost = settings.maskRequestHost;
    this.accessToken = settings.accessToken;
    this.trafficAccessToken = settings.trafficAccessToken;
    this.startedAtMs = settings.startedAtMs;
    this.endAtMs = endAtMs;
    this.lastCpu = { atMs: clock.now(), cpuNs: machine?.cgroups.cpuUsageNs() ?? 0 };
  }

  get state(): SandboxState {
    return this.current;
  }

  /** Its settings as given when it was created, with its egress rules as they are now (what a kept record of it holds). */
  get settings(): SandboxSettings {
    return { ...this.given, egress: this.egress };
  }

  private get booted(): SandboxMachine {
    if (this.machine === undefined) throw new Error(`sandbox ${this.id} is paused without its memory: it has no processes until a connect boots it again`);
    return this.machine;
  }

  /** Whether its current boot runs on `init` (false with no boot). */
  bootedOn(init: SandboxInit): boolean {
    return this.machine?.init === init;
  }

  get dirs(): SandboxDirs {
    return this.booted.dirs;
  }

  get init(): SandboxInit {
    return this.booted.init;
  }

  get cgroups(): SandboxCgroups {
    return this.booted.cgroups;
  }

  /** The host side of its routed network (veth pair, firewall); undefined on another network, or with no boot. */
  get link(): SandboxLink | undefined {
    return this.machine?.link;
  }

  /**
   * Ends this boot, for a filesystem-only pause: what waits on the sandbox's death (requests in flight,
   * services' per-sandbox state) is told now, as its processes are about to go. Returns what it ran on,
   * for the caller to remove.
   */
  endBoot(): SandboxMachine {
    const machine = this.booted;
    this.notifyEnded();
    this.machine = undefined;
    return machine;
  }

  /** Boots it again on a new machine (after a filesystem-only pause), whose disk began as the old one's. */
  reboot(machine: SandboxMachine): void {
    this.machine = machine;
    this.lastCpu = { atMs: this.clock.now(), cpuNs: machine.cgroups.cpuUsageNs() ?? 0 };
  }

  /** Moves the state machine. @throws when the event is not allowed now. */
  apply(event: SandboxEvent): SandboxState {
    this.current = transition(this.current, event);
    if (this.current === 'killed') this.notifyEnded();
    return this.current;
  }

  private notifyEnded(): void {
    const listeners = [...this.killedListeners];
    this.killedListeners.clear();
    for (const listener of listeners) listener();
  }

  /**
   * Runs `listener` once when the sandbox is killed, or its processes end in a filesystem-only pause
   * (services drop their per-sandbox state, requests in flight are cut). @returns a function that
   * removes the listener, for what ends before the sandbox.
   */
  onKilled(listener: () => void): () => void {
    if (this.current === 'killed') {
      listener();
      return () => undefined;
    }
    const entry = (): void => listener();
    this.killedListeners.add(entry);
    return () => this.killedListeners.delete(entry);
  }

  /** The home directory of a user inside the sandbox. */
  homeOf(user: SandboxUser): string {
    return user === 'root' ? '/root' : '/home/user';
  }

  /** Host uid/gid that files written for `user` should belong to. */
  idsOf(user: SandboxUser): { uid: number; gid: number } {
    return user === 'root' ? { uid: 0, gid: 0 } : { uid: SANDBOX_USER_ID, gid: SANDBOX_USER_ID };
  }

  /** The environment every process in this sandbox starts with, before per-command variables. */
  baseEnv(user: SandboxUser): Record<string, string> {
    return {
      PATH: DEFAULT_PATH,
      HOME: this.homeOf(user),
      USER: user,
      LOGNAME: user,
      SHELL: '/bin/bash',
      LANG: 'C.UTF-8',
      E2B_SANDBOX: 'true',
      E2B_SANDBOX_ID: this.id,
      E2B_TEMPLATE_ID: this.templateId,
      ...this.proxyEnv(),
      ...this.template.envs,
      ...this.envVars,
    };
  }

  /**
   * What points a process at the egress proxy, when the sandbox's rules name hosts or have rules (which
   * only the proxy enforces): the proxy variables curl, wget, Python and most tools read (Node's fetch
   * does not before Node 24's NODE_USE_ENV_PROXY), and the authority it reads HTTPS with. Read at each
   * process's start, so processes started after an `updateNetwork` follow its rules.
   */
  private proxyEnv(): Record<string, string> {
    const link = this.machine?.link;
    if (link?.proxyPort === undefined || !needsProxy(this.egress)) return {};
    const proxy = `http://${link.gateway}:${link.proxyPort}`;
    const direct = `localhost,127.0.0.1,::1,${link.gateway}`;
    return {
      HTTP_PROXY: proxy,
      HTTPS_PROXY: proxy,
      http_proxy: proxy,
      https_proxy: proxy,
      NO_PROXY: direct,
      no_proxy: direct,
      SSL_CERT_FILE: TRUSTED_CA_FILE,
      REQUESTS_CA_BUNDLE: TRUSTED_CA_FILE,
      NODE_EXTRA_CA_CERTS: EGRESS_CA_FILE,
    };
  }

  /**
   * Starts a command inside the sandbox through its supervisor (one fork inside the sandbox).
   * This is how envd's process service runs commands (with `pty`, on a new pseudo-terminal).
   */
  run(options: SpawnOptions & { readonly stdin?: boolean; readonly pty?: TerminalSize }): GuestProcess {
    const user = options.user ?? 'user';
    const { uid, gid } = this.idsOf(user);
    return this.init.supervisor.spawn({
      argv: options.argv,
      env: { ...this.baseEnv(user), ...options.env },
      cwd: options.cwd ?? this.homeOf(user),
      uid,
      gid,
      stdin: options.stdin ?? false,
      ...(options.pty ? { pty: options.pty } : {}),
    });
  }

  /**
   * Starts a process inside the sandbox from the host (nsenter), with extra file descriptors shared
   * with the server. Slower than {@link run}; used for long-lived helpers such as interpreter kernels.
   */
  spawn(options: SpawnOptions): SandboxProcess {
    const user = options.user ?? 'user';
    return spawnInSandbox({
      initPid: this.init.pid,
      argv: options.argv,
      env: { ...this.baseEnv(user), ...options.env },
      cwd: options.cwd ?? this.homeOf(user),
      user,
      privateNetwork: this.network !== 'host',
      cgroupProcsFiles: this.cgroups.procsFiles,
      maxOpenFiles: this.template.maxOpenFiles,
      maxFileSizeBytes: this.template.diskBytes,
      extraFds: options.extraFds ?? 0,
      capabilities: options.capabilities ?? [],
    });
  }

  /**
   * Resolves a sandbox path (relative to the user's home) to where the server reaches it. The sandbox's
   * disk and its root's overlays are mounted in its own mount namespace only, so all of its files are
   * reached through its init's root (`/proc/<pid>/root`), and the server's writes, anywhere, land on
   * the same disk, under the same size limit, as the sandbox's own.
   */
  resolvePath(path: string, user: SandboxUser = 'user', followLast = true): ResolvedPath {
    const rootView = `/proc/${this.init.pid}/root`;
    return resolveSandboxPath({ home: `${rootView}/home/user`, tmp: `${rootView}/tmp`, rootView }, path, this.homeOf(user), followLast);
  }

  /**
   * Used and total bytes of the sandbox's disk (everything it wrote, anywhere), as its filesystem
   * counts them; nothing used of the template's size once the sandbox is gone.
   */
  disk(): { usedBytes: number; totalBytes: number } {
    try {
      const stats = statfsSync(`/proc/${this.init.pid}/root/tmp`);
      return { usedBytes: (stats.blocks - stats.bfree) * stats.bsize, totalBytes: stats.blocks * stats.bsize };
    } catch {
      // Its init died a moment ago (killed, or out of memory), before the manager saw it.
      return { usedBytes: 0, totalBytes: this.template.diskBytes };
    }
  }

  /** Measures usage now and adds it to the history the metrics endpoint returns. */
  sampleMetrics(): SandboxMetric {
    const nowMs = this.clock.now();
    const cpuNs = this.cgroups.cpuUsageNs() ?? 0;
    const elapsedNs = Math.max(1, (nowMs - this.lastCpu.atMs) * 1e6);
    const cpuUsedPct = Math.min(100, Math.max(0, ((cpuNs - this.lastCpu.cpuNs) / elapsedNs / this.template.cpuCount) * 100));
    this.lastCpu = { atMs: nowMs, cpuNs };
    const usage = this.cgroups.memoryUsageBytes() ?? 0;
    const rss = this.cgroups.memoryRssBytes() ?? usage;
    const disk = this.disk();
    const metric: SandboxMetric = {
      timestamp: new Date(nowMs).toISOString(),
      cpuUsedPct: Math.round(cpuUsedPct * 100) / 100,
      cpuCount: this.template.cpuCount,
      memUsed: rss,
      memTotal: this.template.memoryBytes,
      memCache: Math.max(0, usage - rss),
      diskUsed: disk.usedBytes,
      diskTotal: disk.totalBytes,
    };
    this.history.push(metric);
    if (this.history.length > METRIC_HISTORY) this.history.shift();
    return metric;
  }

  /** Samples taken so far, oldest first. */
  metricHistory(): readonly SandboxMetric[] {
    return this.history;
  }
}
