import { describe, expect, it } from 'vitest';
import { conformanceBackend } from '../fixtures/backend.js';

describe('which backend the conformance suites drive', () => {
  it.each([
    { env: {}, kind: 'local' },
    { env: { E2B_API_KEY: 'e2b_123' }, kind: 'e2b' },
    { env: { E2B_API_KEY: ' ' }, kind: 'local' },
    { env: { E2B_API_KEY: 'e2b_123', E2B_API_URL: 'http://127.0.0.1:49982' }, kind: 'local' },
    { env: { E2B_API_KEY: 'e2b_123', E2B_SANDBOX_URL: 'http://127.0.0.1:49982' }, kind: 'local' },
    { env: { E2B_API_KEY: 'e2b_123', E2B_API_URL: '', E2B_SANDBOX_URL: '' }, kind: 'e2b' },
  ])('$env → $kind', ({ env, kind }) => {
    expect(conformanceBackend(env)).toBe(kind);
  });
});
