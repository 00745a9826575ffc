import type { FastifyPluginAsync } from 'fastify';
import type { z } from 'zod';
import { mapErrors } from '../api/index.js';
import { InvalidInputError } from '../core/index.js';
import { isLeaseLostError } from '../health/index.js';
import { SpecError, specProblemOf } from '../runspec/index.js';
import type { ControlPlane } from './controlplane.js';
import { CapacityError, DeploymentNameTakenError, DeploymentNotFoundError, NotLeaderError, TierNotAllowedError } from './errors.js';
import { OPENAPI_PATH, openApiDocument } from './openapi.js';
import { SPEC_LIMIT_BYTES, barsBodySchema, deployBodySchema, eventsQuerySchema, logsQuerySchema, ordersQuerySchema, scaleBodySchema, stopQuerySchema, streamQuerySchema } from './schemas.js';

/** Options of {@link controlPlaneRoutes}. */
export interface ControlPlaneRoutesOptions {
  /**
   * The control plane the routes drive; or what gives it at each request, throwing (a NotLeaderError:
   * 503) while this server follows another.
   */
  readonly controlPlane: ControlPlane | (() => ControlPlane);
}

/** A comment line this often keeps proxies from closing an idle stream. */
const STREAM_KEEPALIVE_MS = 15_000;

/** Parses `value` with `schema`, or throws a SpecError naming every field at fault and what it allows. */
function parse<T>(schema: z.ZodType<T>, value: unknown, source: string): T {
  const result = schema.safeParse(value ?? {});
  if (!result.success) throw new SpecError(source, result.error.issues.map((issue) => specProblemOf(issue, value)));
  return result.data;
}

/**
 * The control plane's statuses: 404 for an unknown deployment, 409 for a taken name or a full
 * environment (free sandboxes first), 400 for a tier the environment does not allow, 503 while this
 * server follows another (the body names the leader's URL) or a write was refused because it no
 * longer leads. Spec mistakes
 * are 400 by the project's error tree (a SpecError is invalid input), with every field listed.
 */
export function controlPlaneErrorStatus(error: unknown): number | undefined {
  if (error instanceof DeploymentNotFoundError) return 404;
  if (isLeaseLostError(error) || error instanceof NotLeaderError) return 503;
  if (error instanceof DeploymentNameTakenError || error instanceof CapacityError) return 409;
  if (error instanceof TierNotAllowedError || error instanceof SpecError || error instanceof InvalidInputError) return 400;
  return undefined;
}

/**
 * The control plane's HTTP routes, a Fastify plugin for the api domain's `createApp`:
 * - `POST /v1/deployments` `{spec, baseDir, name?, env?}` → 201 and the deployment;
 * - `GET /v1/deployments` → every deployment (what `ps` shows);
 * - `GET /v1/deployments/:ref` → one, by id or name, with agents, positions and latest events;
 * - `GET /v1/deployments/:ref/orders?fromStep=&limit=`, `…/fills`, `…/events?after=&limit=`,
 *   `…/logs?agent=&after=&limit=` (what its agents printed);
 * - `POST /v1/deployments/:ref/bars` `{bars: [{symbol, time, open, high, low, close, volume}]}` → published
 *   into a deployment whose feed is the bus;
 * - `POST /v1/deployments/:ref/agents/:agent/restart` → a lost agent climbs the recovery ladder once (manual recovery);
 * - `POST /v1/deployments/:ref/scale` `{role, replicas}` → the agents of `role` run alone (1) or with a hot standby (2);
 * - `POST /v1/deployments/:ref/stop` → once it stopped;
 * - `GET /v1/stream?deployment=` → server-sent events as the store records them: `state` (a
 *   deployment's state), `step` (a closed step with its orders and fills), `event` (its history);
 * - `GET /v1/openapi.json` → the OpenAPI 3.1 document of these routes.
 */
export const controlPlaneRoutes: FastifyPluginAsync<ControlPlaneRoutesOptions> = (app, options) => {
  const given = options.controlPlane;
  const plane = typeof given === 'function' ? given : () => given;
  mapErrors(app, { statusOf: controlPlaneErrorStatus, requestHint: 'send a JSON object like {"spec": "<YAML text>", "baseDir": "/path/of/the/spec"}' });

  app.post('/v1/deployments', { bodyLimit: SPEC_LIMIT_BYTES * 2 }, async (request, reply) => {
    const body = parse(deployBodySchema, request.body, 'the request body');
    const view = await plane().deploy({ specYaml: body.spec, baseDir: body.baseDir, ...(body.name === undefined ? {} : { name: body.name }), ...(body.env === undefined ? {} : { env: body.env }) });
    return reply.code(201).send(view);
  });
  app.get('/v1/deployments', () => plane().list());
  app.get<{ Params: { ref: string } }>('/v1/deployments/:ref', (request) => plane().status(request.params.ref));
  app.get<{ Params: { ref: string } }>('/v1/deployments/:ref/orders', (request) => {
    const query = parse(ordersQuerySchema, request.query, 'the query');
    return plane().orders(request.params.ref, { ...(query.fromStep === undefined ? {} : { fromStep: query.fromStep }), ...(query.limit === undefined ? {} : { limit: query.limit }) });
  });
  app.get<{ Params: { ref: string } }>('/v1/deployments/:ref/fills', (request) => plane().fills(request.params.ref));
  app.get<{ Params: { ref: string } }>('/v1/deployments/:ref/logs', (request) => {
    const query = parse(logsQuerySchema, request.query, 'the query');
    return plane().agentLogs(request.params.ref, {
      ...(query.after === undefined ? {} : { afterSeq: query.after }),
      ...(query.agent === undefined ? {} : { agentId: query.agent }),
      ...(query.limit === undefined ? {} : { limit: query.limit }),
    });
  });
  app.get<{ Params: { ref: string } }>('/v1/deployments/:ref/events', (request) => {
    const query = parse(eventsQuerySchema, request.query, 'the query');
    return plane().events(request.params.ref, { ...(query.after === undefined ? {} : { afterId: query.after }), ...(query.limit === undefined ? {} : { limit: query.limit }) });
  });
  app.post<{ Params: { ref: string } }>('/v1/deployments/:ref/bars', async (request) => {
    const body = parse(barsBodySchema, request.body, 'the request body');
    return plane().publishBars(request.params.ref, body.bars);
  });
  app.get('/v1/stream', async (request, reply) => {
    const query = parse(streamQuerySchema, request.query, 'the query');
    // An unknown deployment is a 404, answered before the stream starts.
    if (query.deployment !== undefined) await plane().status(query.deployment);
    // Server-sent events are `event:` and `data:` lines on the raw response: no library needed for that.
    reply.hijack();
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    const send = (event: string, data: unknown): void => {
      reply.raw.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    };
    const stop = await plane().watch((change) => send(change.type, change), query.deployment);
    send('hello', { deployment: query.deployment ?? null });
    const keepAlive = setInterval(() => reply.raw.write(': keep-alive\n\n'), STREAM_KEEPALIVE_MS);
    reply.raw.on('close', () => {
      clearInterval(keepAlive);
      stop();
    });
  });
  app.post<{ Params: { ref: string; agent: string } }>('/v1/deployments/:ref/agents/:agent/restart', (request) => plane().restartAgent(request.params.ref, request.params.agent));
  app.post<{ Params: { ref: string } }>('/v1/deployments/:ref/scale', (request) => {
    const body = parse(scaleBodySchema, request.body, 'the request body');
    return plane().scale(request.params.ref, body.role, body.replicas);
  });
  app.post<{ Params: { ref: string } }>('/v1/deployments/:ref/stop', (request) => {
    const query = parse(stopQuerySchema, request.query, 'the query');
    return plane().stop(request.params.ref, { liquidate: query.liquidate === 'true' });
  });
  app.get(OPENAPI_PATH, () => openApiDocument());
  return Promise.resolve();
};
