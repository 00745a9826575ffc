import type { CommandLoaders } from './commands.js';

/** Each module of commands, imported when the command run (or its help) needs it: see `commands.ts`. */
export const COMMAND_LOADERS: CommandLoaders = {
  cloud: async () => (await import('./cloud.js')).registerCloudCommands,
  demo: async () => (await import('./demo.js')).registerDemoCommand,
  run: async () => (await import('./run.js')).registerRunCommand,
  backtest: async () => (await import('./backtest.js')).registerBacktestCommand,
  optimize: async () => (await import('./optimize.js')).registerOptimizeCommand,
  exec: async () => (await import('./exec.js')).registerExecCommands,
  serve: async () => (await import('./serve.js')).registerServeCommand,
  deployments: async () => (await import('./deployments.js')).registerDeploymentCommands,
  broker: async () => (await import('./broker.js')).registerBrokerCommand,
  chaos: async () => (await import('./chaos.js')).registerChaosCommand,
};
