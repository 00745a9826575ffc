import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, listen, statusForError, type ApiServer, type AppOptions } from '../../api/index.js';
import { InvalidInputError, silentLogger } from '../../core/index.js';
import { portOf, reachCode } from '../../../test/fixtures/network.js';
import { ProviderUnavailableError, QueueFullError, SessionLimitError, SessionLostError, SessionNotFoundError } from '../errors.js';
import { parseExecRequest } from '../request.js';
import { createExecService, type ExecResult, type ExecService } from '../service.js';
import { execErrorStatus, execRoutes } from './http.js';
import { createExecMcpServer } from './mcp.js';

/** The service's routes on an app of their own, as `tradeswarm exec serve` mounts them. */
function execApp(service: ExecService, options: AppOptions = {}): FastifyInstance {
  const app = createApp({ logger: silentLogger, ...options });
  void app.register(execRoutes, { service });
  return app;
}

describe('statusForError with the exec routes\' own statuses', () => {
  it.each([
    [new InvalidInputError('language', 'bad'), 400],
    [new SessionNotFoundError('ses_1'), 404],
    [new SessionLimitError('user', 1), 409],
    [new SessionLimitError('service', 4, 2000), 429],
    [new SessionLostError('ses_1'), 410],
    [new QueueFullError(250, 100), 429],
    [new ProviderUnavailableError(1000), 503],
    [new Error('bug'), 500],
  ])('%s → %i', (error, status) => {
    expect(statusForError(error, execErrorStatus)).toBe(status);
  });
});

describe('parseExecRequest', () => {
  it.each([
    [{ code: 1 }, 'code'],
    [{ code: 'x', language: 'ruby' }, 'language'],
    [{ code: 'x', user: '' }, 'user'],
    [{ code: 'x', priority: 1.5 }, 'priority'],
    [{ code: 'x', env: { 'A-B': '1' } }, 'env.A-B'],
    [{ code: 'x', timeout: 5 }, 'timeout'],
    [[], 'request'],
  ])('%j names %s', (raw, field) => {
    expect(() => parseExecRequest(raw)).toThrow(expect.objectContaining({ field }));
  });

  it('fills in the defaults', () => {
    expect(parseExecRequest({ code: '1' })).toEqual({ code: '1', language: 'python', user: 'anonymous', priority: 0, env: {} });
  });
});

/** A service that answers from a script, for the HTTP mapping (no sandboxes). */
function scriptedService(answer: (code: string) => ExecResult | Error): ExecService {
  return {
    localCloud: undefined,
    exec: (request) => {
      const outcome = answer(request.code);
      return outcome instanceof Error ? Promise.reject(outcome) : Promise.resolve(outcome);
    },
    openSession: (options) => Promise.reject(options.user === 'full' ? new SessionLimitError('service', 4, 2500) : new SessionLimitError('user', 1)),
    closeSession: (id) => Promise.reject(new SessionNotFoundError(id)),
    metrics: () => ({ requests: { total: 7 } }) as unknown as ReturnType<ExecService['metrics']>,
    prometheus: () => Promise.resolve({ contentType: 'text/plain; version=0.0.4; charset=utf-8', body: 'tradeswarm_exec_requests_total 7\n' }),
    close: () => Promise.resolve(),
  };
}

describe('the HTTP routes (scripted service)', () => {
  const app = execApp(
    scriptedService((code) => (code === 'busy' ? new QueueFullError(1500, 100) : code === 'bad' ? new InvalidInputError('language', 'must be one of python, javascript') : ({ stdout: code } as ExecResult))),
    { apiKey: 'k1' },
  );
  const auth = { authorization: 'Bearer k1' };

  it('refuses requests without the API key but answers /healthz', async () => {
    expect((await app.inject({ method: 'POST', url: '/v1/exec', payload: { code: 'x' } })).statusCode).toBe(401);
    expect((await app.inject({ method: 'POST', url: '/v1/exec', payload: { code: 'x' }, headers: { authorization: 'Bearer k2' } })).statusCode).toBe(401);
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  });

  it('answers 200 with the result', async () => {
    const response = await app.inject({ method: 'POST', url: '/v1/exec', payload: { code: 'print(1)' }, headers: auth });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ stdout: 'print(1)' });
  });

  it('answers 429 with Retry-After when busy, and 400 naming the field for bad input', async () => {
    const busy = await app.inject({ method: 'POST', url: '/v1/exec', payload: { code: 'busy' }, headers: auth });
    expect(busy.statusCode).toBe(429);
    expect(busy.headers['retry-after']).toBe('2');
    expect(busy.json()).toMatchObject({ error: { name: 'QueueFullError', retryable: true, retryAfterMs: 1500 } });
    const bad = await app.inject({ method: 'POST', url: '/v1/exec', payload: { code: 'bad' }, headers: auth });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ error: { name: 'InvalidInputError', field: 'language', retryable: false } });
  });

  it('answers 400 for a body that is not a JSON object', async () => {
    const notJson = await app.inject({ method: 'POST', url: '/v1/exec', payload: '{"code":', headers: { ...auth, 'content-type': 'application/json' } });
    expect(notJson.statusCode).toBe(400);
    expect(notJson.json<{ error: { message: string } }>().error.message).toMatch(/JSON object/);
    const array = await app.inject({ method: 'POST', url: '/v1/exec', payload: [1], headers: auth });
    expect(array.json()).toMatchObject({ error: { field: 'request' } });
  });

  it('maps session errors and serves both metrics formats', async () => {
    expect((await app.inject({ method: 'POST', url: '/v1/exec/sessions', payload: {}, headers: auth })).statusCode).toBe(409);
    const full = await app.inject({ method: 'POST', url: '/v1/exec/sessions', payload: { user: 'full' }, headers: auth });
    expect(full.statusCode).toBe(429);
    expect(full.headers['retry-after']).toBe('3');
    expect(full.json()).toMatchObject({ error: { name: 'SessionLimitError', retryable: true, retryAfterMs: 2500 } });
    expect((await app.inject({ method: 'DELETE', url: '/v1/exec/sessions/ses_x', headers: auth })).statusCode).toBe(404);
    expect((await app.inject({ method: 'GET', url: '/v1/exec/metrics', headers: auth })).json()).toEqual({ requests: { total: 7 } });
    const prometheus = await app.inject({ method: 'GET', url: '/metrics', headers: auth });
    expect(prometheus.headers['content-type']).toMatch(/^text\/plain/);
    expect(prometheus.body).toContain('tradeswarm_exec_requests_total 7');
  });
});

/** POSTs `body` to `/v1/exec` and returns the result, failing on any other status than 200. */
async function execOver(server: ApiServer, body: object): Promise<ExecResult> {
  const response = await fetch(`${server.url}/v1/exec`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(response.status).toBe(200);
  return (await response.json()) as ExecResult;
}

describe('HTTP and MCP against a real service', () => {
  let service: ExecService;
  let server: ApiServer;
  beforeAll(async () => {
    service = await createExecService({ logger: silentLogger, pool: { minSize: 1, targetSize: 1 }, localCloud: { warmPoolSize: 1, metricsIntervalMs: 0 } });
    server = await listen(execApp(service));
  });
  afterAll(async () => {
    await server?.close();
    await service?.close();
  });

  it('runs code sent with fetch, and counts it in the JSON and Prometheus metrics', async () => {
    const response = await fetch(`${server.url}/v1/exec`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code: 'print("over http")', user: 'curl' }) });
    expect(response.status).toBe(200);
    const result = (await response.json()) as ExecResult;
    expect(result).toMatchObject({ stdout: 'over http\n', user: 'curl', fromCache: false });
    const metrics = (await (await fetch(`${server.url}/v1/exec/metrics`)).json()) as ReturnType<ExecService['metrics']>;
    expect(metrics.requests).toMatchObject({ total: 1, ok: 1 });
    expect(metrics.users.curl?.requests).toBe(1);
    const prometheus = await (await fetch(`${server.url}/metrics`)).text();
    expect(prometheus).toContain('tradeswarm_exec_requests_total{outcome="ok",cache="miss"} 1');
    expect(prometheus).toMatch(/tradeswarm_exec_latency_seconds_count\{phase="total"\} 1/);
  });

  it('opens a session over HTTP, keeps its state, and closes it', async () => {
    const post = (path: string, body: object): Promise<Response> =>
      fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const opened = await post('/v1/exec/sessions', { user: 'dana' });
    expect(opened.status).toBe(201);
    const { session } = (await opened.json()) as { session: string };
    await post('/v1/exec', { code: 'n = 20', user: 'dana', session });
    const result = (await (await post('/v1/exec', { code: 'n + 22', user: 'dana', session })).json()) as ExecResult;
    expect(result.results[0]?.text).toBe('42');
    expect((await fetch(`${server.url}/v1/exec/sessions/${session}?user=dana`, { method: 'DELETE' })).status).toBe(204);
    expect((await post('/v1/exec', { code: 'n', user: 'dana', session })).status).toBe(404);
  });

  it("answers only the user that opened a session: another user's executions and close get 404, as an unknown session does", async () => {
    const post = (path: string, body: object): Promise<Response> =>
      fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const { session } = (await (await post('/v1/exec/sessions', { user: 'ann' })).json()) as { session: string };
    await post('/v1/exec', { code: 'secret = "ann"', user: 'ann', session });
    const unknown = await post('/v1/exec', { code: 'secret', user: 'bob', session: 'ses_unknown' });
    const asBob = await post('/v1/exec', { code: 'secret', user: 'bob', session });
    expect([unknown.status, asBob.status]).toEqual([404, 404]);
    const bobsError = ((await asBob.json()) as { error: { message: string } }).error.message;
    expect(bobsError).toBe(((await unknown.json()) as { error: { message: string } }).error.message.replace('ses_unknown', session));
    expect((await fetch(`${server.url}/v1/exec/sessions/${session}?user=bob`, { method: 'DELETE' })).status).toBe(404);
    expect((await fetch(`${server.url}/v1/exec/sessions/${session}`, { method: 'DELETE' })).status).toBe(404);
    const stillThere = (await (await post('/v1/exec', { code: 'secret', user: 'ann', session })).json()) as ExecResult;
    expect(stillThere.results[0]?.text).toBe("'ann'");
    expect((await fetch(`${server.url}/v1/exec/sessions/${session}?user=ann`, { method: 'DELETE' })).status).toBe(204);
  });

  it('behind an API key, answers a session only to a request with the key and the user that opened it', async () => {
    const app = execApp(service, { apiKey: 'k-sessions' });
    const auth = { authorization: 'Bearer k-sessions' };
    const opened = await app.inject({ method: 'POST', url: '/v1/exec/sessions', payload: { user: 'erin' }, headers: auth });
    expect(opened.statusCode).toBe(201);
    const { session } = opened.json<{ session: string }>();
    expect((await app.inject({ method: 'DELETE', url: `/v1/exec/sessions/${session}?user=erin` })).statusCode).toBe(401);
    expect((await app.inject({ method: 'POST', url: '/v1/exec', payload: { code: '1', user: 'frank', session }, headers: auth })).statusCode).toBe(404);
    expect((await app.inject({ method: 'DELETE', url: `/v1/exec/sessions/${session}?user=frank`, headers: auth })).statusCode).toBe(404);
    expect((await app.inject({ method: 'POST', url: '/v1/exec', payload: { code: '6 * 7', user: 'erin', session }, headers: auth })).json<ExecResult>().results[0]?.text).toBe('42');
    expect((await app.inject({ method: 'DELETE', url: `/v1/exec/sessions/${session}?user=erin`, headers: auth })).statusCode).toBe(204);
    await app.close();
  });

  it.each(['python', 'javascript'] as const)('gives %s code sent over HTTP no network: it cannot reach this server nor its local cloud on 127.0.0.1', async (language) => {
    const result = await execOver(server, { code: reachCode(language, [server.port, portOf(service.localCloud!.apiUrl)]), language, user: 'mallory' });
    expect(JSON.parse(result.stdout)).toEqual(['failed', 'failed']);
  });

  it('serves run_code to the MCP SDK client', async () => {
    const mcp = createExecMcpServer(service, { user: 'assistant' });
    const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
    const client = new Client({ name: 'test-client', version: '1.0.0' });
    await Promise.all([mcp.connect(serverTransport), client.connect(clientTransport)]);
    try {
      const { tools } = await client.listTools();
      expect(tools.map((tool) => tool.name)).toEqual(['run_code']);
      expect(tools[0]?.inputSchema.required).toEqual(['code']);
      const ok = await client.callTool({ name: 'run_code', arguments: { code: 'print("from mcp")\nsum(range(5))' } });
      expect(ok.isError).toBe(false);
      const text = (ok.content as Array<{ type: string; text: string }>)[0]?.text ?? '';
      expect(text).toContain('stdout:\nfrom mcp');
      expect(text).toContain('result: 10');
      expect(ok.structuredContent).toMatchObject({ user: 'assistant', language: 'python' });
      const failing = await client.callTool({ name: 'run_code', arguments: { code: 'throw new Error("nope")', language: 'javascript' } });
      expect(failing.isError).toBe(true);
      expect((failing.content as Array<{ text: string }>)[0]?.text).toMatch(/error: Error: nope/);
      const invalid = await client.callTool({ name: 'run_code', arguments: { code: 'x', timeoutMs: 999_999_999 } });
      expect(invalid.isError).toBe(true);
      expect((invalid.content as Array<{ text: string }>)[0]?.text).toMatch(/timeoutMs/);
    } finally {
      await client.close();
      await mcp.close();
    }
  });
});

describe('HTTP against a service that opted in to internet access', () => {
  let service: ExecService;
  let server: ApiServer;
  beforeAll(async () => {
    service = await createExecService({ allowInternetAccess: true, logger: silentLogger, pool: { minSize: 1, targetSize: 1 }, localCloud: { warmPoolSize: 1, metricsIntervalMs: 0 } });
    server = await listen(execApp(service));
  });
  afterAll(async () => {
    await server?.close();
    await service?.close();
  });

  it.each(['python', 'javascript'] as const)('lets %s code reach this server and its local cloud on 127.0.0.1 (what the opt-in risks)', async (language) => {
    const result = await execOver(server, { code: reachCode(language, [server.port, portOf(service.localCloud!.apiUrl)]), language, user: 'mallory' });
    expect(JSON.parse(result.stdout)).toEqual(['connected', 'connected']);
  });
});
