import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * Starts a worker thread on the module `name` (without extension) beside `fromUrl` (the caller's
 * `import.meta.url`). Run from TypeScript source (tsx, vitest), a new thread does not inherit the
 * loader, so it registers tsx first and starts `<name>.ts`; from compiled JavaScript (dist/) it starts
 * `<name>.js`.
 */
export function startModuleWorker(fromUrl: string, name: string, options: WorkerOptions = {}): Worker {
  const fromSource = fromUrl.endsWith('.ts');
  const entry = new URL(`./${name}${fromSource ? '.ts' : '.js'}`, fromUrl);
  if (!fromSource) return new Worker(entry, options);
  // The ESM entry of tsx's API, from its package's exports (its CommonJS entry cannot register the ESM loader).
  const require = createRequire(fromUrl);
  const manifest = require('tsx/package.json') as { exports: Record<string, { import: { default: string } }> };
  const tsx = new URL((manifest.exports['./esm/api'] as { import: { default: string } }).import.default, pathToFileURL(require.resolve('tsx/package.json'))).href;
  const code = `import(${JSON.stringify(tsx)}).then((tsx) => { (tsx.register ?? tsx.default.register)(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(code, { ...options, eval: true });
}
