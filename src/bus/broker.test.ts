import { type IClientOptions, type MqttClient, connectAsync } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InvalidInputError, randomId, silentLogger } from '../core/index.js';
import { ADMIN_USERNAME, type BrokerCredentials, type EmbeddedBroker, compileEmbeddedBrokerOptions, startEmbeddedBroker } from './broker.js';
import { PingMessage } from './envelope.js';
import { connectBus } from './mqttbus.js';
import { waitFor } from './testkit.js';

/** A raw MQTT 3.1.1 client that records what it receives, as `topic payload` strings. */
interface RawClient {
  readonly client: MqttClient;
  readonly received: string[];
  readonly closed: () => boolean;
}

describe('embedded broker', () => {
  let broker: EmbeddedBroker;
  let clients: MqttClient[] = [];

  beforeEach(async () => {
    broker = await startEmbeddedBroker({ logger: silentLogger });
  });
  afterEach(async () => {
    await Promise.all(clients.map((client) => client.endAsync(true)));
    clients = [];
    await broker.close();
  });

  const raw = async (credentials: Partial<BrokerCredentials>, options: IClientOptions = {}): Promise<RawClient> => {
    const client = await connectAsync(broker.url, { ...credentials, reconnectPeriod: 0, clientId: `raw-${randomId(8)}`, ...options }, false);
    clients.push(client);
    const received: string[] = [];
    let closed = false;
    client.on('message', (topic, payload) => received.push(`${topic} ${payload.toString()}`));
    client.on('close', () => (closed = true));
    return { client, received, closed: () => closed };
  };
  const refusal = async (credentials: Partial<BrokerCredentials>, options: IClientOptions = {}): Promise<unknown> => {
    const error: unknown = await raw(credentials, options).then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    return (error as { code?: unknown } | undefined)?.code;
  };
  const admin = (): Promise<RawClient> => raw(broker.adminCredentials);
  const agent = (swarmId: string, agentId: string, options: IClientOptions = {}): Promise<RawClient> =>
    raw(broker.issueCredentials({ swarmId, agentId }), options);
  /** Publishes `barrier` from `publisher` and waits until every receiver (subscribed to `topic`) got it. */
  const barrier = async (publisher: RawClient, topic: string, receivers: readonly RawClient[]): Promise<void> => {
    const line = `${topic} barrier`;
    await publisher.client.publishAsync(topic, 'barrier', { qos: 1 });
    await waitFor(() => receivers.every((receiver) => receiver.received.includes(line)), `the barrier on ${topic}`);
    for (const receiver of receivers) receiver.received.splice(receiver.received.indexOf(line), 1);
  };

  it('listens on the TCP and WebSocket URLs it reports, on ports the OS picked', () => {
    expect(broker.url).toMatch(/^mqtt:\/\/127\.0\.0\.1:\d+$/);
    expect(broker.wsUrl).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
    expect(broker.url.split(':')[2]).not.toBe(broker.wsUrl.split(':')[2]);
    expect(broker.adminCredentials.username).toBe(ADMIN_USERNAME);
    expect(broker.adminCredentials.password).toMatch(/^[0-9a-f]{48}$/);
  });

  it('refuses anonymous clients, unknown users and wrong passwords', async () => {
    const issued = broker.issueCredentials({ swarmId: 'alpha', agentId: 'a1' });
    expect(await refusal({})).toBe(5); // not authorised
    expect(await refusal({ username: 'alpha/nobody', password: issued.password })).toBe(4); // bad user name or password
    expect(await refusal({ username: issued.username, password: `${issued.password}x` })).toBe(4);
    expect(await refusal({ username: ADMIN_USERNAME, password: issued.password })).toBe(4);
    expect(broker.stats()).toMatchObject({ refusedConnections: 4, connectedClients: 0 });
    await agent('alpha', 'a2');
    expect(broker.stats()).toMatchObject({ refusedConnections: 4, connectedClients: 1, issuedCredentials: 2 });
  });

  it('issues per-agent credentials named <swarmId>/<agentId>; issuing again replaces the password', async () => {
    const first = broker.issueCredentials({ swarmId: 'alpha', agentId: 'a1' });
    expect(first.username).toBe('alpha/a1');
    const second = broker.issueCredentials({ swarmId: 'alpha', agentId: 'a1' });
    expect(second.password).not.toBe(first.password);
    expect(await refusal(first)).toBe(4);
    await raw(second);
    expect(() => broker.issueCredentials({ swarmId: 'al/pha', agentId: 'a' })).toThrow(InvalidInputError);
    expect(() => broker.issueCredentials({ swarmId: 'alpha', agentId: '' })).toThrow(/^agentId: must be a non-empty string/);
    expect(() => broker.issueCredentials({ swarmId: '$SYS', agentId: 'a' })).toThrow(/^swarmId: must not start with '\$'/);
  });

  it("refuses an agent's subscriptions outside its swarm with 0x80 and keeps the connection", async () => {
    const alpha = await agent('alpha', 'a1');
    const granted = await alpha.client.subscribeAsync(
      ['ts/beta/#', 'ts/+/bar/AAPL', '#', 'ts/#', 'ts/alpha', '$share/g/ts/beta/work/q', '$SYS/#', '$share/bad', 'ts/alpha/#'],
      { qos: 1 },
    ).catch((error: { packet: { granted: number[] } }) => error.packet.granted.map((qos) => ({ qos })));
    expect(granted.map((grant) => grant.qos)).toEqual([128, 128, 128, 128, 128, 128, 128, 128, 1]);
    expect(broker.stats().deniedSubscribes).toBe(8);

    await alpha.client.publishAsync('ts/alpha/bar/AAPL', 'own swarm', { qos: 1 });
    await waitFor(() => alpha.received.includes('ts/alpha/bar/AAPL own swarm'), 'its own message');
    expect(alpha.closed()).toBe(false);
  });

  it("drops an agent's publishes outside its swarm: acknowledged, not delivered, not retained, connection kept", async () => {
    const watcher = await admin();
    await watcher.client.subscribeAsync('#', { qos: 1 });
    const alpha = await agent('alpha', 'a1');
    await alpha.client.publishAsync('ts/beta/order/x', 'qos0', { qos: 0 });
    await alpha.client.publishAsync('ts/beta/order/x', 'qos1 retained', { qos: 1, retain: true });
    await alpha.client.publishAsync('ts/beta/order/x', 'qos2', { qos: 2 });
    await alpha.client.publishAsync('$share/g/ts/alpha/x', 'dollar', { qos: 1 });
    await alpha.client.publishAsync('elsewhere', 'no swarm', { qos: 1 });
    await barrier(alpha, 'ts/alpha/barrier', [watcher]);
    expect(watcher.received).toEqual([]);
    expect(alpha.closed()).toBe(false);
    expect(broker.stats().deniedPublishes).toBe(5);

    const beta = await agent('beta', 'b1');
    await beta.client.subscribeAsync('ts/beta/#', { qos: 1 });
    await barrier(beta, 'ts/beta/barrier', [beta]);
    expect(beta.received).toEqual([]); // no retained message was stored
  });

  it('lets the admin publish and subscribe anywhere', async () => {
    const root = await admin();
    await root.client.subscribeAsync(['#', '$share/ops/ts/+/work/+'], { qos: 1 });
    const alpha = await agent('alpha', 'a1');
    await alpha.client.subscribeAsync('ts/alpha/control/#', { qos: 1 });
    await root.client.publishAsync('ts/alpha/control/all', 'stop', { qos: 1 });
    await root.client.publishAsync('ts/beta/control/all', 'stop', { qos: 1 });
    await root.client.publishAsync('anything/at/all', 'x', { qos: 1 });
    await waitFor(() => root.received.length === 3 && alpha.received.length === 1, 'the admin messages');
    expect(alpha.received).toEqual(['ts/alpha/control/all stop']);
    expect(broker.stats().deniedPublishes + broker.stats().deniedSubscribes).toBe(0);
  });

  it('revoke closes the connections made with the credentials and refuses them afterwards', async () => {
    const credentials = broker.issueCredentials({ swarmId: 'alpha', agentId: 'a1' });
    const first = await raw(credentials);
    const second = await raw(credentials);
    const other = await agent('alpha', 'a2');

    expect(broker.revoke(credentials.username)).toBe(2);
    await waitFor(() => first.closed() && second.closed(), 'both connections to close');
    expect(other.closed()).toBe(false);
    expect(await refusal(credentials)).toBe(4);
    expect(broker.revoke(credentials.username)).toBe(0);
    expect(() => broker.revoke(ADMIN_USERNAME)).toThrow(/^username: the admin credentials cannot be revoked/);
  });

  it('refuses a client id held by other credentials, so agents cannot take over each other', async () => {
    const alpha = await agent('alpha', 'a1', { clientId: 'shared-id' });
    expect(await refusal(broker.issueCredentials({ swarmId: 'beta', agentId: 'b1' }), { clientId: 'shared-id' })).toBe(2);
    expect(alpha.closed()).toBe(false);
  });

  describe('shared subscriptions ($share/<group>/<filter>)', () => {
    const work = 'ts/alpha/work/orders';
    const shared = `$share/workers/${work}`;
    const count = (receiver: RawClient): number => receiver.received.filter((line) => line.startsWith(`${work} `)).length;

    it('round-robins over the members and follows members that unsubscribe or disconnect', async () => {
      const producer = await agent('alpha', 'producer');
      const members = [await agent('alpha', 'm1'), await agent('alpha', 'm2'), await agent('alpha', 'm3')];
      for (const member of members) await member.client.subscribeAsync([shared, 'ts/alpha/barrier'], { qos: 1 });
      expect(broker.stats()).toMatchObject({ sharedGroups: 1, sharedMembers: 3 });

      for (let i = 0; i < 6; i++) await producer.client.publishAsync(work, `item-${i}`, { qos: 1 });
      await barrier(producer, 'ts/alpha/barrier', members);
      expect(members.map(count)).toEqual([2, 2, 2]);

      const [m1, m2, m3] = members as [RawClient, RawClient, RawClient];
      await m1.client.unsubscribeAsync(shared);
      expect(broker.stats().sharedMembers).toBe(2);
      for (let i = 0; i < 6; i++) await producer.client.publishAsync(work, `item-${i}`, { qos: 1 });
      await barrier(producer, 'ts/alpha/barrier', members);
      expect(members.map(count)).toEqual([2, 5, 5]);

      await m2.client.endAsync();
      await waitFor(() => broker.stats().sharedMembers === 1, 'the member to leave on disconnect');
      for (let i = 0; i < 4; i++) await producer.client.publishAsync(work, `item-${i}`, { qos: 1 });
      await barrier(producer, 'ts/alpha/barrier', [m1, m3]);
      expect(count(m3)).toBe(9);
      expect(count(m1)).toBe(2);
    });

    it('keeps groups independent of each other and of plain subscribers', async () => {
      const producer = await agent('alpha', 'producer');
      const left = await agent('alpha', 'l');
      const right = await agent('alpha', 'r');
      const alone = await agent('alpha', 'alone');
      const plain = await agent('alpha', 'plain');
      for (const member of [left, right]) await member.client.subscribeAsync([shared, 'ts/alpha/barrier'], { qos: 1 });
      await alone.client.subscribeAsync([`$share/auditors/${work}`, 'ts/alpha/barrier'], { qos: 1 });
      await plain.client.subscribeAsync(['ts/alpha/#'], { qos: 1 });

      for (let i = 0; i < 4; i++) await producer.client.publishAsync(work, `item-${i}`, { qos: 1 });
      await barrier(producer, 'ts/alpha/barrier', [left, right, alone, plain]);
      expect([left, right, alone, plain].map(count)).toEqual([2, 2, 4, 4]);
    });

    it('gives a client holding a plain and a shared subscription on one filter each message once, and either can be dropped', async () => {
      const producer = await agent('alpha', 'producer');
      const both = await agent('alpha', 'both');
      const member = await agent('alpha', 'member');
      await both.client.subscribeAsync([work, shared, 'ts/alpha/barrier'], { qos: 1 });
      await member.client.subscribeAsync([shared, 'ts/alpha/barrier'], { qos: 1 });
      const round = async (): Promise<number[]> => {
        both.received.length = 0;
        member.received.length = 0;
        for (let i = 0; i < 4; i++) await producer.client.publishAsync(work, `item-${i}`, { qos: 1 });
        await barrier(producer, 'ts/alpha/barrier', [both, member]);
        return [count(both), count(member)];
      };

      expect(await round()).toEqual([4, 2]);
      await both.client.unsubscribeAsync(work);
      expect(await round()).toEqual([2, 2]);
      await both.client.subscribeAsync(work, { qos: 1 });
      await both.client.unsubscribeAsync(shared);
      expect(await round()).toEqual([4, 4]);
    });

    it('sends no retained messages to shared subscriptions', async () => {
      const producer = await agent('alpha', 'producer');
      await producer.client.publishAsync(work, 'retained', { qos: 1, retain: true });
      const member = await agent('alpha', 'member');
      const plain = await agent('alpha', 'plain');
      await member.client.subscribeAsync([shared, 'ts/alpha/barrier'], { qos: 1 });
      await plain.client.subscribeAsync([work, 'ts/alpha/barrier'], { qos: 1 });
      await barrier(producer, 'ts/alpha/barrier', [member, plain]);
      expect(member.received).toEqual([]);
      expect(plain.received).toEqual([`${work} retained`]);
    });

    it('serves a Bus work queue from agents of the swarm only', async () => {
      const credentials = broker.issueCredentials({ swarmId: 'alpha', agentId: 'bus-worker' });
      const worker = await connectBus({ url: broker.url, ...credentials, logger: silentLogger });
      const intruder = await connectBus({ url: broker.url, ...broker.issueCredentials({ swarmId: 'beta', agentId: 'x' }), logger: silentLogger });
      try {
        await expect(intruder.shareSubscribe('workers', work, () => undefined)).rejects.toMatchObject({ name: 'BusAuthError', operation: 'subscribe', code: 128 });
        const seen: number[] = [];
        await worker.shareSubscribe('workers', work, (envelope) => void seen.push(PingMessage.is(envelope) ? envelope.payload.seq : -1));
        await intruder.publish(work, PingMessage.draft({ seq: 1 })); // dropped by the broker
        await worker.publish(work, PingMessage.draft({ seq: 2 }));
        await waitFor(() => seen.length === 1, 'the work item');
        expect(seen).toEqual([2]);
        expect(intruder.stats().published).toBe(1); // acknowledged: MQTT 3.1.1 cannot refuse it
      } finally {
        await Promise.all([worker.close(), intruder.close()]);
      }
    });
  });

  it('closes idempotently, disconnecting its clients', async () => {
    const alpha = await agent('alpha', 'a1');
    const first = broker.close();
    expect(broker.close()).toBe(first);
    await first;
    await waitFor(() => alpha.closed(), 'the client to be disconnected');
    expect(await refusal(broker.adminCredentials)).toBe('ECONNREFUSED'); // nothing listens any more
  });
});

describe('compileEmbeddedBrokerOptions', () => {
  it('fills in defaults and names the field of an invalid option', () => {
    expect(compileEmbeddedBrokerOptions({ logger: silentLogger })).toMatchObject({ host: '127.0.0.1', port: 0, wsPort: 0 });
    expect(() => compileEmbeddedBrokerOptions({ port: -1 })).toThrow(/^port: must be an integer port in \[0, 65535\]/);
    expect(() => compileEmbeddedBrokerOptions({ wsPort: 70_000 })).toThrow(/^wsPort: /);
    expect(() => compileEmbeddedBrokerOptions({ port: 1.5 })).toThrow(/^port: /);
    expect(() => compileEmbeddedBrokerOptions({ host: '' })).toThrow(/^host: /);
    expect(() => compileEmbeddedBrokerOptions({ port: 18_830, wsPort: 18_830 })).toThrow(/^wsPort: must differ from port/);
  });

  it('reports a port in use, after closing what it had started', async () => {
    const first = await startEmbeddedBroker({ logger: silentLogger });
    try {
      const port = Number(first.url.split(':')[2]);
      await expect(startEmbeddedBroker({ port, logger: silentLogger })).rejects.toThrow(/could not listen on 127\.0\.0\.1 .*EADDRINUSE.*Pick free ports/);
      await expect(startEmbeddedBroker({ wsPort: port, logger: silentLogger })).rejects.toThrow(/EADDRINUSE/);
    } finally {
      await first.close();
    }
  });
});
