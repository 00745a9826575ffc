import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { ControlPlaneClient, DEFAULT_SERVER_URL, type DeploymentStatusAnswer, type DeploymentViewAnswer, type EventAnswer, type OrderAnswer, type AgentLogAnswer } from '../controlplane/index.js';
import { InvalidInputError, errorChain } from '../core/index.js';
import { commandDescription } from './commands.js';

/** Options every client command takes. */
interface ClientOptions {
  url?: string;
  apiKey?: string;
  json?: boolean;
}

/** The client of the server a command's --url and --api-key name (else TRADESWARM_URL, TRADESWARM_API_KEY). */
function clientOf(options: ClientOptions): ControlPlaneClient {
  return new ControlPlaneClient({ ...(options.url === undefined ? {} : { url: options.url }), ...(options.apiKey === undefined ? {} : { apiKey: options.apiKey }) });
}

function print(options: ClientOptions, value: unknown, text: () => string): void {
  process.stdout.write(options.json === true ? `${JSON.stringify(value, null, 2)}\n` : text());
}

function money(value: number | null): string {
  return value === null ? '-' : value.toFixed(2);
}

function duration(ms: number | null): string {
  if (ms === null) return '-';
  const s = Math.floor(ms / 1000);
  return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m${s % 60}s` : `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
}

/** Lays out rows under a header, each column as wide as its widest cell. */
function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}

function psTable(views: readonly DeploymentViewAnswer[]): string {
  if (views.length === 0) return 'no deployments; deploy one with `tradeswarm deploy <spec.yaml>`\n';
  return table(
    ['NAME', 'STATE', 'ENV', 'TOPOLOGY', 'AGENTS', 'STEPS', 'ORDERS', 'EQUITY', 'PNL', 'UPTIME'],
    views.map((view) => [
      view.name,
      view.state,
      view.env,
      view.topology,
      `${view.agents.healthy}/${view.agents.total}`,
      view.totalSteps === null ? String(view.steps) : `${view.steps}/${view.totalSteps}`,
      String(view.orders),
      money(view.equity),
      money(view.pnl),
      duration(view.uptimeMs),
    ]),
  );
}

function statusText(status: DeploymentStatusAnswer): string {
  const lines = [
    `${status.name} (${status.id}): ${status.state}${status.desired === 'stopped' && status.state === 'running' ? ' (stopping)' : ''}, ${status.env}, ${status.topology}, ${status.pacing}`,
    `  steps ${status.totalSteps === null ? status.steps : `${status.steps}/${status.totalSteps}`}, orders ${status.orders}, fills ${status.fills}, equity ${money(status.equity)}, pnl ${money(status.pnl)}, uptime ${duration(status.uptimeMs)}`,
  ];
  if (status.error !== null) lines.push(`  error: ${status.error}`);
  if (status.agentList.length > 0) {
    lines.push(
      '',
      table(
        ['AGENT', 'STATE', 'HEALTH', 'RESTARTS', 'EPOCH', 'TIER', 'REPLICAS', 'SANDBOX', 'STANDBY'],
        status.agentList.map((agent) => [
          agent.id,
          agent.lifecycle,
          agent.health?.status ?? '-',
          String(agent.restarts),
          String(agent.epoch),
          agent.tier,
          String(agent.replicas),
          agent.placement,
          agent.standby === null ? '-' : `${agent.standby.placement} (epoch ${agent.standby.epoch}${agent.standby.ready ? ', ready' : ', starting'})`,
        ]),
      ).trimEnd(),
    );
    // Why an agent is not healthy, each reason with the level it was seen at.
    for (const agent of status.agentList) for (const reason of agent.health?.reasons ?? []) lines.push(`  ${agent.id}: ${reason.status}: ${reason.detail} (${reason.level})`);
  }
  if (status.positions.length > 0) lines.push('', `positions: ${status.positions.map((p) => `${p.symbol} ${p.quantity}`).join(', ')}`);
  if (status.events.length > 0) lines.push('', 'latest events:', ...status.events.map(eventLine));
  return `${lines.join('\n')}\n`;
}

function eventLine(event: EventAnswer): string {
  return `  ${new Date(event.atMs).toISOString()}  ${event.kind}${event.agentId === null ? '' : ` ${event.agentId}`}${event.step === null ? '' : ` @${event.step}`}${event.detail === null ? '' : `: ${event.detail}`}`;
}

function orderLine(order: OrderAnswer): string {
  return `${String(order.step).padStart(6)}  ${order.side.padEnd(4)} ${String(order.quantity).padStart(8)} ${order.symbol.padEnd(8)} ${order.status.padEnd(9)} ${order.clientOrderId}${order.reason === null ? '' : ` (${order.reason})`}\n`;
}

function clientOptions(command: Command): Command {
  return command
    .option('--url <url>', `the server (default: TRADESWARM_URL, else ${DEFAULT_SERVER_URL})`)
    .option('--api-key <key>', 'its API key (default: TRADESWARM_API_KEY)')
    .option('--json', 'print JSON');
}

/** Polls every second until the process is interrupted. */
async function follow(poll: () => Promise<boolean>): Promise<void> {
  for (;;) {
    const more = await poll();
    if (!more) return;
    await new Promise((resolve_) => setTimeout(resolve_, 1_000));
  }
}

/** `deploy`, `ps`, `status`, `orders`, `logs`, `stop`: clients of a running `tradeswarm serve`. */
export function registerDeploymentCommands(program: Command): void {
  clientOptions(program.command('deploy'))
    .description(commandDescription('deploy'))
    .argument('<spec>', 'spec file (YAML), as for run and backtest; its CSV paths are read on the server')
    .option('--name <name>', "the deployment's name (default: the spec's name)")
    .option('--env <env>', 'dev, staging or prod', 'dev')
    .action(async (file: string, options: ClientOptions & { name?: string; env: string }) => {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (error) {
        throw new InvalidInputError('<spec>', `${file} cannot be read (${errorChain(error)}); give the path of a spec file`);
      }
      const view = await clientOf(options).deploy({ spec: text, baseDir: dirname(resolve(file)), env: options.env, ...(options.name === undefined ? {} : { name: options.name }) });
      print(options, view, () => `deployed ${view.name} (${view.id}) to ${view.env}: ${view.state}; watch it with \`tradeswarm ps\`, \`tradeswarm status ${view.name}\`, \`tradeswarm orders ${view.name} --follow\`\n`);
    });

  clientOptions(program.command('ps'))
    .description(commandDescription('ps'))
    .action(async (options: ClientOptions) => {
      const views = await clientOf(options).list();
      print(options, views, () => psTable(views));
    });

  clientOptions(program.command('status'))
    .description(commandDescription('status'))
    .argument('<deployment>', 'its name or id')
    .action(async (ref: string, options: ClientOptions) => {
      const status = await clientOf(options).status(ref);
      print(options, status, () => statusText(status));
    });

  clientOptions(program.command('orders'))
    .description(commandDescription('orders'))
    .argument('<deployment>', 'its name or id')
    .option('--follow', 'keep printing new orders until Ctrl-C')
    .action(async (ref: string, options: ClientOptions & { follow?: boolean }) => {
      const client = clientOf(options);
      let fromStep = 0;
      const seen = new Set<string>();
      await follow(async () => {
        const orders = await client.orders(ref, { fromStep });
        const fresh = orders.filter((order) => !seen.has(order.clientOrderId));
        for (const order of fresh) seen.add(order.clientOrderId);
        if (options.json === true) for (const order of fresh) process.stdout.write(`${JSON.stringify(order)}\n`);
        else for (const order of fresh) process.stdout.write(orderLine(order));
        fromStep = Math.max(fromStep, ...orders.map((order) => order.step));
        return options.follow === true;
      });
    });

  clientOptions(program.command('logs'))
    .description(commandDescription('logs'))
    .argument('<deployment>', 'its name or id')
    .option('--agent <id>', "only this agent's own output (stdout and stderr, read through the SDK)")
    .option('--follow', 'keep printing until Ctrl-C')
    .action(async (ref: string, options: ClientOptions & { agent?: string; follow?: boolean }) => {
      const client = clientOf(options);
      let afterEvent = 0;
      let afterLine = 0;
      await follow(async () => {
        const events: EventAnswer[] = options.agent === undefined ? await client.events(ref, { after: afterEvent }) : [];
        const lines: AgentLogAnswer[] = await client.agentLogs(ref, { after: afterLine, ...(options.agent === undefined ? {} : { agent: options.agent }) });
        const merged = [
          ...events.map((event) => ({ atMs: event.atMs, json: event, text: eventLine(event).trimStart() })),
          ...lines.map((line) => ({ atMs: line.atMs, json: line, text: `${new Date(line.atMs).toISOString()}  ${line.agentId} ${line.stream}: ${line.line}` })),
        ].sort((a, b) => a.atMs - b.atMs);
        for (const entry of merged) process.stdout.write(options.json === true ? `${JSON.stringify(entry.json)}\n` : `${entry.text}\n`);
        afterEvent = Math.max(afterEvent, ...events.map((event) => event.id));
        afterLine = Math.max(afterLine, ...lines.map((line) => line.seq));
        return options.follow === true;
      });
    });

  clientOptions(program.command('restart'))
    .description(commandDescription('restart'))
    .argument('<deployment>', 'its name or id')
    .argument('<agent>', 'the agent, as `status` lists it')
    .action(async (ref: string, agentId: string, options: ClientOptions) => {
      const view = await clientOf(options).restartAgent(ref, agentId);
      print(options, view, () => `restarting ${agentId} of ${view.name}; \`tradeswarm status ${view.name}\` shows how it went\n`);
    });

  clientOptions(program.command('scale'))
    .description(commandDescription('scale'))
    .argument('<deployment>', 'its name or id')
    .argument('<role>', 'an agent as `status` lists it, a role (trader, decider, coordinator, collector, executor: every agent of it), or all')
    .argument('<replicas>', '1: each runs alone; 2: each runs with a hot standby in a sandbox of its own, which takes over when it is lost (prod)')
    .action(async (ref: string, role: string, replicas: string, options: ClientOptions) => {
      if (!/^\d+$/.test(replicas)) throw new InvalidInputError('replicas', `must be 1 or 2, got ${JSON.stringify(replicas)}`);
      const view = await clientOf(options).scale(ref, role, Number(replicas));
      print(options, view, () => `scaled ${role} of ${view.name} to ${replicas} ${replicas === '1' ? 'replica' : 'replicas'}; \`tradeswarm status ${view.name}\` shows each agent's standby\n`);
    });

  clientOptions(program.command('stop'))
    .description(commandDescription('stop'))
    .argument('<deployment>', 'its name or id')
    .option('--liquidate', 'close every open position at the last close first (the fills are stored); without it positions stay open')
    .action(async (ref: string, options: ClientOptions & { liquidate?: boolean }) => {
      const view = await clientOf(options).stop(ref, { liquidate: options.liquidate === true });
      print(options, view, () => `stopped ${view.name}: ${view.state} after ${view.steps} steps, ${view.orders} orders, equity ${money(view.equity)}\n`);
    });
}
