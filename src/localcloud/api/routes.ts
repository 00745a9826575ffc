import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { API_STATUS, LocalCloudError } from '../errors.js';
import type { LocalSandbox, SandboxManager, SandboxState } from '../sandboxes/index.js';
import { egressRulesOf } from './network.js';

/** The envd version this server reports: every SDK feature gated at or below it is implemented. */
export const ENVD_VERSION = '0.6.4';

const envVarsSchema = z.record(z.string(), z.string());
const egressSchema = { allowOut: z.array(z.string()).optional(), denyOut: z.array(z.string()).optional(), rules: z.unknown().optional(), egressProxy: z.unknown().optional() };
/** E2B's `network.maskRequestHost`: the Host a sandbox's ports see, `${PORT}` standing for the port; a header value, so nothing that could end or split one. */
const maskRequestHostSchema = z
  .string()
  .min(1, 'is empty: give a host such as localhost:${PORT}, or leave it out')
  .max(261, 'is longer than a host name and port can be')
  .regex(/^(?:[A-Za-z0-9._~\-:[\]]|\$\{PORT\})+$/, 'must be a host name or address, with a port or ${PORT} (for the port requested) after a colon, such as custom-host.example.com:${PORT}');
const createSchema = z.object({
  templateID: z.string().min(1, 'templateID is empty: name a template such as base or code-interpreter-v1'),
  timeout: z.number().int().positive().optional(),
  metadata: z.record(z.string(), z.string()).optional(),
  envVars: envVarsSchema.optional(),
  allow_internet_access: z.boolean().optional(),
  autoPause: z.boolean().optional(),
  autoPauseMemory: z.boolean().optional(),
  /** E2B's `lifecycle.autoResume`: a paused sandbox wakes when a request comes for it. */
  autoResume: z.object({ enabled: z.boolean() }).optional(),
  network: z.object({ ...egressSchema, allowPublicTraffic: z.boolean().optional(), maskRequestHost: maskRequestHostSchema.optional() }).partial().optional(),
});
/** E2B's `SandboxNetworkUpdateConfig`: the new egress rules; a field left out is cleared. */
const networkUpdateSchema = z.object({ ...egressSchema, allow_internet_access: z.boolean().optional() });
const timeoutSchema = z.object({ timeout: z.number().int().positive() });
/** `memory: false` pauses keeping only the filesystem (the SDK's `pause({ keepMemory: false })`). */
const pauseSchema = z.object({ memory: z.boolean().optional() });
const snapshotSchema = z.object({ name: z.string().min(1, 'is empty: give a name, or leave it out').optional() });
const forkSchema = z.object({ timeout: z.number().int().positive().optional(), count: z.number().int().optional() });
const snapshotsQuerySchema = z.object({
  sandboxID: z.string().optional(),
  name: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
  nextToken: z.string().optional(),
});
/** `memory: false` (the SDK's `onResume: 'reboot'`) boots a paused sandbox again from its disk. */
const connectSchema = z.object({ timeout: z.number().int().positive().optional(), memory: z.boolean().optional() }).passthrough();
const unixSeconds = z.coerce.number({ message: 'must be a time in unix seconds' }).int('must be a whole number of unix seconds').min(0, 'must not be negative');
/** E2B's metrics range: unix seconds, both ends included. */
const metricsQuerySchema = z.object({ start: unixSeconds.optional(), end: unixSeconds.optional() });
const listQuerySchema = z.object({
  metadata: z.string().optional(),
  state: z.union([z.string(), z.array(z.string())]).optional(),
  template: z.string().optional(),
  startedAfter: z.iso.datetime({ offset: true, message: 'must be an ISO 8601 date-time such as 2026-01-31T12:00:00Z' }).optional(),
  order: z.enum(['asc', 'desc'], { message: "must be 'asc' or 'desc' (by start time; default desc, newest first)" }).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
  nextToken: z.string().optional(),
});

function parse<T>(schema: z.ZodType<T>, value: unknown, where: string): T {
  const parsed = schema.safeParse(value ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new LocalCloudError(API_STATUS.badRequest, `${where}.${issue.path.join('.') || '(body)'}: ${issue.message}`);
  }
  return parsed.data;
}

/** The domain a sandbox's ports are named under (`<port>-<sandboxId>.<domain>`), or null: the SDK's own (`E2B_DOMAIN`). */
type SandboxDomain = string | null;

function sandboxCreated(sandbox: LocalSandbox, domain: SandboxDomain) {
  return {
    sandboxID: sandbox.id,
    templateID: sandbox.templateId,
    alias: sandbox.templateId,
    clientID: sandbox.clientId,
    envdVersion: ENVD_VERSION,
    envdAccessToken: sandbox.accessToken,
    // Sent back by the code-interpreter SDK on /contexts, its only credential there (see server.ts).
    trafficAccessToken: sandbox.trafficAccessToken,
    domain,
  };
}

function sandboxListed(sandbox: LocalSandbox) {
  return {
    sandboxID: sandbox.id,
    templateID: sandbox.templateId,
    alias: sandbox.templateId,
    clientID: sandbox.clientId,
    startedAt: new Date(sandbox.startedAtMs).toISOString(),
    endAt: new Date(sandbox.endAtMs).toISOString(),
    cpuCount: sandbox.template.cpuCount,
    memoryMB: sandbox.template.memoryMB,
    diskSizeMB: sandbox.template.diskMB,
    metadata: sandbox.metadata,
    state: sandbox.state,
    envdVersion: ENVD_VERSION,
  };
}

function sandboxDetail(sandbox: LocalSandbox, domain: SandboxDomain) {
  return {
    ...sandboxListed(sandbox),
    envdAccessToken: sandbox.accessToken,
    trafficAccessToken: sandbox.trafficAccessToken,
    allowInternetAccess: sandbox.allowInternetAccess,
    // Its rules now: the networks its firewall enforces, as CIDRs (a bare address as a /32), then the host names and rules its egress proxy does.
    ...(sandbox.network === 'routed' || !sandbox.publicTraffic || sandbox.maskRequestHost !== undefined
      ? {
          network: {
            ...(sandbox.network === 'routed'
              ? { allowOut: [...sandbox.egress.allowOut, ...(sandbox.egress.allowHosts ?? [])], denyOut: sandbox.egress.denyOut, ...(sandbox.egress.rules === undefined ? {} : { rules: sandbox.egress.rules }) }
              : {}),
            allowPublicTraffic: sandbox.publicTraffic,
            ...(sandbox.maskRequestHost === undefined ? {} : { maskRequestHost: sandbox.maskRequestHost }),
          },
        }
      : {}),
    lifecycle: { onTimeout: sandbox.autoPause ? 'pause' : 'kill', autoResume: sandbox.autoResume },
    domain,
  };
}

/**
 * Parses E2B's list filters: `metadata` is a URL-encoded query string of key=value pairs whose keys and
 * values the SDK URI-encodes once more; `state` is repeated or comma-separated.
 */
function listFilter(query: unknown) {
  const parsed = parse(listQuerySchema, query, 'query');
  const decode = (text: string): string => {
    try {
      return decodeURIComponent(text);
    } catch {
      throw new LocalCloudError(API_STATUS.badRequest, `query.metadata: '${text}' is not URI-encoded; encode each key and value with encodeURIComponent`);
    }
  };
  const metadata = parsed.metadata ? Object.fromEntries([...new URLSearchParams(parsed.metadata)].map(([key, value]) => [decode(key), decode(value)])) : undefined;
  const rawStates = parsed.state === undefined ? undefined : (Array.isArray(parsed.state) ? parsed.state : [parsed.state]).flatMap((value) => value.split(','));
  for (const state of rawStates ?? []) {
    if (state !== 'running' && state !== 'paused') throw new LocalCloudError(API_STATUS.badRequest, `query.state: '${state}' is not a state; use running or paused`);
  }
  return {
    metadata,
    states: rawStates as SandboxState[] | undefined,
    templateId: parsed.template,
    startedAfterMs: parsed.startedAfter === undefined ? undefined : Date.parse(parsed.startedAfter),
    order: parsed.order,
    limit: parsed.limit,
    nextToken: parsed.nextToken,
  };
}

/** Registers E2B's control-plane REST API (the subset the pinned SDKs call) on a Fastify instance. */
/**
 * One page of a list, as E2B pages: `limit` items (100 by default) from the one `nextToken` names,
 * and the id of the first item of the next page in the `x-next-token` header.
 * @throws LocalCloudError 400 when `nextToken` names no item of the list (`gone` says why).
 */
function pageOf<T extends { readonly id: string }>(all: readonly T[], query: { readonly nextToken?: string | undefined; readonly limit?: number | undefined }, gone: string, reply: FastifyReply): T[] {
  const start = query.nextToken ? all.findIndex((item) => item.id === query.nextToken) : 0;
  if (start < 0) throw new LocalCloudError(API_STATUS.badRequest, `query.nextToken: '${query.nextToken}' is not a page of this list (${gone}); list again from the start`);
  const limit = query.limit ?? 100;
  const next = all[start + limit];
  if (next) void reply.header('x-next-token', next.id);
  return all.slice(start, start + limit);
}

/**
 * The E2B control-plane API on `app`. `domain`: what sandboxes report as theirs (the server's
 * `domain` option), so the SDK's getHost names them under it; null lets the SDK use its own.
 */
export function registerApiRoutes(app: FastifyInstance, manager: SandboxManager, domain: SandboxDomain): void {
  const create = async (body: unknown) => {
    const request = parse(createSchema, body, 'body');
    const { allowPublicTraffic, maskRequestHost, ...network } = request.network ?? {};
    // Any egress field, even an empty list, asks for a routed network behind a firewall.
    const egress = Object.values(network).some((value) => value !== undefined) ? egressRulesOf(network, 'body.network') : undefined;
    const autoResume = request.autoResume?.enabled === true;
    if (autoResume && request.autoPause !== true) throw new LocalCloudError(API_STATUS.badRequest, "body.autoResume: a sandbox wakes only from a pause: set autoPause (lifecycle: { onTimeout: 'pause', autoResume: true })");
    const sandbox = await manager.create({
      templateId: request.templateID,
      timeoutSeconds: request.timeout,
      metadata: request.metadata,
      envVars: request.envVars,
      allowInternetAccess: request.allow_internet_access,
      ...(egress ? { egress } : {}),
      autoPause: request.autoPause,
      autoPauseKeepsMemory: request.autoPauseMemory,
      autoResume,
      publicTraffic: allowPublicTraffic ?? true,
      ...(maskRequestHost === undefined ? {} : { maskRequestHost }),
    });
    return sandboxCreated(sandbox, domain);
  };
  app.post('/sandboxes', async (request, reply) => reply.code(201).send(await create(request.body)));
  app.post('/v2/sandboxes', async (request, reply) => reply.code(201).send(await create(request.body)));

  app.get('/sandboxes', (request) => {
    const filter = listFilter(request.query);
    return manager.list({ ...filter, states: filter.states ?? ['running'] }).map(sandboxListed);
  });
  app.get('/v2/sandboxes', (request, reply) => {
    const filter = listFilter(request.query);
    // Ordered by start time (newest first unless asked), then id.
    return pageOf(manager.list(filter), filter, 'the sandbox it named is gone', reply).map(sandboxListed);
  });

  app.get<{ Params: { id: string } }>('/sandboxes/:id', (request) => sandboxDetail(manager.get(request.params.id), domain));

  app.delete<{ Params: { id: string } }>('/sandboxes/:id', async (request, reply) => {
    if (!(await manager.kill(request.params.id))) throw new LocalCloudError(API_STATUS.notFound, `sandbox ${request.params.id} not found`);
    return reply.code(204).send();
  });

  app.post<{ Params: { id: string } }>('/sandboxes/:id/timeout', (request, reply) => {
    manager.setTimeout(request.params.id, parse(timeoutSchema, request.body, 'body').timeout);
    return reply.code(204).send();
  });

  app.put<{ Params: { id: string } }>('/sandboxes/:id/network', async (request, reply) => {
    const update = parse(networkUpdateSchema, request.body, 'body');
    await manager.updateNetwork(request.params.id, egressRulesOf(update, 'body', update.allow_internet_access === false));
    return reply.code(204).send();
  });

  app.post<{ Params: { id: string } }>('/sandboxes/:id/pause', async (request, reply) => {
    const { memory } = parse(pauseSchema, request.body, 'body');
    if (!(await manager.pause(request.params.id, memory ?? true))) throw new LocalCloudError(API_STATUS.conflict, `sandbox ${request.params.id} is already paused`);
    return reply.code(204).send();
  });

  const connect = async (id: string, body: unknown, reply: FastifyReply) => {
    const { timeout, memory } = parse(connectSchema, body, 'body');
    const resumed = await manager.connect(id, timeout, memory === false);
    return reply.code(resumed ? 201 : 200).send(sandboxCreated(manager.get(id), domain));
  };
  app.post<{ Params: { id: string } }>('/v2/sandboxes/:id/connect', (request, reply) => connect(request.params.id, request.body, reply));
  app.post<{ Params: { id: string } }>('/sandboxes/:id/connect', (request, reply) => connect(request.params.id, request.body, reply));
  app.post<{ Params: { id: string } }>('/sandboxes/:id/resume', (request, reply) => connect(request.params.id, request.body, reply));

  app.post<{ Params: { id: string } }>('/sandboxes/:id/snapshots', async (request, reply) => {
    const { name } = parse(snapshotSchema, request.body, 'body');
    const snapshot = await manager.snapshot(request.params.id, name);
    return reply.code(201).send({ snapshotID: snapshot.id, names: snapshot.names });
  });
  app.get('/snapshots', (request, reply) => {
    const query = parse(snapshotsQuerySchema, request.query, 'query');
    const all = manager.listSnapshots({ sandboxId: query.sandboxID, name: query.name });
    return pageOf(all, query, 'the snapshot it named was deleted', reply).map((snapshot) => ({ snapshotID: snapshot.id, names: snapshot.names }));
  });
  // The SDK deletes a snapshot as a template; the templates of this server are registered, not built, and stay.
  app.delete<{ Params: { id: string } }>('/templates/:id', (request, reply) => {
    if (manager.deleteSnapshot(request.params.id)) return reply.code(204).send();
    throw new LocalCloudError(API_STATUS.notFound, `snapshot ${request.params.id} not found (this local cloud deletes snapshots only; its templates are registered when it starts)`);
  });
  app.post<{ Params: { id: string } }>('/sandboxes/:id/fork', async (request, reply) => {
    const { timeout, count } = parse(forkSchema, request.body, 'body');
    const forks = await manager.fork(request.params.id, count ?? 1, timeout);
    return reply.code(201).send(
      forks.map((fork) => {
        if (fork.status === 'fulfilled') return { sandbox: sandboxCreated(fork.value, domain) };
        const error = fork.reason as Error;
        return { error: { code: error instanceof LocalCloudError ? error.status : API_STATUS.internal, message: error.message } };
      }),
    );
  });

  app.get<{ Params: { id: string } }>('/sandboxes/:id/metrics', (request) => {
    const sandbox = manager.get(request.params.id);
    const { start, end } = parse(metricsQuerySchema, request.query, 'query');
    if (start !== undefined && end !== undefined && start > end) throw new LocalCloudError(API_STATUS.badRequest, `query.start (${start}) is after query.end (${end}): give the earlier time (unix seconds) as start`);
    // A running sandbox is measured now too, when now is in the range asked for.
    const nowSeconds = Math.floor(manager.now() / 1000);
    if (sandbox.state === 'running' && (start === undefined || start <= nowSeconds) && (end === undefined || nowSeconds <= end)) sandbox.sampleMetrics();
    return sandbox.metricHistory().filter((metric) => {
      const seconds = Math.floor(Date.parse(metric.timestamp) / 1000);
      return (start === undefined || seconds >= start) && (end === undefined || seconds <= end);
    });
  });
}
