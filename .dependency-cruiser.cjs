// Architecture rules checked by `npm run lint:deps` (part of npm test): no import cycles; a domain
// (a folder of src/) is used by others only through its index.ts; only the CLI runs backtests; the
// agent that runs inside sandboxes stays clear of the control plane; the clients of `tradeswarm serve`
// reach it over HTTP only, through a client that loads core alone; only the sandbox domain imports
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
    {
      name: 'the-api-contract-is-schemas',
      severity: 'error',
      comment:
        "src/contract/ is the control plane's HTTP API as zod schemas and the OpenAPI document made from them: the server (src/controlplane/) " +
        'validates with it and answers it, the clients (src/client/, src/mcp/) are typed by it. It imports neither side: only core and ' +
        "the names the answers report, health's statuses and the sandbox domain's resource tiers (whose index loads the e2b SDK: the " +
        'contract runs in serve and `tradeswarm mcp`, which load it anyway; src/client/ takes the contract as types only).',
      from: { path: '^src/contract/', pathNot: '\\.test\\.ts$' },
      to: { path: '^src/', pathNot: '^src/(contract|core|health|sandbox)/' },
    },
    {
      name: 'clients-reach-serve-over-http',
      severity: 'error',
      comment:
        "The client commands (src/cli/deployments.ts: deploy, ps, status, orders, logs, restart, scale, stop) and the control plane's MCP tools " +
        '(src/mcp/) drive a running `tradeswarm serve` over its HTTP API, through src/client/ and the API contract: they import no domain ' +
        'of the server (the control plane, the swarm, the store, Fastify...), which take seconds to load, so a client command starts at once.',
      from: { path: ['^src/(client|mcp)/', '^src/cli/deployments\\.ts$'], pathNot: '\\.test\\.ts$' },
      to: { path: '^src/', pathNot: ['^src/(client|contract|core|mcp)/', '^src/cli/commands\\.ts$'] },
    },
    {
      name: 'the-client-loads-core-alone',
      severity: 'error',
      comment:
        'src/client/ is all that a client command loads beside the CLI itself: it calls serve with fetch and builds on core; it takes the ' +
        "API contract's schemas (and zod) as types only, since loading zod takes longer than a client command takes to run.",
      from: { path: '^src/client/', pathNot: '\\.test\\.ts$' },
      to: { path: ['^src/', '(^|/)node_modules/'], pathNot: '^src/(client|core)/', dependencyTypesNot: ['type-only'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.mjs', '.json'] },
  },
};
