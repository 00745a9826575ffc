import { timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { InvalidInputError, TradeswarmError, errorMessage, type Logger } from '../../core/index.js';
import { ExecServiceClosedError, SessionLimitError, SessionLostError, SessionNotFoundError } from '../errors.js';
import { MAX_CODE_BYTES } from '../request.js';
import type { ExecService } from '../service.js';

/** Options of {@link startExecHttpServer}. */
export interface ExecHttpOptions {
  /** @default 0 (the OS picks) */
  port?: number;
  /** @default '127.0.0.1' */
  host?: string;
  /** When set, every request must send `Authorization: Bearer <apiKey>` (the metrics endpoints too). */
  apiKey?: string;
  logger?: Logger;
}

/** A running HTTP front of an {@link ExecService}. */
export interface ExecHttpServer {
  /** e.g. `http://127.0.0.1:41234` */
  readonly url: string;
  readonly port: number;
  /** Stops listening; the service itself is left running (close it separately). */
  close(): Promise<void>;
}

/** The JSON body of every error answer. */
interface ErrorBody {
  error: { name: string; message: string; retryable: boolean; field?: string; retryAfterMs?: number };
}

/**
 * Maps an error to an HTTP status that says whether to retry: 400 (fix the request), 404 (no such
 * session of the caller's), 409 (the user's session limit: close one), 410 (session lost), 429 (busy,
 * or the service's session limit: retry after `Retry-After`), 503 (provider unavailable or service
 * closing), 500 (a fault of ours).
 */
export function statusForError(error: unknown): number {
  if (error instanceof InvalidInputError) return 400;
  if (error instanceof SessionNotFoundError) return 404;
  if (error instanceof SessionLimitError) return error.retryable ? 429 : 409;
  if (error instanceof SessionLostError) return 410;
  if (error instanceof ExecServiceClosedError) return 503;
  const name = (error as { name?: unknown }).name;
  if (name === 'QueueFullError' || name === 'QueueTimeoutError') return 429;
  if (error instanceof TradeswarmError && error.retryable) return 503;
  return 500;
}

function errorBody(error: unknown): ErrorBody {
  const retryAfterMs = (error as { retryAfterMs?: unknown }).retryAfterMs;
  return {
    error: {
      name: error instanceof Error ? error.name : 'Error',
      message: errorMessage(error),
      retryable: error instanceof TradeswarmError ? error.retryable : false,
      ...(error instanceof InvalidInputError ? { field: error.field } : {}),
      ...(typeof retryAfterMs === 'number' ? { retryAfterMs } : {}),
    },
  };
}

function sendError(reply: FastifyReply, error: unknown): FastifyReply {
  const status = statusForError(error);
  const body = errorBody(error);
  if (body.error.retryAfterMs !== undefined) void reply.header('retry-after', String(Math.max(1, Math.ceil(body.error.retryAfterMs / 1000))));
  return reply.code(status).send(body);
}

function authorised(request: FastifyRequest, apiKey: string | undefined): boolean {
  if (apiKey === undefined) return true;
  const header = request.headers.authorization ?? '';
  const expected = Buffer.from(`Bearer ${apiKey}`);
  const given = Buffer.from(header);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/**
 * Builds the routes (without listening), for tests with `inject` and for {@link startExecHttpServer}:
 * - `POST /v1/exec` `{code, language?, user?, priority?, timeoutMs?, env?, session?}` → the result;
 * - `POST /v1/exec/sessions` `{user?}` → a session; `DELETE /v1/exec/sessions/:id?user=<user>`. A
 *   session answers only to the user that opened it (404 to anyone else, as for an unknown id); with
 *   `apiKey`, only requests with the key reach sessions at all;
 * - `GET /v1/exec/metrics` (the service's JSON figures), `GET /metrics` (Prometheus), `GET /healthz`.
 * A client that disconnects while its request waits in the queue takes it out of the queue.
 */
export function buildExecHttpApp(service: ExecService, options: Pick<ExecHttpOptions, 'apiKey' | 'logger'> = {}): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: MAX_CODE_BYTES * 2 });
  app.addHook('onRequest', async (request, reply) => {
    if (request.url === '/healthz' || authorised(request, options.apiKey)) return;
    await reply.code(401).send({ error: { name: 'Unauthorized', message: 'send Authorization: Bearer <api key> (the key `tradeswarm exec serve` printed)', retryable: false } });
  });
  app.setErrorHandler((error, _request, reply) => {
    // Fastify's own errors (bad JSON, body too large) carry a 4xx status code.
    const status = (error as { statusCode?: number }).statusCode;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      return reply.code(status).send({ error: { name: 'BadRequest', message: `${errorMessage(error)}; send a JSON object like {"code": "print(1)"}`, retryable: false } });
    }
    options.logger?.error({ error: errorMessage(error) }, 'exec http: unexpected error');
    return sendError(reply, error);
  });

  app.post('/v1/exec', async (request, reply) => {
    const aborted = new AbortController();
    // The response's close (not the request's, which fires once the body is read) tells a disconnect.
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) aborted.abort(new Error('the client disconnected'));
    });
    try {
      const body = request.body as Record<string, unknown> | null;
      if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new InvalidInputError('request', 'must be a JSON object like {"code": "print(1)", "language": "python"}');
      return await service.exec({ ...(body as { code: string }), signal: aborted.signal });
    } catch (error) {
      return sendError(reply, error);
    }
  });
  app.post('/v1/exec/sessions', async (request, reply) => {
    try {
      const body = (request.body ?? {}) as { user?: unknown };
      if (body.user !== undefined && typeof body.user !== 'string') throw new InvalidInputError('user', 'must be a string');
      return await reply.code(201).send(await service.openSession(body.user === undefined ? {} : { user: body.user }));
    } catch (error) {
      return sendError(reply, error);
    }
  });
  app.delete<{ Params: { id: string }; Querystring: { user?: unknown } }>('/v1/exec/sessions/:id', async (request, reply) => {
    try {
      const { user } = request.query;
      if (user !== undefined && typeof user !== 'string') throw new InvalidInputError('user', 'must be given once, as ?user=<the user that opened the session>');
      await service.closeSession(request.params.id, user === undefined ? {} : { user });
      return await reply.code(204).send();
    } catch (error) {
      return sendError(reply, error);
    }
  });
  app.get('/v1/exec/metrics', () => service.metrics());
  app.get('/metrics', async (_request, reply) => {
    const { contentType, body } = await service.prometheus();
    return reply.header('content-type', contentType).send(body);
  });
  app.get('/healthz', () => ({ ok: true }));
  return app;
}

/** Serves {@link buildExecHttpApp} on `host:port`. */
export async function startExecHttpServer(service: ExecService, options: ExecHttpOptions = {}): Promise<ExecHttpServer> {
  const app = buildExecHttpApp(service, options);
  await app.listen({ port: options.port ?? 0, host: options.host ?? '127.0.0.1' });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('the exec HTTP server has no TCP address');
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return { url: `http://${host}:${address.port}`, port: address.port, close: () => app.close() };
}
