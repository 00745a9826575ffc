// The store's public face: the persistence seam (DESIGN decision 7), its options and its errors.
export { openStore } from './open.js';
export type { Store, Queryable, OpenStoreOptions } from './store.js';
export { StoreError, DuplicateError, isStoreError, isDuplicateError } from './errors.js';
