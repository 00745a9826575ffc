import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type ApiServer, createApp, listen, mapErrors } from '../api/index.js';
import { controlPlaneErrorStatus } from '../controlplane/index.js';
import { SpecError } from '../runspec/index.js';
import { closedPort } from '../../test/fixtures/servers.js';
import { ControlPlaneClient, ServerError } from './client.js';

describe('ControlPlaneClient', () => {
  let server: ApiServer;
  const seen: Array<{ method: string; url: string; authorization: string | undefined; body: unknown }> = [];

  beforeAll(async () => {
    const app = createApp({ apiKey: 'k1', health: () => ({ role: 'follower', leader: null }) });
    app.addHook('onRequest', (request, _reply, done) => {
      seen.push({ method: request.method, url: request.url, authorization: request.headers.authorization, body: undefined });
      done();
    });
    await app.register((scoped) => {
      mapErrors(scoped, { statusOf: controlPlaneErrorStatus });
      scoped.post('/v1/deployments', (request) => {
        const body = request.body as { spec: string };
        if (body.spec === 'bad') throw new SpecError('the deployed spec', [{ field: 'swarm.topology', value: 'circle', allowed: 'must be one of "mesh", "star", "hierarchical", "ring"' }]);
        return { name: 'made', echoed: request.body };
      });
      return Promise.resolve();
    });
    app.get('/v1/deployments/:ref/orders', () => []);
    app.get('/v1/deployments/:ref/fills', (_request, reply) => reply.code(502).type('text/plain').send('Bad Gateway'));
    server = await listen(app);
  });
  afterAll(async () => {
    await server.close();
  });

  it('says how to start a server when none answers at its URL', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const error = await new ControlPlaneClient({ url }).list().catch((caught: unknown) => caught);
    expect(error).toMatchObject({ retryable: true });
    expect((error as Error).message).toMatch(new RegExp(`^no tradeswarm server answers at ${url} \\(.*\\); start one with \`tradeswarm serve\` \\(it listens on http://127.0.0.1:7070\\), or point --url / TRADESWARM_URL at yours$`));
  });

  it('refuses a URL that is not http(s), naming the field and an example', () => {
    for (const url of ['127.0.0.1:7070', 'ftp://host', 'not a url']) {
      expect(() => new ControlPlaneClient({ url })).toThrow(`url: must be the http:// or https:// address of a tradeswarm serve, such as http://127.0.0.1:7070, got ${JSON.stringify(url)}; fix --url or TRADESWARM_URL`);
    }
  });

  it('sends the API key and the body, and encodes the reference and the query', async () => {
    const client = new ControlPlaneClient({ url: server.url, apiKey: 'k1' });
    expect(await client.deploy({ spec: 'name: x', baseDir: '/tmp', env: 'staging' })).toEqual({ name: 'made', echoed: { spec: 'name: x', baseDir: '/tmp', env: 'staging' } });
    expect(await client.orders('a/b c', { fromStep: 3 })).toEqual([]);
    expect(seen.slice(-2).map(({ method, url, authorization }) => ({ method, url, authorization }))).toEqual([
      { method: 'POST', url: '/v1/deployments', authorization: 'Bearer k1' },
      { method: 'GET', url: '/v1/deployments/a%2Fb%20c/orders?fromStep=3', authorization: 'Bearer k1' },
    ]);
  });

  it('answers a ServerError with the status when the body is not JSON (a proxy in between)', async () => {
    const error = await new ControlPlaneClient({ url: server.url, apiKey: 'k1' }).fills('x').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ServerError);
    expect(error).toMatchObject({ status: 502, body: null, retryable: true, message: 'the server answered 502' });
  });

  it('calls the server through node:http, not fetch, whose first request loads undici: longer than a client command takes', async () => {
    vi.stubGlobal('fetch', () => Promise.reject(new Error('fetch was called')));
    try {
      expect(await new ControlPlaneClient({ url: server.url, apiKey: 'k1' }).orders('x')).toEqual([]);
    } finally {
      vi.unstubAllGlobals();
    }
  });

  it('asks /healthz whether the server leads, without the API key', async () => {
    expect(await new ControlPlaneClient({ url: server.url }).health()).toEqual({ ok: true, role: 'follower', leader: null });
  });

  it("throws the server's error with its status, message and every field at fault", async () => {
    const client = new ControlPlaneClient({ url: server.url, apiKey: 'k1' });
    const error = await client.deploy({ spec: 'bad', baseDir: '/tmp' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ServerError);
    expect(error).toMatchObject({ status: 400, retryable: false, issues: [{ path: 'swarm.topology', got: 'circle', allowed: 'must be one of "mesh", "star", "hierarchical", "ring"' }] });
    expect((error as Error).message).toMatch(/^the deployed spec has 1 mistake; nothing ran\. Fix:\n {2}- swarm\.topology: got "circle"/);
    const unauthorised = await new ControlPlaneClient({ url: server.url, apiKey: 'wrong' }).list().catch((caught: unknown) => caught);
    expect(unauthorised).toMatchObject({ status: 401, message: 'send Authorization: Bearer <api key> (the key `tradeswarm serve` printed)' });
  });
});
