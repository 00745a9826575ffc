import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { once } from 'node:events';
import { randomId, randomToken, type Clock, type Logger, type TimerHandle } from '../../core/index.js';
import { API_STATUS, IsolationUnavailableError, LocalCloudError, SandboxNotFoundError } from '../errors.js';
import { GUEST_BIN_DIR, GUEST_HOST_DIR, NO_EGRESS_RULES, SANDBOX_USER_ID, SandboxCgroups, SandboxLink, TemplateDisks, deniesAllTraffic, removeInstanceCgroups, startInit, type CgroupController, type EgressRules, type IsolationSupport, type SandboxDirs, type SandboxInit } from '../isolation/index.js';
import type { Template, TemplateRegistry } from '../templates/index.js';
import { needsProxy } from '../egress/index.js';
import type { KillReason, SandboxObserver } from '../metrics.js';
import { SnapshotStore, type Snapshot } from './snapshots.js';
import { PausedSandboxes } from './paused.js';
import { EGRESS_CA_FILE, LocalSandbox, TRUSTED_CA_FILE, type NetworkMode } from './sandbox.js';
import type { SandboxState } from './state.js';

/** A request to create a sandbox (the fields of E2B's `NewSandbox`). */
export interface CreateSandboxRequest {
  readonly templateId: string;
  readonly timeoutSeconds?: number;
  readonly metadata?: Readonly<Record<string, string>>;
  readonly envVars?: Readonly<Record<string, string>>;
  readonly allowInternetAccess?: boolean;
  /**
   * Egress rules (E2B's `network.allowOut` and `denyOut`, checked by the API): given, even empty, the
   * sandbox gets a routed network whose firewall enforces them, which `updateNetwork` can change.
   */
  readonly egress?: EgressRules;
  readonly autoPause?: boolean;
  /** Whether the timeout's pause keeps memory (E2B's `autoPauseMemory`). @default true */
  readonly autoPauseKeepsMemory?: boolean;
  /** Whether a request for it wakes it once paused (E2B's `lifecycle.autoResume`). @default false */
  readonly autoResume?: boolean;
  /** Whether its own ports answer anyone (E2B's `network.allowPublicTraffic`), or only requests with its traffic access token. @default true */
  readonly publicTraffic?: boolean;
  /** The Host its own ports are sent requests with (E2B's `network.maskRequestHost`; `${PORT}` becomes the port). @default the Host the request came with */
  readonly maskRequestHost?: string;
}

/** A filter for listing sandboxes. */
export interface ListFilter {
  readonly metadata?: Readonly<Record<string, string>>;
  readonly states?: readonly SandboxState[];
  readonly templateId?: string;
  /** Only sandboxes started at or after this time (ms since epoch), as E2B's `startedAfter`. */
  readonly startedAfterMs?: number;
  /** By start time: `desc` (newest first, E2B's default) or `asc`. @default 'desc' */
  readonly order?: ListOrder;
}

/** The directions E2B's list sorts sandboxes in, by start time. */
export type ListOrder = 'asc' | 'desc';

/**
 * The network of a sandbox with internet access and no egress rules: `host`, the host's own (it reaches
 * the host's 127.0.0.1 services, such as an embedded broker), or `routed`, a namespace of its own behind
 * a firewall (see isolation/firewall.ts), so that `updateNetwork` works on every sandbox.
 */
export type SandboxNetwork = 'host' | 'routed';

/** Settings of a sandbox manager. */
export interface SandboxManagerConfig {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly templates: TemplateRegistry;
  readonly support: IsolationSupport;
  /** Where sandbox directories are made (one folder per sandbox, removed when it is killed), and each template's disk image. */
  readonly dataDir: string;
  /**
   * Where listed snapshots are kept, to be listed again by the next manager opened on it (a folder
   * outside `dataDir` to outlive this server). @default `dataDir`/snapshots, which ends with it
   */
  readonly snapshotsDir?: string;
  /** Names this server's cgroups, so a later run can tell its leftovers from a live server's. */
  readonly instance: string;
  /** Host directory bind-mounted read-only into every sandbox at /opt/tradeswarm/kernels. */
  readonly kernelsDir: string;
  readonly defaultTimeoutSeconds: number;
  readonly maxTimeoutSeconds: number;
  readonly maxSandboxes: number;
  /** How often each sandbox's CPU and memory are sampled for the metrics history. */
  readonly metricsIntervalMs: number;
  /**
   * Sandboxes kept started ahead of demand for each (template, network) pair that has been asked for,
   * so that a create only has to claim one. 0 turns the pool off.
   */
  readonly warmPoolSize: number;
  /** Told of every create and kill (the Prometheus metrics). */
  readonly observer?: SandboxObserver;
  /** The network of sandboxes with internet access and no egress rules. @default 'host' */
  readonly sandboxNetwork?: SandboxNetwork;
  /**
   * Where sandboxes paused without their memory are kept, to be listed paused again by the next manager
   * opened on it, which boots them on connect (a folder outside `dataDir`). @default none: they end with this server
   */
  readonly pausedDir?: string;
  /**
   * The egress proxy routed sandboxes are given (see egress/proxy.ts): its port on the host, and the
   * certificate of the authority it reads HTTPS with, which their /etc adds to the certificates it
   * trusts. @default none: a network with host names or rules is refused
   */
  readonly egressProxy?: { readonly port: number; readonly certificate: () => string };
}

/** A sandbox whose namespaces, cgroups and folders exist, not yet handed to anyone. */
interface PreparedSandbox {
  readonly id: string;
  readonly sandboxDir: string;
  readonly dirs: SandboxDirs;
  readonly cgroups: SandboxCgroups;
  readonly init: SandboxInit;
  /** The host side of its routed network; none for the host's network or none at all. */
  readonly link?: SandboxLink | undefined;
}

/** What {@link SandboxManager.destroy} removes: whatever of a sandbox was made. */
interface Remains {
  readonly sandboxDir: string;
  readonly init?: SandboxInit | undefined;
  readonly cgroups?: SandboxCgroups | undefined;
  readonly link?: SandboxLink | undefined;
}

/** How long after a claim the warm pool starts refilling. */
const POOL_REFILL_DELAY_MS = 50;

interface Timers {
  reaper?: TimerHandle;
  metrics?: TimerHandle;
}

/** Creates, finds, pauses, resumes and kills local sandboxes, and reaps those whose time ran out. */
export class SandboxManager {
  private readonly sandboxes = new Map<string, LocalSandbox>();
  private readonly timers = new Map<string, Timers>();
  private readonly pending = new Set<Promise<unknown>>();
  /** Warm sandboxes by pool key (`template|network`). */
  private readonly spares = new Map<string, PreparedSandbox[]>();
  private readonly refilling = new Map<string, Promise<void>>();
  private closing = false;
  private readonly disks: TemplateDisks;
  private readonly snapshots: SnapshotStore;
  /** The disks of sandboxes paused without their memory, which `connect` boots again from. */
  private readonly coldDisks = new Map<string, Snapshot>();
  /** Filesystem-only pauses under way, by sandbox id. */
  private readonly stopping = new Map<string, Promise<void>>();
  private readonly paused: PausedSandboxes | undefined;
  /** The /etc files that make a routed sandbox trust the egress proxy's authority, made for the first. */
  private trustFiles: Readonly<Record<string, string>> | undefined;

  constructor(private readonly config: SandboxManagerConfig) {
    this.disks = new TemplateDisks(join(config.dataDir, 'template-disks'));
    const scratch = join(config.dataDir, 'snapshots');
    this.snapshots = new SnapshotStore({ kept: config.snapshotsDir ?? scratch, scratch }, config.logger);
    this.paused = config.pausedDir === undefined ? undefined : new PausedSandboxes(config.pausedDir, config.logger);
    // Sandboxes an earlier server kept paused: listed paused, booted from their disks on connect.
    for (const { settings, endAtMs, disk } of this.paused?.load() ?? []) {
      this.sandboxes.set(settings.id, new LocalSandbox(settings, endAtMs, undefined, config.clock));
      this.coldDisks.set(settings.id, disk);
      this.timers.set(settings.id, {});
    }
  }

  /** The time on this manager's clock (ms since epoch). */
  now(): number {
    return this.config.clock.now();
  }

  /** Sandboxes not yet killed. */
  get size(): number {
    return this.sandboxes.size;
  }

  /**
   * Creates and starts a sandbox. On any failure everything made so far is removed before the error is thrown.
   * @throws LocalCloudError 400 (bad template or timeout), 429 (too many sandboxes), 503 (isolation unavailable)
   */
  async create(request: CreateSandboxRequest): Promise<LocalSandbox> {
    if (this.closing) throw new LocalCloudError(API_STATUS.unavailable, 'the local cloud is shutting down; start it again', { retryable: true });
    const snapshot = this.snapshots.get(request.templateId);
    const template = snapshot?.template ?? this.config.templates.find(request.templateId);
    if (!template) throw new LocalCloudError(API_STATUS.notFound, `template '${request.templateId}' not found; this local cloud has: ${this.config.templates.names().join(', ')} (and the snapshots Sandbox.listSnapshots lists)`);
    const timeoutSeconds = request.timeoutSeconds ?? this.config.defaultTimeoutSeconds;
    this.checkTimeout(timeoutSeconds);
    const { support } = this.config;
    if (!support.namespaces) throw new IsolationUnavailableError('PID and mount namespaces');
    const allowInternetAccess = request.allowInternetAccess ?? true;
    if (!allowInternetAccess && !support.networkNamespace) throw new IsolationUnavailableError('a private network namespace (allowInternetAccess: false)');
    const egress = request.egress ?? NO_EGRESS_RULES;
    const network = this.networkModeOf(allowInternetAccess, request.egress);
    if (network === 'routed' && support.routedNetworkMissing.length > 0) {
      throw new IsolationUnavailableError(`a routed network with an egress firewall (for network.allowOut and denyOut, updateNetwork, or sandboxNetwork: 'routed'): it lacks ${support.routedNetworkMissing.join(', ')}`);
    }
    this.checkProxy(egress);
    // A template's memory and process limits are part of what a sandbox asks for.
    if (!support.cgroups.memory || !support.cgroups.pids) throw new IsolationUnavailableError('memory and process limits (the cgroup v1 memory and pids controllers)');
    if (!support.disk) throw new IsolationUnavailableError('a disk of its own (loop devices, ext4 and mkfs.ext4 from e2fsprogs)');
    if (this.sandboxes.size + this.pending.size >= this.config.maxSandboxes) {
      throw new LocalCloudError(API_STATUS.tooManyRequests, `this local cloud already runs ${this.config.maxSandboxes} sandboxes (its maxSandboxes); kill some or raise the limit`, { retryable: true });
    }

    const poolKey = `${template.name}|${network}`;
    const startedMs = this.config.clock.now();
    let warm = false;
    const work = (async () => {
      // A sandbox of a snapshot starts from the snapshot's disk, which no warm sandbox has.
      const spare = snapshot ? undefined : this.takeSpare(poolKey);
      warm = spare !== undefined;
      if (spare?.link && (egress.allowOut.length > 0 || egress.denyOut.length > 0)) {
        await spare.link.apply(egress).catch(async (error: unknown) => {
          await this.destroy(spare);
          throw new LocalCloudError(API_STATUS.internal, `the sandbox could not be started: ${(error as Error).message}`, { cause: error });
        });
      }
      const prepared = spare ?? (snapshot ? await this.snapshots.using(snapshot, () => this.prepare(template, network, egress, snapshot.image)) : await this.prepare(template, network, egress));
      const now = this.config.clock.now();
      return new LocalSandbox(
        {
          id: prepared.id,
          template,
          templateId: snapshot?.templateId ?? template.name,
          clientId: 'localcloud',
          metadata: { ...request.metadata },
          envVars: { ...request.envVars },
          allowInternetAccess,
          network,
          egress,
          autoPause: request.autoPause ?? false,
          autoPauseKeepsMemory: request.autoPauseKeepsMemory ?? true,
          autoResume: request.autoResume ?? false,
          publicTraffic: request.publicTraffic ?? true,
          ...(request.maskRequestHost === undefined ? {} : { maskRequestHost: request.maskRequestHost }),
          accessToken: randomToken(),
          trafficAccessToken: randomToken(),
          startedAtMs: now,
        },
        now + timeoutSeconds * 1000,
        prepared,
        this.config.clock,
      );
    })();
    this.pending.add(work);
    let sandbox: LocalSandbox;
    try {
      sandbox = await work;
    } catch (error) {
      this.config.observer?.createFailed(template.name);
      throw error;
    } finally {
      this.pending.delete(work);
    }
    if (this.closing) {
      await this.destroy(remainsOf(sandbox));
      throw new LocalCloudError(API_STATUS.unavailable, 'the local cloud is shutting down; start it again', { retryable: true });
    }
    const id = sandbox.id;
    this.sandboxes.set(id, sandbox);
    this.timers.set(id, {});
    this.armReaper(sandbox);
    this.armMetrics(sandbox);
    this.watchInit(sandbox);
    this.config.observer?.created(template.name, warm, (this.config.clock.now() - startedMs) / 1000);
    if (template.startCommand) sandbox.run({ argv: ['/bin/bash', '-l', '-c', template.startCommand] });
    this.config.logger.info({ sandboxId: id, template: template.name }, 'sandbox created');
    // Refill a moment later: starting a sandbox forks processes (synchronously, in Node), which would
    // delay this response and the first command that usually follows it.
    if (!snapshot) setTimeout(() => this.refill(poolKey, template, network), POOL_REFILL_DELAY_MS).unref();
    return sandbox;
  }

  /** A sandbox's network: none at all without internet access; routed with egress rules, or when the cloud routes every sandbox; else the host's. */
  private networkModeOf(allowInternetAccess: boolean, egress: EgressRules | undefined): NetworkMode {
    if (!allowInternetAccess) return 'none';
    if (egress === undefined) return this.config.sandboxNetwork === 'routed' ? 'routed' : 'host';
    // Denying everything needs no firewall where the host has none: no network at all, as before firewalls.
    if (deniesAllTraffic(egress) && this.config.support.routedNetworkMissing.length > 0) return 'none';
    return 'routed';
  }

  /**
   * The /etc files that make a routed sandbox trust the egress proxy's authority, as their names in
   * /etc and the host files they are copied from (written once, in this server's folder); none without a proxy.
   */
  private trusted(): Readonly<Record<string, string>> {
    const proxy = this.config.egressProxy;
    if (proxy === undefined) return {};
    if (this.trustFiles === undefined) {
      const authority = proxy.certificate();
      const dir = join(this.config.dataDir, 'egress-trust');
      mkdirSync(dir, { recursive: true });
      const files: Record<string, string> = {};
      for (const [inSandbox, content] of [[EGRESS_CA_FILE, authority], [TRUSTED_CA_FILE, `${hostAuthorities()}\n${authority}`]] as const) {
        const onHost = join(dir, basename(inSandbox));
        writeFileSync(onHost, content, { mode: 0o644 });
        files[inSandbox.slice('/etc/'.length)] = onHost;
      }
      this.trustFiles = files;
    }
    return this.trustFiles;
  }

  /** @throws IsolationUnavailableError when `rules` name hosts or rules and this manager has no egress proxy. */
  private checkProxy(rules: EgressRules): void {
    if (needsProxy(rules) && this.config.egressProxy === undefined) {
      throw new IsolationUnavailableError('an egress proxy (for host names in network.allowOut, and network.rules): this local cloud started without one');
    }
  }

  /**
   * Replaces a sandbox's egress rules (E2B's `updateNetwork`); they apply at once, to open connections too.
   * @throws SandboxNotFoundError; LocalCloudError 409 for a sandbox on the host's network or on none.
   */
  async updateNetwork(id: string, rules: EgressRules): Promise<void> {
    await this.stopping.get(id)?.catch(() => undefined);
    const sandbox = this.get(id);
    if (sandbox.network === 'host') {
      throw new LocalCloudError(
        API_STATUS.conflict,
        `sandbox ${id} shares the host's network (it was created without egress rules, and this local cloud's sandboxNetwork is 'host'), so no firewall sees its traffic: create it with egress rules (network: { denyOut: [] } is enough), or start the cloud with --sandbox-network routed (startLocalCloud({ sandboxNetwork: 'routed' })) to give every sandbox a network updateNetwork can filter`,
      );
    }
    if (sandbox.network === 'none') {
      throw new LocalCloudError(
        API_STATUS.conflict,
        `sandbox ${id} has no network at all (allowInternetAccess: false, or denyOut: [allTraffic] on a host without a routed network), which cannot be opened: create it with network: { denyOut: [allTraffic] } on a host with a routed network instead`,
      );
    }
    this.checkProxy(rules);
    sandbox.egress = rules;
    // A sandbox paused without its memory has no network now; it boots again with these rules.
    if (!this.coldDisks.has(id)) await sandbox.link?.apply(rules);
  }

  /**
   * Keeps a copy of the sandbox's filesystem (see snapshots.ts), which `create` takes as a template.
   * @throws SandboxNotFoundError
   */
  async snapshot(id: string, name?: string): Promise<Snapshot> {
    const sandbox = this.get(id);
    return this.snapshots.take(sandbox, { name, listed: true, nowMs: this.config.clock.now(), stoppedDisk: this.coldDisks.get(id)?.image });
  }

  /** Snapshots taken, newest first; of one sandbox, or with one name, when asked. */
  listSnapshots(filter: { readonly sandboxId?: string; readonly name?: string } = {}): Snapshot[] {
    return this.snapshots.list(filter);
  }

  /** Deletes a snapshot; sandboxes made from it keep their disks. @returns false when there is none. */
  deleteSnapshot(id: string): boolean {
    return this.snapshots.remove(id);
  }

  /**
   * Starts `count` sandboxes whose filesystems begin as the sandbox's is now, with its template,
   * metadata, env vars and network settings (egress rules, public traffic, Host mask); the sandbox itself keeps running. Each fork that could
   * not be started is its error, in its place.
   * @throws SandboxNotFoundError, LocalCloudError 400 for a count below 1
   */
  async fork(id: string, count: number, timeoutSeconds?: number): Promise<PromiseSettledResult<LocalSandbox>[]> {
    const source = this.get(id);
    if (!Number.isInteger(count) || count < 1 || count > this.config.maxSandboxes) {
      throw new LocalCloudError(API_STATUS.badRequest, `body.count: must be a whole number from 1 to ${this.config.maxSandboxes} (this local cloud's maxSandboxes), got ${count}`);
    }
    if (timeoutSeconds !== undefined) this.checkTimeout(timeoutSeconds);
    const snapshot = await this.snapshots.take(source, { listed: false, templateId: source.templateId, nowMs: this.config.clock.now(), stoppedDisk: this.coldDisks.get(id)?.image });
    try {
      const request: CreateSandboxRequest = {
        templateId: snapshot.id,
        timeoutSeconds,
        metadata: source.metadata,
        envVars: source.envVars,
        allowInternetAccess: source.allowInternetAccess,
        publicTraffic: source.publicTraffic,
        ...(source.maskRequestHost === undefined ? {} : { maskRequestHost: source.maskRequestHost }),
        ...(source.network === 'routed' ? { egress: source.egress } : {}),
      };
      return await Promise.allSettled(Array.from({ length: count }, () => this.create(request)));
    } finally {
      this.snapshots.remove(snapshot.id);
    }
  }

  private watchInit(sandbox: LocalSandbox): void {
    const { init } = sandbox;
    init.process.once('exit', () => {
      // The init died on its own (OOM, or killed from outside): the sandbox is gone. (A filesystem-only
      // pause ends its init on purpose; the sandbox has another init, or none, by then.)
      if (this.sandboxes.get(sandbox.id)?.bootedOn(init) === true && !this.coldDisks.has(sandbox.id)) void this.kill(sandbox.id, 'died').catch(() => undefined);
    });
  }

  /** Warm sandboxes ready to be claimed, over all pools. */
  get warmCount(): number {
    let count = 0;
    for (const spares of this.spares.values()) count += spares.length;
    return count;
  }

  /**
   * Fills the warm pool of template `templateId` (sandboxes with internet access, the default of a
   * create) to `warmPoolSize` now, instead of after its first use; resolves when it is full.
   * @throws LocalCloudError (404) for an unknown template.
   */
  async prewarm(templateId: string): Promise<void> {
    const template = this.config.templates.find(templateId);
    if (!template) throw new LocalCloudError(API_STATUS.notFound, `template '${templateId}' not found; this local cloud has: ${this.config.templates.names().join(', ')}`);
    const network = this.networkModeOf(true, undefined);
    const poolKey = `${template.name}|${network}`;
    this.refill(poolKey, template, network);
    await this.refilling.get(poolKey);
  }

  /** Resolves when no pool is being refilled (tests and benchmarks wait on it). */
  async poolSettled(): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, POOL_REFILL_DELAY_MS + 1));
    while (this.refilling.size > 0) await Promise.allSettled([...this.refilling.values()]);
  }

  /**
   * Starts a sandbox's namespaces, cgroups and folders (and a routed network's veth pair and firewall,
   * with `egress`); on failure removes whatever was made.
   * @param diskImage the disk to start from (a snapshot's); the template's by default.
   * @param sandboxId the id of the sandbox it boots again (after a filesystem-only pause); a new one by default.
   */
  private async prepare(template: Template, network: NetworkMode, egress: EgressRules, diskImage?: string, sandboxId?: string): Promise<PreparedSandbox> {
    const id = `i${randomId(19)}`;
    const name = sandboxId ?? id;
    const sandboxDir = join(this.config.dataDir, id);
    const dirs: SandboxDirs = { root: join(sandboxDir, 'root'), diskImage: join(sandboxDir, 'disk.img'), disk: join(sandboxDir, 'disk'), etc: join(sandboxDir, 'etc'), bootId: join(sandboxDir, 'boot_id') };
    let cgroups: SandboxCgroups | undefined;
    let init: SandboxInit | undefined;
    let link: SandboxLink | undefined;
    try {
      for (const dir of [dirs.root, dirs.disk, dirs.etc]) mkdirSync(dir, { recursive: true });
      writeFileSync(dirs.bootId, `${randomUUID()}\n`, { mode: 0o444 });
      const diskTemplate = diskImage ?? (await this.disks.imageOf(template));
      cgroups = SandboxCgroups.create(this.config.instance, id, { memoryBytes: template.memoryBytes, maxProcesses: template.maxProcesses, cpus: template.cpuCount }, this.config.support.cgroups);
      init = await startInit({
        sandboxId: name,
        dirs,
        diskTemplate,
        etcFiles: etcFilesOf(name),
        ...(network === 'routed' ? { etcCopies: this.trusted() } : {}),
        privateNetwork: network !== 'host',
        kernelsDir: this.config.kernelsDir,
        guestDir: GUEST_HOST_DIR,
        maxOpenFiles: template.maxOpenFiles,
        maxFileSizeBytes: template.diskBytes,
        cgroupProcsFiles: cgroups.procsFiles,
      });
      if (network === 'routed') link = await SandboxLink.attach(init.pid, this.config.instance, egress, this.config.egressProxy?.port);
      return { id, sandboxDir, dirs, cgroups, init, link };
    } catch (error) {
      await this.destroy({ sandboxDir, init, cgroups, link });
      throw new LocalCloudError(API_STATUS.internal, `the sandbox could not be started: ${(error as Error).message}`, { cause: error });
    }
  }

  private takeSpare(poolKey: string): PreparedSandbox | undefined {
    const spares = this.spares.get(poolKey) ?? [];
    while (spares.length > 0) {
      const spare = spares.shift()!;
      if (spare.init.process.exitCode === null && spare.init.process.signalCode === null) return spare;
      void this.destroy(spare);
    }
    return undefined;
  }

  /** Tops the pool up in the background, one sandbox at a time so that claims are never slowed by many starts at once. */
  private refill(poolKey: string, template: Template, network: NetworkMode): void {
    if (this.config.warmPoolSize <= 0 || this.closing || this.refilling.has(poolKey)) return;
    const work = (async () => {
      for (;;) {
        const spares = this.spares.get(poolKey) ?? [];
        this.spares.set(poolKey, spares);
        if (this.closing || spares.length >= this.config.warmPoolSize) return;
        const prepared = await this.prepare(template, network, NO_EGRESS_RULES);
        if (this.closing) {
          await this.destroy(prepared);
          return;
        }
        spares.push(prepared);
      }
    })()
      .catch((error: unknown) => this.config.logger.warn({ err: error, pool: poolKey }, 'could not refill the warm pool'))
      .finally(() => this.refilling.delete(poolKey));
    this.refilling.set(poolKey, work);
  }

  /** @throws SandboxNotFoundError */
  get(id: string): LocalSandbox {
    const sandbox = this.sandboxes.get(id);
    if (!sandbox) throw new SandboxNotFoundError(id);
    return sandbox;
  }

  /** The sandbox, or undefined when there is none with that id. */
  find(id: string): LocalSandbox | undefined {
    return this.sandboxes.get(id);
  }

  /** Sandboxes matching every given filter, newest first unless `order` is `asc` (ties by id, so pages are stable). */
  list(filter: ListFilter = {}): LocalSandbox[] {
    const direction = (filter.order ?? 'desc') === 'asc' ? 1 : -1;
    return [...this.sandboxes.values()]
      .filter((sandbox) => !filter.states || filter.states.includes(sandbox.state))
      .filter((sandbox) => !filter.templateId || sandbox.templateId === filter.templateId)
      .filter((sandbox) => filter.startedAfterMs === undefined || sandbox.startedAtMs >= filter.startedAfterMs)
      .filter((sandbox) => Object.entries(filter.metadata ?? {}).every(([key, value]) => sandbox.metadata[key] === value))
      .sort((a, b) => direction * (a.startedAtMs - b.startedAtMs || a.id.localeCompare(b.id)));
  }

  /** Kills the sandbox and everything in it and removes its files. @returns false when there was no such sandbox. */
  async kill(id: string, reason: KillReason = 'request'): Promise<boolean> {
    await this.stopping.get(id)?.catch(() => undefined);
    const sandbox = this.sandboxes.get(id);
    if (!sandbox) return false;
    this.sandboxes.delete(id);
    this.config.observer?.killed(reason);
    this.clearTimers(id);
    sandbox.apply('kill');
    const cold = this.coldDisks.get(id);
    if (cold) this.dropColdDisk(id, cold);
    else await this.destroy(remainsOf(sandbox));
    this.config.logger.info({ sandboxId: id }, 'sandbox killed');
    return true;
  }

  /** Sets the sandbox to be reaped `timeoutSeconds` from now. @throws SandboxNotFoundError, LocalCloudError 400 */
  setTimeout(id: string, timeoutSeconds: number): void {
    const sandbox = this.get(id);
    this.checkTimeout(timeoutSeconds);
    sandbox.endAtMs = this.config.clock.now() + timeoutSeconds * 1000;
    if (sandbox.state === 'running') this.armReaper(sandbox);
  }

  /**
   * Freezes every process of the sandbox; files and memory are kept. With `keepMemory` false, only its
   * filesystem is kept: a copy of its disk is taken frozen (as a snapshot is), its processes end and
   * its memory is freed, and `connect` boots it again from that disk.
   * @returns false when it was already paused.
   */
  async pause(id: string, keepMemory = true): Promise<boolean> {
    const sandbox = this.get(id);
    if (sandbox.state === 'paused') return false;
    await sandbox.cgroups.freeze();
    sandbox.apply('pause');
    this.clearTimers(id);
    this.timers.set(id, {});
    if (!keepMemory) {
      // It shows as paused from now; a connect or kill meanwhile waits for its disk to be kept.
      const stopping = this.stopKeepingDisk(sandbox);
      this.stopping.set(id, stopping);
      try {
        await stopping;
      } finally {
        this.stopping.delete(id);
      }
    }
    return true;
  }

  /**
   * Ends a paused sandbox's processes and frees its memory, keeping its disk for `connect` to boot from;
   * in a kept folder (`pausedDir`), with its record, for the next server too.
   */
  private async stopKeepingDisk(sandbox: LocalSandbox): Promise<void> {
    const disk = await this.snapshots.take(sandbox, { listed: false, templateId: sandbox.templateId, nowMs: this.config.clock.now() });
    if (this.paused === undefined) this.coldDisks.set(sandbox.id, disk);
    else {
      // The copy moves to the kept folder; the store's entry for it (where it was) goes.
      this.coldDisks.set(sandbox.id, this.paused.keep(sandbox, disk, this.config.clock.now()));
      this.snapshots.remove(disk.id);
    }
    const remains = remainsOf(sandbox);
    sandbox.endBoot();
    await this.destroy(remains);
  }

  /** Removes the disk a sandbox paused without its memory was kept on (it booted again, or was killed). */
  private dropColdDisk(id: string, cold: Snapshot): void {
    this.coldDisks.delete(id);
    if (this.paused?.has(id) === true) this.paused.forget(id);
    else this.snapshots.remove(cold.id);
  }

  /**
   * Resumes a paused sandbox with `timeoutSeconds` (default the server's) to live, or extends a running
   * one: as on E2B, a connect never shortens a running sandbox's time, it only moves its end later.
   * With `reboot` (the SDK's `onResume: 'reboot'`), a paused sandbox boots again from its disk, as
   * after a filesystem-only pause, even if its memory was kept.
   * @returns whether it was paused before.
   */
  async connect(id: string, timeoutSeconds?: number, reboot = false): Promise<boolean> {
    await this.stopping.get(id)?.catch(() => undefined);
    const sandbox = this.get(id);
    const wasPaused = sandbox.state === 'paused';
    if (wasPaused && reboot && !this.coldDisks.has(id)) await this.stopKeepingDisk(sandbox);
    if (wasPaused) {
      const cold = this.coldDisks.get(id);
      if (cold) {
        const prepared = await this.snapshots.using(cold, () => this.prepare(sandbox.template, sandbox.network, sandbox.egress, cold.image, id));
        sandbox.reboot(prepared);
        this.dropColdDisk(id, cold);
        this.watchInit(sandbox);
        if (sandbox.template.startCommand) sandbox.run({ argv: ['/bin/bash', '-l', '-c', sandbox.template.startCommand] });
      } else {
        await sandbox.cgroups.thaw();
      }
      sandbox.apply('resume');
      this.armMetrics(sandbox);
      this.setTimeout(id, timeoutSeconds ?? this.config.defaultTimeoutSeconds);
    } else if (timeoutSeconds !== undefined) {
      this.checkTimeout(timeoutSeconds);
      if (this.config.clock.now() + timeoutSeconds * 1000 > sandbox.endAtMs) this.setTimeout(id, timeoutSeconds);
    }
    return wasPaused;
  }

  /**
   * Kills every sandbox and refuses new ones; with a kept folder (`pausedDir`), a paused sandbox is kept
   * there instead, for the next server (one paused with its memory keeps its filesystem: it boots again).
   */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.allSettled([...this.pending, ...this.refilling.values()]);
    const spares = [...this.spares.values()].flat();
    this.spares.clear();
    await Promise.allSettled(spares.map((spare) => this.destroy(spare)));
    await Promise.allSettled([...this.stopping.values()]);
    const paused = this.paused === undefined ? [] : this.list({ states: ['paused'] });
    const kept = await Promise.allSettled(paused.map(async (sandbox) => (this.coldDisks.has(sandbox.id) ? sandbox.id : this.stopKeepingDisk(sandbox).then(() => sandbox.id))));
    const keptIds = new Set(kept.flatMap((outcome) => (outcome.status === 'fulfilled' ? [outcome.value] : [])));
    for (const outcome of kept) if (outcome.status === 'rejected') this.config.logger.warn({ err: outcome.reason as unknown }, 'a paused sandbox could not be kept for the next server; it is killed');
    await Promise.allSettled([...this.sandboxes.keys()].filter((id) => !keptIds.has(id)).map((id) => this.kill(id, 'shutdown')));
    const { cgroups } = this.config.support;
    await removeInstanceCgroups(this.config.instance, (Object.keys(cgroups) as CgroupController[]).filter((controller) => cgroups[controller]));
  }

  private checkTimeout(timeoutSeconds: number): void {
    if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0 || timeoutSeconds > this.config.maxTimeoutSeconds) {
      throw new LocalCloudError(API_STATUS.badRequest, `timeout must be between 1 and ${this.config.maxTimeoutSeconds} seconds, got ${timeoutSeconds}`);
    }
  }

  private armReaper(sandbox: LocalSandbox): void {
    const timers = this.timers.get(sandbox.id);
    if (!timers) return;
    if (timers.reaper) this.config.clock.clearTimeout(timers.reaper);
    timers.reaper = this.config.clock.setTimeout(() => {
      timers.reaper = undefined;
      if (sandbox.autoPause) void this.pause(sandbox.id, sandbox.autoPauseKeepsMemory).catch((error: unknown) => this.config.logger.warn({ err: error, sandboxId: sandbox.id }, 'auto-pause failed'));
      else void this.kill(sandbox.id, 'timeout');
    }, sandbox.endAtMs - this.config.clock.now());
  }

  private armMetrics(sandbox: LocalSandbox): void {
    const timers = this.timers.get(sandbox.id);
    if (!timers || this.config.metricsIntervalMs <= 0) return;
    const tick = (): void => {
      if (sandbox.state !== 'running') return;
      sandbox.sampleMetrics();
      timers.metrics = this.config.clock.setTimeout(tick, this.config.metricsIntervalMs);
    };
    timers.metrics = this.config.clock.setTimeout(tick, this.config.metricsIntervalMs);
  }

  private clearTimers(id: string): void {
    const timers = this.timers.get(id);
    if (timers?.reaper) this.config.clock.clearTimeout(timers.reaper);
    if (timers?.metrics) this.config.clock.clearTimeout(timers.metrics);
    this.timers.delete(id);
  }

  private async destroy({ sandboxDir, init, cgroups, link }: Remains): Promise<void> {
    // A frozen task receives SIGKILL only once thawed, so a paused sandbox is thawed first.
    if (cgroups?.canFreeze) await cgroups.thaw().catch(() => undefined);
    if (init && init.process.exitCode === null && init.process.signalCode === null) {
      const exited = once(init.process, 'exit');
      init.process.kill('SIGKILL');
      await exited;
    }
    await cgroups?.destroy();
    await link?.destroy();
    // Not rmSync: removing a sandbox's folder (its overlays' upper layers, its disk image) is many unlinks,
    // which held the event loop of the process the cloud runs in (serve's: tens of ms a sandbox under load).
    await rm(sandboxDir, { recursive: true, force: true });
  }
}

/** What a sandbox's current boot is made of, for {@link SandboxManager.destroy}. */
function remainsOf(sandbox: LocalSandbox): Remains {
  return { sandboxDir: dirname(sandbox.dirs.root), init: sandbox.init, cgroups: sandbox.cgroups, link: sandbox.link };
}

const PASSWD = `root:x:0:0:root:/root:/bin/bash\nuser:x:${SANDBOX_USER_ID}:${SANDBOX_USER_ID}:user:/home/user:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n`;
const GROUP = `root:x:0:\nuser:x:${SANDBOX_USER_ID}:\nnogroup:x:65534:\n`;

/** Login shells (`bash -l`, how the SDK runs commands) reset PATH in /etc/profile; this puts the sandbox's sudo first again. */
const PROFILE_PATH = `PATH="${GUEST_BIN_DIR}:$PATH"\n`;

/** The host's trusted authorities (Debian's bundle), or none where it has no such file. */
function hostAuthorities(): string {
  try {
    return readFileSync(TRUSTED_CA_FILE, 'utf8');
  } catch {
    return '';
  }
}

/** The files of a sandbox's /etc that are its own rather than the host's. */
function etcFilesOf(id: string): Record<string, string> {
  return {
    passwd: PASSWD,
    group: GROUP,
    hostname: `${id}\n`,
    hosts: `127.0.0.1\tlocalhost ${id}\n::1\tlocalhost ip6-localhost ip6-loopback\n`,
    'profile.d/tradeswarm-sudo.sh': PROFILE_PATH,
  };
}
