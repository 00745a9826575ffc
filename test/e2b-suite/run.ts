// `npm run test:e2b-suite -- PATH_TO_E2B_CHECKOUT`: runs E2B's own JavaScript SDK tests (the
// packages/js-sdk/tests of a checkout of e2b-dev/E2B, which stay there) against a fresh
// `tradeswarm cloud serve`, with the `e2b` SDK this project pins, and prints passed/failed per file.
//
// Which of E2B's test files run: those under tests/sandbox and tests/api that talk to a cloud. Files that
// mock the network (msw, vi.mock) test the SDK alone and are left out; a file that imports a part of the
// SDK's source the published package does not export (its unit tests of internals) is reported as not run.
// The tests import the SDK as `../src`; a small Vite plugin in the generated config sends those imports to
// this project's `e2b` package. Nothing is downloaded: vitest and the SDK come from this project's node_modules.
//
// The cloud serves E2B's names (`https://<port>-<sandboxId>.<domain>`, port 443) with a certificate made for
// the run, and routes every sandbox on a network of its own, as E2B's are; the test processes trust the run's
// authority and resolve the domain's names to this machine (what E2B's DNS and certificates do for e2b.app).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { randomToken } from '../../src/core/index.js';
import { makeTestCertificates, type TestCertificates } from '../fixtures/tls.js';

const repository = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** Marks the error a test file gets when it imports SDK internals; such files are reported as not run. */
const INTERNALS_MARKER = 'E2B_SUITE_SDK_INTERNALS';

function sdkDirOf(argument: string | undefined): string {
  if (argument === undefined || argument === '') {
    throw new Error('PATH_TO_E2B_CHECKOUT is missing: run `npm run test:e2b-suite -- /path/to/E2B` with a checkout of e2b-dev/E2B');
  }
  const root = resolve(argument);
  const candidates = [join(root, 'packages/js-sdk'), root];
  const found = candidates.find((dir) => existsSync(join(dir, 'tests/setup.ts')));
  if (!found) throw new Error(`PATH_TO_E2B_CHECKOUT: ${root} has no packages/js-sdk/tests/setup.ts; give the root of a checkout of e2b-dev/E2B`);
  return found;
}

function testFilesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.test.ts'))
    .map((name) => join(dir, name))
    .sort();
}

const mocksTheNetwork = (source: string): boolean => /from 'msw(\/node)?'|vi\.(do)?[mM]ock\(/.test(source);

/** A vitest config (plain object: the temp folder has no node_modules to import vitest's helpers from). */
function vitestConfig(sdkDir: string): string {
  const sdkEntry = fileURLToPath(import.meta.resolve('e2b'));
  return `const sdkEntry = ${JSON.stringify(sdkEntry)};
const projectPackage = ${JSON.stringify(join(repository, 'package.json'))};
const sdkTests = ${JSON.stringify(join(sdkDir, 'tests'))};
export default {
  root: ${JSON.stringify(sdkDir)},
  plugins: [{
    name: 'e2b-suite-sdk',
    enforce: 'pre',
    resolveId(source, importer) {
      if (!importer || !importer.startsWith(sdkTests)) return null;
      // Packages (vitest, the SDK's own dependencies) come from this project's node_modules.
      if (!/^\\.\\.?\\//.test(source)) return /^node:/.test(source) ? null : this.resolve(source, projectPackage, { skipSelf: true });
      const match = /(?:^|\\/)src(\\/.*)?$/.exec(source);
      if (!match) return null;
      const inner = (match[1] ?? '').replace(/\\.js$/, '');
      // The package's entry re-exports the SDK's errors and everything public.
      if (inner === '' || inner === '/index' || inner === '/errors') return sdkEntry;
      return '\\0e2b-internal:' + inner;
    },
    load(id) {
      if (id.startsWith('\\0e2b-internal:')) {
        return 'throw new Error(' + JSON.stringify('${INTERNALS_MARKER}: imports src' + id.slice('\\0e2b-internal:'.length) + ', which the published e2b package does not export') + ');';
      }
      return null;
    },
  }],
  test: { testTimeout: 60000, hookTimeout: 60000, maxWorkers: 2, environment: 'node', globals: false },
};
`;
}

/**
 * The domain the cloud names sandboxes under, as E2B does under e2b.app: the tests fetch
 * `https://<port>-<sandboxId>.<domain>` (port 443) and the SDK reaches envd at `49983-<sandboxId>.<domain>`.
 */
const SANDBOX_DOMAIN = 'sandboxes.test';

/**
 * What E2B's wildcard DNS record does for its domain, for the test processes only: every name under
 * `domain` resolves to this machine, where the cloud's HTTPS listener is (node:dns is replaced before
 * the tests load; other names resolve as before). Loaded with `--import` through NODE_OPTIONS.
 */
function wildcardDnsHook(domain: string): string {
  return `import dns from 'node:dns';
const suffix = ${JSON.stringify(`.${domain}`)};
const ours = (host) => typeof host === 'string' && host.toLowerCase().endsWith(suffix);
const lookup = dns.lookup;
dns.lookup = function (host, options, callback) {
  if (typeof options === 'function') return dns.lookup(host, {}, options);
  if (!ours(host)) return lookup.call(this, host, options, callback);
  const all = typeof options === 'object' && options !== null && options.all === true;
  process.nextTick(() => (all ? callback(null, [{ address: '127.0.0.1', family: 4 }]) : callback(null, '127.0.0.1', 4)));
};
const promised = dns.promises.lookup;
dns.promises.lookup = (host, options) => (ours(host) ? Promise.resolve(options && options.all ? [{ address: '127.0.0.1', family: 4 }] : { address: '127.0.0.1', family: 4 }) : promised(host, options));
`;
}

/** The HTTPS names the cloud serves, when it could take port 443. */
interface Names {
  readonly certificates: TestCertificates;
  readonly hookFile: string;
}

async function startCloud(apiKey: string, names: Names | undefined): Promise<{ child: ChildProcess; apiUrl: string }> {
  const tls = names === undefined ? [] : ['--domain', SANDBOX_DOMAIN, '--tls-port', '443', '--tls-cert', join(names.certificates.dir, 'cert.pem'), '--tls-key', join(names.certificates.dir, 'key.pem')];
  const child = spawn(process.execPath, ['bin/tradeswarm.js', 'cloud', 'serve', '--port', '0', '--api-key', apiKey, '--sandbox-network', 'routed', ...tls], {
    cwd: repository,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn' },
  });
  let printed = '';
  return new Promise((resolveReady, reject) => {
    const onData = (chunk: Buffer): void => {
      printed += String(chunk);
      const url = /export E2B_API_URL=(\S+)/.exec(printed)?.[1];
      if (url && printed.includes('E2B_API_KEY=')) {
        child.off('exit', onExit);
        resolveReady({ child, apiUrl: url });
      }
    };
    const onExit = (): void => reject(new CloudExitedError(printed));
    // Keeps reading its output to the end, so that what it prints when stopped has somewhere to go.
    child.stdout.on('data', onData);
    child.once('exit', onExit);
  });
}

class CloudExitedError extends Error {
  constructor(readonly printed: string) {
    super(`tradeswarm cloud serve exited before it was ready; it printed:\n${printed}`);
  }
}

/**
 * The cloud, serving E2B's HTTPS names where this machine lets it take port 443 (root, or
 * CAP_NET_BIND_SERVICE); else plain HTTP on one port, with E2B_SANDBOX_URL for the SDK, and the
 * tests that fetch getHost's https URL fail (the runner says so first).
 */
async function startCloudWithNames(apiKey: string, work: string): Promise<{ child: ChildProcess; apiUrl: string; names: Names | undefined }> {
  const certificates = makeTestCertificates(SANDBOX_DOMAIN);
  const hookFile = join(work, 'wildcard-dns.mjs');
  writeFileSync(hookFile, wildcardDnsHook(SANDBOX_DOMAIN));
  const names: Names = { certificates, hookFile };
  try {
    return { ...(await startCloud(apiKey, names)), names };
  } catch (error) {
    certificates.remove();
    if (!(error instanceof CloudExitedError) || !error.printed.includes('tls.port')) throw error;
    process.stdout.write(`warning: the cloud could not take port 443 for E2B's https://<port>-<sandboxId>.<domain> names (run as root); the tests that fetch them will fail\n`);
    return { ...(await startCloud(apiKey, undefined)), names: undefined };
  }
}

interface JsonTest {
  readonly fullName: string;
  readonly status: string;
  readonly failureMessages: readonly string[];
}
interface JsonFile {
  readonly name: string;
  readonly status: string;
  readonly message: string;
  readonly assertionResults: readonly JsonTest[];
}

async function main(): Promise<number> {
  const sdkDir = sdkDirOf(process.argv[2]);
  // Further arguments keep only the files whose path contains one of them (e.g. `list metrics`).
  const only = process.argv.slice(3);
  const candidates = [...testFilesUnder(join(sdkDir, 'tests/sandbox')), ...testFilesUnder(join(sdkDir, 'tests/api'))].filter(
    (file) => only.length === 0 || only.some((part) => relative(sdkDir, file).includes(part)),
  );
  const mocked = candidates.filter((file) => mocksTheNetwork(readFileSync(file, 'utf8')));
  const files = candidates.filter((file) => !mocked.includes(file));
  const work = mkdtempSync(join(tmpdir(), 'tradeswarm-e2b-suite-'));
  const apiKey = `e2b_${randomToken(20)}`;
  const { child, apiUrl, names } = await startCloudWithNames(apiKey, work);
  try {
    writeFileSync(join(work, 'vitest.config.mjs'), vitestConfig(sdkDir));
    const resultsFile = join(work, 'results.json');
    // With names, the SDK finds envd as on E2B (at 49983-<sandboxId>.<domain>, over HTTPS); without, at the cloud's one port.
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      E2B_API_KEY: apiKey,
      E2B_API_URL: apiUrl,
      ...(names === undefined
        ? { E2B_SANDBOX_URL: apiUrl }
        : { NODE_EXTRA_CA_CERTS: names.certificates.caFile, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${pathToFileURL(names.hookFile).href}`.trim() }),
    };
    if (names !== undefined) delete env.E2B_SANDBOX_URL;
    delete env.E2B_DEBUG;
    delete env.E2B_DOMAIN;
    const where = names === undefined ? apiUrl : `${apiUrl}, sandboxes at https://<port>-<sandboxId>.${SANDBOX_DOMAIN}`;
    process.stdout.write(`E2B SDK tests from ${sdkDir} against tradeswarm cloud serve at ${where}: ${files.length} files (${mocked.length} that mock the network left out)\n`);
    const vitest = spawn(process.execPath, [join(repository, 'node_modules/vitest/vitest.mjs'), 'run', '--config', join(work, 'vitest.config.mjs'), '--reporter=json', `--outputFile=${resultsFile}`, ...files.map((file) => relative(sdkDir, file))], {
      cwd: sdkDir,
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    vitest.stderr.on('data', (chunk: Buffer) => (stderr += String(chunk)));
    await once(vitest, 'exit');
    if (!existsSync(resultsFile)) throw new Error(`vitest wrote no results; its errors:\n${stderr}`);
    return report(JSON.parse(readFileSync(resultsFile, 'utf8')) as { testResults: JsonFile[] }, sdkDir);
  } finally {
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    await exited;
    names?.certificates.remove();
    rmSync(work, { recursive: true, force: true });
  }
}

function report(results: { testResults: JsonFile[] }, sdkDir: string): number {
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  const notRun: string[] = [];
  const failures: string[] = [];
  for (const file of [...results.testResults].sort((a, b) => a.name.localeCompare(b.name))) {
    const name = relative(sdkDir, file.name);
    const internals = [file.message, ...file.assertionResults.flatMap((test) => test.failureMessages)].find((message) => message.includes(INTERNALS_MARKER));
    if (internals !== undefined) {
      notRun.push(`${name} (${internals.slice(internals.indexOf(INTERNALS_MARKER) + INTERNALS_MARKER.length + 2).split('\n')[0]})`);
      continue;
    }
    const ok = file.assertionResults.filter((test) => test.status === 'passed').length;
    let bad = file.assertionResults.filter((test) => test.status === 'failed').length;
    if (file.assertionResults.length === 0 && file.status === 'failed') bad = 1;
    const left = file.assertionResults.length - ok - bad;
    passed += ok;
    failed += bad;
    skipped += Math.max(0, left);
    process.stdout.write(`${bad === 0 ? 'ok  ' : 'FAIL'} ${name}: ${ok} passed, ${bad} failed${left > 0 ? `, ${left} skipped` : ''}\n`);
    for (const test of file.assertionResults.filter((one) => one.status === 'failed')) {
      failures.push(`${name} > ${test.fullName}: ${(test.failureMessages[0] ?? '').split('\n')[0]}`);
    }
    if (file.assertionResults.length === 0 && file.status === 'failed') failures.push(`${name}: ${file.message.split('\n')[0]}`);
  }
  if (failures.length > 0) process.stdout.write(`\nfailures:\n${failures.map((line) => `  ${line}`).join('\n')}\n`);
  if (notRun.length > 0) process.stdout.write(`\nnot run (unit tests of SDK internals):\n${notRun.map((line) => `  ${line}`).join('\n')}\n`);
  process.stdout.write(`\n${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}\n`);
  return failed === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exit(2);
  },
);
