import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { extname } from 'node:path';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { Command } from 'commander';
import { InvalidInputError, TradeswarmError, createLogger, errorChain } from '../core/index.js';
import { createApp, listen } from '../api/index.js';
import {
  createExecMcpServer,
  TemplateNotFoundError,
  createExecService,
  defaultConcurrency,
  execRoutes,
  type ExecRequest,
  type ExecResult,
  type ExecService,
  type ExecServiceOptions,
} from '../exec/index.js';
import { ControlPlaneClient } from '../client/index.js';
import { registerControlPlaneTools } from '../mcp/index.js';
import { wholeNumberFlag } from './flags.js';
import { parseSandboxFlag } from './sandbox.js';
import { commandDescription } from './commands.js';

interface SandboxChoice {
  sandbox: string;
  allowInternetAccess?: boolean;
  template?: string;
}

/** The flag that lets executed code use the network, shared by the commands that start a service. */
const ALLOW_INTERNET_FLAG = '--allow-internet-access';
const ALLOW_INTERNET_HELP =
  "let executed code use the network: on the local cloud this machine's, loopback included (this service, the local cloud's API, " +
  'anything on 127.0.0.1); on E2B cloud the internet. Off by default: code gets no network';

const CONCURRENCY_FLAG = '--concurrency';

/** Which template the sandboxes are made from: the flag, else the variable E2B's tools read. */
const TEMPLATE_FLAG = '--template';
const TEMPLATE_ENV = 'E2B_TEMPLATE_ID';
const TEMPLATE_HELP = `the template (name or id) the sandboxes are made from (default: ${TEMPLATE_ENV}, else the service's own on the local cloud, code-interpreter-v1 on E2B)`;

/** The template asked for and where it came from, or undefined for the service's default. */
function templateChoice(given: string | undefined): { template: string; source: string } | undefined {
  const fromEnv = process.env[TEMPLATE_ENV];
  const choice = given !== undefined ? { template: given, source: TEMPLATE_FLAG } : fromEnv !== undefined && fromEnv !== '' ? { template: fromEnv, source: TEMPLATE_ENV } : undefined;
  if (choice !== undefined && choice.template.trim() === '') throw new InvalidInputError(choice.source, 'is empty: name a template (e.g. code-interpreter-v1), or leave it out for the default');
  return choice;
}

/**
 * Starts the execution service with `choice`'s provider, network and template (plus `extra`): the
 * embedded local cloud, or E2B cloud with `E2B_API_KEY` (and `E2B_DOMAIN`, read by the SDK). A template
 * the provider does not have is reported under the flag or variable that named it.
 */
async function startService(choice: SandboxChoice, extra: Pick<ExecServiceOptions, 'pool' | 'queue'> = {}): Promise<ExecService> {
  const sandbox = parseSandboxFlag(choice.sandbox);
  const template = templateChoice(choice.template);
  const options: ExecServiceOptions = {
    ...extra,
    logger: createLogger('exec'),
    allowInternetAccess: choice.allowInternetAccess === true,
    ...(template === undefined ? {} : { template: template.template }),
    ...(sandbox.kind === 'local' ? {} : { connection: sandbox.connection }),
  };
  try {
    return await createExecService(options);
  } catch (error) {
    if (error instanceof TemplateNotFoundError && template !== undefined) {
      throw new TemplateNotFoundError(error.template, error.providerMessage, template.source, { cause: error.cause });
    }
    throw error;
  }
}

function languageOf(file: string | undefined, given: string | undefined): string {
  if (given !== undefined) return given;
  const extension = file === undefined ? '' : extname(file).toLowerCase();
  return extension === '.js' || extension === '.mjs' || extension === '.cjs' ? 'javascript' : 'python';
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function printResult(result: ExecResult, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  process.stdout.write(result.stdout);
  process.stderr.write(result.stderr);
  const main = result.results.find((item) => item.isMainResult === true);
  if (main && typeof main.text === 'string') process.stdout.write(`${main.text}\n`);
  if (result.error) process.stderr.write(`${result.error.traceback || `${result.error.name}: ${result.error.value}`}\n`);
}

/** POSTs to a running `tradeswarm exec serve`. */
async function execRemote(url: string, apiKey: string | undefined, body: object): Promise<ExecResult> {
  let response: Response;
  try {
    response = await fetch(new URL('/v1/exec', url), {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}) },
      body: JSON.stringify(body),
    });
  } catch (error) {
    throw new TradeswarmError(`--url: could not reach tradeswarm exec serve at ${url} (${errorChain(error)}); start it with \`tradeswarm exec serve\`, or check the address`, {
      cause: error,
      retryable: true,
    });
  }
  const answer = (await response.json()) as ExecResult & { error?: { message?: string } };
  if (!response.ok) throw new Error(`${url} answered ${response.status}: ${answer.error?.message ?? JSON.stringify(answer)}`);
  return answer;
}

/**
 * `stop` made safe to call from several places at once (a signal, the client leaving, the transport
 * closing because the server closed it): it runs once and every caller waits for that run. It starts on
 * the next microtask, so a call it makes back to itself synchronously already finds it running.
 */
function once(stop: () => Promise<void>): () => Promise<void> {
  let stopping: Promise<void> | undefined;
  return () => (stopping ??= Promise.resolve().then(stop));
}

/** Runs `stop`, then ends the process: 0 when it stopped cleanly, 1 (with the reason on stderr) when not. */
function exitAfter(stop: () => Promise<void>): void {
  stop().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`tradeswarm: could not stop cleanly: ${errorChain(error)}\n`);
      process.exit(1);
    },
  );
}

function stopOnSignal(stop: () => Promise<void>): void {
  const handler = (): void => exitAfter(stop);
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
}

/** `tradeswarm exec`, `tradeswarm exec serve` and `tradeswarm mcp`. */
export function registerExecCommands(program: Command): void {
  // `exec` and `exec serve` share option names (--api-key, --sandbox): options after `serve` are its own.
  program.enablePositionalOptions();
  const exec = program
    .command('exec')
    .enablePositionalOptions()
    .description(commandDescription('exec'))
    .option('-c, --code <code>', 'the program text')
    .option('-f, --file <file>', 'a file holding the program (.py, .js)')
    .option('-l, --language <language>', 'python or javascript (default: from the file extension, else python)')
    .option('--timeout-ms <ms>', 'time limit', (value) => Number(value))
    .option('--user <name>', 'who the execution runs for (fairness is per user)')
    .option('--url <url>', 'send to a running `tradeswarm exec serve` instead of starting a service here')
    .option('--api-key <key>', 'API key of that server (default: TRADESWARM_EXEC_API_KEY)')
    .option('--sandbox <where>', 'local (embedded local cloud) or e2b (E2B_API_KEY)', 'local')
    .option(`${TEMPLATE_FLAG} <template>`, TEMPLATE_HELP)
    .option(ALLOW_INTERNET_FLAG, ALLOW_INTERNET_HELP)
    .option('--json', 'print the whole result as JSON')
    .action(async (options: { code?: string; file?: string; language?: string; timeoutMs?: number; user?: string; url?: string; apiKey?: string; sandbox: string; template?: string; allowInternetAccess?: boolean; json?: boolean }) => {
      if (options.code !== undefined && options.file !== undefined) throw new InvalidInputError('-c/-f', 'give the code with -c or -f, not both');
      if (options.url !== undefined && options.allowInternetAccess === true) {
        throw new InvalidInputError(ALLOW_INTERNET_FLAG, `the server at --url decides its sandboxes' network; start it with \`tradeswarm exec serve ${ALLOW_INTERNET_FLAG}\` instead`);
      }
      if (options.url !== undefined && options.template !== undefined) {
        throw new InvalidInputError(TEMPLATE_FLAG, `the server at --url decides its sandboxes' template; start it with \`tradeswarm exec serve ${TEMPLATE_FLAG} ${options.template}\` instead`);
      }
      const code = options.code ?? (options.file !== undefined ? await readFile(options.file, 'utf8') : await readStdin());
      // The service validates every field (language included) and names the one at fault.
      const request = {
        code,
        language: languageOf(options.file, options.language),
        ...(options.user === undefined ? {} : { user: options.user }),
        ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
      };
      let result: ExecResult;
      if (options.url !== undefined) {
        result = await execRemote(options.url, options.apiKey ?? process.env.TRADESWARM_EXEC_API_KEY, request);
      } else {
        const service = await startService(options, { pool: { minSize: 1, targetSize: 1 } });
        try {
          result = await service.exec(request as ExecRequest);
        } finally {
          await service.close();
        }
      }
      printResult(result, options.json === true);
      if (result.error) process.exitCode = 1;
    });

  exec
    .command('serve')
    .description('serve the execution service over HTTP (POST /v1/exec, GET /v1/exec/metrics, GET /metrics) until Ctrl-C')
    .option('--port <port>', 'TCP port', (value) => Number(value), 8787)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--api-key <key>', 'require Authorization: Bearer <key> (default: TRADESWARM_EXEC_API_KEY, else no key)')
    .option('--sandbox <where>', 'local (embedded local cloud) or e2b (E2B_API_KEY)', 'local')
    .option(`${TEMPLATE_FLAG} <template>`, TEMPLATE_HELP)
    .option(ALLOW_INTERNET_FLAG, ALLOW_INTERNET_HELP)
    .option(
      `${CONCURRENCY_FLAG} <n>`,
      'executions that run at once; the local cloud keeps twice as many sandboxes warm and listens once this many are ready ' +
        `(default: ${defaultConcurrency('local', availableParallelism())} here for the local cloud, which follows the cores; ${defaultConcurrency('e2b', availableParallelism())} for E2B, its rate limits)`,
      (value) => wholeNumberFlag(CONCURRENCY_FLAG, value, 1),
    )
    .action(async (options: { port: number; host: string; apiKey?: string; sandbox: string; template?: string; allowInternetAccess?: boolean; concurrency?: number }) => {
      const service = await startService(options, options.concurrency === undefined ? {} : { queue: { concurrency: options.concurrency } });
      const apiKey = options.apiKey ?? process.env.TRADESWARM_EXEC_API_KEY;
      const app = createApp({ name: 'tradeswarm exec serve', ...(apiKey ? { apiKey } : {}) });
      await app.register(execRoutes, { service });
      const server = await listen(app, { port: options.port, host: options.host });
      const { pool } = service.metrics();
      process.stdout.write(
        [
          `tradeswarm exec service listening on ${server.url} (${pool.idle} warm sandboxes, ${options.sandbox} sandboxes, ` +
            `${options.allowInternetAccess === true ? 'code may use the network' : 'no network for code'})`,
          `  curl -s ${server.url}/v1/exec -H 'content-type: application/json'${apiKey ? ` -H 'authorization: Bearer ${apiKey}'` : ''} -d '{"code": "print(6 * 7)"}'`,
          `  metrics: ${server.url}/v1/exec/metrics (JSON), ${server.url}/metrics (Prometheus)`,
          '',
        ].join('\n'),
      );
      stopOnSignal(
        once(async () => {
          await server.close();
          await service.close();
        }),
      );
    });

  program
    .command('mcp')
    .description(commandDescription('mcp'))
    .option('--user <name>', 'who the executions run for', 'mcp')
    .option('--sandbox <where>', 'local (embedded local cloud) or e2b (E2B_API_KEY)', 'local')
    .option(`${TEMPLATE_FLAG} <template>`, TEMPLATE_HELP)
    .option(ALLOW_INTERNET_FLAG, ALLOW_INTERNET_HELP)
    .option('--url <url>', 'a running `tradeswarm serve` whose deployments the assistant may drive (default: TRADESWARM_URL, else none: run_code only)')
    .option('--api-key <key>', "that server's API key (default: TRADESWARM_API_KEY)")
    .action(async (options: { user: string; sandbox: string; template?: string; allowInternetAccess?: boolean; url?: string; apiKey?: string }) => {
      // stdout carries the protocol; logs go to stderr (createLogger's default).
      const service = await startService(options, { pool: { minSize: 1, targetSize: 2 } });
      const server = createExecMcpServer(service, { user: options.user });
      // Without a control plane the assistant sees run_code alone, not tools that could only fail.
      const url = options.url ?? process.env.TRADESWARM_URL;
      if (url !== undefined && url !== '') registerControlPlaneTools(server, new ControlPlaneClient({ url, ...(options.apiKey === undefined ? {} : { apiKey: options.apiKey }) }));
      const transport = new StdioServerTransport();
      // Closing the server closes the transport, whose onclose leads here again: `once` ends that loop.
      const stop = once(async () => {
        await server.close();
        await service.close();
      });
      transport.onclose = () => exitAfter(stop);
      // The client leaving closes stdin; the transport does not notice, so the session ends here.
      process.stdin.once('end', () => exitAfter(stop));
      stopOnSignal(stop);
      await server.connect(transport);
    });
}
