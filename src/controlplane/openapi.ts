import { z } from 'zod';
import {
  agentLogLineSchema,
  barsBodySchema,
  scaleBodySchema,
  deployBodySchema,
  deploymentStatusSchema,
  deploymentViewSchema,
  errorBodySchema,
  eventRecordSchema,
  eventsQuerySchema,
  fillRecordSchema,
  healthSchema,
  logsQuerySchema,
  orderRecordSchema,
  ordersQuerySchema,
  publishedBarsSchema,
  stopQuerySchema,
  streamQuerySchema,
} from './schemas.js';

/** Where `tradeswarm serve` serves {@link openApiDocument}. */
export const OPENAPI_PATH = '/v1/openapi.json';

/** The schemas the document names under `components.schemas`, by name. */
const COMPONENTS = {
  DeployRequest: deployBodySchema,
  BarsRequest: barsBodySchema,
  ScaleRequest: scaleBodySchema,
  PublishedBars: publishedBarsSchema,
  DeploymentView: deploymentViewSchema,
  DeploymentStatus: deploymentStatusSchema,
  OrderRecord: orderRecordSchema,
  FillRecord: fillRecordSchema,
  EventRecord: eventRecordSchema,
  AgentLogLine: agentLogLineSchema,
  ErrorBody: errorBodySchema,
  Health: healthSchema,
} as const;

type ComponentName = keyof typeof COMPONENTS;

/** One route of the API as the document declares it. */
export interface ApiRoute {
  readonly method: 'get' | 'post';
  /** OpenAPI's form: `/v1/deployments/{ref}`. */
  readonly path: string;
  readonly summary: string;
  /** Its query, when it takes one: the schema the route validates it with. */
  readonly query?: z.ZodObject;
  readonly body?: ComponentName;
  /** The success status and what it answers: a component, a list of one, any JSON object, or server-sent events. */
  readonly success: { readonly status: 200 | 201; readonly schema: ComponentName | readonly [ComponentName] | 'object' | 'event-stream' };
  /** The error statuses it may answer, each with an {@link errorBodySchema} body. */
  readonly errors: readonly number[];
}

const ERROR_MEANINGS: Readonly<Record<number, string>> = {
  400: 'The request is malformed: the body lists every field at fault, what was sent and what is allowed.',
  401: 'No or a wrong API key: send Authorization: Bearer <key>.',
  404: 'No deployment has that id or name.',
  409: 'A taken name, or the environment has not the sandboxes free: the message names the limit and what to do.',
  500: 'A fault of the server.',
  503: 'This server follows another (several servers on one PostgreSQL): the body’s `leader` names the server to ask. Or a retryable failure (the store cannot be written, …): try again later.',
};

/** Every route of the control plane's HTTP API, in the order the document lists them. */
export const API_ROUTES: readonly ApiRoute[] = [
  { method: 'get', path: '/healthz', summary: 'Whether the process serves (no API key needed).', success: { status: 200, schema: 'Health' }, errors: [] },
  { method: 'post', path: '/v1/deployments', summary: 'Creates a deployment and starts it; it runs until stopped.', body: 'DeployRequest', success: { status: 201, schema: 'DeploymentView' }, errors: [400, 401, 409, 500, 503] },
  { method: 'get', path: '/v1/deployments', summary: 'Every deployment, newest first (what `tradeswarm ps` shows).', success: { status: 200, schema: ['DeploymentView'] }, errors: [401, 500, 503] },
  { method: 'get', path: '/v1/deployments/{ref}', summary: 'One deployment, by id or name, with its agents, positions, latest events and final report.', success: { status: 200, schema: 'DeploymentStatus' }, errors: [401, 404, 500, 503] },
  { method: 'get', path: '/v1/deployments/{ref}/orders', summary: 'Its orders, as stored.', query: ordersQuerySchema, success: { status: 200, schema: ['OrderRecord'] }, errors: [400, 401, 404, 500, 503] },
  { method: 'get', path: '/v1/deployments/{ref}/fills', summary: 'Its fills, as stored.', success: { status: 200, schema: ['FillRecord'] }, errors: [401, 404, 500, 503] },
  { method: 'get', path: '/v1/deployments/{ref}/events', summary: 'Its events (deployed, agents lost and restarted, resumed, ended).', query: eventsQuerySchema, success: { status: 200, schema: ['EventRecord'] }, errors: [400, 401, 404, 500, 503] },
  { method: 'get', path: '/v1/deployments/{ref}/logs', summary: "What its agents' processes printed (stdout and stderr, the last 5,000 lines, kept in memory).", query: logsQuerySchema, success: { status: 200, schema: ['AgentLogLine'] }, errors: [400, 401, 404, 500, 503] },
  {
    method: 'post',
    path: '/v1/deployments/{ref}/bars',
    summary: 'Publishes bars into a running deployment whose feed is the bus (swarm.feed.source: bus); each bar is checked, naming the field at fault.',
    body: 'BarsRequest',
    success: { status: 200, schema: 'PublishedBars' },
    errors: [400, 401, 404, 500, 503],
  },
  {
    method: 'post',
    path: '/v1/deployments/{ref}/agents/{agent}/restart',
    summary: "Restarts a lost agent: one try of the recovery ladder (a manual environment's recovery); its events say how it went.",
    success: { status: 200, schema: 'DeploymentView' },
    errors: [400, 401, 404, 500, 503],
  },
  {
    method: 'post',
    path: '/v1/deployments/{ref}/scale',
    summary: 'Sets how many processes the agents of a role run as while it runs: 1 alone, 2 with a hot standby (prod); stored, and kept across failovers and restarts of the server.',
    body: 'ScaleRequest',
    success: { status: 200, schema: 'DeploymentView' },
    errors: [400, 401, 404, 409, 500, 503],
  },
  { method: 'post', path: '/v1/deployments/{ref}/stop', summary: 'Stops it for good (agents checkpoint, sandboxes are killed), liquidating its positions when asked; answers once it stopped.', query: stopQuerySchema, success: { status: 200, schema: 'DeploymentView' }, errors: [401, 404, 500, 503] },
  {
    method: 'get',
    path: '/v1/stream',
    summary:
      'Server-sent events as the store records them, each once its write committed: `hello` first, then `state` (a deployment\'s state), `step` (a closed step with its orders and fills) and `event` (its history); each `data:` line is a JSON object.',
    query: streamQuerySchema,
    success: { status: 200, schema: 'event-stream' },
    errors: [400, 401, 404, 503],
  },
  { method: 'get', path: OPENAPI_PATH, summary: 'This document.', success: { status: 200, schema: 'object' }, errors: [401] },
];

/** The zod schema a route's success answer is declared with: what a client may parse it with (a stream's text, for server-sent events). */
export function responseSchemaOf(route: ApiRoute): z.ZodType {
  const { schema } = route.success;
  if (schema === 'object') return z.record(z.string(), z.unknown());
  if (schema === 'event-stream') return z.string();
  return typeof schema === 'string' ? COMPONENTS[schema] : z.array(COMPONENTS[schema[0]]);
}

type Json = Record<string, unknown>;

/** The JSON Schema of a query parameter, without a `$schema` of its own. */
function parameterSchemaOf(schema: z.ZodType): Json {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { io: 'input', target: 'draft-2020-12' }) as Json;
  return rest;
}

/**
 * The components' JSON Schemas, one referring to another by `$ref` (DeploymentStatus's events are
 * EventRecords). Their output form: the request body has no defaults or transforms, so it is its input form too.
 */
function componentSchemas(): Json {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(COMPONENTS)) registry.add(schema, { id });
  const { schemas } = z.toJSONSchema(registry, { io: 'output', target: 'draft-2020-12', uri: (id) => `#/components/schemas/${id}` });
  return Object.fromEntries(
    Object.entries(schemas).map(([id, schema]) => {
      const { $schema: _, $id: __, ...rest } = schema as Json;
      return [id, rest];
    }),
  );
}

function reference(name: ComponentName): Json {
  return { $ref: `#/components/schemas/${name}` };
}

function operationOf(route: ApiRoute): Json {
  const { schema, status } = route.success;
  const success =
    schema === 'event-stream'
      ? { 'text/event-stream': { schema: { type: 'string' } } }
      : { 'application/json': { schema: schema === 'object' ? { type: 'object' } : typeof schema === 'string' ? reference(schema) : { type: 'array', items: reference(schema[0]) } } };
  const parameters = [
    ...(route.path.includes('{ref}') ? [{ name: 'ref', in: 'path', required: true, description: "The deployment's id or name.", schema: { type: 'string' } }] : []),
    ...(route.path.includes('{agent}') ? [{ name: 'agent', in: 'path', required: true, description: 'The agent, as the deployment lists it.', schema: { type: 'string' } }] : []),
    ...Object.entries(route.query?.shape ?? {}).map(([name, field]) => {
      const { description, ...fieldSchema } = parameterSchemaOf(field as z.ZodType);
      return { name, in: 'query', required: false, ...(description === undefined ? {} : { description }), schema: fieldSchema };
    }),
  ];
  return {
    summary: route.summary,
    ...(parameters.length === 0 ? {} : { parameters }),
    ...(route.body === undefined ? {} : { requestBody: { required: true, content: { 'application/json': { schema: reference(route.body) } } } }),
    ...(route.path === '/healthz' ? { security: [] } : {}),
    responses: {
      [String(status)]: { description: 'Success.', content: success },
      ...Object.fromEntries(route.errors.map((code) => [String(code), { description: ERROR_MEANINGS[code] ?? 'An error.', content: { 'application/json': { schema: reference('ErrorBody') } } }])),
    },
  };
}

let built: Json | undefined;

/**
 * The OpenAPI 3.1 document of the control plane's HTTP API (`GET /v1/openapi.json`; DESIGN decision
 * 12): every route of {@link API_ROUTES} with its parameters, request body and answers, generated
 * from the zod schemas the routes validate with and the answers are typed by (`schemas.ts`). Built
 * once; the same object on every call.
 */
export function openApiDocument(): Json {
  built ??= {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info: {
      title: 'tradeswarm control plane',
      version: '1.0.0',
      description: 'The HTTP API of `tradeswarm serve`: deployments of trading swarms that run until stopped. Every error answers an ErrorBody saying what was wrong and what to do.',
    },
    paths: API_ROUTES.reduce<Record<string, Json>>((paths, route) => ({ ...paths, [route.path]: { ...paths[route.path], [route.method]: operationOf(route) } }), {}),
    components: {
      schemas: componentSchemas(),
      securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'Required when serve runs with --api-key (or TRADESWARM_API_KEY).' } },
    },
    security: [{ apiKey: [] }, {}],
  };
  return built;
}
