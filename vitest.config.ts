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
    // test/watchdog.ts ends a run whose file hangs where vitest's own timeouts cannot reach, naming it.
    reporters: ['default', './test/watchdog.ts'],
    projects: [
      { extends: true, test: { name: 'unit', include: ['src/**/*.test.ts'], exclude: ['src/**/*.integration.test.ts'] } },
      // They start real processes (sandboxes, agents, the CLI from the build that test/build-dist.ts makes first): on a
      // loaded machine that is slow, so their limit is for hangs, not for speed (timing never fails a test; benchmarks measure it).
      {
        extends: true,
        test: { name: 'integration', include: ['src/**/*.integration.test.ts', 'test/**/*.test.ts'], globalSetup: ['test/build-dist.ts'], testTimeout: 120_000 },
      },
    ],
  },
});
