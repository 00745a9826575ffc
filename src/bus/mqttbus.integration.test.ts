import { type AddressInfo, type Socket, createServer, connect as netConnect } from 'node:net';
import { type MqttClient, connectAsync } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type StartedMosquitto, probeMosquittoBinary, startMosquitto } from '../../test/fixtures/mosquitto.js';
import { InvalidInputError, ManualClock, randomId, silentLogger } from '../core/index.js';
import { type EmbeddedBroker, startEmbeddedBroker } from './broker.js';
import { type BusContractHarness, describeBusContract } from './contract.testkit.js';
import { MessageRegistry, PingMessage, PongMessage, defineMessage } from './envelope.js';
import { BusAuthError, BusClosedError, BusConnectionError, isBusRequestAbortedError } from './errors.js';
import { type MqttBus, type MqttBusOptions, compileMqttBusOptions, connectBus } from './mqttbus.js';
import { capturingLogger, describeServerBacked, probeTcp, waitFor } from './testkit.js';
import { swarmTopics } from './topics.js';

const MOSQUITTO = await probeTcp('Mosquitto at 127.0.0.1:1883', '127.0.0.1', 1883);
const MOSQUITTO_BINARY = await probeMosquittoBinary();

/**
 * A harness for MqttBus on a broker reached through `busUrl`. On a broker with access control every
 * bus connects with the control plane's credentials: the contract uses any topic of a swarm, while
 * agent credentials allow only the agent's own (broker.test.ts checks those).
 */
function mqttHarness(open: () => Promise<{ busUrl: string; rawUrl: string; broker?: EmbeddedBroker }>): () => Promise<BusContractHarness> {
  return async () => {
    const { busUrl, rawUrl, broker } = await open();
    const raw: MqttClient = await connectAsync(rawUrl, {
      ...(broker ? broker.adminCredentials : {}),
      clientId: `raw-${randomId(10)}`,
      reconnectPeriod: 0,
    });
    return {
      connect: (swarmId, options = {}) =>
        connectBus({
          url: busUrl,
          ...(broker ? broker.adminCredentials : {}),
          logger: silentLogger,
          ...options,
        }),
      publishRaw: async (_swarmId, topic, payload, options = {}) => {
        await raw.publishAsync(topic, payload, { qos: 1, retain: options.retain ?? false });
      },
      crash: async (bus) => {
        // What a killed process leaves: a socket gone without MQTT's DISCONNECT, which is what makes the
        // broker publish the will. MqttBus has no such call in its API, so the test reaches its client.
        const { client } = bus as unknown as { client: MqttClient };
        client.stream.destroy();
        await bus.close();
      },
      close: async () => {
        await raw.endAsync();
        await broker?.close();
      },
    };
  };
}

describeBusContract(
  'MqttBus on the embedded broker over TCP',
  mqttHarness(async () => {
    const broker = await startEmbeddedBroker({ logger: silentLogger });
    return { busUrl: broker.url, rawUrl: broker.url, broker };
  }),
);

describeBusContract(
  'MqttBus on the embedded broker over WebSocket',
  mqttHarness(async () => {
    const broker = await startEmbeddedBroker({ logger: silentLogger });
    return { busUrl: broker.wsUrl, rawUrl: broker.url, broker };
  }),
);

describeServerBacked(MOSQUITTO, 'MqttBus on Mosquitto', () => {
  describeBusContract(
    'MqttBus on Mosquitto at mqtt://127.0.0.1:1883',
    mqttHarness(() => Promise.resolve({ busUrl: 'mqtt://127.0.0.1:1883', rawUrl: 'mqtt://127.0.0.1:1883' })),
  );

  it('speaks MQTT 5 with Mosquitto', async () => {
    const bus = await connectBus({ url: 'mqtt://127.0.0.1:1883', logger: silentLogger });
    expect(bus.stats().protocolVersion).toBe(5);
    await bus.close();
  });
});

describeServerBacked(MOSQUITTO_BINARY, 'MqttBus on a Mosquitto configured as the README says (set_tcp_nodelay true)', () => {
  let mosquitto: StartedMosquitto | undefined;
  beforeAll(async () => {
    mosquitto = await startMosquitto(['set_tcp_nodelay true']);
  });
  afterAll(() => mosquitto?.close());

  // About 0.5 ms each. A small packet held back by Nagle's algorithm on either side (this bus without
  // TCP_NODELAY, or the broker without set_tcp_nodelay) waits for a delayed ACK: about 40 ms a round
  // trip, 9 s for the 200.
  it('answers 200 requests in a row, well inside 4 s', async () => {
    const url = (mosquitto as StartedMosquitto).url;
    const server = await connectBus({ url, logger: silentLogger });
    const client = await connectBus({ url, logger: silentLogger });
    try {
      const topic = swarmTopics('nodelay').inbox('server');
      await server.serve(topic, (request) => PongMessage.draft({ seq: (request.payload as { seq: number }).seq }));
      const budget = AbortSignal.timeout(4000);
      const answered: number[] = [];
      try {
        for (let seq = 0; seq < 200; seq++) {
          const reply = await client.request(topic, PingMessage.draft({ seq }), { signal: budget });
          answered.push(PongMessage.is(reply) ? reply.payload.seq : -1);
        }
      } catch (error) {
        if (!isBusRequestAbortedError(error)) throw error;
      }
      expect(answered.length, 'requests answered within the 4 s').toBe(200);
      expect(answered).toEqual(Array.from({ length: 200 }, (_, seq) => seq));
    } finally {
      await Promise.all([client.close(), server.close()]);
    }
  });
});

describe('MqttBus specifics', () => {
  let broker: EmbeddedBroker | undefined;
  const buses: MqttBus[] = [];
  afterEach(async () => {
    await Promise.all(buses.splice(0).map((bus) => bus.close()));
    await broker?.close();
    broker = undefined;
  });
  const connect = async (options: MqttBusOptions): Promise<MqttBus> => {
    const bus = await connectBus({ logger: silentLogger, ...options });
    buses.push(bus);
    return bus;
  };

  it('falls back to MQTT 3.1.1 on the embedded broker (Aedes), and uses 3.1.1 when asked', async () => {
    broker = await startEmbeddedBroker({ logger: silentLogger });
    const auto = await connect({ url: broker.url, ...broker.issueCredentials({ swarmId: 's', agentId: 'a' }) });
    expect(auto.stats()).toMatchObject({ protocolVersion: 4, connected: true });
    const fixed = await connect({ url: broker.url, ...broker.issueCredentials({ swarmId: 's', agentId: 'b' }), protocolVersion: 4 });
    expect(fixed.stats().protocolVersion).toBe(4);
    await expect(connectBus({ url: broker.url, ...broker.issueCredentials({ swarmId: 's', agentId: 'c' }), protocolVersion: 5, logger: silentLogger })).rejects.toThrow(
      /does not speak MQTT version 5/,
    );
  });

  it('refuses wrong credentials with a BusAuthError that is not retryable', async () => {
    broker = await startEmbeddedBroker({ logger: silentLogger });
    const error: unknown = await connectBus({ url: broker.url, username: 's/a', password: 'wrong', logger: silentLogger }).catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(BusAuthError);
    expect(error).toMatchObject({ operation: 'connect', code: 4, retryable: false, target: broker.url });
  });

  it('reports an unreachable broker as a retryable BusConnectionError without the credentials', async () => {
    const closed = await startEmbeddedBroker({ logger: silentLogger });
    const url = closed.url;
    await closed.close();
    const error: unknown = await connectBus({ url: url.replace('mqtt://', 'mqtt://user:secret@'), logger: silentLogger }).catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(BusConnectionError);
    expect(error).toMatchObject({ retryable: true, url });
    expect((error as Error).message).not.toContain('secret');
  });

  it('closes itself when its credentials are revoked, and later calls say why', async () => {
    broker = await startEmbeddedBroker({ logger: silentLogger });
    const credentials = broker.issueCredentials({ swarmId: 'rev', agentId: 'a' });
    const bus = await connect({ url: broker.url, ...credentials, reconnectPeriodMs: 10 });
    const pending = bus.request(swarmTopics('rev').inbox('nobody'), PingMessage.draft({ seq: 1 }), { timeoutMs: 60_000 }).catch((thrown: unknown) => thrown);
    await waitFor(() => bus.stats().published === 1, 'the request to be sent');

    expect(broker.revoke(credentials.username)).toBe(1);
    const ended = await pending;
    expect(ended).toBeInstanceOf(BusClosedError);
    expect((ended as Error).cause).toBeInstanceOf(BusAuthError);
    const later: unknown = await bus.publish(swarmTopics('rev').bar('A'), PingMessage.draft({ seq: 1 })).catch((thrown: unknown) => thrown);
    expect(later).toBeInstanceOf(BusClosedError);
    expect((later as Error).message).toMatch(/the broker refused to connect/);
  });

  it('shares the messages of one group among the handlers of one bus too', async () => {
    broker = await startEmbeddedBroker({ logger: silentLogger });
    const topics = swarmTopics('local');
    const producer = await connect({ url: broker.url, ...broker.adminCredentials });
    const worker = await connect({ url: broker.url, ...broker.issueCredentials({ swarmId: 'local', agentId: 'w' }) });
    const first: number[] = [];
    const second: number[] = [];
    const seq = (envelope: { payload: unknown }): number => (envelope.payload as { seq: number }).seq;
    await worker.shareSubscribe('g', topics.work('q'), (envelope) => void first.push(seq(envelope)));
    await worker.shareSubscribe('g', topics.work('q'), (envelope) => void second.push(seq(envelope)));
    for (let i = 0; i < 6; i++) await producer.publish(topics.work('q'), PingMessage.draft({ seq: i }));
    await waitFor(() => first.length + second.length === 6, 'six work items');
    expect(first).toEqual([0, 2, 4]);
    expect(second).toEqual([1, 3, 5]);
  });

  it('warns, over MQTT 3.1.1, when a shared subscription overlaps an ordinary one of the same bus', async () => {
    broker = await startEmbeddedBroker({ logger: silentLogger });
    const { logger, records } = capturingLogger();
    const topics = swarmTopics('mixed');
    const bus = await connect({ url: broker.url, ...broker.issueCredentials({ swarmId: 'mixed', agentId: 'a' }), logger });
    await bus.subscribe(topics.allHeartbeats(), () => undefined);
    await bus.shareSubscribe('g', topics.work('q'), () => undefined);
    expect(records).toEqual([]);
    await bus.subscribe(topics.all(), () => undefined);
    expect(records.map((record) => [record.filter, record.overlaps])).toEqual([[topics.all(), `$share/g/${topics.work('q')}`]]);
  });

  it('settles QoS 0 publishes caught in the socket when the connection drops (they used to wait for ever)', async () => {
    broker = await startEmbeddedBroker({ logger: silentLogger });
    const relay = await startRelay(broker.url);
    try {
      const bus = await connect({ url: relay.url, ...broker.adminCredentials, reconnectPeriodMs: 10, registry: MessageRegistry.create(BlobMessage) });
      // The broker's side stops reading, as a broker that is being killed does: the socket's buffers
      // fill, and each later write waits for a 'drain' that a dropped connection never emits.
      relay.stall();
      const topic = swarmTopics('drop').bar('A');
      const blob = 'x'.repeat(48 * 1024);
      const settled: string[] = [];
      const publishes = Array.from({ length: 400 }, (_, i) =>
        bus.publish(topic, BlobMessage.draft({ blob }), { qos: 0 }).then(
          () => settled.push(`${i}`),
          (error: unknown) => settled.push(`${i} ${(error as Error).name}`),
        ),
      );
      // 19 MB is more than loopback's socket buffers hold, so some publishes are still waiting here.
      await new Promise((resolve) => setImmediate(resolve));
      expect(settled.length).toBeLessThan(400);
      relay.cut();
      const outcome = await Promise.race([Promise.all(publishes).then(() => 'settled'), hangsFor(5_000)]);
      expect({ outcome, settled: settled.length }).toEqual({ outcome: 'settled', settled: 400 });
      // At QoS 0 a message in a dropped socket is lost, as one dropped by the network is: no error.
      expect(settled.filter((entry) => entry.includes(' '))).toEqual([]);
      await waitFor(() => bus.stats().connected, 'the bus to reconnect through the relay');
      await bus.publish(topic, BlobMessage.draft({ blob: 'after' }), { qos: 0 });
    } finally {
      await relay.close();
    }
  });

  it('times requests out with the system clock by default', async () => {
    broker = await startEmbeddedBroker({ logger: silentLogger });
    const bus = await connect({ url: broker.url, ...broker.issueCredentials({ swarmId: 't', agentId: 'a' }), requestTimeoutMs: 20 });
    await expect(bus.request(swarmTopics('t').inbox('nobody'), PingMessage.draft({ seq: 1 }))).rejects.toMatchObject({ name: 'BusTimeoutError', timeoutMs: 20 });
  });

  it('validates its options, naming the field', () => {
    const field = (options: Partial<MqttBusOptions>): string => {
      try {
        compileMqttBusOptions({ url: 'mqtt://127.0.0.1:1883', ...options });
      } catch (error) {
        expect(error).toBeInstanceOf(InvalidInputError);
        return (error as InvalidInputError).field;
      }
      throw new Error('expected the options to be refused');
    };
    expect(field({ url: 'http://127.0.0.1' })).toBe('url');
    expect(field({ url: 'not a url' })).toBe('url');
    expect(field({ clientId: 'a/b' })).toBe('clientId');
    expect(field({ clock: {} as ManualClock })).toBe('clock');
    expect(field({ maxMessageBytes: 10 })).toBe('maxMessageBytes');
    expect(field({ requestTimeoutMs: 0 })).toBe('requestTimeoutMs');
    expect(field({ connectTimeoutMs: 1.5 })).toBe('connectTimeoutMs');
    expect(field({ reconnectPeriodMs: -1 })).toBe('reconnectPeriodMs');
    expect(field({ keepaliveSeconds: 70_000 })).toBe('keepaliveSeconds');
    expect(field({ protocolVersion: 3 as 4 })).toBe('protocolVersion');
    expect(field({ password: 5 as unknown as string })).toBe('password');
    expect(field({ will: { topic: 'ts/x/+', message: PingMessage.draft({ seq: 1 }) } })).toBe('will.topic');
    expect(field({ will: { topic: 'ts/x/y', message: { type: 'ping', payload: { seq: -1 } } } })).toBe('will.message.payload.seq');
    const config = compileMqttBusOptions({ url: 'ws://user:pw@127.0.0.1:8080/mqtt', clock: new ManualClock() });
    expect(config).toMatchObject({ displayUrl: 'ws://127.0.0.1:8080/mqtt', requestTimeoutMs: 10_000, connectTimeoutMs: 5_000, reconnectPeriodMs: 1_000, keepaliveSeconds: 30, protocolVersion: 'auto' });
    expect(config.clientId).toMatch(/^ts-[a-z0-9]{16}$/);
    expect(Object.isFrozen(config)).toBe(true);
  });
});

/** Any payload, for messages of a chosen size. */
const BlobMessage = defineMessage('blob', z.object({ blob: z.string() }));

/** Resolves with 'hung' after `ms` of real time: the bound on a wait that must end by itself. */
function hangsFor(ms: number): Promise<'hung'> {
  return new Promise((resolve) => setTimeout(() => resolve('hung'), ms).unref());
}

interface Relay {
  /** `mqtt://` address of the relay. */
  readonly url: string;
  /** Stops reading what clients send (and forwarding it), so their sockets back up. */
  stall(): void;
  /** Drops every client connection at once (a reset, as from a killed process). */
  cut(): void;
  close(): Promise<void>;
}

/** A TCP relay to the broker at `target`: the test decides when it stops reading, and when it drops connections. */
async function startRelay(target: string): Promise<Relay> {
  const { hostname, port } = new URL(target);
  const pairs: { client: Socket; upstream: Socket }[] = [];
  let stalled = false;
  const server = createServer((client) => {
    const upstream = netConnect(Number(port), hostname);
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
    client.pipe(upstream);
    upstream.pipe(client);
    pairs.push({ client, upstream });
    if (stalled) client.pause();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as AddressInfo;
  return {
    url: `mqtt://127.0.0.1:${address.port}`,
    stall: () => {
      stalled = true;
      for (const { client, upstream } of pairs) {
        client.unpipe(upstream);
        client.pause();
      }
    },
    cut: () => {
      stalled = false;
      for (const { client, upstream } of pairs.splice(0)) {
        client.resetAndDestroy();
        upstream.destroy();
      }
    },
    close: async () => {
      for (const { client, upstream } of pairs.splice(0)) {
        client.destroy();
        upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
