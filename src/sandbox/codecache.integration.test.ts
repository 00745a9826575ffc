import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CODE_CACHE_LOADER, codeCacheOf, codeCachePathOf } from './codecache.js';

const run = promisify(execFile);

/** A CommonJS "bundle" that shows what the loader handed it. */
const CODE = [
  "const { basename } = require('node:path');",
  'module.exports.answer = 42;',
  'process.stdout.write(JSON.stringify({',
  '  file: basename(__filename),',
  '  dir: basename(__dirname),',
  '  exportsAreModuleExports: exports === module.exports,',
  '  answer: module.exports.answer,',
  '  codeCache: process.env.TS_CODE_CACHE,',
  '}));',
].join('\n');
const bundle = { code: CODE, sha256: createHash('sha256').update(CODE).digest('hex') };

let dir = '';
let file = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tradeswarm-codecache-test-'));
  file = join(dir, 'agent.cjs');
  await writeFile(file, CODE);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function load(cache: Uint8Array | string | undefined): Promise<Record<string, unknown>> {
  const cacheFile = codeCachePathOf(file);
  await rm(cacheFile, { force: true });
  if (cache !== undefined) await writeFile(cacheFile, cache);
  const { stdout } = await run(process.execPath, ['-e', CODE_CACHE_LOADER, file, cacheFile], { env: { PATH: process.env.PATH ?? '' }, timeout: 10_000 });
  return JSON.parse(stdout) as Record<string, unknown>;
}

describe('the code-cache loader', () => {
  it('runs the bundle from the cache made on this machine, as node would run the file', async () => {
    expect(await load(codeCacheOf(bundle))).toEqual({ file: 'agent.cjs', dir: dir.split('/').at(-1), exportsAreModuleExports: true, answer: 42, codeCache: 'used' });
  });

  it('compiles the bundle as usual without a cache, or with one V8 rejects', async () => {
    expect(await load(undefined)).toMatchObject({ answer: 42, codeCache: 'none' });
    expect(await load('not a code cache')).toMatchObject({ answer: 42, codeCache: 'rejected' });
    // The cache of another source (one character more) does not fit either.
    expect(await load(codeCacheOf({ code: `${CODE} `, sha256: 'other' }))).toMatchObject({ answer: 42, codeCache: 'rejected' });
  });

  it('makes a bundle\'s cache once per process', () => {
    expect(codeCacheOf(bundle)).toBe(codeCacheOf(bundle));
    expect(codeCacheOf(bundle).byteLength).toBeGreaterThan(0);
  });
});
