// vitest's globalSetup for the integration tests: they start the CLI as users do (`node bin/tradeswarm.js`,
// which runs the build in dist/), so the sources are built first, every run. A dist/ built from older
// sources can then neither pass nor fail a test; the build takes about a second when little changed.
import { buildDist } from '../scripts/build.js';

export default async function setup(): Promise<void> {
  await buildDist();
}
