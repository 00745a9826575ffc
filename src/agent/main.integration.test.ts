import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../core/index.js';
import { buildBundle } from '../sandbox/index.js';
import { AGENT_ENTRY, AGENT_ENV } from './index.js';

let dir: string;
let bundlePath: string;

beforeAll(async () => {
  const bundle = await buildBundle({ entry: AGENT_ENTRY, logger: silentLogger });
  dir = mkdtempSync(join(tmpdir(), 'tradeswarm-agent-main-'));
  bundlePath = join(dir, 'agent.cjs');
  writeFileSync(bundlePath, bundle.code);
}, 60_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the agent bundle with `env` only (no broker is reached: every case fails before connecting). */
function runAgent(env: Record<string, string>): { status: number | null; stderr: string } {
  const result = spawnSync(process.execPath, [bundlePath], { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8', timeout: 20_000 });
  return { status: result.status, stderr: result.stderr };
}

describe('the agent process refuses bad settings, naming the variable', () => {
  it('exits 1 when its config or broker URL is missing', () => {
    const result = runAgent({ [AGENT_ENV.busUrl]: 'mqtt://127.0.0.1:1' });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`${AGENT_ENV.config} and ${AGENT_ENV.busUrl} must be set`);
  });

  it('exits 1 on an MQTT version it does not know', () => {
    const result = runAgent({ [AGENT_ENV.busUrl]: 'mqtt://127.0.0.1:1', [AGENT_ENV.config]: '{}', [AGENT_ENV.busProtocol]: '3' });
    expect(result.status).toBe(1);
    // pino writes the message as JSON: its quotes are escaped.
    expect(result.stderr).toContain(`${AGENT_ENV.busProtocol}: got \\"3\\"; must be 4 (MQTT 3.1.1) or 5`);
  });

  it('exits 1 on a config that is not valid, naming the field', () => {
    const result = runAgent({ [AGENT_ENV.busUrl]: 'mqtt://127.0.0.1:1', [AGENT_ENV.config]: '{}', [AGENT_ENV.busProtocol]: '4' });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(new RegExp(`${AGENT_ENV.config}\\.\\w+`));
  });
});
