import { timingSafeEqual } from 'node:crypto';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify';
import { InvalidInputError, createLogger, wholeNumber, type Logger } from '../core/index.js';
import { ErrorCode, type ErrorBody } from '../core/index.js';
import { errorHandler } from './replies.js';

/** The route that answers `{ ok: true }` (and what the app's `health` adds) while the process serves, to anyone (no API key). */
export const HEALTH_PATH = '/healthz';

/** Options of {@link createApp}. Every field is optional. */
export interface AppOptions {
  /**
   * When set, every request but {@link HEALTH_PATH} must send `Authorization: Bearer <apiKey>`, or gets 401.
   * @default no key: anyone who reaches the port may call every route
   */
  apiKey?: string;
  /**
   * The command that serves the app, named where it helps the caller (a 401 says whose key to send).
   * @default 'tradeswarm serve'
   */
  name?: string;
  /**
   * Largest request body, in bytes; a route may set a limit of its own. A whole number >= 1.
   * @default 1_048_576 (1 MiB)
   */
  bodyLimitBytes?: number;
  /**
   * Where the app logs (requests themselves are not logged; unexpected errors are).
   * @default createLogger('api')
   */
  logger?: Logger;
  /**
   * What {@link HEALTH_PATH} answers beside `ok: true`, asked at each request (a server's role).
   * @default nothing more
   */
  health?: () => object;
}

/** {@link AppOptions} with every default applied and every value checked. */
export interface AppConfig {
  readonly apiKey: string | undefined;
  readonly name: string;
  readonly bodyLimitBytes: number;
  readonly logger: Logger;
  readonly health: () => object;
}

/**
 * Applies defaults to `options` and checks them once.
 * @throws InvalidInputError naming `apiKey` (empty), `name` (empty) or `bodyLimitBytes`.
 */
export function compileAppOptions(options: AppOptions = {}): AppConfig {
  if (options.apiKey !== undefined && (typeof options.apiKey !== 'string' || options.apiKey === '')) {
    throw new InvalidInputError('apiKey', 'must be a non-empty string, or left out to serve without a key');
  }
  const name = options.name ?? 'tradeswarm serve';
  if (typeof name !== 'string' || name.trim() === '') throw new InvalidInputError('name', 'must be the non-empty name of the serving command');
  return Object.freeze({
    apiKey: options.apiKey,
    name,
    bodyLimitBytes: wholeNumber('bodyLimitBytes', options.bodyLimitBytes ?? 1_048_576, 1),
    logger: options.logger ?? createLogger('api'),
    health: options.health ?? (() => ({})),
  });
}

/** Whether `request` carries `Bearer <apiKey>`, compared in constant time. */
function authorised(request: FastifyRequest, apiKey: string | undefined): boolean {
  if (apiKey === undefined) return true;
  const given = Buffer.from(request.headers.authorization ?? '');
  const expected = Buffer.from(`Bearer ${apiKey}`);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/**
 * One HTTP app that the routes of several domains are mounted on, as Fastify plugins
 * (`await app.register(execRoutes, { service })`), so that one `serve` process hosts them together.
 * It brings what they share: the API key check, the body limit, the logger, {@link HEALTH_PATH},
 * and errors answered as JSON ({@link ErrorBody}) with the status the project's error tree gives
 * (a plugin adds its domain's own with `mapErrors`). Not listening yet: see {@link listen}, or
 * `app.inject` in tests.
 * @throws InvalidInputError naming the option at fault.
 */
export function createApp(options: AppOptions = {}): FastifyInstance {
  const config = compileAppOptions(options);
  // Typed as Fastify's logger, so that the app is a plain FastifyInstance plugins of any domain accept.
  const loggerInstance: FastifyBaseLogger = config.logger;
  const app = Fastify({ loggerInstance, logController: new LogController({ disableRequestLogging: true }), bodyLimit: config.bodyLimitBytes });
  app.addHook('onRequest', async (request, reply) => {
    if (request.url === HEALTH_PATH || authorised(request, config.apiKey)) return;
    const body: ErrorBody = { error: { code: ErrorCode.unauthorized, name: 'Unauthorized', message: `send Authorization: Bearer <api key> (the key \`${config.name}\` printed)`, retryable: false } };
    await reply.code(401).send(body);
  });
  app.setErrorHandler(errorHandler());
  app.get(HEALTH_PATH, () => ({ ok: true, ...config.health() }));
  return app;
}

/** An app listening on a port, from {@link listen}. */
export interface ApiServer {
  /** e.g. `http://127.0.0.1:41234` */
  readonly url: string;
  readonly port: number;
  /** Stops listening and waits for requests in flight; what the routes serve is left running (close it separately). */
  close(): Promise<void>;
}

/**
 * Serves `app` on `host:port`.
 * @param options.port @default 0 (the OS picks)
 * @param options.host @default '127.0.0.1'
 */
export async function listen(app: FastifyInstance, options: { port?: number; host?: string } = {}): Promise<ApiServer> {
  await app.listen({ port: options.port ?? 0, host: options.host ?? '127.0.0.1' });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('the HTTP server has no TCP address');
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return { url: `http://${host}:${address.port}`, port: address.port, close: () => app.close() };
}
