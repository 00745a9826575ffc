import { Command, CommanderError } from 'commander';
import { ErrorCode, errorBody } from '../api/index.js';
import { ServerError } from '../controlplane/index.js';
import { errorChain } from '../core/index.js';
import { registerBacktestCommand } from './backtest.js';
import { registerBrokerCommand } from './broker.js';
import { registerChaosCommand } from './chaos.js';
import { registerCloudCommands } from './cloud.js';
import { registerDemoCommand } from './demo.js';
import { registerExecCommands } from './exec.js';
import { registerDeploymentCommands } from './deployments.js';
import { registerOptimizeCommand } from './optimize.js';
import { registerRunCommand } from './run.js';
import { registerServeCommand } from './serve.js';

const program = new Command()
  .name('tradeswarm')
  .description('Run a swarm of trading agents in isolated, E2B-compatible sandboxes.')
  .showHelpAfterError()
  // Usage errors throw instead of exiting, so that with --json they are answered as JSON like any other.
  .exitOverride();
registerCloudCommands(program);
registerDemoCommand(program);
registerRunCommand(program);
registerBacktestCommand(program);
registerOptimizeCommand(program);
registerExecCommands(program);
registerServeCommand(program);
registerDeploymentCommands(program);
registerBrokerCommand(program);
registerChaosCommand(program);

program.parseAsync(process.argv).catch((error: unknown) => {
  const json = process.argv.includes('--json');
  if (error instanceof CommanderError) {
    // Commander has printed the usage error (or the help asked for) on stderr already.
    if (json && error.exitCode !== 0) process.stdout.write(`${JSON.stringify({ error: { ...errorBody(error).error, code: ErrorCode.usage, message: error.message.replace(/^error: /, '') } })}\n`);
    process.exit(error.exitCode);
  }
  // With --json, scripts get the error as JSON on stdout (the server's own body when it answered one).
  if (json) process.stdout.write(`${JSON.stringify(error instanceof ServerError ? error.body : errorBody(error))}\n`);
  process.stderr.write(`tradeswarm: ${errorChain(error)}\n`);
  process.exit(1);
});
