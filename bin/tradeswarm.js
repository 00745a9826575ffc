#!/usr/bin/env node
// Runs the build in dist/ (`npm run build`, which `npm install` runs through `prepare`): the CLI's bundle,
// dist/bundle/main.js (see scripts/build.ts). From the TypeScript sources, without building:
// `npm run dev -- <command>`.
import { existsSync } from 'node:fs';
import process from 'node:process';
import { URL } from 'node:url';

const main = new URL('../dist/bundle/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write('tradeswarm: the build is missing (dist/bundle/main.js): run `npm run build` in the package, or `npm run dev -- <command>` to run the sources.\n');
  process.exit(1);
}
await import(main.href);
