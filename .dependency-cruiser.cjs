// Architecture rules checked by `npm run lint:deps` (part of npm test):
// no import cycles, and a domain (a folder of src/) is used by others only through its index.ts.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    { name: 'no-cycles', severity: 'error', comment: 'Import cycles make modules load half-initialised and hide the layering.', from: {}, to: { circular: true } },
    {
      name: 'domain-public-face',
      severity: 'error',
      comment: "Another domain's insides are private: import its index.ts.",
      from: { path: '^src/([^/]+)/' },
      to: { path: '^src/[^/]+/.+', pathNot: ['^src/$1/', '^src/[^/]+/index\\.ts$'] },
    },
    {
      name: 'tests-and-benchmarks-use-public-faces',
      severity: 'error',
      comment: 'Tests and benchmarks outside src/ use a domain through its index.ts.',
      from: { path: '^(test|bench)/' },
      to: { path: '^src/[^/]+/.+', pathNot: '^src/[^/]+/index\\.ts$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.mjs', '.json'] },
  },
};
