import { STATUS_CODES, createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:https';
import { type SecureContextOptions, createSecureContext } from 'node:tls';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyError } from 'fastify';
import { InvalidInputError, SystemClock, createLogger, errorChain, errorMessage, lockDir, randomId, randomToken, type Clock, type LockRefusal, type Logger } from '../core/index.js';
import { registerApiRoutes } from './api/routes.js';
import { createEnvdRouter, isSignableFileRequest, refuseSignature, signedWith } from './envd/index.js';
import { API_STATUS, LocalCloudError } from './errors.js';
import { createInterpreterRouter, KERNELS_HOST_DIR } from './interpreter/index.js';
import { cleanStaleCgroups, cleanStaleFirewalls, probeIsolation, type CgroupController, type IsolationSupport } from './isolation/index.js';
import { SandboxManager, type SandboxNetwork, TEMP_ROOT_PREFIX, claimInstanceDir, cleanStaleDataDirs, cleanStaleTempRoots } from './sandboxes/index.js';
import { TemplateRegistry, BUILTIN_TEMPLATES, type TemplateOptions } from './templates/index.js';
import { sendJson } from './http.js';
import { CloudPrometheus, type SandboxCounts } from './metrics.js';
import { type PortTarget, forwardToPort, forwardUpgrade, maskedHost, sandboxPortOf } from './ports.js';
import { EgressAuthority, startEgressProxy } from './egress/index.js';

/** Where the SDK's in-sandbox traffic goes: envd and the code interpreter. */
export const ENVD_PORT = 49983;
export const INTERPRETER_PORT = 49999;

/** Options of {@link startLocalCloud}. Every field is optional. */
export interface LocalCloudOptions {
  /** TCP port to listen on. @default 0 (the OS picks a free one) */
  port?: number;
  /** Address to listen on. @default '127.0.0.1' */
  host?: string;
  /** The API key clients must send. @default a new random key (printed by `tradeswarm cloud serve`) */
  apiKey?: string;
  /**
   * Folder for sandbox files; each sandbox gets a subfolder, removed when it is killed. Listed snapshots
   * are kept in its `snapshots` folder for the next server on it. @default a new temporary folder, removed on close
   */
  dataDir?: string;
  /** Templates besides `base` and `code-interpreter-v1`. */
  templates?: readonly TemplateOptions[];
  /**
   * The cores a sandbox may get at most: a template asking for more (a T3 or T4 agent on a 2-core
   * machine) gets these, as its CPU quota and in what info and metrics report, and the server warns
   * when it starts. @default the host's (`os.availableParallelism()`)
   */
  hostCpus?: number;
  /** Sandbox lifetime when a create request names none. @default 300 */
  defaultTimeoutSeconds?: number;
  /** Longest lifetime a sandbox may ask for. @default 86400 (24 h, like E2B Pro) */
  maxTimeoutSeconds?: number;
  /** Sandboxes running at once; more are refused with 429. @default 100 */
  maxSandboxes?: number;
  /** Interval of the per-sandbox CPU and memory sampler (ms); 0 turns it off. @default 5000 */
  metricsIntervalMs?: number;
  /**
   * Sandboxes kept started ahead of demand for each template (and network setting) that has been used,
   * so a create only claims one. 0 turns the warm pool off. @default 2
   */
  warmPoolSize?: number;
  /**
   * The network of a sandbox with internet access created without egress rules. `host`: the host's own,
   * so it reaches the host's 127.0.0.1 services (the swarm's agents reach the embedded broker there),
   * and `updateNetwork` is refused for it. `routed`: a network namespace of its own behind an egress
   * firewall held on the host, so `updateNetwork` works on every sandbox, and the host's 127.0.0.1
   * services (PostgreSQL with trust auth, the broker) are out of its reach. A sandbox created with
   * `network.allowOut` or `denyOut` is routed either way. @default 'host'
   */
  sandboxNetwork?: SandboxNetwork;
  /**
   * The domain sandboxes report as theirs, so the SDK's `getHost(port)` gives `<port>-<sandboxId>.<domain>`
   * and, where no `sandboxUrl` is set, it reaches envd at `49983-<sandboxId>.<domain>`, as on E2B. Every
   * such name must resolve to this server (a wildcard DNS record, as E2B has). @default none: the SDK's own (`E2B_DOMAIN`)
   */
  domain?: string;
  /**
   * A second listener that serves the same over HTTPS, as E2B serves every sandbox port
   * (`https://<port>-<sandboxId>.<domain>`, port 443). `cert` and `key` are PEM; the certificate should
   * name `*.<domain>`. @default none: plain HTTP only
   */
  tls?: { readonly port?: number; readonly cert: string | Buffer; readonly key: string | Buffer };
  clock?: Clock;
  logger?: Logger;
}

/** A running local cloud: the settings to give the SDK, and a way to stop it. */
export interface LocalCloud {
  /** `apiUrl` / `E2B_API_URL`. */
  readonly apiUrl: string;
  /** `sandboxUrl` / `E2B_SANDBOX_URL`: all in-sandbox traffic, told apart by E2B's headers. */
  readonly sandboxUrl: string;
  /** `apiKey` / `E2B_API_KEY`. */
  readonly apiKey: string;
  readonly port: number;
  readonly dataDir: string;
  /** What this host's kernel allowed, found by trying at start. */
  readonly support: IsolationSupport;
  readonly templates: TemplateRegistry;
  readonly sandboxes: SandboxManager;
  /** The domain sandboxes report (the `domain` option), or null. */
  readonly domain: string | null;
  /** The HTTPS listener's port (the `tls` option), or undefined. */
  readonly tlsPort: number | undefined;
  /** The options to spread into `Sandbox.create(template, { ...cloud.connection })`. */
  readonly connection: { readonly apiKey: string; readonly apiUrl: string; readonly sandboxUrl: string };
  /** Kills every sandbox, stops listening and removes a temporary data folder. Safe to call twice. */
  close(): Promise<void>;
}

interface CompiledOptions {
  readonly port: number;
  readonly host: string;
  readonly apiKey: string;
  readonly defaultTimeoutSeconds: number;
  readonly maxTimeoutSeconds: number;
  readonly maxSandboxes: number;
  readonly metricsIntervalMs: number;
  readonly warmPoolSize: number;
  readonly sandboxNetwork: SandboxNetwork;
  readonly domain: string | null;
  /** The HTTPS listener: its port and its certificate and key, checked. */
  readonly tls: { readonly port: number; readonly context: SecureContextOptions } | undefined;
}

function compileOptions(options: LocalCloudOptions): CompiledOptions {
  const integer = (field: keyof LocalCloudOptions | 'tls.port', value: number, min: number, max: number): number => {
    if (!Number.isInteger(value) || value < min || value > max) throw new InvalidInputError(field, `must be a whole number from ${min} to ${max}, got ${value}`);
    return value;
  };
  const apiKey = options.apiKey ?? `e2b_${randomToken(20)}`;
  if (apiKey.length === 0) throw new InvalidInputError('apiKey', 'must not be empty: leave it out to get a random key');
  const maxTimeoutSeconds = integer('maxTimeoutSeconds', options.maxTimeoutSeconds ?? 86_400, 1, 30 * 86_400);
  return {
    port: integer('port', options.port ?? 0, 0, 65_535),
    host: options.host ?? '127.0.0.1',
    apiKey,
    defaultTimeoutSeconds: integer('defaultTimeoutSeconds', options.defaultTimeoutSeconds ?? 300, 1, maxTimeoutSeconds),
    maxTimeoutSeconds,
    maxSandboxes: integer('maxSandboxes', options.maxSandboxes ?? 100, 1, 10_000),
    metricsIntervalMs: integer('metricsIntervalMs', options.metricsIntervalMs ?? 5000, 0, 3_600_000),
    warmPoolSize: integer('warmPoolSize', options.warmPoolSize ?? 2, 0, 64),
    sandboxNetwork: sandboxNetworkOf(options.sandboxNetwork),
    domain: domainOf(options.domain),
    tls: options.tls === undefined ? undefined : { port: integer('tls.port', options.tls.port ?? 0, 0, 65_535), context: secureContextOf(options.tls) },
  };
}

/** The TLS listener's certificate and key, checked before anything starts. @throws InvalidInputError naming `tls` and what is wrong. */
function secureContextOf(tls: NonNullable<LocalCloudOptions['tls']>): SecureContextOptions {
  const context = { cert: tls.cert, key: tls.key };
  try {
    createSecureContext(context);
  } catch (error) {
    throw new InvalidInputError('tls', `the certificate and key could not be used (${errorMessage(error)}): give a PEM certificate for *.<domain> and its PEM private key`, { cause: error });
  }
  return context;
}

/** A DNS name of two labels or more (`sandbox.test`), lower case, as the host part of E2B's sandbox names. */
const DOMAIN_FORM = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

function domainOf(value: unknown): string | null {
  if (value === undefined) return null;
  if (typeof value === 'string' && DOMAIN_FORM.test(value)) return value;
  throw new InvalidInputError('domain', `must be a DNS name of two labels or more in lower case, such as sandbox.test (sandboxes are then named <port>-<sandboxId>.sandbox.test), got ${JSON.stringify(value)}`);
}

function sandboxNetworkOf(value: unknown): SandboxNetwork {
  if (value === undefined) return 'host';
  if (value === 'host' || value === 'routed') return value;
  throw new InvalidInputError('sandboxNetwork', `must be 'host' (sandboxes share the host's network) or 'routed' (each its own, behind a firewall), got ${JSON.stringify(value)}`);
}

function sameSecret(given: string | string[] | undefined, expected: string): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Why a request to a sandbox's envd or code interpreter is refused, or undefined when its token is right.
 * Every route needs the sandbox's `X-Access-Token`, except two kinds. envd's `GET /files` and `POST /files`
 * take a signed URL instead (`sandbox.downloadUrl`, `uploadUrl`; see envd/signing.ts), as envd does. The
 * code interpreter's `/contexts` routes also take the `E2B-Traffic-Access-Token`: the code-interpreter
 * SDK sends only that one there. Without one of them, anyone who knows a sandbox's id could list,
 * restart or remove its contexts.
 */
function refuseSandboxRequest(request: IncomingMessage, port: number, url: URL, sandbox: { readonly accessToken: string; readonly trafficAccessToken: string }, nowMs: number): string | undefined {
  const accessToken = request.headers['x-access-token'];
  if (sameSecret(accessToken, sandbox.accessToken)) return undefined;
  const path = url.pathname;
  if (port === ENVD_PORT && accessToken === undefined && url.searchParams.has('signature') && isSignableFileRequest(request.method, path)) {
    return refuseSignature(url.searchParams, request.method, sandbox.accessToken, nowMs);
  }
  const contexts = port === INTERPRETER_PORT && (path === '/contexts' || path.startsWith('/contexts/'));
  if (!contexts) return 'wrong or missing X-Access-Token for this sandbox: use the envdAccessToken returned when it was created, or a signed URL (sandbox.downloadUrl, uploadUrl) for /files';
  if (accessToken === undefined && sameSecret(request.headers['e2b-traffic-access-token'], sandbox.trafficAccessToken)) return undefined;
  return 'wrong or missing access token for this sandbox\'s code interpreter contexts: send X-Access-Token (the envdAccessToken) or E2B-Traffic-Access-Token (the trafficAccessToken), both returned when it was created';
}

/**
 * The sandbox and port a request is for: E2B's host form `<port>-<sandboxId>.<domain>` (the SDK's
 * getHost), or the SDK's `E2B-Sandbox-Id` and `E2B-Sandbox-Port` (envd's port when it names none);
 * undefined for a request to the cloud's own API.
 */
function sandboxRouteOf(request: IncomingMessage): { readonly sandboxId: string; readonly port: number } | undefined {
  const named = sandboxPortOf(request.headers.host);
  if (named !== undefined) return named;
  const sandboxId = request.headers['e2b-sandbox-id'];
  return typeof sandboxId === 'string' ? { sandboxId, port: Number(request.headers['e2b-sandbox-port'] ?? ENVD_PORT) } : undefined;
}

/** An upgrade refused with `status`: the answer a socket gets before it is closed. */
function refusedUpgrade(status: number): string {
  return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`;
}

/** The file in a data folder the user gave that says which server uses it. */
const DATA_DIR_LOCK = 'tradeswarm-cloud.lock';

function dataDirRefusal(dir: string, why: LockRefusal): string {
  if (why.kind === 'unwritable') return `cannot lock ${dir} (${join(dir, DATA_DIR_LOCK)}): ${why.error.message}; give a folder this user can write`;
  if (why.kind === 'racing') return `${dir} is being taken by another local cloud server at the same moment; try again`;
  const who = why.self ? 'a local cloud of this process' : `local cloud server process ${why.owner}`;
  return `${dir} is in use by ${who}: a data folder serves one server at a time (its paused sandboxes and snapshots are that server's to list and boot); stop that server, or give this one another --data-dir`;
}

/**
 * Starts an E2B-compatible cloud on this machine: the control-plane REST API, envd and the code
 * interpreter, all on one port. Point the unmodified `e2b` / `@e2b/code-interpreter` SDK at it with
 * `{ apiUrl, sandboxUrl, apiKey }`.
 * @throws InvalidInputError for an invalid option, naming it.
 */
export async function startLocalCloud(options: LocalCloudOptions = {}): Promise<LocalCloud> {
  const config = compileOptions(options);
  const clock = options.clock ?? new SystemClock();
  const logger = options.logger ?? createLogger('localcloud');
  const hostCpus = options.hostCpus ?? availableParallelism();
  if (!Number.isInteger(hostCpus) || hostCpus < 1) throw new InvalidInputError('hostCpus', `must be a whole number >= 1, got ${hostCpus}`);
  const templates = new TemplateRegistry([...BUILTIN_TEMPLATES, ...(options.templates ?? [])], hostCpus);
  const clamped = templates.clamped();
  if (clamped.length > 0) {
    logger.warn(
      { templates: clamped.map((template) => template.name), hostCpus },
      `${clamped.map((template) => `${template.name} (${template.requestedCpuCount} cores)`).join(', ')} ask${clamped.length === 1 ? 's' : ''} for more cores than this machine's ${hostCpus}: ` +
        `${clamped.length === 1 ? 'its' : 'their'} sandboxes get ${hostCpus} (the CPU quota, and the cpuCount that info and metrics report)`,
    );
  }
  const support = probeIsolation();
  for (const problem of support.problems) logger.warn(problem);

  const usableControllers = (Object.keys(support.cgroups) as CgroupController[]).filter((controller) => support.cgroups[controller]);
  const staleGroups = await cleanStaleCgroups(usableControllers);
  // After the cgroups: their processes are killed, so the veth pairs of a crashed server's sandboxes go.
  const staleFirewalls = await cleanStaleFirewalls();
  // Every server without a dataDir makes a fresh temporary root, so the roots crashed servers left are
  // found in the temporary folder, not in this server's root.
  const staleRoots = cleanStaleTempRoots(tmpdir());
  const ownDataDir = options.dataDir === undefined;
  const dataRoot = ownDataDir ? mkdtempSync(join(tmpdir(), TEMP_ROOT_PREFIX)) : resolve(options.dataDir!);
  mkdirSync(dataRoot, { recursive: true });
  // A folder the user gave holds paused sandboxes and snapshots that one server lists and boots: two
  // servers on it would both boot the same sandbox from the same disk.
  const folderLock = ownDataDir ? undefined : lockDir(dataRoot, DATA_DIR_LOCK, (why) => new InvalidInputError('dataDir', dataDirRefusal(dataRoot, why)));
  const staleDirs = cleanStaleDataDirs(dataRoot);
  if (config.sandboxNetwork === 'routed' && support.routedNetworkMissing.length > 0) {
    logger.warn(`sandboxNetwork is 'routed' but this host lacks ${support.routedNetworkMissing.join(', ')}: every sandbox with internet access will be refused`);
  }
  if (staleGroups + staleFirewalls + staleRoots + staleDirs > 0) {
    logger.warn({ staleGroups, staleFirewalls, staleRoots, staleDirs }, 'cleaned up sandboxes left behind by an earlier run that did not stop cleanly');
  }
  const instance = `srv-${process.pid}-${randomId(6)}`;
  const dataDir = join(dataRoot, instance);
  const claim = claimInstanceDir(dataDir);
  if (!claim.marked) logger.warn({ dataDir }, 'could not make a FIFO in the data folder; whether this server still runs will be judged by its pid alone');

  // Routed sandboxes whose rules name hosts reach them through the egress proxy; its port is in their firewall.
  const egressAuthority = support.routedNetworkMissing.length === 0 ? new EgressAuthority(clock) : undefined;
  let port = 0;
  const egress =
    egressAuthority === undefined
      ? undefined
      : await startEgressProxy({
          authority: egressAuthority,
          logger,
          sandboxAt: (address) => manager.list().find((sandbox) => sandbox.state === 'running' && sandbox.link?.address === address),
          ownHost: (host) => {
            const named = sandboxPortOf(host);
            return named !== undefined && manager.find(named.sandboxId) !== undefined;
          },
          ownListener: () => ({ address: config.host === '0.0.0.0' ? '127.0.0.1' : config.host === '::' ? '::1' : config.host, port }),
        });

  // The gauges read the manager when scraped; it exists by then.
  const prometheus: CloudPrometheus = new CloudPrometheus((): SandboxCounts => {
    const all = manager.list();
    return { running: all.filter((sandbox) => sandbox.state === 'running').length, paused: all.filter((sandbox) => sandbox.state === 'paused').length, warm: manager.warmCount };
  });
  const manager: SandboxManager = new SandboxManager({
    observer: prometheus,
    clock,
    logger,
    templates,
    support,
    dataDir,
    // In a data folder the user gave, listed snapshots are kept beside the servers' own folders, for the next server on it.
    snapshotsDir: ownDataDir ? undefined : join(dataRoot, 'snapshots'),
    // And its sandboxes paused without their memory (all paused ones, once it stops), for the next server to boot on connect.
    pausedDir: ownDataDir ? undefined : join(dataRoot, 'paused'),
    instance,
    kernelsDir: KERNELS_HOST_DIR,
    defaultTimeoutSeconds: config.defaultTimeoutSeconds,
    maxTimeoutSeconds: config.maxTimeoutSeconds,
    maxSandboxes: config.maxSandboxes,
    metricsIntervalMs: config.metricsIntervalMs,
    warmPoolSize: config.warmPoolSize,
    sandboxNetwork: config.sandboxNetwork,
    ...(egress === undefined || egressAuthority === undefined ? {} : { egressProxy: { port: egress.port, certificate: () => egressAuthority.certificate } }),
  });
  const envd = createEnvdRouter();
  const interpreter = createInterpreterRouter();

  /**
   * Where a request for port `port` of sandbox `sandboxId` that is not envd's nor the code
   * interpreter's goes: the sandbox's own port, public as on E2B (a server the sandbox runs); or why
   * it cannot, answered in E2B's words.
   */
  const userPort = (request: IncomingMessage, sandboxId: string, port: number): { readonly target: PortTarget } | { readonly status: number; readonly body: Record<string, unknown> } => {
    const sandbox = manager.find(sandboxId);
    if (!sandbox || sandbox.state !== 'running') return { status: 502, body: { code: 502, sandboxId, message: sandbox ? `The sandbox is ${sandbox.state}` : 'The sandbox was not found' } };
    if (!sandbox.publicTraffic && !sameSecret(request.headers['e2b-traffic-access-token'], sandbox.trafficAccessToken)) {
      return { status: 403, body: { code: 403, sandboxId, message: 'The sandbox does not allow public traffic (network.allowPublicTraffic: false): send E2B-Traffic-Access-Token, the trafficAccessToken returned when it was created' } };
    }
    const address = sandbox.network === 'host' ? '127.0.0.1' : sandbox.link?.address;
    if (address === undefined) return { status: 502, body: { code: 502, sandboxId, port, message: `The sandbox has no network (created without internet access): nothing outside it reaches its port ${port}` } };
    return { target: { sandboxId, address, port, ...(sandbox.maskRequestHost === undefined ? {} : { host: maskedHost(sandbox.maskRequestHost, port) }) } };
  };

  /**
   * A paused sandbox created with E2B's `lifecycle.autoResume` wakes when a request comes for it (any
   * port), as on E2B; then the request is served. One that cannot be woken is answered as paused.
   */
  const wake = async (sandboxId: string): Promise<void> => {
    const sandbox = manager.find(sandboxId);
    if (sandbox?.state !== 'paused' || !sandbox.autoResume) return;
    await manager.connect(sandboxId).catch((error: unknown) => logger.warn({ err: error, sandboxId }, 'could not wake a paused sandbox for a request'));
  };

  /** Serves a request for a sandbox, waking it first when it asked to be woken. */
  const serveSandbox = (request: IncomingMessage, response: ServerResponse, sandboxId: string, port: number): void => {
    void wake(sandboxId).then(() => handleSandboxTraffic(request, response, sandboxId, port));
  };

  const handleSandboxTraffic = (request: IncomingMessage, response: ServerResponse, sandboxId: string, port: number): void => {
    if (port !== ENVD_PORT && port !== INTERPRETER_PORT) {
      const where = userPort(request, sandboxId, port);
      if ('target' in where) forwardToPort(request, response, where.target);
      else sendJson(response, where.status, where.body);
      return;
    }
    const sandbox = manager.find(sandboxId);
    // 502 is how the SDK recognises a sandbox that is gone (it turns it into a TimeoutError).
    if (!sandbox || sandbox.state !== 'running') {
      response.writeHead(502, { 'content-type': 'text/plain' });
      response.end(`sandbox ${sandboxId} is ${sandbox ? sandbox.state : 'not running (killed or timed out)'}`);
      return;
    }
    const url = new URL(request.url ?? '/', 'http://sandbox');
    const refusal = url.pathname === '/health' ? undefined : refuseSandboxRequest(request, port, url, sandbox, clock.now());
    if (refusal !== undefined) {
      sendJson(response, 401, { code: 401, message: refusal });
      return;
    }
    const router = port === ENVD_PORT ? envd : interpreter;
    // E2B drops a sandbox's connections when it is killed or reaches its end of life; the SDK then finds
    // /health answering 502 and reports a TimeoutError that says so. Requests in flight (a command's
    // output stream above all) are cut the same way here, rather than ended with their processes' deaths.
    const stopCutting = sandbox.onKilled(() => response.destroy());
    response.once('close', stopCutting);
    router(sandbox, request, response, url).catch((error: unknown) => {
      logger.error({ err: error, sandboxId, path: url.pathname }, 'sandbox request failed');
      if (!response.headersSent) sendJson(response, 500, { code: 500, message: (error as Error).message });
      else response.destroy();
    });
  };

  // A signed file URL names no sandbox when the SDK has a sandboxUrl (on E2B its host does): the sandbox
  // is the one whose access token made the signature.
  const handleSignedFile = (request: IncomingMessage, response: ServerResponse, query: URLSearchParams): void => {
    const owner = manager.list().find((sandbox) => signedWith(query, request.method, sandbox.accessToken));
    if (owner) handleSandboxTraffic(request, response, owner.id, Number(request.headers['e2b-sandbox-port'] ?? ENVD_PORT));
    else sendJson(response, 401, { code: 401, message: 'invalid signature' });
  };

  let fastifyHandler: ((request: IncomingMessage, response: ServerResponse) => void) | undefined;
  const handleRequest = (request: IncomingMessage, response: ServerResponse): void => {
    const route = sandboxRouteOf(request);
    if (route !== undefined) return serveSandbox(request, response, route.sandboxId, route.port);
    const url = new URL(request.url ?? '/', 'http://sandbox');
    if (url.searchParams.has('signature') && isSignableFileRequest(request.method, url.pathname)) return handleSignedFile(request, response, url.searchParams);
    fastifyHandler!(request, response);
  };
  const server: Server = createServer(handleRequest);
  // The same, over HTTPS: what E2B's own names (`https://<port>-<sandboxId>.<domain>`) are served on.
  const tlsServer: TlsServer | undefined = config.tls === undefined ? undefined : createTlsServer(config.tls.context, handleRequest);
  const app = Fastify({
    serverFactory: (handler) => {
      fastifyHandler = handler;
      return server;
    },
    logger: false,
    bodyLimit: 16 * 1024 * 1024,
  });
  app.addHook('onRequest', async (request, reply) => {
    if (request.url === '/health') return;
    if (!sameSecret(request.headers['x-api-key'], config.apiKey)) {
      await reply.code(401).send({ code: 401, message: 'invalid or missing API key: send the key printed by `tradeswarm cloud serve` as X-API-KEY (E2B_API_KEY)' });
    }
  });
  app.setErrorHandler((error: FastifyError | LocalCloudError, _request, reply) => {
    // A 5xx is a fault of ours: logged with its cause, which the answer does not carry.
    if (error instanceof LocalCloudError) {
      if (error.status >= 500) logger.error({ err: error, cause: errorChain(error.cause) }, 'API request failed');
      return reply.code(error.status).send({ code: error.status, message: error.message });
    }
    const status = error.statusCode ?? API_STATUS.internal;
    if (status >= 500) logger.error({ err: error }, 'API request failed');
    return reply.code(status).send({ code: status, message: error.message });
  });
  app.get('/health', () => ({ status: 'ok' }));
  app.get('/metrics', async (_request, reply) => {
    const { contentType, body } = await prometheus.render();
    return reply.header('content-type', contentType).send(body);
  });
  registerApiRoutes(app, manager, config.domain);
  // An upgrade (a WebSocket) to a sandbox's own port is joined to it; nothing else of the local cloud upgrades.
  const handleUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const route = sandboxRouteOf(request);
    if (route === undefined || route.port === ENVD_PORT || route.port === INTERPRETER_PORT) {
      socket.end(refusedUpgrade(400));
      return;
    }
    void wake(route.sandboxId).then(() => {
      const where = userPort(request, route.sandboxId, route.port);
      if ('target' in where) forwardUpgrade(request, socket, head, where.target);
      else socket.end(refusedUpgrade(where.status));
    });
  };
  server.on('upgrade', handleUpgrade);
  tlsServer?.on('upgrade', handleUpgrade);
  await app.ready();

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      await manager.close();
      await egress?.close();
      // Fastify did not call listen() (we did, to share the port with sandbox traffic), so it will not close the servers.
      await Promise.all(
        [server, tlsServer].map((one) => {
          if (one?.listening !== true) return Promise.resolve();
          const stopped = new Promise<void>((resolveClose) => one.close(() => resolveClose()));
          one.closeAllConnections();
          return stopped;
        }),
      );
      await app.close();
      rmSync(ownDataDir ? dataRoot : dataDir, { recursive: true, force: true });
      claim.release();
      folderLock?.release();
    })();
    return closing;
  };
  port = await listenOn(server, config.port, config.host).catch(async (error: unknown) => {
    await close();
    throw error;
  });
  const tls = config.tls;
  const tlsPort =
    tlsServer === undefined || tls === undefined
      ? undefined
      : await listenOn(tlsServer, tls.port, config.host).catch(async (error: unknown) => {
          await close();
          throw new InvalidInputError('tls.port', `could not listen on ${tls.port}: ${errorMessage(error)} (a port below 1024, such as 443, needs root or CAP_NET_BIND_SERVICE; 0 lets the OS choose)`);
        });
  const base = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  logger.info({ url: base, tlsPort, domain: config.domain, dataDir }, 'local cloud listening');

  return {
    apiUrl: base,
    sandboxUrl: base,
    apiKey: config.apiKey,
    port,
    dataDir,
    support,
    templates,
    sandboxes: manager,
    domain: config.domain,
    tlsPort,
    connection: { apiKey: config.apiKey, apiUrl: base, sandboxUrl: base },
    close,
  };
}

/** Listens on `port` of `host` and gives the port it got (the OS's choice for 0). */
function listenOn(server: Server | TlsServer, port: number, host: string): Promise<number> {
  return new Promise((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolveListen((server.address() as AddressInfo).port);
    });
  });
}
