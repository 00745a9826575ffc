import { describe, expect, it } from 'vitest';
import { InvalidInputError, TradeswarmError, silentLogger } from '../core/index.js';
import { createApp } from './app.js';
import { mapErrors } from './replies.js';

class BusyError extends TradeswarmError {
  override readonly name = 'BusyError';
  readonly retryAfterMs = 1_500;
  constructor() {
    super('busy; retry in about 1500 ms', { retryable: true });
  }
}

/** An app with one plugin of routes that throw what they are told, and a route outside it. */
async function appWithRoutes(options: Parameters<typeof createApp>[0] = {}) {
  const app = createApp({ logger: silentLogger, ...options });
  const failures: Record<string, () => unknown> = {
    invalid: () => new InvalidInputError('language', 'must be one of python, javascript'),
    busy: () => new BusyError(),
    closed: () => new TradeswarmError('closed for good', { retryable: false }),
    teapot: () => Object.assign(new TradeswarmError('I am a teapot'), { teapot: true }),
    bug: () => new Error('bug'),
  };
  await app.register((plugin) => {
    mapErrors(plugin, { statusOf: (error) => ((error as { teapot?: boolean }).teapot === true ? 418 : undefined), requestHint: 'send {"kind": "…"}' });
    plugin.post<{ Body: { kind: string } }>('/v1/fail', (request) => {
      throw failures[request.body.kind]!();
    });
    return Promise.resolve();
  });
  app.post('/v1/other', () => {
    throw Object.assign(new TradeswarmError('I am a teapot'), { teapot: true });
  });
  return app;
}

describe('createApp', () => {
  it('answers the health route to anyone, and every other route only with the API key', async () => {
    const app = await appWithRoutes({ apiKey: 'k1', name: 'tradeswarm exec serve' });
    expect((await app.inject({ method: 'GET', url: '/healthz' })).json()).toEqual({ ok: true });
    const refused = await app.inject({ method: 'POST', url: '/v1/fail', payload: { kind: 'bug' }, headers: { authorization: 'Bearer k2' } });
    expect(refused.statusCode).toBe(401);
    expect(refused.json()).toEqual({ error: { code: 'unauthorized', name: 'Unauthorized', message: 'send Authorization: Bearer <api key> (the key `tradeswarm exec serve` printed)', retryable: false } });
    expect((await app.inject({ method: 'POST', url: '/v1/fail', payload: { kind: 'invalid' }, headers: { authorization: 'Bearer k1' } })).statusCode).toBe(400);
  });

  it.each([
    { kind: 'invalid', status: 400, error: { code: 'invalid-input', name: 'InvalidInputError', field: 'language', retryable: false } },
    { kind: 'busy', status: 503, error: { code: 'unavailable', name: 'BusyError', retryable: true, retryAfterMs: 1_500 } },
    { kind: 'closed', status: 500, error: { code: 'failed', name: 'TradeswarmError', retryable: false } },
    { kind: 'teapot', status: 418, error: { code: 'failed', name: 'TradeswarmError', message: 'I am a teapot' } },
    { kind: 'bug', status: 500, error: { code: 'internal', name: 'Error', message: 'bug', retryable: false } },
  ])('answers $kind with $status and its error as JSON, by the error tree and the plugin\'s own statuses', async ({ kind, status, error }) => {
    const response = await (await appWithRoutes()).inject({ method: 'POST', url: '/v1/fail', payload: { kind } });
    expect(response.statusCode).toBe(status);
    expect(response.json()).toMatchObject({ error });
    expect(response.headers['retry-after']).toBe(kind === 'busy' ? '2' : undefined);
  });

  it("keeps a plugin's statuses and hint to its own routes", async () => {
    const app = await appWithRoutes({ bodyLimitBytes: 64 });
    expect((await app.inject({ method: 'POST', url: '/v1/other', payload: {} })).statusCode).toBe(500);
    const malformed = await app.inject({ method: 'POST', url: '/v1/fail', payload: '{"kind":', headers: { 'content-type': 'application/json' } });
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json<{ error: { name: string; message: string } }>().error).toMatchObject({ code: 'invalid-input', name: 'BadRequest' });
    expect(malformed.json<{ error: { message: string } }>().error.message).toMatch(/; send \{"kind": "…"\}$/);
    const large = await app.inject({ method: 'POST', url: '/v1/other', payload: { padding: 'x'.repeat(100) } });
    expect(large.statusCode).toBe(413);
    expect(large.json<{ error: { message: string } }>().error.message).toMatch(/; send a JSON object$/);
  });

  it('refuses bad options naming the field', () => {
    expect(() => createApp({ apiKey: '' })).toThrow(/^apiKey: /);
    expect(() => createApp({ bodyLimitBytes: 0 })).toThrow(/^bodyLimitBytes: /);
    expect(() => createApp({ name: ' ' })).toThrow(/^name: /);
  });
});
