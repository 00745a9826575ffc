import Module from 'node:module';
import { Script } from 'node:vm';
import type { AgentBundle } from './bundle.js';

/**
 * A V8 code cache lets a process skip compiling the bundle: measured on a 1.3 MB agent bundle, an
 * agent reached its first heartbeat with 105 ms of CPU instead of 122 ms. Node 20 has no built-in
 * compile cache (`module.enableCompileCache` came in Node 22), and the `v8-compile-cache` package keys
 * its store by absolute path and fills it at exit in a folder of the machine that ran the code; here
 * the cache is made on the control plane's machine and shipped into sandboxes, so the few lines are ours.
 *
 * The cache is made from compiling alone: nothing of the bundle runs on the control plane's machine.
 * V8 checks it against the exact source, its own version and its flags, and rejects one that does not
 * fit (a sandbox with another Node): the bundle is then compiled as without a cache.
 */

/** What {@link CODE_CACHE_LOADER} says it did, in the agent's `TS_CODE_CACHE` env var. */
export type CodeCacheUse = 'used' | 'rejected' | 'none';

/**
 * The loader, run as `node -e <loader> <bundle.cjs> <cache file>`: compiles the CommonJS bundle with
 * the cache when the file is there, sets `TS_CODE_CACHE` to what happened, and runs the bundle as
 * Node would run `node <bundle.cjs>` (its own `require`, `module`, `__filename`, `__dirname`).
 */
export const CODE_CACHE_LOADER = [
  "'use strict';",
  "const { readFileSync } = require('node:fs');",
  "const { dirname } = require('node:path');",
  "const { createRequire, wrap } = require('node:module');",
  "const { Script } = require('node:vm');",
  'const [file, cacheFile] = process.argv.slice(1);',
  'let cachedData;',
  'try { cachedData = readFileSync(cacheFile); } catch {}',
  "const script = new Script(wrap(readFileSync(file, 'utf8')), { filename: file, cachedData });",
  "process.env.TS_CODE_CACHE = cachedData === undefined ? 'none' : script.cachedDataRejected ? 'rejected' : 'used';",
  'const bundleModule = { exports: {}, filename: file, id: file, loaded: false };',
  'script.runInThisContext().call(bundleModule.exports, bundleModule.exports, createRequire(file), bundleModule, file, dirname(file));',
  'bundleModule.loaded = true;',
].join('\n');

/** Code caches made in this process, by bundle hash (a bundle's cache is the same every time). */
const made = new Map<string, Uint8Array<ArrayBuffer>>();
const MADE_LIMIT = 8;

/**
 * The V8 code cache of `bundle` for this process's Node, made by compiling it the way
 * {@link CODE_CACHE_LOADER} does (about 25 ms for a 1.2 MB bundle; remembered by hash).
 */
export function codeCacheOf(bundle: Pick<AgentBundle, 'code' | 'sha256'>): Uint8Array<ArrayBuffer> {
  const known = made.get(bundle.sha256);
  if (known !== undefined) return known;
  const cache = new Uint8Array(new Script(Module.wrap(bundle.code)).createCachedData());
  made.set(bundle.sha256, cache);
  if (made.size > MADE_LIMIT) made.delete(made.keys().next().value!);
  return cache;
}

/** Where the code cache of the bundle at `bundlePath` is kept (next to it). */
export function codeCachePathOf(bundlePath: string): string {
  return `${bundlePath}.v8cache`;
}
