import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { errorMessage } from '../core/index.js';
import type { ControlPlaneClient, DeploymentStatusAnswer, DeploymentViewAnswer } from './client.js';
import { ENVIRONMENTS } from './environments.js';
import { deployBodySchema, scaleBodySchema } from './schemas.js';

/** The names of the tools {@link registerControlPlaneTools} adds, in the order it adds them. */
export const CONTROL_PLANE_TOOLS = ['deploy_swarm', 'list_deployments', 'deployment_status', 'deployment_health', 'deployment_metrics', 'deployment_orders', 'scale_deployment', 'stop_deployment'] as const;

/** Options of {@link registerControlPlaneTools}. */
export interface ControlPlaneToolsOptions {
  /**
   * Where a `deploy_swarm` call's CSV paths are relative to when it gives no `baseDir` (a folder on
   * the server's machine).
   * @default process.cwd()
   */
  readonly baseDir?: string;
}

const deployment = z.string().min(1).describe('The deployment, by name or id (list_deployments lists them).');

/** A tool's answer: a short line for a person, then the whole answer as JSON (also as structured content). */
function answer(line: string, value: Record<string, unknown>): CallToolResult {
  return { content: [{ type: 'text', text: line }, { type: 'text', text: JSON.stringify(value, null, 2) }], structuredContent: value };
}

/** Runs a tool's call; an error (the server's, with every field at fault, or none answering) becomes a tool error. */
async function attempt(what: string, call: () => Promise<CallToolResult>): Promise<CallToolResult> {
  try {
    return await call();
  } catch (error) {
    return { content: [{ type: 'text', text: `${what} failed: ${errorMessage(error)}` }], isError: true };
  }
}

function money(value: number | null): string {
  return value === null ? '-' : value.toFixed(2);
}

function progress(view: DeploymentViewAnswer): string {
  return view.totalSteps === null ? `${view.steps} steps` : `${view.steps}/${view.totalSteps} steps`;
}

/** What `deployment_metrics` answers: the figures of a deployment's view. */
function metricsOf(view: DeploymentViewAnswer): Record<string, unknown> {
  const { name, state, steps, totalSteps, orders, fills, equity, pnl, uptimeMs } = view;
  return { name, state, steps, totalSteps, orders, fills, equity, pnl, uptimeMs };
}

/**
 * What `deployment_health` answers: each agent's latest health check (status and reasons, at the
 * sandbox, agent and resource levels), its lifecycle, restarts and epoch; before the first check (or
 * with checks off) a running agent counts as healthy.
 */
function healthOf(status: DeploymentStatusAnswer): Record<string, unknown> {
  const agents = status.agentList.map((agent) => ({
    ...agent,
    health: agent.health?.status ?? (agent.lifecycle === 'running' ? 'healthy' : 'unhealthy'),
    reasons: agent.health?.reasons ?? [],
  }));
  return { name: status.name, state: status.state, healthy: agents.filter((agent) => agent.health === 'healthy').length, total: agents.length, agents };
}

/**
 * Adds the control plane's tools to an MCP server (beside `run_code` in `tradeswarm mcp`), each a
 * call of `tradeswarm serve`'s /v1 API through `client`: `deploy_swarm`, `list_deployments`,
 * `deployment_status`, `deployment_health`, `deployment_metrics`, `deployment_orders` and
 * `stop_deployment`. Each answers with a short line and the server's answer as JSON; an error
 * comes back as a tool error with the server's message (every field at fault for a bad spec, the
 * limit for a full environment), or, when no server answers, how to start one.
 */
export function registerControlPlaneTools(server: McpServer, client: ControlPlaneClient, options: ControlPlaneToolsOptions = {}): void {
  const baseDir = options.baseDir ?? process.cwd();
  const body = deployBodySchema.shape;

  server.registerTool(
    'deploy_swarm',
    {
      title: 'Deploy a trading swarm',
      description:
        `Deploys a swarm spec (YAML text, the file \`tradeswarm run\` reads) to the tradeswarm control plane at ${client.url}: ` +
        'it runs until stopped, each agent in its own sandbox. A bad spec is refused listing every field at fault; an environment ' +
        'without enough free sandboxes (dev 3, staging 10, prod 50) is refused naming the limit.',
      inputSchema: {
        spec: body.spec,
        baseDir: body.baseDir.optional().describe(`Where the spec's CSV paths are relative to, on the server's machine; default: ${baseDir}.`),
        name: body.name,
        env: z.enum(ENVIRONMENTS).optional().describe('dev (the default), staging or prod.'),
      },
    },
    ({ spec, baseDir: given, name, env }) =>
      attempt('deploy_swarm', async () => {
        const view = await client.deploy({ spec, baseDir: given ?? baseDir, ...(name === undefined ? {} : { name }), ...(env === undefined ? {} : { env }) });
        return answer(`deployed ${view.name} (${view.id}) to ${view.env}: ${view.state}`, view);
      }),
  );

  server.registerTool(
    'list_deployments',
    { title: 'List deployments', description: 'Every deployment of the control plane, newest first: state, environment, topology, healthy agents, steps, orders, equity, PnL, uptime.' },
    () =>
      attempt('list_deployments', async () => {
        const views = await client.list();
        const line = views.length === 0 ? 'no deployments; deploy one with deploy_swarm' : `${views.length} deployment${views.length === 1 ? '' : 's'}: ${views.map((view) => `${view.name} (${view.state}, ${progress(view)})`).join(', ')}`;
        return answer(line, { deployments: views });
      }),
  );

  server.registerTool(
    'deployment_status',
    { title: 'Deployment status', description: "One deployment in detail: its figures, agents, positions, latest events, and its final report once it ended.", inputSchema: { deployment } },
    ({ deployment: ref }) =>
      attempt('deployment_status', async () => {
        const status = await client.status(ref);
        return answer(`${status.name} (${status.id}): ${status.state}, ${status.env}, ${status.topology}; ${progress(status)}, ${status.orders} orders, equity ${money(status.equity)}, pnl ${money(status.pnl)}`, status);
      }),
  );

  server.registerTool(
    'deployment_health',
    {
      title: 'Deployment health',
      description:
        'Each agent of a deployment this server runs: its latest health check (healthy, degraded, unhealthy or unreachable, with the reasons at the sandbox, agent and resource levels), its lifecycle, restarts, epoch and standby.',
      inputSchema: { deployment },
    },
    ({ deployment: ref }) =>
      attempt('deployment_health', async () => {
        const status = await client.status(ref);
        const health = healthOf(status);
        const line = status.agentList.length === 0 ? `${status.name}: ${status.state}, no agent runs` : `${status.name}: ${String(health.healthy)} of ${String(health.total)} agents healthy (${status.state})`;
        return answer(line, health);
      }),
  );

  server.registerTool(
    'deployment_metrics',
    { title: 'Deployment metrics', description: 'The figures of a deployment: steps, orders, fills, equity, PnL and uptime.', inputSchema: { deployment } },
    ({ deployment: ref }) =>
      attempt('deployment_metrics', async () => {
        const status = await client.status(ref);
        return answer(`${status.name}: ${progress(status)}, ${status.orders} orders, ${status.fills} fills, equity ${money(status.equity)}, pnl ${money(status.pnl)}`, metricsOf(status));
      }),
  );

  server.registerTool(
    'deployment_orders',
    {
      title: 'Deployment orders',
      description: "A deployment's orders as stored (each written before the next step is traded), from a step on.",
      inputSchema: { deployment, fromStep: z.number().int().nonnegative().optional().describe('Only orders of this step and later.'), limit: z.number().int().min(1).max(100_000).optional().describe('At most this many orders.') },
    },
    ({ deployment: ref, fromStep, limit }) =>
      attempt('deployment_orders', async () => {
        const orders = await client.orders(ref, { ...(fromStep === undefined ? {} : { fromStep }), ...(limit === undefined ? {} : { limit }) });
        return answer(`${orders.length} order${orders.length === 1 ? '' : 's'} of ${ref}${fromStep === undefined ? '' : ` from step ${fromStep}`}`, { orders });
      }),
  );

  server.registerTool(
    'scale_deployment',
    {
      title: 'Scale a deployment',
      description:
        'Sets how many processes the agents of a role run as while the deployment runs: 1 each alone, 2 each with a hot standby in a sandbox of its own that takes over when it is lost (prod only). Stored, and kept across failovers and server restarts.',
      inputSchema: {
        deployment,
        role: scaleBodySchema.shape.role,
        replicas: scaleBodySchema.shape.replicas,
      },
    },
    ({ deployment: ref, role, replicas }) =>
      attempt('scale_deployment', async () => {
        const view = await client.scale(ref, role, replicas);
        return answer(`scaled ${role} of ${view.name} to ${replicas} replica${replicas === 1 ? '' : 's'}`, view);
      }),
  );

  server.registerTool(
    'stop_deployment',
    {
      title: 'Stop a deployment',
      description: 'Stops a deployment for good: agents checkpoint and exit, sandboxes are killed; it is not resumed. Answers once it stopped.',
      inputSchema: { deployment, liquidate: z.boolean().optional().describe('Close every open position at the last close first (default: positions stay open).') },
    },
    ({ deployment: ref, liquidate }) =>
      attempt('stop_deployment', async () => {
        const view = await client.stop(ref, { liquidate: liquidate === true });
        return answer(`stopped ${view.name}: ${view.state} after ${view.steps} steps, ${view.orders} orders, equity ${money(view.equity)}`, view);
      }),
  );
}
