import type { Command } from 'commander';
import { startEmbeddedBroker } from '../bus/index.js';
import { createLogger } from '../core/index.js';
import { commandDescription } from './commands.js';

/**
 * `tradeswarm broker`: the embedded MQTT broker (Aedes) in a process of its own, open to anonymous
 * clients, for `tradeswarm serve --broker` and its agents; it can then be stopped and started again
 * on the same port while serve runs (a broker restart), as an external broker would be.
 */
export function registerBrokerCommand(program: Command): void {
  program
    .command('broker')
    .description(commandDescription('broker'))
    .option('--port <port>', 'MQTT-over-TCP port (0: one the OS picks)', (value) => Number(value), 1883)
    .option('--ws-port <port>', 'MQTT-over-WebSocket port (0: one the OS picks)', (value) => Number(value), 0)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .action(async (options: { port: number; wsPort: number; host: string }) => {
      const logger = createLogger('broker', process.env.LOG_LEVEL ?? 'info');
      const broker = await startEmbeddedBroker({ host: options.host, port: options.port, wsPort: options.wsPort, allowAnonymous: true, logger });
      process.stdout.write(
        [`tradeswarm broker listening on ${broker.url} (websocket ${broker.wsUrl})`, `  start the control plane on it: tradeswarm serve --broker ${broker.url}`, ''].join('\n'),
      );
      const stop = (): void => {
        void broker.close().then(() => process.exit(0));
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
