import { type IClientOptions, type MqttClient, connectAsync } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InvalidInputError, randomId, silentLogger } from '../core/index.js';
import { ADMIN_USERNAME, type BrokerCredentials, type EmbeddedBroker, compileEmbeddedBrokerOptions, startEmbeddedBroker } from './broker.js';
import { type Envelope, PingMessage, PongMessage } from './envelope.js';
import { type MqttBus, connectBus } from './mqttbus.js';
import { capturingLogger, waitFor } from './testkit.js';
import { swarmTopics } from './topics.js';

/** A raw MQTT 3.1.1 client that records what it receives, as `topic payload` strings. */
interface RawClient {
  readonly client: MqttClient;
  readonly received: string[];
  readonly closed: () => boolean;
}

describe('embedded broker', () => {
  let broker: EmbeddedBroker;
  let clients: MqttClient[] = [];
  let buses: MqttBus[] = [];
  /** What the broker logged at warn and above. */
  let records: Record<string, unknown>[] = [];

  beforeEach(async () => {
    const capture = capturingLogger();
    records = capture.records;
    broker = await startEmbeddedBroker({ logger: capture.logger });
  });
  afterEach(async () => {
    await Promise.all(clients.map((client) => client.endAsync(true)));
    await Promise.all(buses.map((bus) => bus.close()));
    clients = [];
    buses = [];
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

  it('with allowAnonymous, takes clients without a username, with the rights of the admin', async () => {
    const open = await startEmbeddedBroker({ logger: silentLogger, allowAnonymous: true });
    try {
      const client = await connectAsync(open.url, { reconnectPeriod: 0, clientId: `raw-${randomId(8)}` }, false);
      clients.push(client);
      const received: string[] = [];
      client.on('message', (topic, payload) => received.push(`${topic} ${payload.toString()}`));
      await client.subscribeAsync('ts/#', { qos: 1 });
      await client.publishAsync('ts/any/step', 'one', { qos: 1 });
      await waitFor(() => received.includes('ts/any/step one'), 'its own message');
      const issued = open.issueCredentials({ swarmId: 'alpha', agentId: 'a1' });
      await expect(connectAsync(open.url, { username: issued.username, password: 'wrong', reconnectPeriod: 0 }, false)).rejects.toMatchObject({ code: 4 });
      expect(() => compileEmbeddedBrokerOptions({ allowAnonymous: 'yes' as unknown as boolean })).toThrow(/^allowAnonymous: must be true or false/);
    } finally {
      await Promise.all(clients.splice(0).map((client) => client.endAsync(true)));
      await open.close();
    }
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
    expect(() => broker.issueCredentials({ swarmId: 'alpha', agentId: 'a', requestsTo: ['w1', 'w/2'] })).toThrow(/^requestsTo\[1\]: must not contain '\/'/);
  });

  it("refuses an agent's subscriptions outside its swarm with 0x80 and keeps the connection", async () => {
    const alpha = await agent('alpha', 'a1');
    const granted = await alpha.client.subscribeAsync(
      ['ts/beta/#', 'ts/+/bar/AAPL', '#', 'ts/#', 'ts/alpha', '$share/g/ts/beta/work/q', '$SYS/#', '$share/bad', 'ts/alpha/#'],
      { qos: 1 },
    ).catch((error: { packet: { granted: number[] } }) => error.packet.granted.map((qos) => ({ qos })));
    expect(granted.map((grant) => grant.qos)).toEqual([128, 128, 128, 128, 128, 128, 128, 128, 1]);
    expect(broker.stats().deniedSubscribes).toBe(8);

    await alpha.client.publishAsync('ts/alpha/heartbeat/a1', 'own swarm', { qos: 1 });
    await waitFor(() => alpha.received.includes('ts/alpha/heartbeat/a1 own swarm'), 'its own message');
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
    await barrier(alpha, 'ts/alpha/heartbeat/a1', [watcher]);
    expect(watcher.received).toEqual([]);
    expect(alpha.closed()).toBe(false);
    expect(broker.stats().deniedPublishes).toBe(5);
    expect(records.map((record) => record.reason)).toEqual(['outside its swarm', 'outside its swarm', 'outside its swarm', "a '$' topic", 'outside its swarm']);

    const beta = await agent('beta', 'b1');
    await beta.client.subscribeAsync('ts/beta/#', { qos: 1 });
    await barrier(beta, 'ts/beta/heartbeat/b1', [beta]);
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
      const producer = await admin(); // work queues are the control plane's to fill
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
      const producer = await admin(); // work queues are the control plane's to fill
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
      const producer = await admin(); // work queues are the control plane's to fill
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
      const producer = await admin(); // work queues are the control plane's to fill
      await producer.client.publishAsync(work, 'retained', { qos: 1, retain: true });
      const member = await agent('alpha', 'member');
      const plain = await agent('alpha', 'plain');
      await member.client.subscribeAsync([shared, 'ts/alpha/barrier'], { qos: 1 });
      await plain.client.subscribeAsync([work, 'ts/alpha/barrier'], { qos: 1 });
      await barrier(producer, 'ts/alpha/barrier', [member, plain]);
      expect(member.received).toEqual([]);
      expect(plain.received).toEqual([`${work} retained`]);
    });

    it("serves a Bus work queue, filled by the control plane, to the swarm's agents only", async () => {
      const credentials = broker.issueCredentials({ swarmId: 'alpha', agentId: 'bus-worker' });
      const worker = await connectBus({ url: broker.url, ...credentials, logger: silentLogger });
      const control = await connectBus({ url: broker.url, ...broker.adminCredentials, logger: silentLogger });
      const intruder = await connectBus({ url: broker.url, ...broker.issueCredentials({ swarmId: 'beta', agentId: 'x' }), logger: silentLogger });
      buses.push(worker, control, intruder);
      await expect(intruder.shareSubscribe('workers', work, () => undefined)).rejects.toMatchObject({ name: 'BusAuthError', operation: 'subscribe', code: 128 });
      const seen: number[] = [];
      await worker.shareSubscribe('workers', work, (envelope) => void seen.push(PingMessage.is(envelope) ? envelope.payload.seq : -1));
      await intruder.publish(work, PingMessage.draft({ seq: 1 })); // dropped by the broker
      await worker.publish(work, PingMessage.draft({ seq: 2 })); // dropped too: agents do not fill work queues
      await control.publish(work, PingMessage.draft({ seq: 3 }));
      await waitFor(() => seen.length === 1, 'the work item');
      expect(seen).toEqual([3]);
      expect(intruder.stats().published).toBe(1); // acknowledged: MQTT 3.1.1 cannot refuse it
      expect(broker.stats().deniedPublishes).toBe(2);
    });
  });

  describe('publishing rights per agent', () => {
    const swarm = 'ring';
    const topics = swarmTopics(swarm);
    /** The JSON a Bus sends, `from` a client id (a valid envelope of type ping). */
    const envelope = (from: string, fields: Record<string, unknown> = {}): string =>
      JSON.stringify({ v: 1, id: randomId(16), type: 'ping', from, ts: 1, payload: { seq: 1 }, ...fields });
    /** An admin client that records everything published in the swarm. */
    const watch = async (): Promise<RawClient> => {
      const watcher = await admin();
      await watcher.client.subscribeAsync(topics.all(), { qos: 1 });
      return watcher;
    };
    /** An agent's raw client, with its agent id as client id as agents connect. */
    const member = (agentId: string, options: IClientOptions = {}): Promise<RawClient> => agent(swarm, agentId, { clientId: agentId, ...options });
    /** A Bus for the control plane (admin) or an agent (its own credentials and client id). */
    const bus = async (agentId: string | undefined, requestsTo: readonly string[] = []): Promise<MqttBus> => {
      const credentials = agentId === undefined ? broker.adminCredentials : broker.issueCredentials({ swarmId: swarm, agentId, requestsTo });
      const opened = await connectBus({ url: broker.url, ...credentials, clientId: agentId ?? 'control-plane-1', logger: silentLogger });
      buses.push(opened);
      return opened;
    };
    const refusals = (): Array<[unknown, unknown]> => records.filter((record) => record.msg === 'dropped a publish the client may not make').map((record) => [record.topic, record.reason]);
    const seqOf = (reply: Envelope): number => (PongMessage.is(reply) ? reply.payload.seq : -1);

    it("drops the collector's publishes on the executor's topics: acknowledged, never delivered, counted and logged", async () => {
      const watcher = await watch();
      broker.issueCredentials({ swarmId: swarm, agentId: 'executor' });
      const collector = await member('collector');
      const theirs = [topics.heartbeat('executor'), topics.signal('executor'), topics.vote('executor'), topics.decision('executor'), topics.order('executor'), topics.checkpoint('executor')];
      for (const topic of theirs) await collector.client.publishAsync(topic, envelope('collector'), { qos: 1 });
      await barrier(collector, topics.heartbeat('collector'), [watcher]);
      expect(watcher.received).toEqual([]);
      expect(collector.closed()).toBe(false);
      expect(broker.stats().deniedPublishes).toBe(6);
      expect(refusals()).toEqual(theirs.map((topic) => [topic, "another agent's topic"]));
    });

    it("keeps the control plane's topics (steps, bars, fills, control, work queues, inboxes) to the control plane", async () => {
      const watcher = await watch();
      const collector = await member('collector');
      const controlPlanes = [topics.step(), topics.bar('AAPL'), topics.fill('collector'), topics.control('collector'), topics.controlAll(), topics.work('q')];
      for (const topic of controlPlanes) await collector.client.publishAsync(topic, envelope('collector'), { qos: 1 });
      await collector.client.publishAsync(topics.inbox('collector'), envelope('collector'), { qos: 1 });
      await collector.client.publishAsync('ts/ring/made/up/topic', envelope('collector'), { qos: 1 });
      await barrier(collector, topics.heartbeat('collector'), [watcher]);
      expect(watcher.received).toEqual([]);
      expect(refusals()).toEqual([
        ...controlPlanes.map((topic) => [topic, "the control plane's topic"]),
        [topics.inbox('collector'), 'an inbox its credentials do not name'],
        ['ts/ring/made/up/topic', 'not a topic of the swarm layout'],
      ]);
    });

    it('lets an agent publish on its own topics, including its last will, and refuses a will on another agent\'s heartbeat', async () => {
      const watcher = await watch();
      const collector = await member('collector');
      const own = [topics.heartbeat('collector'), topics.signal('collector'), topics.vote('collector'), topics.decision('collector'), topics.order('collector'), topics.checkpoint('collector')];
      for (const topic of own) await collector.client.publishAsync(topic, 'own', { qos: 1 });
      await waitFor(() => watcher.received.length === own.length, 'its own messages');
      expect(watcher.received).toEqual(own.map((topic) => `${topic} own`));

      watcher.received.length = 0;
      await member('analyser', { will: { topic: topics.heartbeat('analyser'), payload: Buffer.from('lost'), qos: 1, retain: false } });
      await member('forger', { will: { topic: topics.heartbeat('executor'), payload: Buffer.from('lost'), qos: 1, retain: false } });
      broker.revoke(`${swarm}/analyser`);
      broker.revoke(`${swarm}/forger`);
      await waitFor(() => broker.stats().deniedPublishes + watcher.received.length === 2, 'the two wills');
      expect(watcher.received).toEqual([`${topics.heartbeat('analyser')} lost`]);
      expect(refusals()).toEqual([[topics.heartbeat('executor'), "another agent's topic"]]);
    });

    it('refuses an envelope whose from is not the publisher, whatever client id it connected with', async () => {
      const watcher = await watch();
      broker.issueCredentials({ swarmId: swarm, agentId: 'executor' });
      const collector = await member('collector');
      await collector.client.publishAsync(topics.signal('collector'), envelope('executor'), { qos: 1 });
      await collector.client.publishAsync(topics.signal('collector'), envelope('collector'), { qos: 1 });
      await waitFor(() => watcher.received.length === 1, 'the signal from itself');
      expect(JSON.parse(watcher.received[0]?.split(' ').slice(1).join(' ') ?? '{}')).toMatchObject({ from: 'collector' });
      expect(refusals()).toEqual([[topics.signal('collector'), "'from' is not the publisher's agent id"]]);

      // Connected with the executor's id as client id, the collector is still the collector.
      const posing = await raw(broker.issueCredentials({ swarmId: swarm, agentId: 'collector' }), { clientId: 'executor' });
      await posing.client.publishAsync(topics.signal('collector'), envelope('executor'), { qos: 1 });
      await posing.client.publishAsync(topics.signal('executor'), envelope('executor'), { qos: 1 });
      await barrier(collector, topics.heartbeat('collector'), [watcher]);
      expect(refusals().slice(1)).toEqual([
        [topics.signal('collector'), "'from' is not the publisher's agent id"],
        [topics.signal('executor'), "another agent's topic"],
      ]);
    });

    it('serves requests both ways: the control plane asks a coordinator, which asks the worker its credentials name; an agent orders from the venue', async () => {
      const control = await bus(undefined);
      const worker = await bus('worker-1');
      const coordinator = await bus('coordinator-1', ['worker-1']);
      const collector = await bus('collector');
      await worker.serve(topics.inbox('worker-1'), (request) => PongMessage.draft({ seq: (request.payload as { seq: number }).seq + 1 }));
      await coordinator.serve(topics.inbox('coordinator-1'), async (request) => {
        const answer = await coordinator.request(topics.inbox('worker-1'), PingMessage.draft({ seq: (request.payload as { seq: number }).seq * 10 }));
        return PongMessage.draft({ seq: seqOf(answer) });
      });
      await control.serve(topics.allOrders(), () => PongMessage.draft({ seq: 7 }));

      expect(seqOf(await control.request(topics.inbox('coordinator-1'), PingMessage.draft({ seq: 4 })))).toBe(41);
      expect(seqOf(await collector.request(topics.order('collector'), PingMessage.draft({ seq: 1 })))).toBe(7);
      expect(broker.stats().deniedPublishes).toBe(0);
    });

    it('refuses a reply to a request the agent was not sent, so it cannot answer for another agent', async () => {
      const control = await bus(undefined);
      const executor = await bus('executor');
      const collector = await member('collector');
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      const answered: Envelope[] = [];
      await executor.serve(topics.inbox('executor'), async (request) => {
        answered.push(request);
        await released;
        return PongMessage.draft({ seq: 1 });
      });
      // Reading the swarm is allowed: the collector sees the control plane's request to the executor.
      await collector.client.subscribeAsync([topics.inbox('executor'), topics.heartbeat('collector')], { qos: 1 });
      const reply = control.request(topics.inbox('executor'), PingMessage.draft({ seq: 0 }), { timeoutMs: 5000 });
      await waitFor(() => collector.received.length === 1, 'the request to the executor');
      const request = JSON.parse(collector.received[0]?.slice(topics.inbox('executor').length + 1) ?? '{}') as { id: string; replyTo: string };
      await collector.client.publishAsync(request.replyTo, envelope('collector', { type: 'pong', payload: { seq: 666 }, correlationId: request.id }), { qos: 1 });
      await collector.client.publishAsync(topics.reply('collector'), envelope('collector', { type: 'pong', payload: { seq: 666 }, correlationId: request.id }), { qos: 1 });
      await barrier(collector, topics.heartbeat('collector'), [collector]);
      release();
      expect(await reply).toMatchObject({ from: 'executor', payload: { seq: 1 } });
      // One reply per request: the executor's second one is refused too.
      await executor.reply(answered[0] as Envelope, PongMessage.draft({ seq: 2 }));
      expect(refusals()).toEqual([
        [request.replyTo, 'a reply to no request it received'],
        [topics.reply('collector'), 'a reply to no request it received'],
        [request.replyTo, 'a reply to no request it received'],
      ]);
    });

    it('refuses requests to an inbox the credentials do not name, and requests whose replies would go to someone else', async () => {
      const watcher = await watch();
      const coordinator = await raw(broker.issueCredentials({ swarmId: swarm, agentId: 'coordinator-1', requestsTo: ['worker-1'] }), { clientId: 'coordinator-1' });
      const collector = await member('collector');
      const ping = (from: string, replyTo: string): string => envelope(from, { replyTo });
      await collector.client.publishAsync(topics.inbox('worker-1'), ping('collector', topics.reply('collector')), { qos: 1 });
      await coordinator.client.publishAsync(topics.inbox('worker-1'), ping('coordinator-1', topics.reply('control-plane-1')), { qos: 1 });
      await coordinator.client.publishAsync(topics.order('coordinator-1'), ping('coordinator-1', topics.reply('worker-1')), { qos: 1 });
      await coordinator.client.publishAsync(topics.inbox('worker-1'), ping('coordinator-1', topics.reply('coordinator-1')), { qos: 1 });
      await barrier(coordinator, topics.heartbeat('coordinator-1'), [watcher]);
      expect(watcher.received.map((line) => line.split(' ')[0])).toEqual([topics.inbox('worker-1')]);
      expect(refusals()).toEqual([
        [topics.inbox('worker-1'), 'an inbox its credentials do not name'],
        [topics.inbox('worker-1'), "'replyTo' is not the publisher's own reply topic"],
        [topics.order('coordinator-1'), "'replyTo' is not the publisher's own reply topic"],
      ]);
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
