import { Command, CommanderError } from 'commander';
import { ErrorCode, errorBody, errorChain } from '../core/index.js';
import { registerCommands } from './commands.js';
import { COMMAND_LOADERS } from './loaders.js';

const program = new Command()
  .name('tradeswarm')
  .description('Run a swarm of trading agents in isolated, E2B-compatible sandboxes.')
  .showHelpAfterError()
  // Usage errors throw instead of exiting, so that with --json they are answered as JSON like any other.
  .exitOverride();

try {
  await registerCommands(program, process.argv.slice(2), COMMAND_LOADERS);
  await program.parseAsync(process.argv);
} catch (error: unknown) {
  const json = process.argv.includes('--json');
  if (error instanceof CommanderError) {
    // Commander has printed the usage error (or the help asked for) on stderr already.
    if (json && error.exitCode !== 0) {
      process.stdout.write(`${JSON.stringify({ error: { ...errorBody(error).error, code: ErrorCode.usage, message: error.message.replace(/^error: /, '') } })}\n`);
    }
    process.exit(error.exitCode);
  }
  // With --json, scripts get the error as JSON on stdout (the server's own body when it answered one).
  if (json) {
    // Loaded only here: the control plane's client is not needed to start.
    const { ServerError } = await import('../client/index.js');
    process.stdout.write(`${JSON.stringify(error instanceof ServerError ? error.body : errorBody(error))}\n`);
  }
  process.stderr.write(`tradeswarm: ${errorChain(error)}\n`);
  process.exit(1);
}
