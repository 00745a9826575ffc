import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { loadTemplateFile, startLocalCloud, type LocalCloudOptions } from '../localcloud/index.js';
import { InvalidInputError, createLogger, errorMessage } from '../core/index.js';
import { commandDescription } from './commands.js';

function sandboxNetworkOption(value: string): LocalCloudOptions['sandboxNetwork'] {
  if (value === 'host' || value === 'routed') return value;
  throw new InvalidInputError('--sandbox-network', `must be host (sandboxes without egress rules share this machine's network) or routed (each its own, behind a firewall), got ${JSON.stringify(value)}`);
}

interface CloudServeFlags {
  port: number;
  host: string;
  apiKey?: string;
  dataDir?: string;
  template: string[];
  warmPool: number;
  maxSandboxes: number;
  sandboxNetwork: string;
  domain?: string;
  tlsPort?: number;
  tlsCert?: string;
  tlsKey?: string;
}

/** The HTTPS listener `--tls-port`, `--tls-cert` and `--tls-key` ask for: all three, or none. */
function tlsOption(flags: CloudServeFlags): Pick<LocalCloudOptions, 'tls'> {
  const given = [flags.tlsPort, flags.tlsCert, flags.tlsKey].filter((value) => value !== undefined).length;
  if (given === 0) return {};
  if (given < 3) throw new InvalidInputError('--tls-port', 'needs --tls-cert and --tls-key with it (PEM files; the certificate naming *.<domain>): give all three, or none for plain HTTP only');
  const read = (flag: string, file: string): string => {
    try {
      return readFileSync(file, 'utf8');
    } catch (error) {
      throw new InvalidInputError(flag, `could not read ${file}: ${errorMessage(error)}`);
    }
  };
  return { tls: { port: flags.tlsPort!, cert: read('--tls-cert', flags.tlsCert!), key: read('--tls-key', flags.tlsKey!) } };
}

/** `tradeswarm cloud serve`: runs the local E2B-compatible cloud until interrupted. */
export function registerCloudCommands(program: Command): void {
  const cloud = program.command('cloud').description(commandDescription('cloud'));
  cloud
    .command('serve')
    .description('serve the E2B API, envd and the code interpreter on one port until Ctrl-C')
    .option('--port <port>', 'TCP port', (value) => Number(value), 49982)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--api-key <key>', 'API key clients must send (default: a new random key)')
    .option('--data-dir <dir>', 'folder for sandbox files and kept snapshots, which a server started again on it lists (default: a temporary folder, removed on stop)')
    .option('--template <file>', 'register a local template from a YAML file (repeatable)', (file: string, files: string[]) => [...files, file], [] as string[])
    .option('--warm-pool <n>', 'sandboxes kept started ahead of demand per template in use', (value) => Number(value), 2)
    .option('--max-sandboxes <n>', 'sandboxes running at once', (value) => Number(value), 100)
    .option('--domain <domain>', "domain sandboxes report as theirs, so getHost(port) gives <port>-<sandboxId>.<domain> (every such name must resolve to this server, as E2B's wildcard DNS does)")
    .option('--tls-port <port>', "also serve over HTTPS on this port (443 for E2B's https://<port>-<sandboxId>.<domain>), with --tls-cert and --tls-key", (value) => Number(value))
    .option('--tls-cert <file>', 'PEM certificate for --tls-port, naming *.<domain>')
    .option('--tls-key <file>', 'PEM private key of --tls-cert')
    .option('--sandbox-network <network>', "network of sandboxes created without egress rules: host (the host's own; they reach its 127.0.0.1) or routed (each its own behind a firewall, so updateNetwork works on all)", 'host')
    .action(async (options: CloudServeFlags) => {
      const logger = createLogger('localcloud', process.env.LOG_LEVEL ?? 'info');
      const cloudInstance = await startLocalCloud({
        port: options.port,
        host: options.host,
        apiKey: options.apiKey,
        dataDir: options.dataDir,
        templates: options.template.map(loadTemplateFile),
        warmPoolSize: options.warmPool,
        maxSandboxes: options.maxSandboxes,
        sandboxNetwork: sandboxNetworkOption(options.sandboxNetwork),
        ...(options.domain === undefined ? {} : { domain: options.domain }),
        ...tlsOption(options),
        logger,
      });
      const { support } = cloudInstance;
      process.stdout.write(
        [
          `tradeswarm local cloud listening on ${cloudInstance.apiUrl}`,
          `templates: ${cloudInstance.templates.names().join(', ')}`,
          `isolation: namespaces ${support.namespaces ? 'yes' : 'NO'}, private network ${support.networkNamespace ? 'yes' : 'NO'}, routed network ${support.routedNetworkMissing.length === 0 ? 'yes' : 'NO'}, cgroups ${Object.entries(support.cgroups).map(([name, ok]) => `${name} ${ok ? 'yes' : 'NO'}`).join(', ')}`,
          ...support.problems.map((problem) => `warning: ${problem}`),
          '',
          'Point any e2b SDK program at it:',
          `  export E2B_API_URL=${cloudInstance.apiUrl}`,
          `  export E2B_SANDBOX_URL=${cloudInstance.sandboxUrl}`,
          `  export E2B_API_KEY=${cloudInstance.apiKey}`,
          '',
          `Prometheus metrics: ${cloudInstance.apiUrl}/metrics (send the key as X-API-KEY)`,
          cloudInstance.domain === null
            ? `A sandbox's own ports: http://<port>-<sandboxId>.localhost:${cloudInstance.port}/ (with E2B_DOMAIN=localhost:${cloudInstance.port}, what getHost(port) gives)`
            : `A sandbox's own ports: http://<port>-<sandboxId>.${cloudInstance.domain}:${cloudInstance.port}/${cloudInstance.tlsPort === undefined ? '' : ` and https://<port>-<sandboxId>.${cloudInstance.domain}${cloudInstance.tlsPort === 443 ? '' : `:${cloudInstance.tlsPort}`}/`} (getHost(port) gives <port>-<sandboxId>.${cloudInstance.domain})`,
          '',
        ].join('\n'),
      );
      const stop = (): void => {
        process.stdout.write('stopping: killing every sandbox\n');
        void cloudInstance.close().then(() => process.exit(0));
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
