import { type Command, Help } from 'commander';

/** Adds a module's commands to the program. */
export type RegisterCommands = (program: Command) => void;

/** The modules of commands (`src/cli/<name>.ts`). */
export type CommandModuleName = 'cloud' | 'demo' | 'run' | 'backtest' | 'optimize' | 'exec' | 'serve' | 'deployments' | 'broker' | 'chaos';

/** How to load each module of commands (`loaders.ts`; kept apart since the modules import this file). */
export type CommandLoaders = Readonly<Record<CommandModuleName, () => Promise<RegisterCommands>>>;

/** A module of commands, loaded only when one of its commands runs or its help is asked for. */
interface CommandModule {
  /** Each command's name and the line `tradeswarm --help` shows for it (its term, then its description). */
  readonly commands: ReadonlyArray<{ readonly name: string; readonly term: string; readonly description: string }>;
  readonly module: CommandModuleName;
}

/**
 * Every command, in the order `tradeswarm --help` lists them. A command module imports the domains it
 * drives (the swarm, the e2b SDK, ccxt, Fastify, PGlite, MCP: seconds of loading together), so the CLI
 * loads only the module of the command it runs; `tradeswarm --help` lists them from here without loading
 * any. Each module takes its descriptions from here ({@link commandDescription}); `commands.test.ts` checks that
 * this list prints the same help as the modules do.
 */
const MODULES: readonly CommandModule[] = [
  {
    commands: [{ name: 'cloud', term: 'cloud', description: 'the local, E2B-compatible sandbox cloud' }],
    module: 'cloud',
  },
  {
    commands: [
      { name: 'demo', term: 'demo', description: 'start the local cloud, create a sandbox through the e2b SDK, run a command and some Python, and print what happened' },
    ],
    module: 'demo',
  },
  {
    commands: [
      {
        name: 'run',
        term: 'run [options] <spec>',
        description: 'run a spec as a swarm: one agent per role in its own sandbox, coordinated over MQTT, trading on the paper venue',
      },
    ],
    module: 'run',
  },
  {
    commands: [
      { name: 'backtest', term: 'backtest [options] <spec>', description: "run a spec's strategies in-process (no sandboxes, no bus) as fast as the machine allows" },
    ],
    module: 'backtest',
  },
  {
    commands: [
      {
        name: 'optimize',
        term: 'optimize [options] <spec>',
        description: 'backtest every combination of strategy parameters on worker threads, rank them by a statistic, and (with --walk-forward) test the in-sample best out of sample',
      },
    ],
    module: 'optimize',
  },
  {
    commands: [
      { name: 'exec', term: 'exec [options]', description: 'run Python or JavaScript in a pooled sandbox and print what it printed (code from -c, -f or stdin)' },
      {
        name: 'mcp',
        term: 'mcp [options]',
        description:
          'serve the execution service to an AI assistant over MCP on stdio (tool: run_code); with a control plane (--url or TRADESWARM_URL) also its tools: ' +
          'deploy_swarm, list_deployments, deployment_status, deployment_health, deployment_metrics, deployment_orders, scale_deployment, stop_deployment',
      },
    ],
    module: 'exec',
  },
  {
    commands: [
      {
        name: 'serve',
        term: 'serve [options]',
        description:
          'run the control plane: deployments live until stopped, survive a crash of this process, and are driven over HTTP (deploy, ps, status, orders, logs, stop)',
      },
    ],
    module: 'serve',
  },
  {
    commands: [
      { name: 'deploy', term: 'deploy [options] <spec>', description: 'deploy a spec to a running `tradeswarm serve`: it runs until stopped' },
      { name: 'ps', term: 'ps [options]', description: 'list deployments: state, environment, topology, healthy agents, steps, orders, equity, PnL, uptime' },
      { name: 'status', term: 'status [options] <deployment>', description: 'one deployment in detail: agents, positions, latest events' },
      { name: 'orders', term: 'orders [options] <deployment>', description: "a deployment's orders, as stored (each written before the next step is traded)" },
      {
        name: 'logs',
        term: 'logs [options] <deployment>',
        description: "a deployment's history (deployed, agents lost and restarted, resumed after a crash, stopped) and what its agents printed",
      },
      {
        name: 'restart',
        term: 'restart [options] <deployment> <agent>',
        description: "restart a lost agent: one try of the recovery ladder (how a staging deployment recovers; prod's recover by themselves)",
      },
      {
        name: 'scale',
        term: 'scale [options] <deployment> <role> <replicas>',
        description: 'run the agents of a role alone (1) or each with a hot standby that takes over when it is lost (2), while the deployment runs',
      },
      { name: 'stop', term: 'stop [options] <deployment>', description: 'stop a deployment for good: agents checkpoint and exit, sandboxes are killed; it is not resumed' },
    ],
    module: 'deployments',
  },
  {
    commands: [
      {
        name: 'broker',
        term: 'broker [options]',
        description: 'run the embedded MQTT broker on its own until Ctrl-C (anonymous clients: keep it on loopback); point serve at it with --broker',
      },
    ],
    module: 'broker',
  },
  {
    commands: [
      {
        name: 'chaos',
        term: 'chaos [options] [spec]',
        description:
          'inject a seeded schedule of faults (agent, sandbox, pause, broker, serve, the leader of two serves) into a deployment under a real serve, and compare it with the fault-free run',
      },
    ],
    module: 'chaos',
  },
];

/**
 * A command's description, as `tradeswarm --help` lists it.
 * @throws Error for a name that is not in the list (a command added to a module but not here).
 */
export function commandDescription(name: string): string {
  const found = MODULES.flatMap((module) => module.commands).find((command) => command.name === name);
  if (found === undefined) throw new Error(`the command ${JSON.stringify(name)} is not in src/cli/commands.ts: add it there with its term and description`);
  return found.description;
}

/** The command the arguments (after `node tradeswarm`) name: the first that is not an option, or the one after `help`. */
function commandOf(args: readonly string[]): string | undefined {
  const words = args.filter((arg) => !arg.startsWith('-'));
  return words[0] === 'help' ? words[1] : words[0];
}

/**
 * Adds every command to `program`: in full (options, arguments, action) the module of the command that
 * `args` name, or every module when `all` is set; the others as entries that only list their term and
 * description in `tradeswarm --help`.
 */
export async function registerCommands(program: Command, args: readonly string[], loaders: CommandLoaders, options: { all?: boolean } = {}): Promise<void> {
  const named = commandOf(args);
  const terms = new Map<Command, string>();
  for (const module of MODULES) {
    if (options.all === true || module.commands.some((command) => command.name === named)) {
      (await loaders[module.module]())(program);
      continue;
    }
    for (const command of module.commands) terms.set(program.command(command.name).description(command.description), command.term);
  }
  const standard = new Help();
  program.configureHelp({ subcommandTerm: (command) => terms.get(command) ?? standard.subcommandTerm(command) });
}
