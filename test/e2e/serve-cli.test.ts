// The client commands (deploy, ps, status, orders, logs, stop) as processes against a `tradeswarm
// serve` process, what they say when no server answers or the input is wrong, and what they load.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closedPort } from '../fixtures/servers.js';

const repository = fileURLToPath(new URL('../..', import.meta.url));
const exec = promisify(execFile);

const SPEC = `
name: cli-deployment
data: { source: synthetic, seed: 3, symbols: [AAA, BBB], barCount: 200000 }
strategies:
  - { type: sma-crossover, symbol: AAA, fastPeriod: 4, slowPeriod: 16, sizing: { type: fixed-quantity, units: 10 } }
  - { type: momentum, symbol: BBB, lookback: 8, entryThreshold: 0.01, exitThreshold: 0, sizing: { type: fixed-quantity, units: 10 } }
risk: { maxPositionUnits: 50 }
swarm: { topology: star }
`;

type Outcome = { code: number; stdout: string; stderr: string };

async function cli(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<Outcome> {
  try {
    const { stdout, stderr } = await exec(process.execPath, ['bin/tradeswarm.js', ...args], { cwd: repository, env: { ...process.env, ...env } });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

/**
 * Every source file the built CLI loads to run `args` (paths from the repository, node_modules/ ones
 * included): the bundle's chunks it loads, recorded by a module load hook (node's module.register) that
 * the process is started with, and what each holds by the build's dist/bundle/meta.json. A package the
 * bundle leaves outside shows by the file that was imported, not by what that file requires.
 */
async function loadedFiles(folder: string, args: readonly string[]): Promise<string[]> {
  const record = join(folder, `loaded-${args.join('-').replace(/[^a-z0-9-]/gi, '_')}.txt`);
  const hooks = `import { appendFileSync } from 'node:fs'; let file;
    export function initialize(data) { file = data.file; }
    export async function load(url, context, next) { appendFileSync(file, url + '\\n'); return next(url, context); }`;
  const register = `import { register } from 'node:module';
    register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hooks)}`)}, { data: { file: ${JSON.stringify(record)} } });`;
  await writeFile(record, '');
  await exec(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(register)}`, 'bin/tradeswarm.js', ...args], { cwd: repository }).catch(() => undefined);
  const prefix = new URL('../..', import.meta.url).href;
  const chunks = JSON.parse(await readFile(join(repository, 'dist', 'bundle', 'meta.json'), 'utf8')) as Record<string, string[]>;
  const loaded = (await readFile(record, 'utf8')).split('\n').filter((url) => url.startsWith(prefix)).map((url) => url.slice(prefix.length));
  return [...new Set(loaded.flatMap((file) => chunks[file] ?? [file]))].sort();
}

describe('what a client command loads', () => {
  it('ps loads the client and nothing else beyond what --help loads: no control plane, store, Fastify or zod', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'serve-cli-loads-'));
    try {
      const help = await loadedFiles(folder, ['--help']);
      expect(help).toContain('src/cli/main.ts');
      const ps = await loadedFiles(folder, ['ps', '--url', `http://127.0.0.1:${await closedPort()}`]);
      expect(ps.filter((file) => !help.includes(file))).toEqual(['src/cli/deployments.ts', 'src/client/client.ts', 'src/client/index.ts']);
      // With --json its error (no server answers) is printed as JSON, still without the API's Fastify.
      const psJson = await loadedFiles(folder, ['ps', '--json', '--url', `http://127.0.0.1:${await closedPort()}`]);
      expect(psJson.filter((file) => !help.includes(file))).toEqual(['src/cli/deployments.ts', 'src/client/client.ts', 'src/client/index.ts']);
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });
});

describe('the client commands against tradeswarm serve', () => {
  let folder = '';
  let serve: ChildProcess | undefined;
  let url = '';

  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'serve-cli-'));
    await writeFile(join(folder, 'spec.yaml'), SPEC);
    await writeFile(join(folder, 'bad.yaml'), SPEC.replace('fastPeriod: 4', 'fastPeriod: -4'));
    serve = spawn(process.execPath, ['bin/tradeswarm.js', 'serve', '--port', '0', '--data-dir', join(folder, 'data')], { cwd: repository, stdio: ['ignore', 'pipe', 'pipe'] });
    url = await new Promise<string>((resolve, reject) => {
      let out = '';
      serve?.stdout?.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const match = /listening on (http:\/\/\S+)/.exec(out);
        if (match) resolve(match[1] as string);
      });
      serve?.once('exit', (code) => reject(new Error(`serve exited with ${code}`)));
    });
  }, 60_000);
  afterAll(async () => {
    if (serve !== undefined && serve.exitCode === null) {
      const exited = once(serve, 'exit');
      serve.kill('SIGTERM');
      await exited;
    }
    await rm(folder, { recursive: true, force: true });
  }, 60_000);

  it('says how to start a server when none answers, in words and with --json', async () => {
    const nobody = `http://127.0.0.1:${await closedPort()}`;
    const plain = await cli(['ps', '--url', nobody]);
    expect(plain.code).toBe(1);
    expect(plain.stderr).toContain(`no tradeswarm server answers at ${nobody}`);
    expect(plain.stderr).toContain('start one with `tradeswarm serve`');
    const json = await cli(['ps'], { TRADESWARM_URL: nobody, ...{} });
    expect(json.stderr).toContain(nobody);
    const asJson = await cli(['status', 'x', '--json', '--url', nobody]);
    expect(asJson.code).toBe(1);
    expect(JSON.parse(asJson.stdout)).toMatchObject({ error: { retryable: true, message: expect.stringContaining('tradeswarm serve') as unknown } });
  });

  it('deploys, lists, shows, follows and stops a deployment; bad input changes nothing', async () => {
    const deployed = await cli(['deploy', join(folder, 'spec.yaml'), '--url', url]);
    expect(deployed.code, deployed.stderr).toBe(0);
    expect(deployed.stdout).toMatch(/^deployed cli-deployment \(cli-deployment-[a-z0-9]+\) to dev: /);

    const refused = await cli(['deploy', join(folder, 'bad.yaml'), '--name', 'other', '--url', url, '--json']);
    expect(refused.code).toBe(1);
    expect(JSON.parse(refused.stdout)).toMatchObject({ error: { issues: [{ path: 'strategies[0].fastPeriod', got: -4 }] } });
    expect((await cli(['deploy', join(folder, 'nothing.yaml'), '--url', url])).stderr).toMatch(/<spec>: .*nothing\.yaml cannot be read/);
    expect((await cli(['status', 'nobody', '--url', url])).stderr).toContain('no deployment has the id or name nobody');

    let views: Array<{ name: string; state: string; steps: number; agents: { healthy: number; total: number } }> = [];
    for (let tries = 0; tries < 200; tries++) {
      views = JSON.parse((await cli(['ps', '--json', '--url', url])).stdout) as typeof views;
      if ((views[0]?.steps ?? 0) > 50) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(views).toHaveLength(1);
    expect(views[0]).toMatchObject({ name: 'cli-deployment', state: 'running', agents: { healthy: 3, total: 3 } });
    const table = await cli(['ps', '--url', url]);
    expect(table.stdout).toMatch(/^NAME\s+STATE\s+ENV\s+TOPOLOGY\s+AGENTS\s+STEPS\s+ORDERS\s+EQUITY\s+PNL\s+UPTIME\ncli-deployment\s+running\s+dev\s+star\s+3\/3\s+\d+\/200000/);
    const status = await cli(['status', 'cli-deployment', '--url', url]);
    expect(status.stdout).toMatch(/^cli-deployment \(cli-deployment-[a-z0-9]+\): running, dev, star, lockstep/);
    // Health is whatever the latest check found (`-` before the first); restarts and epochs are 0.
    // Each agent in dev's only tier, T1, as the spec names none.
    expect(status.stdout).toMatch(/AGENT\s+STATE\s+HEALTH\s+RESTARTS\s+EPOCH\s+TIER\s+REPLICAS\s+SANDBOX\s+STANDBY\nhub\s+running\s+(-|healthy|degraded)\s+0\s+0\s+T1\s+1\s+\S+\s+-\n1-sma-crossover-AAA-4-16\s+running\s+\S+\s+0\s+0\s+T1\s+1\s+\S+\s+-\n2-momentum-BBB-8\s+running\s+\S+\s+0\s+0\s+T1\s+1/);
    const orders = await cli(['orders', 'cli-deployment', '--json', '--url', url]);
    const lines = orders.stdout.trim().split('\n').map((line) => JSON.parse(line) as { clientOrderId: string; step: number });
    expect(lines.length).toBeGreaterThan(0);
    expect(new Set(lines.map((line) => line.clientOrderId)).size).toBe(lines.length);

    // What the hub's process printed, read through the SDK: its ready line at least.
    const hubLogs = await cli(['logs', 'cli-deployment', '--agent', 'hub', '--url', url]);
    expect(hubLogs.stdout).toMatch(/Z {2}hub stdout: \{"event":"ready"/);
    expect(hubLogs.stdout).not.toMatch(/deployed: deployed to dev/);
    expect((await cli(['logs', 'cli-deployment', '--agent', 'nobody', '--url', url])).stderr).toMatch(/cli-deployment has no agent nobody; it has .*hub/);

    const stopped = await cli(['stop', 'cli-deployment', '--url', url]);
    expect(stopped.stdout).toMatch(/^stopped cli-deployment: stopped after \d+ steps, \d+ orders, equity \d+\.\d\d/);
    const logs = await cli(['logs', 'cli-deployment', '--url', url]);
    // Its events and, between them, what its agents printed (their ready and exit lines).
    expect(logs.stdout).toMatch(/deployed: deployed to dev\n[\s\S]*Z {2}hub stdout: \{"event":"ready"[\s\S]*stop: stop requested\n[\s\S]*"event":"exit"[\s\S]*ended @\d+: stopped on request\n$/);
  }, 120_000);
});
