// Architecture rules checked by `npm run lint:deps` (part of npm test): no import cycles; a domain
// (a folder of src/) is used by others only through its index.ts; only the CLI runs backtests; the
// agent that runs inside sandboxes stays clear of the control plane; only the sandbox domain imports
// the e2b SDKs and only the store the database drivers; test helpers (*.testkit.ts) stay out of production code.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    { name: 'no-cycles', severity: 'error', comment: 'Import cycles make modules load half-initialised and hide the layering.', from: {}, to: { circular: true } },
    {
      name: 'domain-public-face',
      severity: 'error',
      comment:
        "Another domain's insides are private: import its index.ts. Its test kits (*.testkit.ts: a seam's contract suite) are open to " +
        'the tests of other domains that implement the seam (a live feed runs the feed contract); production code may not use them (below).',
      from: { path: '^src/([^/]+)/' },
      to: { path: '^src/[^/]+/.+', pathNot: ['^src/$1/', '^src/[^/]+/index\\.ts$', '^src/[^/]+/[^/]+\\.testkit\\.ts$'] },
    },
    {
      name: 'only-sandbox-imports-the-e2b-sdk',
      severity: 'error',
      comment:
        'The e2b SDKs are the only sandbox client (DESIGN decision 1), reached through one seam: src/sandbox/ (SandboxProvider, ' +
        'the pool, deploying agents). Elsewhere in src/, use the sandbox domain, so local versus cloud settings, rate limits, ' +
        "owner tags and the SDK's error types stay in one place. Tests, the conformance suites and benchmarks drive the SDK itself, on purpose.",
      from: { path: '^src/', pathNot: ['^src/sandbox/', '\\.test\\.ts$'] },
      to: { path: '(^|/)node_modules/(e2b|@e2b/code-interpreter)/' },
    },
    {
      name: 'only-store-imports-the-database-drivers',
      severity: 'error',
      comment:
        'The store is the one persistence seam (DESIGN decision 7): PGlite and pg are reached only through src/store/ (openStore, ' +
        'Store.query, Store.transaction), so both drivers give the same rows, errors are mapped in one place, and migrations and ' +
        'the data dir lock stay with the database.',
      from: { path: '^(src|test|bench)/', pathNot: '^src/store/' },
      to: { path: '(^|/)node_modules/(@electric-sql/pglite|pg|pg-[^/]+)/' },
    },
    {
      name: 'testkits-are-for-tests',
      severity: 'error',
      comment:
        '*.testkit.ts files are test helpers (contract suites every implementation of a seam passes, in-process agents): ' +
        'production code must not depend on them, nor ship them into the agent bundle.',
      from: { path: '^src/', pathNot: '\\.(test|testkit)\\.ts$' },
      to: { path: '\\.testkit\\.ts$' },
    },
    {
      name: 'tests-and-benchmarks-use-public-faces',
      severity: 'error',
      comment: 'Tests and benchmarks outside src/ use a domain through its index.ts.',
      from: { path: '^(test|bench)/' },
      to: { path: '^src/[^/]+/.+', pathNot: '^src/[^/]+/index\\.ts$' },
    },
    {
      name: 'only-the-cli-runs-backtests',
      severity: 'error',
      comment:
        'The backtest engine is one of two ways to run a spec, beside the swarm: what both need (the spec, strategies, decisions, ' +
        'the trading session) lives in domains of its own, so no domain depends on the in-process runner but the command that starts it ' +
        '(its own tests, test/ and bench/ may use it too).',
      from: { path: '^src/', pathNot: '^src/(backtest|cli)/' },
      to: { path: '^src/backtest/' },
    },
    {
      name: 'agent-stays-out-of-the-control-plane',
      severity: 'error',
      comment:
        'src/agent/ is bundled into every sandbox: all it imports ships (and is compiled) in each one. The swarm orchestrator, the ' +
        'local cloud server, the backtest engine and the spec file with its YAML and CSV loaders belong to the control plane; the ' +
        'agent hears of them over the bus only (it builds its strategies from their entries, in src/strategy/).',
      from: { path: '^src/agent/' },
      to: { path: '^src/(backtest|swarm|localcloud|runspec)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.mjs', '.json'] },
  },
};
