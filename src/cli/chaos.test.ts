import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { stringify as stringifyYaml } from 'yaml';
import { chaosSpec } from './chaos.js';

const examples = fileURLToPath(new URL('../../examples', import.meta.url));
const quickstart = join(examples, 'quickstart.yaml');

describe('the spec tradeswarm chaos deploys', () => {
  it('trades the last 2,000 steps of the quickstart by default, more than its own data from 2016', async () => {
    const text = await readFile(quickstart, 'utf8');
    const spec = await chaosSpec(text, quickstart, dirname(quickstart), undefined);
    expect((spec.data as Record<string, unknown>).from).toBe('2013-05-13');
    expect((spec.swarm as Record<string, unknown>).pacing).toBe('lockstep');
  });

  it('refuses an explicit --bars past the data, naming the flag', async () => {
    const text = await readFile(quickstart, 'utf8');
    await expect(chaosSpec(text, quickstart, dirname(quickstart), 1_000_000)).rejects.toThrow(/--bars.*fewer than 1000000; ask for fewer/);
  });

  it('trades a synthetic spec shorter than the default whole and sets an explicit count', async () => {
    const text = stringifyYaml({ name: 'synthetic', data: { source: 'synthetic', symbols: ['AAA'], barCount: 300 }, strategies: [] });
    expect((await chaosSpec(text, 'inline', examples, undefined)).data).toMatchObject({ barCount: 300 });
    expect((await chaosSpec(text, 'inline', examples, 500)).data).toMatchObject({ barCount: 500 });
  });
});
