export { ResultCache, type ResultCacheOptions, type ResultCacheStats } from './cache.js';
export { judgeDeterminism } from './determinism.js';
