import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { CONTROL_PLANE_TOOLS } from '../controlplane/index.js';
import { commandDescription, registerCommands } from './commands.js';
import { COMMAND_LOADERS } from './loaders.js';

async function program(args: readonly string[], options: { all?: boolean } = {}): Promise<Command> {
  const made = new Command().name('tradeswarm').description('Run a swarm of trading agents in isolated, E2B-compatible sandboxes.');
  await registerCommands(made, args, COMMAND_LOADERS, options);
  return made;
}

describe('the list of commands', () => {
  it('prints the same `tradeswarm --help` as the command modules, loaded, do', async () => {
    const listed = (await program(['--help'])).helpInformation();
    expect(listed).toBe((await program([], { all: true })).helpInformation());
    expect(listed).toContain('  backtest [options] <spec>  ');
  });

  it('loads in full only the module of the command run (or asked help for), the others only listed', async () => {
    for (const args of [['backtest', 'spec.yaml', '--json'], ['help', 'backtest'], ['--json', 'backtest']]) {
      const loaded = await program(args);
      const options = (name: string): string[] => loaded.commands.find((command) => command.name() === name)!.options.map((option) => option.long ?? '');
      expect(options('backtest')).toEqual(['--json', '--html']);
      expect(options('run')).toEqual([]);
    }
    const deployments = await program(['ps']);
    expect(deployments.commands.filter((command) => command.options.length > 0).map((command) => command.name())).toEqual(['deploy', 'ps', 'status', 'orders', 'logs', 'restart', 'scale', 'stop']);
  });

  it("names every control plane tool in mcp's description", () => {
    for (const tool of CONTROL_PLANE_TOOLS) expect(commandDescription('mcp')).toContain(tool);
  });

  it('refuses a command that is not listed, saying where to add it', () => {
    expect(() => commandDescription('rebalance')).toThrow('the command "rebalance" is not in src/cli/commands.ts: add it there with its term and description');
  });
});
