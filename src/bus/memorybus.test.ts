import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InvalidInputError, ManualClock, silentLogger } from '../core/index.js';
import type { Delivery } from './bus.js';
import { describeBusContract } from './contract.testkit.js';
import { type Envelope, HeartbeatMessage, MessageRegistry, PingMessage, PongMessage, defineMessage } from './envelope.js';
import { BusAuthError, BusClosedError, BusError } from './errors.js';
import { type MemoryBroker, type MemoryBus, type MemoryBusOptions, compileMemoryBusOptions, createMemoryBroker, createMemoryBus } from './memorybus.js';
import { capturingLogger } from './testkit.js';
import { swarmTopics } from './topics.js';

describeBusContract('MemoryBus', () => {
  const broker = createMemoryBroker({ logger: silentLogger });
  return Promise.resolve({
    connect: (_swarmId, options = {}) => Promise.resolve(createMemoryBus({ broker, logger: silentLogger, ...options })),
    publishRaw: (_swarmId, topic, payload, options = {}) => Promise.resolve(broker.publishRaw(topic, payload, options)),
    crash: (bus) => (bus as MemoryBus).crash(),
    close: () => broker.close(),
  });
});

const swarm = 'mem';
const topics = swarmTopics(swarm);
const seqOf = (envelope: Envelope): number => (PingMessage.is(envelope) || PongMessage.is(envelope) ? envelope.payload.seq : -1);

describe('MemoryBus specifics', () => {
  let broker: MemoryBroker;
  /** What the broker logged at warn and above. */
  let records: Record<string, unknown>[];
  beforeEach(() => {
    const capture = capturingLogger();
    records = capture.records;
    broker = createMemoryBroker({ logger: capture.logger });
  });
  afterEach(() => broker.close());

  const open = (options: Partial<MemoryBusOptions> = {}): MemoryBus => createMemoryBus({ broker, logger: silentLogger, ...options });
  const agent = (agentId: string, options: Partial<MemoryBusOptions> = {}): MemoryBus => open({ agent: { swarmId: swarm, agentId }, ...options });
  /** Records the seq of every ping/pong a bus gets on `filter`. */
  const record = async (bus: MemoryBus, filter: string): Promise<number[]> => {
    const seen: number[] = [];
    await bus.subscribe(filter, (envelope) => void seen.push(seqOf(envelope)));
    return seen;
  };
  const refusals = (): Array<[unknown, unknown]> => records.filter((record) => record.msg === 'dropped a publish the client may not make').map((record) => [record.topic, record.reason]);

  it('delivers what handlers publish in turn, asynchronously too, by the time flush resolves: no polling', async () => {
    const control = open({ clientId: 'control' });
    const relay = open();
    const service = open();
    await service.serve(topics.inbox('service'), (request) => PongMessage.draft({ seq: seqOf(request) * 2 }));
    await relay.subscribe(topics.allSignals(), async (envelope) => {
      const answer = await relay.request(topics.inbox('service'), PingMessage.draft({ seq: seqOf(envelope) }));
      await relay.publish(topics.decision('relay'), PingMessage.draft({ seq: seqOf(answer) }));
    });
    const decisions = await record(control, topics.allDecisions());

    await control.publish(topics.signal('a'), PingMessage.draft({ seq: 1 }));
    await control.publish(topics.signal('b'), PingMessage.draft({ seq: 2 }));
    expect(decisions).toEqual([]);
    await broker.flush();
    expect(decisions).toEqual([2, 4]);
    expect(broker.stats()).toMatchObject({ queued: 0, routed: 8, delivered: 8, connectedClients: 3 });
  });

  it('orders messages of every publisher as the publish calls were made, across QoS levels too', async () => {
    const [first, second] = [open(), open()];
    const subscriber = open();
    const seen = await record(subscriber, topics.all());
    void first.publish(topics.signal('a'), PingMessage.draft({ seq: 1 }), { qos: 1 });
    void second.publish(topics.vote('b'), PingMessage.draft({ seq: 2 }), { qos: 0 });
    void first.publish(topics.decision('a'), PingMessage.draft({ seq: 3 }), { qos: 0 });
    void second.publish(topics.signal('b'), PingMessage.draft({ seq: 4 }), { qos: 2 });
    await broker.flush();
    expect(seen).toEqual([1, 2, 3, 4]);
  });

  it('routes a message when publish is called: later subscriptions miss it, and so do subscriptions removed before delivery', async () => {
    const publisher = open();
    const subscriber = open();
    const early: number[] = [];
    const late: number[] = [];
    const removed = await subscriber.subscribe(topics.allBars(), (envelope) => void early.push(seqOf(envelope)));
    const sent = publisher.publish(topics.bar('A'), PingMessage.draft({ seq: 1 }));
    await removed.unsubscribe();
    await subscriber.subscribe(topics.allBars(), (envelope) => void late.push(seqOf(envelope)));
    await sent;
    await publisher.publish(topics.bar('A'), PingMessage.draft({ seq: 2 }));
    await broker.flush();
    expect([early, late]).toEqual([[], [2]]);
  });

  it('delivers in rounds, one per event-loop turn, so handlers answering each other do not starve timers', async () => {
    const [ping, pong] = [open(), open()];
    let bounces = 0;
    const bounce = (bus: MemoryBus, to: string) => async (envelope: Envelope): Promise<void> => {
      bounces++;
      if (seqOf(envelope) < 100_000) await bus.publish(to, PingMessage.draft({ seq: seqOf(envelope) + 1 }));
    };
    await ping.subscribe(topics.inbox('ping'), bounce(ping, topics.inbox('pong')));
    await pong.subscribe(topics.inbox('pong'), bounce(pong, topics.inbox('ping')));
    await ping.publish(topics.inbox('pong'), PingMessage.draft({ seq: 0 }));
    // Bouncing has begun (a timer due before the first round could otherwise fire first on a loaded machine)…
    while (bounces === 0) await new Promise((resolve) => setImmediate(resolve));
    // …and a timer still gets its turn long before the 100 000 bounces are done.
    await new Promise((resolve) => setTimeout(resolve, 1));
    expect(bounces).toBeLessThan(100_000);
    await Promise.all([ping.close(), pong.close()]);
  });

  it('tells a shared subscription from an ordinary one of the same bus apart, which MQTT 3.1.1 cannot', async () => {
    const producer = open();
    const both = open();
    const other = open();
    const everything = await record(both, topics.all());
    const shared: number[] = [];
    await both.shareSubscribe('workers', topics.work('q'), (envelope) => void shared.push(seqOf(envelope)));
    const theirs: number[] = [];
    await other.shareSubscribe('workers', topics.work('q'), (envelope) => void theirs.push(seqOf(envelope)));
    for (let seq = 0; seq < 6; seq++) await producer.publish(topics.work('q'), PingMessage.draft({ seq }));
    await broker.flush();
    expect(everything).toEqual([0, 1, 2, 3, 4, 5]);
    expect([shared, theirs]).toEqual([
      [0, 2, 4],
      [1, 3, 5],
    ]);
    expect(broker.stats()).toMatchObject({ sharedGroups: 1, sharedMembers: 2 });
  });

  it('validates a message with each receiving bus\'s registry and size limit; a bus with the publisher\'s registry shares its envelope', async () => {
    const Extra = defineMessage('extra', PingMessage.schema);
    const registry = MessageRegistry.create(Extra);
    const publisher = open({ registry });
    const same = open({ registry });
    const builtins = open();
    const small = open({ registry, maxMessageBytes: 256 });
    const got = new Map<MemoryBus, Envelope[]>();
    for (const bus of [same, builtins, small]) {
      got.set(bus, []);
      await bus.subscribe(topics.allSignals(), (envelope) => void got.get(bus)?.push(envelope));
    }
    const sent = await publisher.publish(topics.signal('p'), Extra.draft({ seq: 1, note: 'x'.repeat(300) }));
    await broker.flush();
    expect(got.get(same)?.[0]).toBe(sent);
    expect(got.get(builtins)).toEqual([]);
    expect(got.get(small)).toEqual([]);
    expect(builtins.stats().droppedByReason['unknown-type']).toBe(1);
    expect(small.stats().droppedByReason.oversize).toBe(1);
  });

  it('runs request timeouts on the bus clock: a ManualClock decides, no real time passes', async () => {
    const clock = new ManualClock(0);
    const client = open({ clock, requestTimeoutMs: 30_000 });
    const pending = client.request(topics.inbox('nobody'), PingMessage.draft({ seq: 1 })).catch((error: unknown) => error);
    await broker.flush();
    clock.advance(30_000);
    expect(await pending).toMatchObject({ name: 'BusTimeoutError', timeoutMs: 30_000 });
  });

  describe("an agent's bus has the rights the embedded broker gives its credentials", () => {
    it("drops publishes on other agents' and the control plane's topics: resolved, never delivered, counted and logged", async () => {
      const watcher = open();
      const seen = await record(watcher, topics.all());
      const collector = agent('collector');
      const refused = [topics.signal('executor'), topics.heartbeat('executor'), topics.step(), topics.work('q'), topics.inbox('executor'), swarmTopics('other').signal('collector')];
      for (const topic of refused) await collector.publish(topic, PingMessage.draft({ seq: 0 }));
      await collector.publish(topics.signal('collector'), PingMessage.draft({ seq: 1 }));
      await broker.flush();
      expect(seen).toEqual([1]);
      expect(collector.stats().published).toBe(refused.length + 1);
      expect(broker.stats().deniedPublishes).toBe(refused.length);
      expect(refusals()).toEqual([
        [topics.signal('executor'), "another agent's topic"],
        [topics.heartbeat('executor'), "another agent's topic"],
        [topics.step(), "the control plane's topic"],
        [topics.work('q'), "the control plane's topic"],
        [topics.inbox('executor'), 'an inbox its credentials do not name'],
        [swarmTopics('other').signal('collector'), 'outside its swarm'],
      ]);
    });

    it('refuses subscriptions outside its swarm with a BusAuthError', async () => {
      const collector = agent('collector');
      await expect(collector.subscribe(swarmTopics('other').all(), () => undefined)).rejects.toBeInstanceOf(BusAuthError);
      await expect(collector.shareSubscribe('g', 'ts/+/work/q', () => undefined)).rejects.toMatchObject({ name: 'BusAuthError', operation: 'subscribe', target: '$share/g/ts/+/work/q' });
      await collector.subscribe(topics.all(), () => undefined);
      expect(broker.stats().deniedSubscribes).toBe(2);
      expect(collector.stats().subscriptions).toBe(1);
    });

    it('answers requests on its own inbox once each, sends requests to the inboxes it names, and orders from the control plane', async () => {
      const control = open({ clientId: 'control' });
      const worker = agent('worker-1');
      const coordinator = agent('coordinator-1', { agent: { swarmId: swarm, agentId: 'coordinator-1', requestsTo: ['worker-1'] } });
      let request: Envelope | undefined;
      await worker.serve(topics.inbox('worker-1'), (received) => {
        request = received;
        return PongMessage.draft({ seq: seqOf(received) + 1 });
      });
      await coordinator.serve(topics.inbox('coordinator-1'), async (received) => {
        const answer = await coordinator.request(topics.inbox('worker-1'), PingMessage.draft({ seq: seqOf(received) * 10 }));
        return PongMessage.draft({ seq: seqOf(answer) });
      });
      await control.serve(topics.allOrders(), () => PongMessage.draft({ seq: 7 }));

      expect(seqOf(await control.request(topics.inbox('coordinator-1'), PingMessage.draft({ seq: 4 })))).toBe(41);
      expect(seqOf(await worker.request(topics.order('worker-1'), PingMessage.draft({ seq: 1 })))).toBe(7);
      expect(broker.stats().deniedPublishes).toBe(0);
      await worker.reply(request as Envelope, PongMessage.draft({ seq: 99 }));
      await broker.flush();
      expect(refusals()).toEqual([[topics.reply('coordinator-1'), 'a reply to no request it received']]);
      expect(coordinator.stats().unmatchedReplies).toBe(0);
    });

    it("publishes its own last will, and refuses one on another agent's heartbeat", async () => {
      const watcher = open();
      const heard: string[] = [];
      await watcher.subscribe(topics.allHeartbeats(), (envelope, delivery: Delivery) => void heard.push(`${delivery.topic} ${envelope.from}`));
      const lost = HeartbeatMessage.draft({ seq: 0, status: 'lost' });
      const honest = agent('analyser', { will: { topic: topics.heartbeat('analyser'), message: lost } });
      const forger = agent('forger', { will: { topic: topics.heartbeat('executor'), message: lost } });
      await Promise.all([honest.crash(), forger.crash()]);
      await broker.flush();
      expect(heard).toEqual([`${topics.heartbeat('analyser')} analyser`]);
      expect(refusals()).toEqual([[topics.heartbeat('executor'), "another agent's topic"]]);
    });

    it("connects with its agent id as client id; another bus with the same id replaces it, one with other rights is refused", async () => {
      const watcher = open();
      const heard: string[] = [];
      await watcher.subscribe(topics.allHeartbeats(), (envelope) => void heard.push(HeartbeatMessage.is(envelope) ? envelope.payload.status : '?'));
      const will = { topic: topics.heartbeat('trader-1'), message: HeartbeatMessage.draft({ seq: 0, status: 'lost' }) };
      const first = agent('trader-1', { will });
      expect(first.clientId).toBe('trader-1');
      const pending = first.request(topics.order('trader-1'), PingMessage.draft({ seq: 1 }), { timeoutMs: 60_000 }).catch((error: unknown) => error);
      await broker.flush();

      const second = agent('trader-1', { will });
      expect(await pending).toBeInstanceOf(BusClosedError);
      await expect(first.publish(topics.signal('trader-1'), PingMessage.draft({ seq: 1 }))).rejects.toThrow(/another bus connected with the client id "trader-1"/);
      await second.publish(topics.heartbeat('trader-1'), HeartbeatMessage.draft({ seq: 1, status: 'running' }));
      await broker.flush();
      expect(heard).toEqual(['lost', 'running']);

      expect(() => open({ clientId: 'trader-1' })).toThrow(/^clientId: "trader-1" is in use by a bus with other rights \(agent mem\/trader-1\)/);
      expect(() => agent('trader-2', { clientId: 'trader-1' })).toThrow(InvalidInputError);
      expect(broker.stats().connectedClients).toBe(2);
    });
  });

  it('keeps a retained message per topic until a zero-length retained message clears it', async () => {
    const publisher = open();
    await publisher.publish(topics.checkpoint('a'), PingMessage.draft({ seq: 1 }), { retain: true });
    await publisher.publish(topics.checkpoint('a'), PingMessage.draft({ seq: 2 }), { retain: true });
    const first = open();
    const replayed: Delivery[] = [];
    const seen: number[] = [];
    await first.subscribe(topics.allCheckpoints(), (envelope, delivery) => {
      seen.push(seqOf(envelope));
      replayed.push(delivery);
    });
    await broker.flush();
    expect(seen).toEqual([2]);
    expect(replayed).toEqual([{ topic: topics.checkpoint('a'), retained: true }]);
    expect(broker.stats().retainedMessages).toBe(1);

    broker.publishRaw(topics.checkpoint('a'), '', { retain: true });
    const second = open();
    const later = await record(second, topics.allCheckpoints());
    await broker.flush();
    expect(later).toEqual([]);
    expect(broker.stats().retainedMessages).toBe(0);
    expect(first.stats().droppedByReason['not-json']).toBe(1); // the empty message itself reached the live subscriber
  });

  it('crash ends pending requests and later calls, delivers what the bus published before, and does nothing after close', async () => {
    const watcher = open();
    const seen = await record(watcher, topics.all());
    const bus = open({ will: { topic: topics.heartbeat('b'), message: HeartbeatMessage.draft({ seq: 0, status: 'lost' }) } });
    const pending = bus.request(topics.inbox('nobody'), PingMessage.draft({ seq: 5 }), { timeoutMs: 60_000 }).catch((error: unknown) => error);
    await broker.flush();
    void bus.publish(topics.signal('b'), PingMessage.draft({ seq: 6 }));
    const crashed = bus.crash();
    expect(bus.crash()).toBe(crashed);
    await crashed;
    expect(await pending).toMatchObject({ name: 'BusClosedError', message: expect.stringContaining('its connection ended abruptly') as string });
    await broker.flush();
    expect(seen).toEqual([5, 6, -1]); // the request, the signal, then the will (a heartbeat)

    const closed = open({ will: { topic: topics.heartbeat('c'), message: HeartbeatMessage.draft({ seq: 0, status: 'lost' }) } });
    await closed.close();
    await closed.crash();
    await broker.flush();
    expect(seen).toHaveLength(3);
  });

  it('close ends every bus without wills and refuses new ones', async () => {
    const watcher = open();
    const bus = open({ will: { topic: topics.heartbeat('b'), message: HeartbeatMessage.draft({ seq: 0, status: 'lost' }) } });
    const pending = bus.request(topics.inbox('nobody'), PingMessage.draft({ seq: 1 }), { timeoutMs: 60_000 }).catch((error: unknown) => error);
    await broker.flush();
    await broker.close();
    expect(await pending).toBeInstanceOf(BusClosedError);
    await expect(watcher.publish(topics.signal('w'), PingMessage.draft({ seq: 1 }))).rejects.toThrow(/the memory broker closed/);
    expect(() => open()).toThrow(BusError);
    expect(() => open()).toThrow(/the memory broker is closed; create a new one with createMemoryBroker/);
    expect(broker.stats()).toMatchObject({ connectedClients: 0, queued: 0 });
    await broker.close();
  });

  it('names the field of every invalid option', () => {
    const field = (options: Partial<MemoryBusOptions>): string => {
      try {
        compileMemoryBusOptions({ broker, ...options });
      } catch (error) {
        expect(error).toBeInstanceOf(InvalidInputError);
        return (error as InvalidInputError).field;
      }
      throw new Error('expected the options to be refused');
    };
    expect(field({ broker: {} as MemoryBroker })).toBe('broker');
    expect(field({ agent: { swarmId: 'a/b', agentId: 'x' } })).toBe('agent.swarmId');
    expect(field({ agent: { swarmId: 's', agentId: 'x', requestsTo: ['+'] } })).toBe('agent.requestsTo[0]');
    expect(field({ agent: { swarmId: 's', agentId: 'x' }, clientId: 'y' })).toBe('clientId');
    expect(field({ clientId: 'a#' })).toBe('clientId');
    expect(field({ requestTimeoutMs: 0 })).toBe('requestTimeoutMs');
    expect(field({ maxMessageBytes: 10 })).toBe('maxMessageBytes');
    expect(field({ will: { topic: 'ts/x/+', message: PingMessage.draft({ seq: 1 }) } })).toBe('will.topic');
    expect(field({ will: { topic: 'ts/x/y', message: { type: 'ping', payload: { seq: -1 } } } })).toBe('will.message.payload.seq');
    expect(() => broker.publishRaw('ts/x/#', 'x')).toThrow(/^topic:/);
    const config = compileMemoryBusOptions({ broker, agent: { swarmId: 's', agentId: 'a1' } });
    expect(config).toMatchObject({ clientId: 'a1', requestTimeoutMs: 10_000, agent: { username: 's/a1', inbox: 'ts/s/inbox/a1' } });
    expect(Object.isFrozen(config)).toBe(true);
    expect(compileMemoryBusOptions({ broker }).clientId).toMatch(/^ts-[a-z0-9]{16}$/);
  });
});
