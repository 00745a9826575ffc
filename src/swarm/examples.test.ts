import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { TOPOLOGIES } from '../topology/index.js';
import { loadSwarmSpec } from './spec.js';

const folder = fileURLToPath(new URL('../../examples/', import.meta.url));
const files = (await readdir(folder)).filter((file) => file.endsWith('.yaml')).sort();
const dataPresent = await readdir(fileURLToPath(new URL('../../../shared/data/daily/', import.meta.url))).then(
  () => true,
  () => false,
);

describe('every example spec is ready for `tradeswarm run`', () => {
  it('there is an example for each topology', async () => {
    const topologies = new Set<string>();
    for (const file of files.filter((name) => name.startsWith('swarm-'))) topologies.add((await loadSwarmSpec(folder + file)).swarm.topology);
    topologies.add('mesh'); // quickstart.yaml, which replays ../shared/data
    expect([...topologies].sort()).toEqual([...TOPOLOGIES].sort());
  });

  for (const file of files) {
    const needsData = file === 'quickstart.yaml' || file === 'backtest-aapl.yaml' || file === 'backtest-brackets.yaml';
    it.skipIf(needsData && !dataPresent && process.env.CI !== 'true')(`${file} validates, swarm section included, and loads its data`, async () => {
      const spec = await loadSwarmSpec(folder + file);
      expect(spec.backtest.strategies.length).toBeGreaterThan(0);
      expect(TOPOLOGIES).toContain(spec.swarm.topology);
    });
  }
});
