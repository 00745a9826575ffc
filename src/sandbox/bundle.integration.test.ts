import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedBroker, swarmTopics } from '../bus/index.js';
import { InvalidInputError, silentLogger } from '../core/index.js';
import { buildBundle, forgetRememberedBundles, pruneDiskCache, type BuildBundleOptions } from './bundle.js';
import { BundleBuildError, isBundleBuildError } from './errors.js';

const run = promisify(execFile);
const ENTRY = fileURLToPath(new URL('../../test/fixtures/bundle-entry.ts', import.meta.url));
const MQTT_ENTRY = fileURLToPath(new URL('../../test/fixtures/bundle-mqtt.ts', import.meta.url));

let scratch = '';
let cacheDir = '';
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'tradeswarm-bundle-test-'));
  cacheDir = join(scratch, 'cache');
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

function build(entry: string, options: Partial<BuildBundleOptions> = {}) {
  return buildBundle({ entry, cacheDir, logger: silentLogger, ...options });
}

/** Writes `files` into a new folder under the scratch folder; returns the folder. */
async function sourceFolder(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(scratch, 'src-'));
  await Promise.all(Object.entries(files).map(([name, content]) => writeFile(join(dir, name), content)));
  return dir;
}

/** Writes `code` as `agent.cjs` in a new folder outside the repository and runs it with plain node. */
async function runOutside(code: string, env: Record<string, string>): Promise<{ stdout: string; stderr: string }> {
  const dir = await mkdtemp(join(scratch, 'run-'));
  await writeFile(join(dir, 'agent.cjs'), code);
  return run(process.execPath, ['agent.cjs'], { cwd: dir, env: { PATH: process.env.PATH ?? '', ...env }, timeout: 10_000 });
}

describe('buildBundle', () => {
  it('bundles the entry with its workspace imports and packages into one module that runs under plain node', async () => {
    const bundle = await build(ENTRY, { cache: false });
    expect(bundle.cached).toBe(false);
    expect(bundle.sha256).toBe(createHash('sha256').update(bundle.code).digest('hex'));
    expect(bundle.bytes).toBe(Buffer.byteLength(bundle.code));
    // Only Node built-ins are left to require, and nothing is imported.
    const required = [...bundle.code.matchAll(/\brequire\("([^"]+)"\)/g)].map((match) => match[1]);
    expect(required.length).toBeGreaterThan(0);
    for (const specifier of required) expect(builtinModules).toContain(specifier?.replace(/^node:/, ''));
    expect(bundle.code).not.toMatch(/^import /m);

    const { stdout, stderr } = await runOutside(bundle.code, { AGENT_GREETING: 'hi', AGENT_EXIT_CODE: '0' });
    expect(JSON.parse(stdout)).toMatchObject({ greeting: 'hi', mode: 'exit', clock: 42 });
    expect(stderr).toBe('agent ready\n');
  });

  it('serves an unchanged entry from memory, then from disk in a fresh process, with the same bundle', async () => {
    const first = await build(ENTRY);
    const second = await build(ENTRY);
    expect(second).toMatchObject({ cached: true, sha256: first.sha256, bytes: first.bytes });
    expect(second.code).toBe(first.code);
    expect(second.buildMs).toBeLessThan(first.buildMs);

    forgetRememberedBundles();
    const fromDisk = await build(ENTRY);
    expect(fromDisk).toMatchObject({ cached: true, sha256: first.sha256 });
    expect(fromDisk.code).toBe(first.code);
  });

  it('builds again when an input changes, and shares one build between concurrent calls', async () => {
    const dir = await sourceFolder({
      'entry.ts': "import { word } from './word.js';\nconsole.log(word);\n",
      'word.ts': "export const word: string = 'one';\n",
    });
    const entry = join(dir, 'entry.ts');
    const [first, concurrent] = await Promise.all([build(entry), build(entry)]);
    expect(first.cached).toBe(false);
    expect(concurrent).toBe(first);
    expect((await build(entry)).cached).toBe(true);

    await writeFile(join(dir, 'word.ts'), "export const word: string = 'two';\n");
    const changed = await build(entry);
    expect(changed.cached).toBe(false);
    expect(changed.sha256).not.toBe(first.sha256);
    expect((await runOutside(changed.code, {})).stdout).toBe('two\n');
    expect(await build(entry)).toMatchObject({ cached: true, sha256: changed.sha256 });
  });

  it('keeps one bundle per entry on disk: a superseded bundle goes once it is a minute old', async () => {
    const own = join(scratch, 'prune-cache');
    const dir = await sourceFolder({ 'entry.ts': "console.log('v1');\n" });
    const entry = join(dir, 'entry.ts');
    const first = await build(entry, { cacheDir: own });
    await writeFile(entry, "console.log('v2');\n");
    const second = await build(entry, { cacheDir: own });
    const bundles = async (): Promise<string[]> => (await readdir(own)).filter((name) => name.endsWith('.cjs') || name.endsWith('.mjs')).sort();
    // Just superseded: another process might still be about to write its manifest, so it stays.
    expect(await bundles()).toEqual([`${first.sha256}.cjs`, `${second.sha256}.cjs`].sort());
    const old = new Date(Date.now() - 120_000);
    await utimes(join(own, `${first.sha256}.cjs`), old, old);
    // An ES-module bundle of the cache's first format is pruned the same way.
    await writeFile(join(own, `${'0'.repeat(64)}.mjs`), 'export {};\n');
    await utimes(join(own, `${'0'.repeat(64)}.mjs`), old, old);
    expect(await pruneDiskCache(own)).toBe(2);
    expect(await bundles()).toEqual([`${second.sha256}.cjs`]);
    expect(await pruneDiskCache(own)).toBe(0);
  });

  it.each([
    { name: 'import.meta', code: 'console.log(import.meta.url);\n', text: /import\.meta/ },
    { name: 'top-level await', code: 'await Promise.resolve();\nexport {};\n', text: /Top-level await is currently not supported with the "cjs" output format/ },
  ])('refuses an entry that needs an ES module ($name) with BundleBuildError at build time', async ({ code, text }) => {
    const dir = await sourceFolder({ 'agent.ts': code });
    const error = (await build(join(dir, 'agent.ts')).catch((caught: unknown) => caught)) as BundleBuildError;
    expect(error).toBeInstanceOf(BundleBuildError);
    expect(error.message).toMatch(text);
  });

  it('reports a syntax error as BundleBuildError with the file, line and column', async () => {
    const dir = await sourceFolder({ 'broken.ts': "export const fine = 1;\nexport const broken = ;\n" });
    const entry = join(dir, 'broken.ts');
    const error = await build(entry).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(BundleBuildError);
    expect(isBundleBuildError(error)).toBe(true);
    const failure = error as BundleBuildError;
    expect(failure.retryable).toBe(false);
    expect(failure.entry).toBe(entry);
    expect(failure.messages).toEqual([expect.objectContaining({ file: entry, line: 2, column: 22, text: 'Unexpected ";"' })]);
    expect(failure.message).toContain(`${entry}:2:22: Unexpected ";"`);
  });

  it('reports an import that does not resolve, naming the importing file', async () => {
    const dir = await sourceFolder({ 'agent.ts': "import { nothing } from './missing.js';\nconsole.log(nothing);\n" });
    const entry = join(dir, 'agent.ts');
    const error = (await build(entry).catch((caught: unknown) => caught)) as BundleBuildError;
    expect(error).toBeInstanceOf(BundleBuildError);
    expect(error.message).toContain(`${entry}:1:24: Could not resolve "./missing.js"`);
  });

  it.each([
    { entry: 'test/fixtures/bundle-entry.ts', message: /entry: must be an absolute path/ },
    { entry: '/tmp/agent.py', message: /entry: must end in \.ts, \.mts, \.js, \.mjs/ },
    { entry: '/nowhere/agent.ts', message: /entry: no file at \/nowhere\/agent\.ts/ },
  ])('refuses entry $entry with InvalidInputError', async ({ entry, message }) => {
    const error = await build(entry).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(InvalidInputError);
    expect((error as InvalidInputError).field).toBe('entry');
    expect((error as Error).message).toMatch(message);
  });
});

describe('a bundled agent that uses the bus', () => {
  it('runs under plain node outside the repository and talks to the embedded broker', async () => {
    const broker = await startEmbeddedBroker({ logger: silentLogger });
    try {
      const credentials = broker.issueCredentials({ swarmId: 'bundle-test', agentId: 'agent-1' });
      const bundle = await build(MQTT_ENTRY);
      const { stdout, stderr } = await runOutside(bundle.code, {
        MQTT_URL: broker.url,
        MQTT_USERNAME: credentials.username,
        MQTT_PASSWORD: credentials.password,
        MQTT_TOPIC: swarmTopics('bundle-test').heartbeat('agent-1'), // an agent publishes only on its own topics
      });
      expect({ stdout, stderr }).toEqual({ stdout: 'connected\nreceived hello over the bus\n', stderr: '' });
    } finally {
      await broker.close();
    }
  });
});
