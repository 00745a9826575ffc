import type { FastifyPluginAsync } from 'fastify';
import { mapErrors } from '../../api/index.js';
import { InvalidInputError } from '../../core/index.js';
import { ExecServiceClosedError, SessionLimitError, SessionLostError, SessionNotFoundError } from '../errors.js';
import { MAX_CODE_BYTES } from '../request.js';
import type { ExecService } from '../service.js';

/** Options of {@link execRoutes}. */
export interface ExecRoutesOptions {
  /** The service the routes run code on; it is left running when the app closes (close it separately). */
  readonly service: ExecService;
}

/** Room for the largest program as JSON, escapes included. */
const BODY_LIMIT_BYTES = MAX_CODE_BYTES * 2;

/**
 * The statuses of the service's own errors, each saying whether to retry: 404 (no such session of the
 * caller's), 409 (the user's session limit: close one), 410 (session lost), 429 (busy, or the service's
 * session limit: retry after `Retry-After`), 503 (service closing). The rest (400 for bad input, 503
 * for the provider failing, 500) is the project's error tree (`statusForError` of the api domain).
 */
export function execErrorStatus(error: unknown): number | undefined {
  if (error instanceof SessionNotFoundError) return 404;
  if (error instanceof SessionLimitError) return error.retryable ? 429 : 409;
  if (error instanceof SessionLostError) return 410;
  if (error instanceof ExecServiceClosedError) return 503;
  const name = (error as { name?: unknown }).name;
  if (name === 'QueueFullError' || name === 'QueueTimeoutError') return 429;
  return undefined;
}

/**
 * The execution service's HTTP routes, a Fastify plugin for the api domain's `createApp`
 * (`await app.register(execRoutes, { service })`), which brings the API key check and `/healthz`:
 * - `POST /v1/exec` `{code, language?, user?, priority?, timeoutMs?, env?, session?}` → the result;
 * - `POST /v1/exec/sessions` `{user?}` → a session; `DELETE /v1/exec/sessions/:id?user=<user>`. A
 *   session answers only to the user that opened it (404 to anyone else, as for an unknown id); with an
 *   API key, only requests with the key reach sessions at all;
 * - `GET /v1/exec/metrics` (the service's JSON figures), `GET /metrics` (Prometheus).
 * A client that disconnects while its request waits in the queue takes it out of the queue.
 */
export const execRoutes: FastifyPluginAsync<ExecRoutesOptions> = (app, { service }) => {
  mapErrors(app, { statusOf: execErrorStatus, requestHint: 'send a JSON object like {"code": "print(1)"}' });

  app.post('/v1/exec', { bodyLimit: BODY_LIMIT_BYTES }, async (request, reply) => {
    const aborted = new AbortController();
    // The response's close (not the request's, which fires once the body is read) tells a disconnect.
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) aborted.abort(new Error('the client disconnected'));
    });
    const body = request.body as Record<string, unknown> | null;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new InvalidInputError('request', 'must be a JSON object like {"code": "print(1)", "language": "python"}');
    return service.exec({ ...(body as { code: string }), signal: aborted.signal });
  });
  app.post('/v1/exec/sessions', { bodyLimit: BODY_LIMIT_BYTES }, async (request, reply) => {
    const body = (request.body ?? {}) as { user?: unknown };
    if (body.user !== undefined && typeof body.user !== 'string') throw new InvalidInputError('user', 'must be a string');
    return reply.code(201).send(await service.openSession(body.user === undefined ? {} : { user: body.user }));
  });
  app.delete<{ Params: { id: string }; Querystring: { user?: unknown } }>('/v1/exec/sessions/:id', async (request, reply) => {
    const { user } = request.query;
    if (user !== undefined && typeof user !== 'string') throw new InvalidInputError('user', 'must be given once, as ?user=<the user that opened the session>');
    await service.closeSession(request.params.id, user === undefined ? {} : { user });
    return reply.code(204).send();
  });
  app.get('/v1/exec/metrics', () => service.metrics());
  app.get('/metrics', async (_request, reply) => {
    const { contentType, body } = await service.prometheus();
    return reply.header('content-type', contentType).send(body);
  });
  return Promise.resolve();
};
