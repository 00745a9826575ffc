import { Command } from 'commander';
import { errorChain } from '../core/index.js';
import { registerBacktestCommand } from './backtest.js';
import { registerCloudCommands } from './cloud.js';
import { registerDemoCommand } from './demo.js';
import { registerExecCommands } from './exec.js';
import { registerDeploymentCommands } from './deployments.js';
import { registerRunCommand } from './run.js';
import { registerServeCommand } from './serve.js';

const program = new Command()
  .name('tradeswarm')
  .description('Run a swarm of trading agents in isolated, E2B-compatible sandboxes.')
  .showHelpAfterError();
registerCloudCommands(program);
registerDemoCommand(program);
registerRunCommand(program);
registerBacktestCommand(program);
registerExecCommands(program);
registerServeCommand(program);
registerDeploymentCommands(program);

program.parseAsync(process.argv).catch((error: unknown) => {
  process.stderr.write(`tradeswarm: ${errorChain(error)}\n`);
  process.exit(1);
});
