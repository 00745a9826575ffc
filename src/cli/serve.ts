import { mkdir, readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { createApp, listen } from '../api/index.js';
import { parse as parseYaml } from 'yaml';
import { ControlPlane, ENVIRONMENTS, type Environments, compileEnvironments, controlPlaneRoutes, loadEnvironments } from '../controlplane/index.js';
import { InvalidInputError, SystemClock, createLogger } from '../core/index.js';
import { openStore } from '../store/index.js';
import { type SandboxTarget, startSwarmRuntime } from '../swarm/index.js';
import { parseSandboxFlag } from './sandbox.js';

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
}

/** The address the CLI's client commands use when neither --url nor TRADESWARM_URL is given. */
export { DEFAULT_SERVER_URL } from '../controlplane/index.js';

/**
 * `tradeswarm serve`: the control plane as a long-running process (DESIGN decision 9): the HTTP API,
 * the store, the bus and the sandboxes; every deployment the store says is running is resumed at start.
 */
export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('run the control plane: deployments live until stopped, survive a crash of this process, and are driven over HTTP (deploy, ps, status, orders, logs, stop)')
    .option('--port <port>', 'TCP port of the HTTP API', (value) => Number(value), 7070)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--data-dir <dir>', 'where the embedded store (PGlite) keeps its data', '.tradeswarm')
    .option('--database-url <url>', 'a PostgreSQL server to keep state in instead (postgres://user@host:port/db); default: TRADESWARM_DATABASE_URL, else the embedded store')
    .option('--broker <url>', 'an external MQTT broker agents can reach (mqtt://host:port); default: an embedded broker')
    .option('--sandbox <kind>', 'where agents run: local (an embedded local cloud) or e2b (needs E2B_API_KEY)', 'local')
    .option('--cloud-url <url>', 'an E2B-compatible cloud to run agents in, such as `tradeswarm cloud serve` elsewhere (with its E2B_API_KEY); implies --sandbox e2b')
    .option('--config <file>', 'a YAML file overriding the environments (dev, staging, prod): limits, templates, env vars')
    .option('--api-key <key>', 'require Authorization: Bearer <key> on every request (default: TRADESWARM_API_KEY, else no key)')
    .addHelpText('after', `\nCtrl-C (or SIGTERM) stops it cleanly: deployments drain (agents checkpoint) and resume when it starts again. After a crash (even SIGKILL) they resume the same way.`)
    .action(async (options: ServeOptions) => {
      const logger = createLogger('serve', process.env.LOG_LEVEL ?? 'info');
      const clock = new SystemClock();
      const sandbox = cloudTarget(options);
      const environments = await environmentsFor(options.config, sandbox.kind === 'local' ? undefined : 'base');
      const databaseUrl = options.databaseUrl ?? process.env.TRADESWARM_DATABASE_URL;
      const dataDir = resolve(options.dataDir);
      if (databaseUrl === undefined) await mkdir(dataDir, { recursive: true });
      const store = await openStore(databaseUrl === undefined ? { dataDir, logger } : { databaseUrl, logger });
      const templates = ['base', ...ENVIRONMENTS.map((name) => environments[name].template)];
      const runtime = await startSwarmRuntime({ sandbox, ...(options.broker === undefined ? {} : { brokerUrl: options.broker }), templates, clock, logger });
      const controlPlane = await ControlPlane.start({ store, runtime, environments, clock, logger });
      const apiKey = options.apiKey ?? process.env.TRADESWARM_API_KEY;
      const app = createApp({ name: 'tradeswarm serve', logger, ...(apiKey ? { apiKey } : {}) });
      await app.register(controlPlaneRoutes, { controlPlane });
      const server = await listen(app, { port: options.port, host: options.host });
      const resumed = (await controlPlane.list()).filter((view) => view.desired === 'running');
      process.stdout.write(
        [
          `tradeswarm serve listening on ${server.url}`,
          `  store: ${databaseUrl === undefined ? `embedded PostgreSQL (PGlite) in ${dataDir}` : 'PostgreSQL'}; broker: ${runtime.placement().broker}; sandboxes: ${options.cloudUrl ?? options.sandbox}`,
          `  ${resumed.length === 0 ? 'no deployment to resume' : `resumed ${resumed.length} deployment${resumed.length === 1 ? '' : 's'}: ${resumed.map((view) => view.name).join(', ')}`}`,
          `  point the CLI at it: export TRADESWARM_URL=${server.url}${apiKey ? ' TRADESWARM_API_KEY=<the key>' : ''}`,
          '  then: tradeswarm deploy examples/quickstart.yaml; tradeswarm ps; tradeswarm orders quickstart --follow',
          '',
        ].join('\n'),
      );
      let stopping = false;
      const stop = (name: NodeJS.Signals): void => {
        if (stopping) process.exit(128 + (name === 'SIGINT' ? 2 : 15));
        stopping = true;
        process.stderr.write(`\n${name}: stopping (deployments drain and checkpoint; they resume at the next start); send it again to exit at once\n`);
        void (async () => {
          await server.close();
          await controlPlane.close();
          await runtime.close();
          await store.close();
          process.exit(0);
        })();
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
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
