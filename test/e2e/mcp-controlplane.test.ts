// `tradeswarm mcp --url <serve>` driven by the official MCP client over stdio, against a real
// `tradeswarm serve` on a fresh data dir: an assistant deploys a swarm, lists, reads its status,
// health, metrics and orders, and stops it; a bad spec and a full environment come back as tool
// errors with the server's message. And each GET route's real answer matches the OpenAPI document.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_ROUTES, OPENAPI_PATH, responseSchemaOf } from '../../src/controlplane/index.js';
import { type ServeProcess, killServe, startServe } from '../fixtures/serve.js';
import { starSwarmYaml } from '../fixtures/specs.js';

const repository = fileURLToPath(new URL('../..', import.meta.url));

const SPEC = starSwarmYaml('mcp-swarm', 300);
const LONG_SPEC = starSwarmYaml('mcp-long', 20_000);
const BAD_SPEC = SPEC.replace('topology: star', 'topology: circle, heartbeatMs: 1');

interface ToolAnswer {
  readonly isError: boolean;
  /** The first text: the line for a person (or the error). */
  readonly line: string;
  /** The second text, parsed: the answer as JSON. */
  readonly json: Record<string, unknown>;
}

describe('tradeswarm mcp with a control plane (--url)', () => {
  let folder = '';
  let serve: ServeProcess | undefined;
  let client: Client | undefined;

  async function call(name: string, args: Record<string, unknown> = {}): Promise<ToolAnswer> {
    const result = await client!.callTool({ name, arguments: args });
    const texts = (result.content as Array<{ type: string; text: string }>).map((item) => item.text);
    return { isError: result.isError === true, line: texts[0] ?? '', json: texts[1] === undefined ? {} : (JSON.parse(texts[1]) as Record<string, unknown>) };
  }

  /** Calls a tool every 100 ms until `done` says its answer is the one awaited. */
  async function until(name: string, args: Record<string, unknown>, done: (answer: ToolAnswer) => boolean): Promise<ToolAnswer> {
    for (;;) {
      const answer = await call(name, args);
      expect(answer.isError, answer.line).toBe(false);
      if (done(answer)) return answer;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'mcp-controlplane-'));
    serve = await startServe(['--data-dir', join(folder, 'data')]);
    const transport = new StdioClientTransport({ command: process.execPath, args: ['bin/tradeswarm.js', 'mcp', '--url', serve.url], cwd: repository, stderr: 'pipe' });
    client = new Client({ name: 'e2e', version: '1.0.0' });
    await client.connect(transport);
  }, 60_000);
  afterAll(async () => {
    await client?.close();
    if (serve !== undefined) await killServe(serve, 'SIGTERM');
    await rm(folder, { recursive: true, force: true });
  }, 60_000);

  it('lists run_code and the control plane tools', async () => {
    const { tools } = await client!.listTools();
    expect(tools.map((tool) => tool.name)).toEqual(['run_code', 'deploy_swarm', 'list_deployments', 'deployment_status', 'deployment_health', 'deployment_metrics', 'deployment_orders', 'scale_deployment', 'stop_deployment']);
    expect(tools.find((tool) => tool.name === 'deploy_swarm')?.inputSchema.required).toEqual(['spec']);
  });

  it('deploys, refuses a bad spec and a full environment, reports health, and stops', async () => {
    const deployed = await call('deploy_swarm', { spec: LONG_SPEC, baseDir: folder });
    expect(deployed.isError, deployed.line).toBe(false);
    expect(deployed.line).toMatch(/^deployed mcp-long \(mcp-long-\w+\) to dev: (pending|starting|running)$/);
    expect(deployed.json).toMatchObject({ name: 'mcp-long', env: 'dev', topology: 'star', desired: 'running' });

    const bad = await call('deploy_swarm', { spec: BAD_SPEC });
    expect(bad.isError).toBe(true);
    expect(bad.line).toMatch(/^deploy_swarm failed: the deployed spec has 2 mistakes; nothing ran\. Fix:/);
    expect(bad.line).toMatch(/swarm\.topology: got "circle"; must be one of "mesh", "star", "hierarchical", "ring"/);
    expect(bad.line).toMatch(/swarm\.heartbeatMs: got 1; must be >= 10/);

    // mcp-long holds dev's three sandboxes (a hub and two strategies).
    const full = await call('deploy_swarm', { spec: SPEC, env: 'dev' });
    expect(full.isError).toBe(true);
    expect(full.line).toBe(
      'deploy_swarm failed: dev allows 3 sandboxes at once; 3 are in use and this needs 3 more. Nothing was changed: stop or scale down a deployment in dev, deploy to another environment, or raise environments.dev.maxSandboxes in the config file',
    );

    const health = await until('deployment_health', { deployment: 'mcp-long' }, (answer) => answer.json.healthy === 3);
    expect(health.line).toBe('mcp-long: 3 of 3 agents healthy (running)');
    expect((health.json.agents as Array<{ id: string; lifecycle: string; restarts: number; health: string }>).map(({ id, lifecycle, restarts, health: h }) => ({ id, lifecycle, restarts, health: h })).sort((a, b) => a.id.localeCompare(b.id))).toEqual([
      { id: '1-sma-crossover-AAA-4-16', lifecycle: 'running', restarts: 0, health: 'healthy' },
      { id: '2-momentum-BBB-8', lifecycle: 'running', restarts: 0, health: 'healthy' },
      { id: 'hub', lifecycle: 'running', restarts: 0, health: 'healthy' },
    ]);

    // dev fails over nothing: a standby there would never take over, so a second replica is refused and nothing changes.
    const standby = await call('scale_deployment', { deployment: 'mcp-long', role: 'hub', replicas: 2 });
    expect(standby).toMatchObject({ isError: true });
    expect(standby.line).toMatch(/^scale_deployment failed: replicas: a second replica is a hot standby, which takes over by itself, and dev recovers nothing \(failover: none\)/);
    const tooMany = await call('scale_deployment', { deployment: 'mcp-long', role: 'hub', replicas: 3 });
    expect(tooMany.isError).toBe(true);
    const noRole = await call('scale_deployment', { deployment: 'mcp-long', role: 'janitor', replicas: 1 });
    expect(noRole.line).toMatch(/^scale_deployment failed: role: mcp-long has no agent or role "janitor"; give an agent id \(hub, 1-sma-crossover-AAA-4-16, 2-momentum-BBB-8\), a role \(decider, trader\) or all$/);
    const alone = await call('scale_deployment', { deployment: 'mcp-long', role: 'trader', replicas: 1 });
    expect(alone.isError, alone.line).toBe(false);
    expect(alone.line).toBe('scaled trader of mcp-long to 1 replica');

    const stopped = await call('stop_deployment', { deployment: 'mcp-long' });
    expect(stopped.isError, stopped.line).toBe(false);
    expect(stopped.line).toMatch(/^stopped mcp-long: stopped after \d+ steps, \d+ orders, equity [\d.]+$/);
    expect(stopped.json).toMatchObject({ name: 'mcp-long', state: 'stopped', desired: 'stopped' });
    const unknown = await call('deployment_status', { deployment: 'nope' });
    expect(unknown).toMatchObject({ isError: true, line: 'deployment_status failed: no deployment has the id or name nope; `tradeswarm ps` lists them' });
  }, 120_000);

  it('runs a deployment to its end and answers its list, status, metrics and orders', async () => {
    const deployed = await call('deploy_swarm', { spec: SPEC, baseDir: folder, name: 'mcp-swarm' });
    expect(deployed.isError, deployed.line).toBe(false);
    const metrics = await until('deployment_metrics', { deployment: 'mcp-swarm' }, (answer) => !['pending', 'starting', 'running', 'draining'].includes(answer.json.state as string));
    expect(metrics.json).toMatchObject({ name: 'mcp-swarm', state: 'complete', steps: 300, uptimeMs: null });
    expect(Object.keys(metrics.json).sort()).toEqual(['equity', 'fills', 'name', 'orders', 'pnl', 'state', 'steps', 'totalSteps', 'uptimeMs'].sort());
    const orderCount = metrics.json.orders as number;
    expect(orderCount).toBeGreaterThan(0);
    expect(metrics.line).toBe(`mcp-swarm: 300 steps, ${orderCount} orders, ${metrics.json.fills as number} fills, equity ${(metrics.json.equity as number).toFixed(2)}, pnl ${(metrics.json.pnl as number).toFixed(2)}`);

    const list = await call('list_deployments');
    expect((list.json.deployments as Array<{ name: string; state: string }>).map(({ name, state }) => ({ name, state }))).toEqual([
      { name: 'mcp-swarm', state: 'complete' },
      { name: 'mcp-long', state: 'stopped' },
    ]);
    expect(list.line).toMatch(/^2 deployments: mcp-swarm \(complete, 300 steps\), mcp-long \(stopped, \d+ steps\)$/);

    const status = await call('deployment_status', { deployment: 'mcp-swarm' });
    expect(status.json).toMatchObject({ name: 'mcp-swarm', state: 'complete', topology: 'star', orders: orderCount });
    expect((status.json.report as { outcome: string }).outcome).toBe('complete');
    const health = await call('deployment_health', { deployment: 'mcp-swarm' });
    expect(health).toMatchObject({ isError: false, line: 'mcp-swarm: complete, no agent runs', json: { healthy: 0, total: 0, agents: [] } });

    const orders = (await call('deployment_orders', { deployment: 'mcp-swarm' })).json.orders as Array<{ step: number; clientOrderId: string }>;
    expect(orders).toHaveLength(orderCount);
    const middle = orders[Math.floor(orders.length / 2)]!.step;
    const later = await call('deployment_orders', { deployment: 'mcp-swarm', fromStep: middle });
    expect(later.line).toBe(`${orders.filter((order) => order.step >= middle).length} orders of mcp-swarm from step ${middle}`);
    expect((later.json.orders as Array<{ clientOrderId: string }>).map((order) => order.clientOrderId)).toEqual(orders.filter((order) => order.step >= middle).map((order) => order.clientOrderId));
  }, 120_000);

  it("answers each GET route of the OpenAPI document with what the route's schema declares, nothing more", async () => {
    const document = (await (await fetch(new URL(OPENAPI_PATH, serve!.url))).json()) as { paths: Record<string, Record<string, unknown>> };
    const gets = API_ROUTES.filter((route) => route.method === 'get');
    expect(gets.map((route) => route.path).sort()).toEqual(Object.keys(document.paths).filter((path) => 'get' in (document.paths[path] ?? {})).sort());
    // Every GET route that answers JSON; the stream (server-sent events) never ends.
    for (const route of gets.filter((get) => get.success.schema !== 'event-stream')) {
      const response = await fetch(new URL(route.path.replace('{ref}', 'mcp-swarm'), serve!.url));
      expect(response.status, route.path).toBe(route.success.status);
      const body: unknown = await response.json();
      // Parsed with the declared schema: it holds, and dropping what the schema does not name changes nothing.
      expect(responseSchemaOf(route).parse(body), route.path).toEqual(body);
    }
  });
});
