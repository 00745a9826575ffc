import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createApp } from '../api/index.js';
import type { ControlPlane } from './controlplane.js';
import { controlPlaneRoutes } from './http.js';
import { API_ROUTES, openApiDocument } from './openapi.js';
import { errorBodySchema } from './schemas.js';

/** The parts of a JSON Schema the tests read. */
interface Schema {
  readonly type?: string;
  readonly $ref?: string;
  readonly properties?: Record<string, Schema>;
  readonly required?: string[];
  readonly items?: Schema;
}

const media = z.partialRecord(z.enum(['application/json', 'text/event-stream']), z.object({ schema: z.custom<Schema>((value) => typeof value === 'object' && value !== null) }));
const operationSchema = z.strictObject({
  summary: z.string().min(1),
  parameters: z.array(z.object({ name: z.string(), in: z.enum(['path', 'query']), required: z.boolean(), description: z.string().optional(), schema: z.record(z.string(), z.unknown()) })).optional(),
  requestBody: z.object({ required: z.literal(true), content: media }).optional(),
  security: z.array(z.unknown()).optional(),
  responses: z.record(z.string().regex(/^[1-5]\d\d$/), z.object({ description: z.string().min(1), content: media })),
});
/** The shape of an OpenAPI 3.1 document, as far as this one uses it. */
const documentSchema = z.strictObject({
  openapi: z.literal('3.1.0'),
  jsonSchemaDialect: z.literal('https://json-schema.org/draft/2020-12/schema'),
  info: z.object({ title: z.string(), version: z.string(), description: z.string() }),
  paths: z.record(z.string().startsWith('/'), z.partialRecord(z.enum(['get', 'post']), operationSchema)),
  components: z.object({ schemas: z.record(z.string(), z.custom<Schema>((value) => typeof value === 'object' && value !== null)), securitySchemes: z.record(z.string(), z.object({ type: z.string() })) }),
  security: z.array(z.record(z.string(), z.array(z.string()))),
});

describe('the OpenAPI document', () => {
  const document = documentSchema.parse(openApiDocument());
  const operation = (path: string, method: 'get' | 'post') => document.paths[path]?.[method];
  const component = (name: string): Schema => document.components.schemas[name] ?? {};

  it('is OpenAPI 3.1 and lists every route with its methods', () => {
    expect(document.openapi).toBe('3.1.0');
    expect(Object.fromEntries(Object.entries(document.paths).map(([path, item]) => [path, Object.keys(item)]))).toEqual({
      '/healthz': ['get'],
      '/v1/deployments': ['post', 'get'],
      '/v1/deployments/{ref}': ['get'],
      '/v1/deployments/{ref}/orders': ['get'],
      '/v1/deployments/{ref}/fills': ['get'],
      '/v1/deployments/{ref}/logs': ['get'],
      '/v1/deployments/{ref}/events': ['get'],
      '/v1/deployments/{ref}/bars': ['post'],
      '/v1/deployments/{ref}/agents/{agent}/restart': ['post'],
      '/v1/deployments/{ref}/scale': ['post'],
      '/v1/deployments/{ref}/stop': ['post'],
      '/v1/stream': ['get'],
      '/v1/openapi.json': ['get'],
    });
    expect(operation('/healthz', 'get')?.security).toEqual([]);
    expect(operation('/v1/deployments/{ref}/orders', 'get')?.parameters).toEqual([
      { name: 'ref', in: 'path', required: true, description: "The deployment's id or name.", schema: { type: 'string' } },
      { name: 'fromStep', in: 'query', required: false, description: 'Only orders of this step and later.', schema: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } },
      { name: 'limit', in: 'query', required: false, description: 'At most this many orders.', schema: { type: 'integer', minimum: 1, maximum: 100_000 } },
    ]);
  });

  it('declares the body of POST /v1/deployments as the route validates it, and its answers', () => {
    const post = operation('/v1/deployments', 'post');
    expect(post?.requestBody).toEqual({ required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/DeployRequest' } } } });
    expect(component('DeployRequest')).toEqual({
      type: 'object',
      properties: {
        spec: { type: 'string', minLength: 1, maxLength: 1024 * 1024, description: 'The spec, as YAML text: the file `run` and `backtest` read.' },
        baseDir: { type: 'string', minLength: 1, maxLength: 4096, description: "Where the spec's CSV paths are relative to, on the server's machine (the spec file's folder)." },
        name: { type: 'string', minLength: 1, maxLength: 63, description: "The deployment's name; default: the spec's name." },
        env: { type: 'string', enum: ['dev', 'staging', 'prod'], description: 'dev (the default), staging or prod.' },
      },
      required: ['spec', 'baseDir'],
      additionalProperties: false,
    });
    expect(Object.keys(post?.responses ?? {})).toEqual(['201', '400', '401', '409', '500', '503']);
    expect(post?.responses['201']?.content['application/json']?.schema).toEqual({ $ref: '#/components/schemas/DeploymentView' });
    expect(post?.responses['409']?.content['application/json']?.schema).toEqual({ $ref: '#/components/schemas/ErrorBody' });
    expect(operation('/v1/deployments', 'get')?.responses['200']?.content['application/json']?.schema).toEqual({ type: 'array', items: { $ref: '#/components/schemas/DeploymentView' } });
  });

  it('declares the error body every error answers', () => {
    const error = component('ErrorBody').properties?.error;
    expect(component('ErrorBody').required).toEqual(['error']);
    expect(error?.required).toEqual(['code', 'name', 'message', 'retryable']);
    expect(Object.keys(error?.properties ?? {})).toEqual(['code', 'name', 'message', 'retryable', 'field', 'retryAfterMs', 'issues', 'leader']);
    expect(error?.properties?.leader?.required).toEqual(['holder', 'url', 'epoch', 'expiresAt']);
    expect(error?.properties?.issues?.items?.required).toEqual(['path', 'got', 'allowed']);
    for (const name of ['DeploymentView', 'DeploymentStatus', 'OrderRecord', 'FillRecord', 'EventRecord', 'Health']) expect(component(name).type).toBe('object');
    expect(component('DeploymentStatus').properties?.events).toEqual({ type: 'array', items: { $ref: '#/components/schemas/EventRecord' } });
    expect(component('DeploymentStatus').required).toEqual(expect.arrayContaining(['agentList', 'positions', 'events', 'report', 'state', 'steps']));
  });

  it('declares the stream as server-sent events and the bars body', () => {
    expect(operation('/v1/stream', 'get')?.responses['200']?.content).toEqual({ 'text/event-stream': { schema: { type: 'string' } } });
    expect(component('BarsRequest').required).toEqual(['bars']);
    expect(operation('/v1/deployments/{ref}/bars', 'post')?.responses['200']?.content['application/json']?.schema).toEqual({ $ref: '#/components/schemas/PublishedBars' });
  });

  it('lists exactly the routes the app serves, is served at GET /v1/openapi.json, and a 400 answers its error body', async () => {
    const controlPlane = {} as ControlPlane;
    const app = createApp();
    const registered: string[] = [];
    app.addHook('onRoute', (route) => {
      for (const method of [route.method].flat()) if (method !== 'HEAD') registered.push(`${method.toLowerCase()} ${route.url}`);
    });
    await app.register(controlPlaneRoutes, { controlPlane });
    await app.ready();
    try {
      expect(registered.sort()).toEqual(API_ROUTES.filter((route) => route.path !== '/healthz').map((route) => `${route.method} ${route.path.replace('{ref}', ':ref').replace('{agent}', ':agent')}`).sort());
      expect(app.hasRoute({ method: 'GET', url: '/healthz' })).toBe(true);
      const served = await app.inject({ method: 'GET', url: '/v1/openapi.json' });
      expect(served.statusCode).toBe(200);
      expect(served.json()).toEqual(openApiDocument());
      const refused = await app.inject({ method: 'POST', url: '/v1/deployments', payload: { spec: '', env: 'qa', extra: 1 } });
      expect(refused.statusCode).toBe(400);
      const body = errorBodySchema.parse(refused.json());
      expect(body.error.issues?.map((issue) => issue.path).sort()).toEqual(['baseDir', 'env', 'extra', 'spec']);
    } finally {
      await app.close();
    }
  });
});
