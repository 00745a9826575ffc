/**
 * The agent process: the entry point bundled into one file and started inside a sandbox (see
 * `src/sandbox/`). Its settings come in env vars ({@link AGENT_ENV}); it exits 0 after a requested
 * stop and 1 when it lost the control plane or could not start.
 */
import { HeartbeatMessage, agentConnectionId, connectBus, swarmTopics } from '../bus/index.js';
import { SystemClock, createLogger, errorMessage } from '../core/index.js';
import { AGENT_ENV, agentConfigSchema, swarmRegistry } from './protocol.js';
import { AgentRuntime } from './runtime.js';

async function main(): Promise<number> {
  const logger = createLogger('agent');
  const raw = process.env[AGENT_ENV.config];
  const url = process.env[AGENT_ENV.busUrl];
  if (raw === undefined || url === undefined) {
    logger.error(`${AGENT_ENV.config} and ${AGENT_ENV.busUrl} must be set; the control plane sets them when it starts an agent`);
    return 1;
  }
  const protocol = process.env[AGENT_ENV.busProtocol];
  if (protocol !== undefined && protocol !== '4' && protocol !== '5') {
    logger.error(`${AGENT_ENV.busProtocol}: got ${JSON.stringify(protocol)}; must be 4 (MQTT 3.1.1) or 5, or unset to try 5 and then 3.1.1`);
    return 1;
  }
  const parsed = agentConfigSchema.safeParse(JSON.parse(raw));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    logger.error(`${AGENT_ENV.config}.${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`);
    return 1;
  }
  const config = parsed.data;
  const clock = new SystemClock();
  const bus = await connectBus({
    url,
    clientId: config.agentId,
    // Unique on a broker several deployments share, whose agents may have the same ids.
    connectionId: agentConnectionId(config.swarm, config.agentId, config.epoch),
    clock,
    registry: swarmRegistry,
    logger: logger.child({ agent: config.agentId }),
    maxMessageBytes: 4 * 1024 * 1024,
    protocolVersion: protocol === undefined ? 'auto' : protocol === '4' ? 4 : 5,
    // Peers and the control plane learn at once when this process dies.
    will: { topic: swarmTopics(config.swarm).heartbeat(config.agentId), message: HeartbeatMessage.draft({ seq: 0, status: 'lost', epoch: config.epoch }) },
    ...(process.env[AGENT_ENV.busUsername] === undefined ? {} : { username: process.env[AGENT_ENV.busUsername] }),
    ...(process.env[AGENT_ENV.busPassword] === undefined ? {} : { password: process.env[AGENT_ENV.busPassword] }),
  });
  const runtime = new AgentRuntime({ bus, config, clock, logger: logger.child({ agent: config.agentId }) });
  const onSignal = (): void => {
    void runtime.stop({ reason: 'signal', detail: 'SIGTERM', exitCode: 0 });
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  await runtime.start();
  // TS_CODE_CACHE is set by the code-cache loader the control plane starts agents with.
  process.stdout.write(`${JSON.stringify({ event: 'ready', agent: config.agentId, codeCache: process.env.TS_CODE_CACHE ?? 'none' })}\n`);
  const exit = await runtime.done;
  process.stdout.write(`${JSON.stringify({ event: 'exit', agent: config.agentId, ...exit, counters: runtime.counters })}\n`);
  return exit.exitCode;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`agent failed to start: ${errorMessage(error)}\n`);
    process.exit(1);
  },
);
