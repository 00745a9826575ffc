import { defineConfig } from 'vitest/config';

/**
 * Two tiers. `unit`: pure code and in-process fakes, seconds in all (`npm run test:unit`).
 * `integration`: tests that start real processes, sandboxes, brokers or servers (`*.integration.test.ts`
 * beside the code, and `test/` for the SDK conformance suites and the CLI end to end). `npm test` runs both.
 */
export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Sandboxes are real processes; two cores do not like many test files at once.
    maxWorkers: 2,
    projects: [
      { extends: true, test: { name: 'unit', include: ['src/**/*.test.ts'], exclude: ['src/**/*.integration.test.ts'] } },
      // Their processes start the CLI through tsx: on a loaded machine a start alone can take 10 s and more, so
      // their limit is for hangs, not for speed (timing never fails a test; benchmarks measure it).
      { extends: true, test: { name: 'integration', include: ['src/**/*.integration.test.ts', 'test/**/*.test.ts'], testTimeout: 120_000 } },
    ],
  },
});
