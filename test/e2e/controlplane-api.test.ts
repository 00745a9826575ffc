// The control plane behind its HTTP API, in this process: a real swarm runtime (embedded broker and
// local cloud, agents in sandboxes) and the embedded store in memory. Deployments run to the
// backtest's trades; bad input is refused naming each field, and nothing stored or running changes;
// a clean shutdown suspends a deployment that the next start resumes, and a stopped one stays stopped.
import { availableParallelism } from 'node:os';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, listen } from '../../src/api/index.js';
import { runBacktest } from '../../src/backtest/index.js';
import { ENVIRONMENTS } from '../../src/contract/index.js';
import { ControlPlane, type DeploymentView, compileEnvironments, controlPlaneRoutes } from '../../src/controlplane/index.js';
import { SystemClock, silentLogger } from '../../src/core/index.js';
import { type Store, openStore } from '../../src/store/index.js';
import { type SwarmRuntime, parseSwarmSpecText, startSwarmRuntime } from '../../src/swarm/index.js';
import { starSwarmYaml } from '../fixtures/specs.js';

const environments = compileEnvironments();
const clock = new SystemClock();

/** The small star (or `topology`) swarm of the e2e tests. */
const specYaml = starSwarmYaml;

interface View {
  readonly name: string;
  readonly state: string;
  readonly desired: string;
  readonly steps: number;
  readonly orders: number;
}

let runtime: SwarmRuntime;
let store: Store;

beforeAll(async () => {
  runtime = await startSwarmRuntime({ templates: ['base', ...ENVIRONMENTS.map((name) => environments[name].template)], clock, logger: silentLogger, warmPoolSize: 4 });
  store = await openStore({ dataDir: 'memory' });
}, 60_000);
afterAll(async () => {
  await runtime?.close();
  await store?.close();
});

async function serving(): Promise<{ plane: ControlPlane; app: FastifyInstance }> {
  // Venue snapshots every 50 steps: a resumed deployment here reads and applies only the steps since its latest.
  const plane = await ControlPlane.start({ store, runtime, environments, clock, logger: silentLogger, venueSnapshotEverySteps: 50 });
  const app = createApp({ logger: silentLogger });
  await app.register(controlPlaneRoutes, { controlPlane: plane });
  return { plane, app };
}

async function json<T>(app: FastifyInstance, method: 'GET' | 'POST', url: string, payload?: unknown): Promise<{ status: number; body: T }> {
  const response = await app.inject({ method, url, ...(payload === undefined ? {} : { payload: payload as object }) });
  return { status: response.statusCode, body: response.json<T>() };
}

/**
 * Polls `ps` until `done` says so. It gives up only when the deployment makes no progress (its state and
 * steps unchanged) for `stallMs`: a loaded machine is waited for, a deployment that hangs is not.
 */
async function until(app: FastifyInstance, name: string, done: (view: View) => boolean, stallMs = 60_000): Promise<View> {
  let seen = '';
  let changedAt = Date.now();
  for (;;) {
    const { body } = await json<View[]>(app, 'GET', '/v1/deployments');
    const view = body.find((candidate) => candidate.name === name);
    if (view !== undefined && done(view)) return view;
    const mark = JSON.stringify([view?.state, view?.steps]);
    if (mark !== seen) {
      seen = mark;
      changedAt = Date.now();
    }
    if (Date.now() - changedAt > stallMs) throw new Error(`${name} made no progress for ${stallMs} ms: ${JSON.stringify(view)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A test's own bound: its waits fail on a stall (see until), so this only ends one that moves yet never gets there. */
const PATIENCE_MS = 600_000;

const ended = (view: View): boolean => !['pending', 'starting', 'running', 'draining'].includes(view.state);

/** What the store holds of deployment `name`, read with SQL. */
async function stored(name: string): Promise<{ steps: number; orders: number; fills: number; positions: unknown[]; events: number[] }> {
  const [row] = await store.query('SELECT id, closed_steps, orders_count, fills_count FROM deployments WHERE name = $1', [name]);
  const positions = await store.query('SELECT symbol, quantity FROM positions WHERE deployment_id = $1 ORDER BY symbol', [row?.id]);
  const events = await store.query('SELECT id FROM events WHERE deployment_id = $1 ORDER BY id DESC LIMIT 20', [row?.id]);
  return {
    steps: Number(row?.closed_steps),
    orders: Number(row?.orders_count),
    fills: Number(row?.fills_count),
    positions: positions.map((position) => ({ symbol: position.symbol, quantity: Number(position.quantity) })),
    events: events.map((event) => Number(event.id)).reverse(),
  };
}

describe('the control plane over HTTP', () => {
  it('runs a deployment to the end: its stored orders, fills and report are the backtest\'s', async () => {
    const { plane, app } = await serving();
    const created = await json<View>(app, 'POST', '/v1/deployments', { spec: specYaml('to-the-end', 160), baseDir: '/', env: 'dev' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'to-the-end', desired: 'running' });
    // Its twin (the same strategies, so the same agent ids) runs beside it on the same broker.
    expect((await json<View>(app, 'POST', '/v1/deployments', { spec: specYaml('to-the-end', 160), baseDir: '/', env: 'staging', name: 'twin' })).status).toBe(201);
    const view = await until(app, 'to-the-end', ended);
    expect(view).toMatchObject({ state: 'complete', desired: 'stopped', steps: 160 });
    expect(await until(app, 'twin', ended)).toMatchObject({ state: 'complete', steps: 160 });

    const spec = await parseSwarmSpecText(specYaml('to-the-end', 160), 'spec', '/');
    const { report: expected } = runBacktest(spec.backtest);
    for (const name of ['to-the-end', 'twin']) {
      const status = await json<{ report: { trades: unknown[]; finalEquity: number }; agentList: unknown[] }>(app, 'GET', `/v1/deployments/${name}`);
      expect(status.body.report.trades).toEqual(expected.trades);
      expect(status.body.report.finalEquity).toBe(expected.finalEquity);
    }
    const fills = await json<Array<{ clientOrderId: string }>>(app, 'GET', '/v1/deployments/to-the-end/fills');
    expect(fills.body.map((fill) => fill.clientOrderId)).toEqual(expected.fills.slice(0, fills.body.length).map((fill) => fill.clientOrderId));
    const orders = await json<Array<{ clientOrderId: string }>>(app, 'GET', '/v1/deployments/to-the-end/orders');
    expect(orders.body.length).toBeGreaterThan(0);
    expect(new Set(orders.body.map((order) => order.clientOrderId)).size).toBe(orders.body.length);
    const events = await json<Array<{ kind: string }>>(app, 'GET', '/v1/deployments/to-the-end/events');
    // Health changes are observations of timing (a heartbeat late on a loaded machine): the lifecycle is what is checked here.
    expect(events.body.filter((event) => event.kind !== 'health').map((event) => event.kind)).toEqual(['deployed', 'ended']);
    await plane.close();
  }, PATIENCE_MS);

  it('refuses bad input naming each field, and leaves what runs and what is stored as it was', async () => {
    const { plane, app } = await serving();
    expect((await json(app, 'POST', '/v1/deployments', { spec: specYaml('keeps-running', 200_000), baseDir: '/', env: 'staging' })).status).toBe(201);
    await until(app, 'keeps-running', (view) => view.state === 'running' && view.steps > 0);
    const before = (await json<View[]>(app, 'GET', '/v1/deployments')).body.map((view) => view.name).sort();

    const refusals: Array<[unknown, number, RegExp]> = [
      [{ spec: 'name: [unclosed', baseDir: '/' }, 400, /valid YAML/],
      [{ spec: specYaml('bad', 100).replace('fastPeriod: 4', 'fastPeriod: -4'), baseDir: '/' }, 400, /strategies\[0\]\.fastPeriod/],
      [{ spec: specYaml('bad', 100).replace('topology: star', 'topology: circle'), baseDir: '/' }, 400, /swarm\.topology: got "circle"/],
      [{ baseDir: '/' }, 400, /spec: got nothing/],
      [{ spec: specYaml('bad', 100), baseDir: '/', env: 'qa' }, 400, /env: got "qa"; .*dev.*staging.*prod/],
      [{ spec: specYaml('bad', 100), baseDir: '/', extra: 1 }, 400, /extra/],
      [{ spec: specYaml('bad', 100), baseDir: '/', name: '../etc' }, 400, /name/],
      [{ spec: specYaml('keeps-running', 100), baseDir: '/', env: 'staging' }, 409, /a deployment named keeps-running exists/],
      // A tier only prod allows, asked for in dev; a role no agent of the swarm has.
      [{ spec: specYaml('bad', 100).replace('topology: star', 'topology: star, resources: { roles: { decider: T3 } }'), baseDir: '/', env: 'dev' }, 400, /^swarm\.resources\.roles\.decider: tier T3 is not allowed in dev, which allows T1; choose one of those/],
      [{ spec: specYaml('bad', 100).replace('topology: star', 'topology: star, resources: { roles: { executor: T1 } }'), baseDir: '/', env: 'dev' }, 400, /swarm\.resources\.roles\.executor: got "T1"; names no agent of this star swarm/],
      [{ spec: specYaml('too-big', 100, 'mesh').replace('risk:', '  - { type: ema-crossover, symbol: AAA, fastPeriod: 3, slowPeriod: 9, sizing: { type: fixed-quantity, units: 5 } }\n  - { type: ema-crossover, symbol: BBB, fastPeriod: 3, slowPeriod: 9, sizing: { type: fixed-quantity, units: 5 } }\nrisk:'), baseDir: '/', env: 'dev' }, 409, /dev allows 3 sandboxes at once; 0 are in use and this needs 4 more/],
    ];
    for (const [payload, status, message] of refusals) {
      const answer = await json<{ error: { message: string; issues?: Array<{ path: string; allowed: string }> } }>(app, 'POST', '/v1/deployments', payload);
      expect(answer.status, JSON.stringify(payload).slice(0, 80)).toBe(status);
      expect(answer.body.error.message).toMatch(message);
    }
    const listed = await json<{ error: { issues: Array<{ path: string; got: unknown; allowed: string }> } }>(app, 'POST', '/v1/deployments', { spec: specYaml('bad', 100).replace('topology: star', 'topology: circle, heartbeatMs: 1'), baseDir: '/' });
    expect(listed.body.error.issues.map((issue) => issue.path).sort()).toEqual(['swarm.heartbeatMs', 'swarm.topology']);
    expect((await json(app, 'GET', '/v1/deployments/nothing-here')).status).toBe(404);
    expect((await json(app, 'GET', '/v1/deployments/keeps-running/orders?fromStep=-1')).status).toBe(400);

    expect((await json<View[]>(app, 'GET', '/v1/deployments')).body.map((view) => view.name).sort()).toEqual(before);
    const running = await until(app, 'keeps-running', (view) => view.state === 'running');
    const later = await until(app, 'keeps-running', (view) => view.steps > running.steps);
    expect(later.state).toBe('running');

    const stopped = await json<View>(app, 'POST', '/v1/deployments/keeps-running/stop');
    expect(stopped.body).toMatchObject({ state: 'stopped', desired: 'stopped' });
    await plane.close();
    // A stopped deployment is not resumed by the next start.
    const next = await serving();
    expect((await json<View[]>(next.app, 'GET', '/v1/deployments')).body.find((view) => view.name === 'keeps-running')).toMatchObject({ state: 'stopped', desired: 'stopped' });
    await next.plane.close();
  }, PATIENCE_MS);

  it('refuses the second of two deploys sent at once when only one fits the environment, and runs the first', async () => {
    const { plane, app } = await serving();
    // dev allows 3 sandboxes; each star needs 3. Both requests are in flight together.
    const answers = await Promise.all(
      ['race-a', 'race-b'].map((name) => json<{ name?: string; error?: { message: string } }>(app, 'POST', '/v1/deployments', { spec: specYaml(name, 200_000), baseDir: '/', env: 'dev' })),
    );
    expect(answers.map((answer) => answer.status).sort()).toEqual([201, 409]);
    const refused = answers.find((answer) => answer.status === 409);
    expect(refused?.body.error?.message).toMatch(/^dev allows 3 sandboxes at once; 3 are in use and this needs 3 more\. Nothing was changed/);
    const winner = answers.find((answer) => answer.status === 201)?.body.name as string;
    expect((await json<View[]>(app, 'GET', '/v1/deployments')).body.filter((view) => view.name.startsWith('race-')).map((view) => view.name)).toEqual([winner]);
    await until(app, winner, (view) => view.state === 'running' && view.steps > 0);
    expect((await json<View>(app, 'POST', `/v1/deployments/${winner}/stop`)).body).toMatchObject({ state: 'stopped' });
    await plane.close();
  }, PATIENCE_MS);

  it("runs each agent and its standby in its role's tier, and status shows each agent's tier", async () => {
    const { plane, app } = await serving();
    // prod allows T3 and T4: the hub asks for T4, the traders name none and get prod's smallest, T3.
    const yaml = specYaml('tiered', 200_000).replace('topology: star', 'topology: star, standby: true, resources: { roles: { hub: T4 } }');
    const created = await json<View & { id: string }>(app, 'POST', '/v1/deployments', { spec: yaml, baseDir: '/', env: 'prod' });
    expect(created.status).toBe(201);
    await until(app, 'tiered', (view) => view.state === 'running' && view.steps > 0);
    type Agent = { id: string; tier: string; standby: { ready: boolean } | null };
    let agents: Agent[] = [];
    while (agents.length === 0 || !agents.every((agent) => agent.standby?.ready === true)) {
      agents = (await json<{ agentList: Agent[] }>(app, 'GET', '/v1/deployments/tiered')).body.agentList;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(agents.map((agent) => [agent.id, agent.tier])).toEqual([
      ['hub', 'T4'],
      ['1-sma-crossover-AAA-4-16', 'T3'],
      ['2-momentum-BBB-8', 'T3'],
    ]);
    // Its sandboxes through the SDK: three agents and three standbys, each of its agent's tier (cores
    // as many as this machine has, at most; see the local cloud's hostCpus).
    const sandboxes = await runtime.provider.list({ tradeswarm: 'swarm-agent', swarm: created.body.id });
    const cores = (tier: number): number => Math.min(tier, availableParallelism());
    const tiers: Record<string, { template: string; cpuCount: number; memoryMB: number }> = {
      T3: { template: 'prod-trading-agent-t3', cpuCount: cores(4), memoryMB: 2048 },
      T4: { template: 'prod-trading-agent-t4', cpuCount: cores(8), memoryMB: 4096 },
    };
    expect(sandboxes.map((info) => [info.metadata.agent, info.metadata.tier, info.templateId, info.cpuCount, info.memoryMB]).sort()).toEqual(
      agents.flatMap((agent) => [agent, agent]).map((agent) => [agent.id, agent.tier, tiers[agent.tier]?.template, tiers[agent.tier]?.cpuCount, tiers[agent.tier]?.memoryMB]).sort(),
    );
    await json(app, 'POST', '/v1/deployments/tiered/stop');
    await plane.close();
  }, PATIENCE_MS);

  it('suspends running deployments on a clean shutdown, and the next start resumes them to the backtest\'s trades', async () => {
    const first = await serving();
    expect((await json(first.app, 'POST', '/v1/deployments', { spec: specYaml('suspended', 3_000), baseDir: '/', env: 'staging' })).status).toBe(201);
    const atShutdown = await until(first.app, 'suspended', (view) => view.steps >= 300);
    await first.plane.close();
    expect((await json<View[]>(first.app, 'GET', '/v1/deployments')).body.find((view) => view.name === 'suspended')).toMatchObject({ state: 'suspended', desired: 'running' });
    // The next start resumes it from its latest venue snapshot, not from the first step.
    const [venue] = await store.query<{ closed_steps: number }>("SELECT v.closed_steps FROM venue_snapshots AS v JOIN deployments AS d ON d.id = v.deployment_id WHERE d.name = 'suspended'");
    expect(venue?.closed_steps).toBeGreaterThanOrEqual(300);
    expect((venue?.closed_steps ?? 1) % 50).toBe(0);

    const second = await serving();
    const view = await until(second.app, 'suspended', ended);
    expect(view.state).toBe('complete');
    expect(view.steps).toBe(3_000);
    expect(view.steps).toBeGreaterThan(atShutdown.steps);
    const spec = await parseSwarmSpecText(specYaml('suspended', 3_000), 'spec', '/');
    const { report: expected } = runBacktest(spec.backtest);
    const status = await json<{ report: { trades: unknown[]; finalEquity: number } }>(second.app, 'GET', '/v1/deployments/suspended');
    expect(status.body.report.trades).toEqual(expected.trades);
    expect(status.body.report.finalEquity).toBe(expected.finalEquity);
    const events = await json<Array<{ kind: string; agentId: string | null }>>(second.app, 'GET', '/v1/deployments/suspended/events');
    expect(events.body.filter((event) => event.agentId === null && event.kind !== 'health').map((event) => event.kind)).toEqual(['deployed', 'suspended', 'resumed', 'ended']);
    await second.plane.close();
  }, PATIENCE_MS);

  it('scales a running deployment: a standby for its hub, stored, kept by the next start; refuses what it cannot do and changes nothing', async () => {
    // prod fails over by itself; four sandboxes fit the star's three agents and one standby.
    const small = compileEnvironments({ environments: { prod: { maxSandboxes: 4 } } });
    const start = async (): Promise<{ plane: ControlPlane; app: FastifyInstance }> => {
      const plane = await ControlPlane.start({ store, runtime, environments: small, clock, logger: silentLogger });
      const app = createApp({ logger: silentLogger });
      await app.register(controlPlaneRoutes, { controlPlane: plane });
      return { plane, app };
    };
    type Agents = { agentList: Array<{ id: string; replicas: number; standby: { ready: boolean } | null }> };
    const hubOf = async (app: FastifyInstance) => (await json<Agents>(app, 'GET', '/v1/deployments/scaled')).body.agentList.find((agent) => agent.id === 'hub');
    const standbyReady = async (app: FastifyInstance): Promise<void> => {
      const deadline = Date.now() + 60_000;
      while ((await hubOf(app))?.standby?.ready !== true) {
        if (Date.now() > deadline) throw new Error(`the hub's standby was not ready within 60 s: ${JSON.stringify(await hubOf(app))}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };
    const first = await start();
    expect((await json(first.app, 'POST', '/v1/deployments', { spec: specYaml('scaled', 3_000), baseDir: '/', env: 'prod' })).status).toBe(201);
    await until(first.app, 'scaled', (view) => view.state === 'running' && view.steps >= 20);
    expect((await hubOf(first.app))?.replicas).toBe(1);

    const scaled = await json<View>(first.app, 'POST', '/v1/deployments/scaled/scale', { role: 'hub', replicas: 2 });
    expect(scaled.status).toBe(200);
    await standbyReady(first.app);
    expect((await hubOf(first.app))?.replicas).toBe(2);

    const refused = [
      await json<{ error: { message: string } }>(first.app, 'POST', '/v1/deployments/scaled/scale', { role: 'hub', replicas: 3 }),
      await json<{ error: { message: string } }>(first.app, 'POST', '/v1/deployments/scaled/scale', { role: 'janitor', replicas: 2 }),
      await json<{ error: { message: string } }>(first.app, 'POST', '/v1/deployments/scaled/scale', { role: 'all', replicas: 2 }),
      await json<{ error: { message: string } }>(first.app, 'POST', '/v1/deployments/nope/scale', { role: 'hub', replicas: 2 }),
    ];
    expect(refused.map((answer) => answer.status)).toEqual([400, 400, 409, 404]);
    expect(refused[0]?.body.error.message).toMatch(/replicas/);
    expect(refused[1]?.body.error.message).toBe('role: scaled has no agent or role "janitor"; give an agent id (hub, 1-sma-crossover-AAA-4-16, 2-momentum-BBB-8), a role (decider, trader) or all');
    expect(refused[2]?.body.error.message).toMatch(/^prod allows 4 sandboxes at once; 4 are in use and this needs 2 more\. Nothing was changed/);
    // Nothing of the refused scales was applied.
    const agents = (await json<Agents>(first.app, 'GET', '/v1/deployments/scaled')).body.agentList;
    expect(agents.map((agent) => [agent.id, agent.replicas])).toEqual([['hub', 2], ['1-sma-crossover-AAA-4-16', 1], ['2-momentum-BBB-8', 1]]);

    // The next server resumes the deployment with the hub's standby: the setting was stored.
    await first.plane.close();
    const second = await start();
    await standbyReady(second.app);
    const view = await until(second.app, 'scaled', ended);
    expect(view.state).toBe('complete');
    const spec = await parseSwarmSpecText(specYaml('scaled', 3_000), 'spec', '/');
    const { report: expected } = runBacktest(spec.backtest);
    const status = await json<{ report: { trades: unknown[]; finalEquity: number } }>(second.app, 'GET', '/v1/deployments/scaled');
    expect(status.body.report.trades).toEqual(expected.trades);
    expect(status.body.report.finalEquity).toBe(expected.finalEquity);
    const events = await json<Array<{ kind: string; detail: string | null }>>(second.app, 'GET', '/v1/deployments/scaled/events');
    expect(events.body.filter((event) => event.kind === 'scaled').map((event) => event.detail)).toEqual(['hub to 2 replicas: the agent and a hot standby']);
    await second.plane.close();
  }, PATIENCE_MS);

  it('refuses the second of two scales sent at once when only one fits the environment, and applies the first', async () => {
    // prod here allows 4 sandboxes: the star's three agents and one standby.
    const plane = await ControlPlane.start({ store, runtime, environments: compileEnvironments({ environments: { prod: { maxSandboxes: 4 } } }), clock, logger: silentLogger });
    const app = createApp({ logger: silentLogger });
    await app.register(controlPlaneRoutes, { controlPlane: plane });
    expect((await json(app, 'POST', '/v1/deployments', { spec: specYaml('scale-race', 200_000), baseDir: '/', env: 'prod' })).status).toBe(201);
    await until(app, 'scale-race', (view) => view.state === 'running' && view.steps > 0);
    const roles = ['hub', '1-sma-crossover-AAA-4-16'];
    const answers = await Promise.all(roles.map((role) => json<{ error?: { message: string } }>(app, 'POST', '/v1/deployments/scale-race/scale', { role, replicas: 2 })));
    expect(answers.map((answer) => answer.status).sort()).toEqual([200, 409]);
    expect(answers.find((answer) => answer.status === 409)?.body.error?.message).toMatch(/^prod allows 4 sandboxes at once; 4 are in use and this needs 1 more\. Nothing was changed/);
    const agents = (await json<{ agentList: Array<{ id: string; replicas: number }> }>(app, 'GET', '/v1/deployments/scale-race')).body.agentList;
    const won = roles[answers.findIndex((answer) => answer.status === 200)];
    expect(agents.map((agent) => [agent.id, agent.replicas])).toEqual(agents.map((agent) => [agent.id, agent.id === won ? 2 : 1]));
    await json(app, 'POST', '/v1/deployments/scale-race/stop');
    await plane.close();
  }, PATIENCE_MS);

  it('trades bars published into a deployment whose feed is the bus, as the backtest trades them', async () => {
    const { plane, app } = await serving();
    const yaml = `${specYaml('on-the-bus', 200)}  feed: { source: bus, stepAfterMs: 500 }\n`.replace('swarm: { topology: star }\n  feed', 'swarm:\n  topology: star\n  feed');
    const created = await json<View>(app, 'POST', '/v1/deployments', { spec: yaml, baseDir: '/', env: 'dev' });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    await until(app, 'on-the-bus', (view) => view.state === 'running');
    const spec = await parseSwarmSpecText(yaml, 'spec', '/');
    const bars = [...(spec.backtest.bars as ReadonlyMap<string, ReadonlyArray<{ symbol: string; timeMs: number; open: number; high: number; low: number; close: number; volume: number }>>).values()]
      .flat()
      .sort((a, b) => a.timeMs - b.timeMs || (a.symbol < b.symbol ? -1 : 1))
      .map(({ symbol, timeMs, open, high, low, close, volume }) => ({ symbol, time: timeMs, open, high, low, close, volume }));

    // Bad bars are refused whole, naming the bar and the field; a deployment that replays its data takes none.
    const bad = await json<{ error: { message: string; field: string } }>(app, 'POST', '/v1/deployments/on-the-bus/bars', { bars: [bars[0], { ...bars[1], high: 0.5 * (bars[1]?.low ?? 1) }] });
    expect(bad.status).toBe(400);
    expect(bad.body.error.field).toBe('bars[1].high');
    for (let i = 0; i < bars.length; i += 100) {
      const published = await json<{ published: number; topic: string }>(app, 'POST', '/v1/deployments/on-the-bus/bars', { bars: bars.slice(i, i + 100) });
      expect(published.status).toBe(200);
      expect(published.body.topic).toMatch(/^ts\/on-the-bus-[a-z0-9]+\/market\/bars$/);
    }
    const view = await until(app, 'on-the-bus', (candidate) => candidate.steps === 200);
    expect(view.state).toBe('running');
    const { report: expected } = runBacktest(spec.backtest);
    const fills = await json<Array<{ clientOrderId: string; price: number }>>(app, 'GET', '/v1/deployments/on-the-bus/fills');
    expect(fills.body.length).toBeGreaterThan(0);
    expect(fills.body.map(({ clientOrderId, price }) => ({ clientOrderId, price }))).toEqual(expected.fills.slice(0, fills.body.length).map(({ clientOrderId, price }) => ({ clientOrderId, price })));
    await json(app, 'POST', '/v1/deployments/on-the-bus/stop');
    await plane.close();
  }, PATIENCE_MS);

  it('streams what the store records as server-sent events: states, closed steps with their orders, events', async () => {
    const { plane, app } = await serving();
    const server = await listen(app);
    const aborted = new AbortController();
    const response = await fetch(`${server.url}/v1/stream`, { signal: aborted.signal });
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    const changes: Array<{ event: string; data: { type?: string; state?: string; step?: number; orders?: Array<{ clientOrderId: string }>; event?: { kind: string } } }> = [];
    const reading = (async () => {
      const decoder = new TextDecoder();
      let buffer = '';
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(frame)?.[1];
          const data = /^data: (.*)$/m.exec(frame)?.[1];
          if (event !== undefined && data !== undefined) changes.push({ event, data: JSON.parse(data) as (typeof changes)[number]['data'] });
        }
        // A deployment's last record is its 'ended' event, written after its final state.
        if (changes.some((change) => change.event === 'event' && change.data.event?.kind === 'ended')) return;
      }
    })();
    expect((await json(app, 'POST', '/v1/deployments', { spec: specYaml('streamed', 120), baseDir: '/', env: 'dev' })).status).toBe(201);
    await reading;
    aborted.abort();
    expect(changes[0]?.event).toBe('hello');
    const steps = changes.filter((change) => change.event === 'step').map((change) => change.data.step);
    expect(steps).toEqual(Array.from({ length: 120 }, (_, i) => i));
    const streamedOrders = changes.flatMap((change) => (change.event === 'step' ? (change.data.orders ?? []) : [])).map((order) => order.clientOrderId);
    const stored = await json<Array<{ clientOrderId: string }>>(app, 'GET', '/v1/deployments/streamed/orders');
    expect(streamedOrders.sort()).toEqual(stored.body.map((order) => order.clientOrderId).sort());
    expect(changes.filter((change) => change.event === 'event' && change.data.event?.kind !== 'health').map((change) => change.data.event?.kind)).toEqual(['deployed', 'ended']);
    expect(changes.filter((change) => change.event === 'state').map((change) => change.data.state)).toEqual(['starting', 'running', 'complete']);
    expect((await fetch(`${server.url}/v1/stream?deployment=nobody`)).status).toBe(404);
    await server.close();
    await plane.close();
  }, PATIENCE_MS);

  it('stops with --liquidate: every open position closed at the last close, the fills stored, flat afterwards; without it they stay open', async () => {
    const { plane, app } = await serving();
    // Strategies that buy at once and never sell (momentum entering above -90 %, leaving below -99 %).
    const holder = (name: string): string => `
name: ${name}
data: { source: synthetic, seed: 3, symbols: [AAA, BBB], barCount: 200000 }
strategies:
  - { type: momentum, symbol: AAA, lookback: 2, entryThreshold: -0.9, exitThreshold: -0.99, sizing: { type: fixed-quantity, units: 10 } }
  - { type: momentum, symbol: BBB, lookback: 2, entryThreshold: -0.9, exitThreshold: -0.99, sizing: { type: fixed-quantity, units: 7 } }
swarm: { topology: star }
`;
    for (const name of ['flat', 'held']) expect((await json(app, 'POST', '/v1/deployments', { spec: holder(name), baseDir: '/', env: 'staging' })).status).toBe(201);
    type Status = View & { positions: Array<{ symbol: string; quantity: number }>; fills: number; equity: number; events: Array<{ kind: string; detail: string | null }>; report: { openPositions: unknown[]; finalEquity: number; fills: Array<{ clientOrderId: string }> } };
    const holding = async (name: string): Promise<Status> => {
      for (;;) {
        const status = (await json<Status>(app, 'GET', `/v1/deployments/${name}`)).body;
        if (status.positions.length > 0) return status;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };
    await holding('flat');
    await holding('held');
    expect((await json(app, 'POST', '/v1/deployments/flat/stop?liquidate=maybe')).status).toBe(400);
    await Promise.all([json(app, 'POST', '/v1/deployments/flat/stop?liquidate=true'), json(app, 'POST', '/v1/deployments/held/stop')]);
    const flat = (await json<Status>(app, 'GET', '/v1/deployments/flat')).body;
    const held = (await json<Status>(app, 'GET', '/v1/deployments/held')).body;
    expect(flat.positions).toEqual([]);
    expect(flat.report.openPositions).toEqual([]);
    const stored = (await json<Array<{ clientOrderId: string }>>(app, 'GET', '/v1/deployments/flat/fills')).body;
    expect(stored.map((fill) => fill.clientOrderId)).toEqual(flat.report.fills.map((fill) => fill.clientOrderId));
    expect(flat.equity).toBe(flat.report.finalEquity);
    expect(flat.events.find((event) => event.kind === 'liquidated')).toMatchObject({ detail: expect.stringMatching(/^closed AAA sell 10 @ [\d.]+, BBB sell 7 @ [\d.]+ at the last close$/) as unknown });
    // Stopped without liquidation: what it held stays held, stored and in its report alike.
    expect(held.positions).toEqual([
      { symbol: 'AAA', quantity: 10 },
      { symbol: 'BBB', quantity: 7 },
    ]);
    expect(held.report.openPositions).toEqual(held.positions);
    expect(held.events.map((event) => event.kind)).not.toContain('liquidated');
    const heldFills = (await json<Array<{ clientOrderId: string }>>(app, 'GET', '/v1/deployments/held/fills')).body;
    expect(heldFills.map((fill) => fill.clientOrderId)).toEqual(held.report.fills.map((fill) => fill.clientOrderId));
    await plane.close();
  }, PATIENCE_MS);

  it("stops a deployment that trades at every step as its store has it: the report's fills and positions are those stored", async () => {
    const { plane, app } = await serving();
    // Crossings of a 1- and 2-bar average on a random walk: orders on most steps, filled at the next open.
    const busy = (name: string): string => `
name: ${name}
data: { source: synthetic, seed: 5, symbols: [AAA, BBB], barCount: 200000 }
strategies:
  - { type: sma-crossover, symbol: AAA, fastPeriod: 1, slowPeriod: 2, side: both, sizing: { type: fixed-quantity, units: 10 } }
  - { type: sma-crossover, symbol: BBB, fastPeriod: 1, slowPeriod: 2, side: both, sizing: { type: fixed-quantity, units: 7 } }
swarm: { topology: star }
`;
    type Status = View & { positions: Array<{ symbol: string; quantity: number }>; fills: number; equity: number; report: { openPositions: unknown[]; finalEquity: number; fills: Array<{ clientOrderId: string }> } };
    const names = ['busy-1', 'busy-2', 'busy-3'];
    for (const name of names) expect((await json(app, 'POST', '/v1/deployments', { spec: busy(name), baseDir: '/', env: 'staging' })).status).toBe(201);
    for (const name of names) await until(app, name, (view) => view.state === 'running' && view.steps >= 30);
    // Each stopped at whatever moment of its step it is in: most of a step is the wait for its agents, after its open filled.
    await Promise.all(names.map((name) => json(app, 'POST', `/v1/deployments/${name}/stop`)));
    for (const name of names) {
      const status = (await json<Status>(app, 'GET', `/v1/deployments/${name}`)).body;
      const fills = (await json<Array<{ clientOrderId: string }>>(app, 'GET', `/v1/deployments/${name}/fills`)).body;
      expect(fills.length, name).toBeGreaterThan(10);
      expect(fills.map((fill) => fill.clientOrderId), name).toEqual(status.report.fills.map((fill) => fill.clientOrderId));
      expect(status.positions, name).toEqual(status.report.openPositions);
      expect(status.equity, name).toBe(status.report.finalEquity);
    }
    await plane.close();
  }, PATIENCE_MS);

  it('answers ps and status from memory: never ahead of the store while trading, as the store after scale and stop, as a restart reads them', async () => {
    const { plane, app } = await serving();
    await plane.deploy({ specYaml: specYaml('cached-kept', 20_000), baseDir: '/', env: 'staging' });
    await plane.deploy({ specYaml: specYaml('cached-short', 60), baseDir: '/', env: 'dev' });

    // A view read before the store's row is never ahead of it: a step shows once it is stored.
    await until(app, 'cached-kept', (view) => view.steps >= 30);
    for (let read = 0; read < 20; read++) {
      const view = (await plane.list()).find((candidate) => candidate.name === 'cached-kept')!;
      const row = await stored('cached-kept');
      expect(view.steps).toBeLessThanOrEqual(row.steps);
      expect(view.orders).toBeLessThanOrEqual(row.orders);
      expect(view.fills).toBeLessThanOrEqual(row.fills);
    }

    await plane.scale('cached-kept', 'all', 1);
    const stopped = await plane.stop('cached-kept');
    await until(app, 'cached-short', ended);
    const kept = await plane.status('cached-kept');
    const row = await stored('cached-kept');
    expect(stopped).toMatchObject({ state: 'stopped', desired: 'stopped', steps: row.steps });
    expect({ steps: kept.steps, orders: kept.orders, fills: kept.fills, positions: kept.positions, events: kept.events.map((event) => event.id) }).toEqual(row);
    // Health and agent events are observations of timing on a loaded machine: the lifecycle is what is checked here.
    const lifecycle = ['deployed', 'scaled', 'stop', 'ended'];
    expect(kept.events.map((event) => event.kind).filter((kind) => lifecycle.includes(kind))).toEqual(lifecycle);
    expect(kept.report).not.toBeNull();
    // It ended by itself: its last events may still be being stored, so only its figures are compared.
    const short = await plane.status('cached-short');
    const { events: _events, ...shortRow } = await stored('cached-short');
    expect({ steps: short.steps, orders: short.orders, fills: short.fills, positions: short.positions }).toEqual(shortRow);
    // The other tests' deployments on this store may be resumed by the next start: only these two are compared.
    const ours = async (of: ControlPlane): Promise<DeploymentView[]> => (await of.list()).filter((view) => view.name.startsWith('cached-'));
    const list = await ours(plane);
    expect(list.map((view) => view.name)).toEqual(['cached-short', 'cached-kept']);
    await plane.close();

    const restarted = await ControlPlane.start({ store, runtime, environments, clock, logger: silentLogger });
    expect(await ours(restarted)).toEqual(list);
    expect(await restarted.status('cached-kept')).toEqual(kept);
    await restarted.close();
  }, PATIENCE_MS);
});
