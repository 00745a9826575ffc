import { mkdir, readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { createApp, listen } from '../api/index.js';
import { parse as parseYaml } from 'yaml';
import { ENVIRONMENTS } from '../contract/index.js';
import {
  ControlPlane,
  ElectedControlPlane,
  type Environments,
  type RoleChange,
  compileEnvironments,
  controlPlaneRoutes,
  loadEnvironments,
} from '../controlplane/index.js';
import { InvalidInputError, SystemClock, TradeswarmError, createLogger, randomId, wholeNumber } from '../core/index.js';
import { type Store, isStoreError, openStore } from '../store/index.js';
import { type SandboxTarget, startSwarmRuntime } from '../swarm/index.js';
import { parseSandboxFlag } from './sandbox.js';
import { commandDescription } from './commands.js';

/** Options of `tradeswarm serve`. */
interface ServeOptions {
  port: number;
  host: string;
  dataDir: string;
  databaseUrl?: string;
  broker?: string;
  sandbox: string;
  cloudUrl?: string;
  config?: string;
  apiKey?: string;
  leaseTtlMs?: number;
  advertiseUrl?: string;
}

/** The address the CLI's client commands use when neither --url nor TRADESWARM_URL is given. */
export { DEFAULT_SERVER_URL } from '../client/index.js';

/**
 * `tradeswarm serve`: the control plane as a long-running process (DESIGN decision 9): the HTTP API,
 * the store, the bus and the sandboxes; every deployment the store says is running is resumed at start.
 */
export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description(commandDescription('serve'))
    .option('--port <port>', 'TCP port of the HTTP API', (value) => Number(value), 7070)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--data-dir <dir>', 'where the embedded store (PGlite) keeps its data', '.tradeswarm')
    .option('--database-url <url>', 'a PostgreSQL server to keep state in instead (postgres://user@host:port/db); default: TRADESWARM_DATABASE_URL, else the embedded store')
    .option('--broker <url>', 'an external MQTT broker agents can reach (mqtt://host:port); default: an embedded broker')
    .option('--sandbox <kind>', 'where agents run: local (an embedded local cloud) or e2b (needs E2B_API_KEY)', 'local')
    .option('--cloud-url <url>', 'an E2B-compatible cloud to run agents in, such as `tradeswarm cloud serve` elsewhere (with its E2B_API_KEY); implies --sandbox e2b')
    .option('--config <file>', 'a YAML file overriding the environments (dev, staging, prod): limits, templates, env vars')
    .option('--api-key <key>', 'require Authorization: Bearer <key> on every request (default: TRADESWARM_API_KEY, else no key)')
    .option('--lease-ttl-ms <ms>', 'with --database-url: how long the leader\'s lease runs unless renewed (renewed every third of it); a follower takes over this long after the leader died at the latest (default 3000)', (value) => Number(value))
    .option('--advertise-url <url>', 'with --database-url: the address of this server\'s API that followers point clients at while it leads (default: the address it listens on)')
    .addHelpText(
      'after',
      `\nCtrl-C (or SIGTERM) stops it cleanly: deployments drain (agents checkpoint) and resume when it starts again. After a crash (even SIGKILL) they resume the same way.` +
        `\nSeveral servers on one PostgreSQL (--database-url): one leads and runs every deployment; the others wait (their API answers 503, naming the leader) and one takes over, resuming every deployment, when the leader dies.`,
    )
    .action(async (options: ServeOptions) => {
      const logger = createLogger('serve', process.env.LOG_LEVEL ?? 'info');
      const clock = new SystemClock();
      const sandbox = cloudTarget(options);
      const environments = await environmentsFor(options.config, sandbox.kind === 'local' ? undefined : 'base');
      const databaseUrl = options.databaseUrl ?? process.env.TRADESWARM_DATABASE_URL;
      const dataDir = resolve(options.dataDir);
      if (databaseUrl === undefined && (options.leaseTtlMs !== undefined || options.advertiseUrl !== undefined)) {
        throw new InvalidInputError(
          options.leaseTtlMs !== undefined ? '--lease-ttl-ms' : '--advertise-url',
          'applies with --database-url only: servers elect a leader through a shared PostgreSQL. The embedded store (PGlite) serves one process per data dir, which runs every deployment',
        );
      }
      const leaseTtlMs = options.leaseTtlMs === undefined ? undefined : wholeNumber('--lease-ttl-ms', options.leaseTtlMs, 300);
      if (databaseUrl === undefined) await mkdir(dataDir, { recursive: true });
      // The store opens (PGlite in its worker thread, or a PostgreSQL connection) while the runtime starts.
      const opening = openServeStore(databaseUrl === undefined ? { dataDir } : { databaseUrl }, logger);
      const templates = ['base', ...ENVIRONMENTS.map((name) => environments[name].template)];
      const [store, runtime] = await bothOrNeither(
        opening,
        startSwarmRuntime({ sandbox, ...(options.broker === undefined ? {} : { brokerUrl: options.broker }), templates, clock, logger }),
      );
      const apiKey = options.apiKey ?? process.env.TRADESWARM_API_KEY;
      const placement = `broker: ${runtime.placement().broker}; sandboxes: ${options.cloudUrl ?? options.sandbox}`;
      const pointCli = (url: string): string[] => [
        `  point the CLI at it: export TRADESWARM_URL=${url}${apiKey ? ' TRADESWARM_API_KEY=<the key>' : ''}`,
        '  then: tradeswarm deploy examples/quickstart.yaml; tradeswarm ps; tradeswarm orders quickstart --follow',
      ];
      let close: () => Promise<void>;
      let stopping = false;
      const shutdown = (exitCode: number): void => {
        stopping = true;
        void (async () => {
          await close();
          await runtime.close();
          await store.close();
          process.exit(exitCode);
        })();
      };
      if (databaseUrl === undefined) {
        const controlPlane = await ControlPlane.start({ store, runtime, environments, clock, logger });
        const app = createApp({ name: 'tradeswarm serve', logger, ...(apiKey ? { apiKey } : {}), health: () => ({ role: 'leader' }) });
        await app.register(controlPlaneRoutes, { controlPlane });
        const server = await listen(app, { port: options.port, host: options.host });
        const resumed = (await controlPlane.list()).filter((view) => view.desired === 'running');
        process.stdout.write(
          [
            `tradeswarm serve listening on ${server.url}`,
            `  store: embedded PostgreSQL (PGlite) in ${dataDir}; ${placement}`,
            `  ${resumed.length === 0 ? 'no deployment to resume' : `resumed ${resumed.length} deployment${resumed.length === 1 ? '' : 's'}: ${resumed.map((view) => view.name).join(', ')}`}`,
            ...pointCli(server.url),
            '',
          ].join('\n'),
        );
        close = async () => {
          await server.close();
          await controlPlane.close();
        };
      } else {
        // The API listens first: its address is what this server advertises while it leads.
        const seat: { elected?: ElectedControlPlane } = {};
        const notYet = (): never => {
          throw new TradeswarmError('this server is joining the election; try again in a moment', { retryable: true });
        };
        const app = createApp({ name: 'tradeswarm serve', logger, ...(apiKey ? { apiKey } : {}), health: () => seat.elected?.health() ?? { role: 'follower', leader: null } });
        await app.register(controlPlaneRoutes, { controlPlane: () => (seat.elected ?? notYet()).controlPlane() });
        const server = await listen(app, { port: options.port, host: options.host });
        const holder = `${hostname()}:${process.pid}:${randomId(4)}`;
        process.stdout.write(
          [
            `tradeswarm serve listening on ${server.url}`,
            `  store: PostgreSQL; ${placement}`,
            `  servers on this database elect a leader, which runs every deployment; this one is ${holder}`,
            ...pointCli(server.url),
            '',
          ].join('\n'),
        );
        const elected = ElectedControlPlane.start({
          store,
          runtime,
          environments,
          clock,
          logger,
          holder,
          url: options.advertiseUrl ?? server.url,
          ...(leaseTtlMs === undefined ? {} : { ttlMs: leaseTtlMs }),
          onRoleChange: (change) => {
            process.stdout.write(`${roleLine(change)}\n`);
            if ('failed' in change) shutdown(1);
          },
        });
        seat.elected = elected;
        close = async () => {
          await server.close();
          await elected.close();
        };
      }
      const stop = (name: NodeJS.Signals): void => {
        if (stopping) process.exit(128 + (name === 'SIGINT' ? 2 : 15));
        process.stderr.write(`\n${name}: stopping (deployments drain and checkpoint; they resume at the next start); send it again to exit at once\n`);
        shutdown(0);
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
}

/** What `serve` prints when its role changes (several servers on one PostgreSQL). */
function roleLine(change: RoleChange): string {
  if (change.role === 'leader') {
    if ('failed' in change) return `took the lease (epoch ${change.epoch}) but could not start the control plane: ${change.failed}. Released the lease; stopping`;
    const { resumed } = change;
    return `leading (lease epoch ${change.epoch}): ${resumed.length === 0 ? 'no deployment to resume' : `resumed ${resumed.length} deployment${resumed.length === 1 ? '' : 's'}: ${resumed.join(', ')}`}`;
  }
  const lost = change.deposed === undefined ? '' : `lost the lease (${change.deposed}): stopped every deployment here without writing; `;
  const { leader } = change;
  if (leader === null) return `${lost}following: no server leads at the moment; this one takes the lease as soon as it is free`;
  return `${lost}following: ${leader.holder} leads (lease epoch ${leader.epoch}, until ${leader.expiresAt} unless renewed)${leader.url === null ? '' : `, its API at ${leader.url}`}; this server takes over when that lease expires`;
}

/**
 * Opens the store `serve` keeps its state in. A PGlite data dir another process has open is refused
 * with what a second server needs instead: one PostgreSQL for both.
 */
async function openServeStore(where: { readonly dataDir: string } | { readonly databaseUrl: string }, logger: ReturnType<typeof createLogger>): Promise<Store> {
  try {
    return await openStore({ ...where, logger });
  } catch (error) {
    if ('dataDir' in where && isStoreError(error) && error.retryable) {
      throw new TradeswarmError(
        `${error.message}. \`tradeswarm serve\` on the embedded store runs as one process per data dir; to run a second server that takes over when the first dies, ` +
          'start both with --database-url postgres://… (one PostgreSQL): one leads, the other waits',
        { cause: error },
      );
    }
    throw error;
  }
}

/**
 * Waits for both; when either fails, closes the other once it is up and throws the failure (the first
 * one's when both fail), so nothing half-started (a broker, a store's lock on its data dir) outlives a
 * start that failed.
 */
async function bothOrNeither<A extends { close(): Promise<void> }, B extends { close(): Promise<void> }>(first: Promise<A>, second: Promise<B>): Promise<[A, B]> {
  const [a, b] = await Promise.allSettled([first, second]);
  if (a.status === 'fulfilled' && b.status === 'fulfilled') return [a.value, b.value];
  if (a.status === 'fulfilled') await a.value.close().catch(() => undefined);
  if (b.status === 'fulfilled') await b.value.close().catch(() => undefined);
  throw (a.status === 'rejected' ? a.reason : (b as PromiseRejectedResult).reason) as Error;
}

/** Where agents run: `--cloud-url` (an E2B-compatible API at that URL, keyed by E2B_API_KEY), else `--sandbox`. */
function cloudTarget(options: ServeOptions): SandboxTarget {
  if (options.cloudUrl === undefined) return parseSandboxFlag(options.sandbox);
  if (!URL.canParse(options.cloudUrl) || !/^https?:$/.test(new URL(options.cloudUrl).protocol)) {
    throw new InvalidInputError('--cloud-url', `must be an http(s) URL such as http://127.0.0.1:49982 (what \`tradeswarm cloud serve\` prints as E2B_API_URL), got ${JSON.stringify(options.cloudUrl)}`);
  }
  const apiKey = process.env.E2B_API_KEY;
  if (apiKey === undefined || apiKey === '') throw new InvalidInputError('E2B_API_KEY', `must be set to the API key of the cloud at ${options.cloudUrl} (\`tradeswarm cloud serve\` prints it)`);
  return { kind: 'e2b', connection: { apiUrl: options.cloudUrl, sandboxUrl: options.cloudUrl, apiKey } };
}

/**
 * The environments, from the config file when given. On an external cloud an environment whose
 * template the file does not name runs agents in `fallbackTemplate` (the cloud may not have the
 * built-in `dev-trading-agent`…; the agent bundle is then written into each sandbox).
 */
async function environmentsFor(configFile: string | undefined, fallbackTemplate: string | undefined): Promise<Environments> {
  if (fallbackTemplate === undefined) return configFile === undefined ? compileEnvironments() : loadEnvironments(configFile);
  const raw = configFile === undefined ? {} : ((parseYaml(await readFile(configFile, 'utf8')) ?? {}) as { environments?: Record<string, { template?: unknown } | undefined> });
  const written = raw.environments ?? {};
  const environments = Object.fromEntries(ENVIRONMENTS.map((env) => [env, { template: fallbackTemplate, ...written[env] }]));
  return compileEnvironments({ ...raw, environments }, configFile ?? 'environments config');
}
