import { openStore } from './open.js';
import { storeContract } from './store.testkit.js';

// The data-dir variant, the lock and the kill test are in pglite.integration.test.ts: each PGlite takes
// seconds to start, too slow for the unit tier.
storeContract('PGlite in memory', {
  persistent: false,
  concurrentOpens: false,
  newTarget: () => Promise.resolve({ open: (options) => openStore({ dataDir: 'memory', ...options }), dispose: () => Promise.resolve() }),
});
