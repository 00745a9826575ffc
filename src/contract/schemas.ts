import { z } from 'zod';
import { HEALTH_LEVELS, HEALTH_STATUSES, TROUBLE_STATUSES } from '../health/index.js';
import { TIER_NAMES } from '../sandbox/index.js';

/**
 * The /v1 control-plane API as zod schemas: the request bodies and queries the routes validate with,
 * and the answers they send. The routes (src/controlplane/), the typed client (src/client/) and the
 * OpenAPI document (`GET /v1/openapi.json`) are all built from these, so they cannot disagree; the
 * control plane checks that the interfaces it returns are these answers, field for field.
 */

/** The environments a deployment runs in, from trying things out to trading for real. */
export const ENVIRONMENTS = ['dev', 'staging', 'prod'] as const;

/** A spec's YAML may be large (many strategies); the data it names is read on the server. */
export const SPEC_LIMIT_BYTES = 1024 * 1024;

/** The body of `POST /v1/deployments`. */
export const deployBodySchema = z.strictObject({
  spec: z.string().min(1).max(SPEC_LIMIT_BYTES).describe('The spec, as YAML text: the file `run` and `backtest` read.'),
  baseDir: z.string().min(1).max(4096).describe("Where the spec's CSV paths are relative to, on the server's machine (the spec file's folder)."),
  name: z.string().min(1).max(63).optional().describe("The deployment's name; default: the spec's name."),
  env: z.enum(ENVIRONMENTS).optional().describe('dev (the default), staging or prod.'),
});

/** The body of `POST /v1/deployments/:ref/scale`. */
export const scaleBodySchema = z.strictObject({
  role: z.string().min(1).max(128).describe('An agent id (hub, 1-momentum-SPY-60, …), a role of the topology (trader, decider, coordinator, collector, executor: every agent of it), or all.'),
  replicas: z.int().min(1).max(2).describe('1: the agent alone; 2: the agent and a hot standby in a sandbox of its own, which takes over when the agent is lost (prod only).'),
});

/** The query of `GET /v1/deployments/:ref/orders`. */
export const ordersQuerySchema = z.strictObject({
  fromStep: z.coerce.number().int().nonnegative().optional().describe('Only orders of this step and later.'),
  limit: z.coerce.number().int().min(1).max(100_000).optional().describe('At most this many orders.'),
});

/** The query of `GET /v1/deployments/:ref/events`. */
export const eventsQuerySchema = z.strictObject({
  after: z.coerce.number().int().nonnegative().optional().describe('Only events with a larger id.'),
  limit: z.coerce.number().int().min(1).max(10_000).optional().describe('At most this many events.'),
});

/** The query of `GET /v1/deployments/:ref/logs`. */
export const logsQuerySchema = z.strictObject({
  after: z.coerce.number().int().nonnegative().optional().describe('Only lines with a larger seq.'),
  agent: z.string().min(1).max(128).optional().describe("Only this agent's lines."),
  limit: z.coerce.number().int().min(1).max(5_000).optional().describe('At most this many lines.'),
});

/** The body of `POST /v1/deployments/:ref/bars`: bars published into a deployment whose feed is the bus. */
export const barsBodySchema = z.strictObject({
  bars: z.array(z.unknown()).min(1).max(10_000).describe('Bars, each {symbol, time, open, high, low, close, volume}; checked one by one by the feed.'),
});

/** The answer of `POST /v1/deployments/:ref/bars`. */
export const publishedBarsSchema = z.object({
  published: z.number().int().describe('How many bars were published.'),
  topic: z.string().describe('The bus topic they went to.'),
});

/** The query of `POST /v1/deployments/:ref/stop`. */
export const stopQuerySchema = z.strictObject({
  liquidate: z
    .enum(['true', 'false'])
    .optional()
    .describe('true: close every open position at the last close (fills stored, positions flat); default false: positions stay open, marked to market.'),
});

/** The query of `GET /v1/stream`. */
export const streamQuerySchema = z.strictObject({
  deployment: z.string().min(1).max(128).optional().describe("Only this deployment's changes (its name or id); default: every deployment's."),
});

/** A deployment as `ps` shows it (`DeploymentView`). */
export const deploymentViewSchema = z.object({
  id: z.string(),
  name: z.string(),
  env: z.string(),
  topology: z.string(),
  pacing: z.string(),
  state: z.string().describe('pending, starting, running, draining; or how it ended: complete, halted, degraded, stopped, failed; suspended while no server runs it.'),
  desired: z.enum(['running', 'stopped']),
  agents: z.object({ healthy: z.number().int(), total: z.number().int() }),
  steps: z.number().int().describe('Steps closed at the venue (bars processed).'),
  totalSteps: z.number().int().nullable().describe("The feed's length; null for an endless feed."),
  orders: z.number().int(),
  fills: z.number().int(),
  equity: z.number().nullable(),
  pnl: z.number().nullable(),
  uptimeMs: z.number().nullable().describe('Since this server (re)started it; null when it is not running here.'),
  error: z.string().nullable(),
  createdAtMs: z.number(),
});

/** An event of a deployment's history (`EventRecord`). */
export const eventRecordSchema = z.object({
  id: z.number().int(),
  atMs: z.number(),
  step: z.number().int().nullable(),
  kind: z.string(),
  agentId: z.string().nullable(),
  detail: z.string().nullable(),
});

/** A line an agent's process printed (`AgentLogLine`). */
export const agentLogLineSchema = z
  .object({
    seq: z.number().int(),
    atMs: z.number(),
    agentId: z.string(),
    stream: z.enum(['stdout', 'stderr']),
    line: z.string(),
  })
  .meta({ id: 'AgentLogLine' });

/** A deployment as `status` shows it (`DeploymentStatus`): its view, agents, positions, latest events and report. */
export const deploymentStatusSchema = deploymentViewSchema.extend({
  agentList: z.array(
    z.object({
      id: z.string(),
      lifecycle: z.string(),
      restarts: z.number().int(),
      placement: z.string(),
      epoch: z.number().int().describe("Which process of the agent runs: raised by each restart; the venue refuses an older one's orders."),
      tier: z.enum(TIER_NAMES).describe("The resource tier of its sandbox and its standby's (swarm.resources, or the environment's smallest allowed tier)."),
      health: z
        .object({
          status: z.enum(HEALTH_STATUSES),
          reasons: z.array(z.object({ level: z.enum(HEALTH_LEVELS), status: z.enum(TROUBLE_STATUSES), code: z.string(), detail: z.string() })),
          sinceMs: z.number(),
        })
        .nullable()
        .describe('Its latest health check: null before the first, or with swarm.healthCheckMs 0.'),
      standby: z
        .object({ placement: z.string(), epoch: z.number().int(), ready: z.boolean() })
        .nullable()
        .describe('Its hot standby (swarm.standby): its sandbox, its epoch, and whether it is ready to take over; null without one.'),
      replicas: z.number().int().describe('How many processes it is to run as (`tradeswarm scale`): 1 alone, 2 with a hot standby.'),
    }),
  ),
  positions: z.array(z.object({ symbol: z.string(), quantity: z.number() })),
  events: z.array(eventRecordSchema),
  report: z.record(z.string(), z.unknown()).nullable().describe('The final run report (as `tradeswarm run --json` prints it), once it ended.'),
});

/** An order as stored (`OrderRecord`). */
export const orderRecordSchema = z.object({
  clientOrderId: z.string(),
  step: z.number().int(),
  agentId: z.string(),
  symbol: z.string(),
  side: z.string(),
  quantity: z.number(),
  status: z.string(),
  reason: z.string().nullable(),
  createdAtMs: z.number(),
});

/** A fill as stored (`FillRecord`). */
export const fillRecordSchema = z.object({
  seq: z.number().int(),
  clientOrderId: z.string(),
  step: z.number().int(),
  symbol: z.string(),
  side: z.string(),
  quantity: z.number(),
  price: z.number(),
  fee: z.number(),
  timeMs: z.number(),
});

/** The server that leads, as a follower names it (`LeaderPointer`). */
const leaderPointerSchema = z.object({
  holder: z.string().describe('Who leads: <host>:<pid>:<id>.'),
  url: z.string().nullable().describe('Its API, as it advertised it.'),
  epoch: z.number().int().describe("The lease's epoch, raised at each takeover."),
  expiresAt: z.string().describe('Until when its lease runs unless renewed, by the database’s clock (ISO 8601).'),
});

/** The body of every error answer (core's `ErrorBody`). */
export const errorBodySchema = z.object({
  error: z.object({
    code: z.enum(['invalid-spec', 'invalid-input', 'usage', 'unauthorized', 'unavailable', 'failed', 'internal']).describe('What kind of error, for scripts: fix the spec (issues), fix a value (field), fix the command line, send the API key, try again later, not retryable, or unexpected.'),
    name: z.string(),
    message: z.string().describe('What was wrong and what to do.'),
    retryable: z.boolean().describe('Whether sending the same request again later can succeed.'),
    field: z.string().optional().describe('The field at fault.'),
    retryAfterMs: z.number().optional(),
    issues: z.array(z.object({ path: z.string(), got: z.unknown(), allowed: z.string() })).optional().describe('Every field at fault (a spec’s mistakes): its path, the value found, what is allowed.'),
    leader: leaderPointerSchema.optional().describe('The server to ask instead: this one follows it (a 503).'),
  }),
});

/** The answer of `GET /healthz`. */
export const healthSchema = z.object({
  ok: z.literal(true),
  role: z.enum(['leader', 'follower']).optional().describe('Whether this server runs the deployments, or waits to take over (several servers on one PostgreSQL); absent when it shares its store with none.'),
  leader: leaderPointerSchema.nullable().optional().describe('The server that leads (this one, when it does); null while none does.'),
});

/** The body of an error answer of `tradeswarm serve`. */
export type ErrorBodyAnswer = z.infer<typeof errorBodySchema>;

