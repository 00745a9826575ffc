import { describe, expect, it } from 'vitest';
import { createApp } from '../api/index.js';
import { API_ROUTES, errorBodySchema, openApiDocument } from '../contract/index.js';
import type { ControlPlane } from './controlplane.js';
import { controlPlaneRoutes } from './http.js';

describe('the control plane\'s routes', () => {
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
