// The contract every Bus adapter passes (STYLE: one shared contract test per seam). Test code, named
// `.testkit.ts` so that it reads as such (vitest runs only `*.test.ts`). An adapter's
// test file calls describeBusContract with a harness that connects buses to its transport. Imports
// vitest, so it is not exported from index.ts.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Clock, type Logger, InvalidInputError, ManualClock, randomId, silentLogger } from '../core/index.js';
import type { WillOptions } from './base.js';
import type { Bus, Delivery, Subscription } from './bus.js';
import {
  CheckpointMessage,
  type Envelope,
  ErrorMessage,
  HeartbeatMessage,
  PingMessage,
  PongMessage,
} from './envelope.js';
import {
  BusClosedError,
  BusRemoteError,
  BusRequestAbortedError,
  BusTimeoutError,
  isBusClosedError,
} from './errors.js';
import { capturingLogger, waitFor } from './testkit.js';
import { swarmTopics } from './topics.js';

/** Options a harness passes on to the bus it connects. */
export interface BusContractConnectOptions {
  readonly clock?: Clock;
  readonly logger?: Logger;
  readonly maxMessageBytes?: number;
  readonly will?: WillOptions;
}

/** How the contract reaches one adapter. */
export interface BusContractHarness {
  /** Connects a new bus that may publish and subscribe on every topic of swarm `swarmId`. */
  connect(swarmId: string, options?: BusContractConnectOptions): Promise<Bus>;
  /** Publishes raw bytes on `topic` of swarm `swarmId`, bypassing every check of the bus (to send invalid messages). */
  publishRaw(swarmId: string, topic: string, payload: string | Buffer, options?: { retain?: boolean }): Promise<void>;
  /**
   * Ends `bus` (one that `connect` made) the way a killed process's connection ends, without a clean
   * close, so that the broker publishes its last will; the bus is closed afterwards.
   */
  crash(bus: Bus): Promise<void>;
  /** Closes whatever the harness opened. */
  close(): Promise<void>;
}

/** A handler that records what it receives. */
interface Recorder {
  readonly messages: Envelope[];
  readonly deliveries: Delivery[];
  readonly handler: (envelope: Envelope, delivery: Delivery) => void;
}

function recorder(): Recorder {
  const messages: Envelope[] = [];
  const deliveries: Delivery[] = [];
  return {
    messages,
    deliveries,
    handler: (envelope, delivery) => {
      messages.push(envelope);
      deliveries.push(delivery);
    },
  };
}

/** The `seq` of ping/pong payloads, in arrival order. */
function seqs(messages: readonly Envelope[]): number[] {
  return messages.map((message) => (PingMessage.is(message) || PongMessage.is(message) ? message.payload.seq : -1));
}

/** Whether `promise` has settled, after letting pending I/O callbacks run. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  promise.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

/**
 * Registers the Bus contract suite for one adapter.
 * @param name the adapter and transport, for the suite's title
 * @param createHarness called once before the suite; its `close` runs after it
 */
export function describeBusContract(name: string, createHarness: () => Promise<BusContractHarness>): void {
  describe(`Bus contract: ${name}`, () => {
    let harness: BusContractHarness;
    let opened: Bus[] = [];

    beforeAll(async () => {
      harness = await createHarness();
    });
    afterEach(async () => {
      await Promise.all(opened.map((bus) => bus.close()));
      opened = [];
    });
    afterAll(async () => {
      await harness?.close();
    });

    /** A swarm id no other test (and no other run against a shared broker) uses. */
    const newSwarm = (): string => `contract-${randomId(12)}`;
    const open = async (swarmId: string, options: BusContractConnectOptions = {}): Promise<Bus> => {
      const bus = await harness.connect(swarmId, { logger: silentLogger, ...options });
      opened.push(bus);
      return bus;
    };

    /**
     * Publishes a barrier from `publisher` to each of `subscribers` and waits until each got it.
     * A publisher's earlier messages reach a subscriber before its later ones, so after the barrier
     * every earlier message has arrived, and counts can be checked for extras too.
     */
    const barrier = async (swarmId: string, publisher: Bus, subscribers: readonly Bus[]): Promise<void> => {
      const topics = swarmTopics(swarmId);
      const seen = new Set<string>();
      const subscriptions: Subscription[] = [];
      for (const subscriber of subscribers) {
        const inbox = topics.inbox(`barrier-${subscriber.clientId}`);
        subscriptions.push(await subscriber.subscribe(inbox, () => void seen.add(subscriber.clientId)));
      }
      for (const subscriber of subscribers) await publisher.publish(topics.inbox(`barrier-${subscriber.clientId}`), PongMessage.draft({ seq: 0 }));
      await waitFor(() => seen.size === subscribers.length, 'every subscriber to get the barrier');
      await Promise.all(subscriptions.map((subscription) => subscription.unsubscribe()));
    };
    const isBarrier = (delivery: Delivery): boolean => delivery.topic.includes('/inbox/barrier-');

    it('publishes and subscribes: the subscriber gets the frozen envelope that publish returned', async () => {
      const swarm = newSwarm();
      const topics = swarmTopics(swarm);
      const clock = new ManualClock(1_700_000_000_000);
      const publisher = await open(swarm, { clock });
      const subscriber = await open(swarm);
      const inbox = recorder();
      await subscriber.subscribe(topics.allHeartbeats(), inbox.handler);

      const sent = await publisher.publish(topics.heartbeat('agent-1'), HeartbeatMessage.draft({ seq: 7, status: 'running', load: 0.25 }, { to: 'monitor' }));
      await waitFor(() => inbox.messages.length === 1, 'the heartbeat');

      const received = inbox.messages[0];
      expect(received).toEqual(sent);
      expect(received).toMatchObject({
        v: 1,
        type: 'heartbeat',
        from: publisher.clientId,
        to: 'monitor',
        ts: 1_700_000_000_000,
        payload: { seq: 7, status: 'running', load: 0.25 },
      });
      // Ids are unique, not necessarily random: a bus's own random prefix and a counter.
      expect(received?.id).toMatch(/^[a-z0-9][a-z0-9-]{7,127}$/);
      expect(Object.isFrozen(received)).toBe(true);
      expect(Object.isFrozen(received?.payload)).toBe(true);
      expect(inbox.deliveries[0]).toEqual({ topic: topics.heartbeat('agent-1'), retained: false });
      expect(publisher.stats()).toMatchObject({ published: 1, byType: { heartbeat: { published: 1, received: 0 } } });
      expect(subscriber.stats()).toMatchObject({ received: 1, droppedInvalid: 0, subscriptions: 1, byType: { heartbeat: { published: 0, received: 1 } } });
      const next = await publisher.publish(topics.heartbeat('agent-1'), HeartbeatMessage.draft({ seq: 8, status: 'running' }));
      expect(next.id).not.toBe(sent.id);
      await waitFor(() => inbox.messages.length === 2, 'the second heartbeat');
      expect(inbox.messages[1]?.id).toBe(next.id);
    });

    it('delivers asynchronously: no handler runs inside publish, not even one of the publishing bus', async () => {
      const swarm = newSwarm();
      const topics = swarmTopics(swarm);
      const publisher = await open(swarm);
      const subscriber = await open(swarm);
      let publishing = false;
      const calledWhilePublishing: boolean[] = [];
      const handler = (): void => void calledWhilePublishing.push(publishing);
      await publisher.subscribe(topics.allSignals(), handler);
      await subscriber.subscribe(topics.allSignals(), handler);

      publishing = true;
      const sent = publisher.publish(topics.signal('a'), PingMessage.draft({ seq: 1 }));
      publishing = false;
      await sent;
      await waitFor(() => calledWhilePublishing.length === 2, 'both copies');
      expect(calledWhilePublishing).toEqual([false, false]);
    });

    it("keeps the order of each publisher's messages of one QoS on the way to a subscriber, across topics", async () => {
      const swarm = newSwarm();
      const topics = swarmTopics(swarm);
      const publishers = [await open(swarm), await open(swarm)];
      const subscriber = await open(swarm);
      const inbox = recorder();
      await subscriber.subscribe(topics.all(), inbox.handler);
      const families = [(id: string) => topics.signal(id), (id: string) => topics.vote(id), (id: string) => topics.decision(id)];
      const count = 60;

      // Not awaited one by one: the order of the calls is what counts.
      const sends: Promise<unknown>[] = [];
      for (let seq = 0; seq < count; seq++) {
        publishers.forEach((publisher, index) => {
          const topic = families[seq % families.length] as (agentId: string) => string;
          sends.push(publisher.publish(topic(`agent-${index}`), PingMessage.draft({ seq }), { qos: seq % 2 === 0 ? 0 : 1 }));
        });
      }
      await Promise.all(sends);
      await waitFor(() => inbox.messages.length === 2 * count, `${2 * count} messages`);

      // Even numbers went at QoS 0, odd ones at QoS 1. MQTT orders only within a QoS level (mqtt.js
      // writes a QoS 0 message at once, and a QoS 1 one after storing it for resending).
      const sequence = (parity: number): number[] => Array.from({ length: count / 2 }, (_unused, i) => 2 * i + parity);
      for (const publisher of publishers) {
        const received = seqs(inbox.messages.filter((message) => message.from === publisher.clientId));
        expect([received.filter((seq) => seq % 2 === 0), received.filter((seq) => seq % 2 === 1)]).toEqual([sequence(0), sequence(1)]);
      }
    });

    it("matches '+' to exactly one level and '#' to any number of levels, including the parent", async () => {
      const swarm = newSwarm();
      const topics = swarmTopics(swarm);
      const publisher = await open(swarm);
      const subscriber = await open(swarm);
      const plus = recorder();
      const hash = recorder();
      await subscriber.subscribe(topics.allBars(), plus.handler);
      await subscriber.subscribe(`${topics.inbox('desk')}/#`, hash.handler);

      const published = [
        [topics.bar('AAPL'), 1],
        [`${topics.bar('AAPL')}/1m`, 2], // one level too deep for '+'
        [topics.heartbeat('AAPL'), 3], // another family
        [topics.inbox('desk'), 4], // the parent of '#'
        [`${topics.inbox('desk')}/a`, 5],
        [`${topics.inbox('desk')}/a/b/c`, 6],
        [topics.inbox('desk2'), 7], // not below 'desk'
        [topics.bar('MSFT'), 8],
      ] as const;
      for (const [topic, seq] of published) await publisher.publish(topic, PingMessage.draft({ seq }));
      await barrier(swarm, publisher, [subscriber]);

      expect(seqs(plus.messages)).toEqual([1, 8]);
      expect(seqs(hash.messages)).toEqual([4, 5, 6]);
      expect(hash.deliveries.map((delivery) => delivery.topic)).toEqual([topics.inbox('desk'), `${topics.inbox('desk')}/a`, `${topics.inbox('desk')}/a/b/c`]);
    });

    it('gives each of several overlapping subscriptions every matching message exactly once', async () => {
      const swarm = newSwarm();
      const topics = swarmTopics(swarm);
      const publisher = await open(swarm);
      const subscriber = await open(swarm);
      const everything = recorder();
      const bars = recorder();
      const aapl = recorder();
      const aaplAgain = recorder(); // the same filter twice
      const anyAapl = recorder();
      await subscriber.subscribe(topics.all(), everything.handler);
      await subscriber.subscribe(topics.allBars(), bars.handler);
      await subscriber.subscribe(topics.bar('AAPL'), aapl.handler);
      await subscriber.subscribe(topics.bar('AAPL'), aaplAgain.handler);
      await subscriber.subscribe(`ts/${swarm}/+/AAPL`, anyAapl.handler);

      await publisher.publish(topics.bar('AAPL'), PingMessage.draft({ seq: 1 }));
      await publisher.publish(topics.bar('MSFT'), PingMessage.draft({ seq: 2 }));
      await publisher.publish(topics.signal('AAPL'), PingMessage.draft({ seq: 3 }));
      await publisher.publish(topics.heartbeat('agent-1'), PingMessage.draft({ seq: 4 }));
      await barrier(swarm, publisher, [subscriber]);

      const without = (rec: Recorder): number[] => seqs(rec.messages.filter((_message, index) => !isBarrier(rec.deliveries[index] as Delivery)));
      expect(without(everything)).toEqual([1, 2, 3, 4]);
      expect(seqs(bars.messages)).toEqual([1, 2]);
      expect(seqs(aapl.messages)).toEqual([1]);
      expect(seqs(aaplAgain.messages)).toEqual([1]);
      expect(seqs(anyAapl.messages)).toEqual([1, 3]);
      expect(subscriber.stats().subscriptions).toBe(5);
    });

    it("unsubscribe stops delivery to that subscription only, and is idempotent", async () => {
      const swarm = newSwarm();
      const topics = swarmTopics(swarm);
      const publisher = await open(swarm);
      const subscriber = await open(swarm);
      const kept = recorder();
      const dropped = recorder();
      const droppedSameFilter = recorder();
      await subscriber.subscribe(topics.allBars(), kept.handler);
      const first = await subscriber.subscribe(topics.bar('AAPL'), dropped.handler);
      const second = await subscriber.subscribe(topics.allBars(), droppedSameFilter.handler);

      await publisher.publish(topics.bar('AAPL'), PingMessage.draft({ seq: 1 }));
      await barrier(swarm, publisher, [subscriber]);
      await first.unsubscribe();
      await second.unsubscribe();
      await first.unsubscribe();
      await publisher.publish(topics.bar('AAPL'), PingMessage.draft({ seq: 2 }));
      await barrier(swarm, publisher, [subscriber]);

      expect(seqs(kept.messages)).toEqual([1, 2]);
      expect(seqs(dropped.messages)).toEqual([1]);
      expect(seqs(droppedSameFilter.messages)).toEqual([1]);
      expect(subscriber.stats().subscriptions).toBe(1);

      // Subscribing again to a filter just dropped works.
      const again = recorder();
      await subscriber.subscribe(topics.bar('AAPL'), again.handler);
      await publisher.publish(topics.bar('AAPL'), PingMessage.draft({ seq: 3 }));
      await waitFor(() => again.messages.length === 1, 'the message after subscribing again');
      expect(seqs(again.messages)).toEqual([3]);
    });

    it('answers a request with a reply correlated to it and addressed to the requester', async () => {
      const swarm = newSwarm();
      const topics = swarmTopics(swarm);
      const service = await open(swarm);
      const client = await open(swarm);
      const requests = recorder();
      await service.serve(topics.inbox('pinger'), (request, delivery) => {
        requests.handler(request, delivery);
        return PingMessage.is(request) ? PongMessage.draft({ seq: request.payload.seq + 1, note: 'pong' }) : undefined;
      });

      const reply = await client.request(topics.inbox('pinger'), PingMessage.draft({ seq: 41 }), { timeoutMs: 5000 });

      const request = requests.messages[0];
      expect(request?.replyTo).toBe(topics.reply(client.clientId));
      expect(reply).toMatchObject({ type: 'pong', payload: { seq: 42, note: 'pong' }, from: service.clientId, to: client.clientId, correlationId: request?.id });
      expect(client.stats()).toMatchObject({ pendingRequests: 0, unmatchedReplies: 0, subscriptions: 0 });
    });

    it('times a request out on the bus clock with a retryable BusTimeoutError, and ignores the late reply', async () => {
      const swarm = newSwarm();
      const topics = swarmTopics(swarm);
      const clock = new ManualClock(5_000);
      const service = await open(swarm);
      const client = await open(swarm, { clock });
      const requests = recorder();
      await service.serve(topics.inbox('slow'), (request, delivery) => {
        requests.handler(request, delivery);
        return undefined; // answer later
      });

      const pending = client.request(topics.inbox('slow'), PingMessage.draft({ seq: 1 }), { timeoutMs: 1000 });
      await waitFor(() => requests.messages.length === 1, 'the request to reach the service');
      clock.advance(999);
      expect(await settled(pending)).toBe(false);
      clock.advance(1);
      const error: unknown = await pending.catch((thrown: unknown) => thrown);
      expect(error).toBeInstanceOf(BusTimeoutError);
      expect(error).toMatchObject({ retryable: true, topic: topics.inbox('slow'), timeoutMs: 1000 });
      expect(client.stats().pendingRequests).toBe(0);

      await service.reply(requests.messages[0] as Envelope, PongMessage.draft({ seq: 1 }));
      await waitFor(() => client.stats().unmatchedReplies === 1, 'the late reply to be counted');
    });

    it('correlates many concurrent requests, even when the replies come back in reverse order', async () => {
      const swarm = newSwarm();
      const topics = swarmTopics(swarm);
      const service = await open(swarm);
      const clientA = await open(swarm);
      const clientB = await open(swarm);
      const held: Envelope[] = [];
      const count = 20;
      await service.serve(topics.inbox('batcher'), async (request) => {
        held.push(request);
        if (held.length === count) {
          for (const waiting of [...held].reverse()) {
            const seq = PingMessage.is(waiting) ? waiting.payload.seq : -1;
            await service.reply(waiting, PongMessage.draft({ seq: seq * 10 }));
          }
        }
        return undefined;
      });

      const replies = await Promise.all(
        Array.from({ length: count }, (_unused, seq) =>
          (seq % 2 === 0 ? clientA : clientB).request(topics.inbox('batcher'), PingMessage.draft({ seq }), { timeoutMs: 5000 }),
        ),
      );

      expect(replies.map((reply) => (PongMessage.is(reply) ? reply.payload.seq : -1))).toEqual(Array.from({ length: count }, (_unused, seq) => seq * 10));
      expect(replies.every((reply, seq) => reply.to === (seq % 2 === 0 ? clientA : clientB).clientId)).toBe(true);
      expect(clientA.stats().unmatchedReplies + clientB.stats().unmatchedReplies).toBe(0);
    });

    it('turns an error answer into BusRemoteError; a throwing service handler answers with one', async () => {
      const swarm = newSwarm();
      const topics = swarmTopics(swarm);
      const service = await open(swarm);
      const client = await open(swarm);
      await service.serve(topics.inbox('broken'), () => {
        throw Object.assign(new Error('the order book is closed'), { code: 'book-closed', retryable: true });
      });
      await service.serve(topics.inbox('refuser'), () => ErrorMessage.draft({ code: 'refused', message: 'not today', retryable: false }));

      const thrown: unknown = await client.request(topics.inbox('broken'), PingMessage.draft({ seq: 1 })).catch((error: unknown) => error);
      expect(thrown).toBeInstanceOf(BusRemoteError);
      expect(thrown).toMatchObject({ code: 'book-closed', remoteMessage: 'the order book is closed', retryable: true, from: service.clientId });
      const refused: unknown = await client.request(topics.inbox('refuser'), PingMessage.draft({ seq: 2 })).catch((error: unknown) => error);
      expect(refused).toMatchObject({ code: 'refused', remoteMessage: 'not today', retryable: false });
      expect(service.stats().handlerErrors).toBe(1);
    });

    it('ends a request when its AbortSignal fires', async () => {
      const swarm = newSwarm();
      const client = await open(swarm);
      const controller = new AbortController();
      const pending = client.request(swarmTopics(swarm).inbox('nobody'), PingMessage.draft({ seq: 1 }), { signal: controller.signal, timeoutMs: 60_000 });
      controller.abort(new Error('user left'));
      const error: unknown = await pending.catch((thrown: unknown) => thrown);
      expect(error).toBeInstanceOf(BusRequestAbortedError);
      expect((error as Error).cause).toEqual(new Error('user left'));
      await expect(client.request(swarmTopics(swarm).inbox('nobody'), PingMessage.draft({ seq: 2 }), { signal: controller.signal })).rejects.toBeInstanceOf(
        BusRequestAbortedError,
      );
    });

    it('delivers each work item of a shared subscription to exactly one of 3 members, and every member gets some', async () => {
      const swarm = newSwarm();
      const topics = swarmTopics(swarm);
      const producer = await open(swarm);
      const members = [await open(swarm), await open(swarm), await open(swarm)];
      const inboxes = members.map(() => recorder());
      const subscriptions = await Promise.all(members.map((member, index) => member.shareSubscribe('workers', topics.work('orders'), (inboxes[index] as Recorder).handler)));
      expect(subscriptions[0]?.filter).toBe(`$share/workers/${topics.work('orders')}`);
      expect(subscriptions[0]?.group).toBe('workers');

      const count = 30;
      for (let seq = 0; seq < count; seq++) await producer.publish(topics.work('orders'), PingMessage.draft({ seq }));
      await waitFor(() => inboxes.reduce((sum, inbox) => sum + inbox.messages.length, 0) >= count, `${count} work items`);
      await barrier(swarm, producer, members);

      const all = inboxes.flatMap((inbox) => seqs(inbox.messages));
      expect(all).toHaveLength(count);
      expect([...all].sort((a, b) => a - b)).toEqual(Array.from({ length: count }, (_unused, seq) => seq));
      for (const inbox of inboxes) expect(inbox.messages.length).toBeGreaterThan(0);
    });

    it('stops giving work to a member that left its group; the others get all of it', async () => {
      const swarm = newSwarm();
      const topics = swarmTopics(swarm);
      const producer = await open(swarm);
      const leaving = await open(swarm);
      const staying = await open(swarm);
      const left = recorder();
      const stayed = recorder();
      const membership = await leaving.shareSubscribe('workers', topics.work('fills'), left.handler);
      await staying.shareSubscribe('workers', topics.work('fills'), stayed.handler);
      for (let seq = 0; seq < 10; seq++) await producer.publish(topics.work('fills'), PingMessage.draft({ seq }));
      await waitFor(() => left.messages.length + stayed.messages.length === 10, 'the first 10 work items');

      await membership.unsubscribe();
      for (let seq = 10; seq < 20; seq++) await producer.publish(topics.work('fills'), PingMessage.draft({ seq }));
      await waitFor(() => left.messages.length + stayed.messages.length === 20, 'the next 10 work items');
      await barrier(swarm, producer, [leaving, staying]);

      expect(seqs(left.messages).every((seq) => seq < 10)).toBe(true);
      expect(seqs(stayed.messages).filter((seq) => seq >= 10)).toEqual(Array.from({ length: 10 }, (_unused, i) => 10 + i));
    });

    it('shares the requests of a serving group: each request is answered by one member, once', async () => {
      const swarm = newSwarm();
      const topics = swarmTopics(swarm);
      const servers = [await open(swarm), await open(swarm)];
      const client = await open(swarm);
      const handled = servers.map(() => 0);
      await Promise.all(
        servers.map((server, index) =>
          server.serve(
            topics.inbox('pool'),
            (request) => {
              handled[index] = (handled[index] ?? 0) + 1;
              return PongMessage.draft({ seq: PingMessage.is(request) ? request.payload.seq : -1, note: server.clientId });
            },
            { group: 'pool' },
          ),
        ),
      );

      const replies: Envelope[] = [];
      for (let seq = 0; seq < 8; seq++) replies.push(await client.request(topics.inbox('pool'), PingMessage.draft({ seq }), { timeoutMs: 5000 }));
      await barrier(swarm, servers[0] as Bus, [client]);
      await barrier(swarm, servers[1] as Bus, [client]);

      expect(seqs(replies)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      expect(replies.every((reply) => PongMessage.is(reply) && reply.from === reply.payload.note)).toBe(true);
      expect(handled.reduce((sum, count) => sum + count, 0)).toBe(8);
      expect(client.stats().unmatchedReplies).toBe(0);
    });

    it('drops invalid messages, counts and logs them, and still delivers the good ones', async () => {
      const swarm = newSwarm();
      const topics = swarmTopics(swarm);
      const { logger, records } = capturingLogger();
      const subscriber = await open(swarm, { logger, maxMessageBytes: 1024 });
      const publisher = await open(swarm);
      const inbox = recorder();
      await subscriber.subscribe(topics.allHeartbeats(), inbox.handler);
      const envelope = (overrides: Record<string, unknown>): string =>
        JSON.stringify({ v: 1, id: 'raw-1', type: 'heartbeat', from: 'raw', ts: 1, payload: { seq: 1, status: 'running' }, ...overrides });

      const topic = topics.heartbeat('faulty');
      await harness.publishRaw(swarm, topic, 'not json {');
      await harness.publishRaw(swarm, topic, JSON.stringify([1, 2]));
      await harness.publishRaw(swarm, topic, envelope({ type: 'no-such-type' }));
      await harness.publishRaw(swarm, topic, envelope({ payload: { seq: 'one', status: 'running' } }));
      await harness.publishRaw(swarm, topic, envelope({ payload: { seq: 1, status: 'running', padding: 'x'.repeat(2000) } }));
      await publisher.publish(topic, HeartbeatMessage.draft({ seq: 2, status: 'running' }));
      await waitFor(() => inbox.messages.length === 1, 'the valid heartbeat');

      expect(inbox.messages.map((message) => message.payload)).toEqual([{ seq: 2, status: 'running' }]);
      expect(subscriber.stats()).toMatchObject({
        received: 1,
        droppedInvalid: 5,
        droppedByReason: { 'not-json': 1, 'invalid-envelope': 1, 'unknown-type': 1, 'invalid-payload': 1, oversize: 1 },
        handlerErrors: 0,
      });
      const drops = records.filter((record) => record.msg === 'dropped an invalid bus message');
      expect(drops.map((record) => [record.reason, record.field, record.topic])).toEqual([
        ['not-json', '(message)', topic],
        ['invalid-envelope', '(message)', topic],
        ['unknown-type', 'type', topic],
        ['invalid-payload', 'payload.seq', topic],
        ['oversize', '(message)', topic],
      ]);
      expect(String(drops[3]?.error)).toContain(`dropped a message on '${topic}' (invalid-payload): payload.seq:`);
    });

    it('keeps other handlers and the connection working when a handler throws or rejects', async () => {
      const swarm = newSwarm();
      const topics = swarmTopics(swarm);
      const publisher = await open(swarm);
      const subscriber = await open(swarm);
      const survivor = recorder();
      await subscriber.subscribe(topics.allSignals(), () => {
        throw new Error('synchronous failure');
      });
      await subscriber.subscribe(topics.allSignals(), () => Promise.reject(new Error('asynchronous failure')));
      await subscriber.subscribe(topics.allSignals(), survivor.handler);

      await publisher.publish(topics.signal('a'), PingMessage.draft({ seq: 1 }));
      await publisher.publish(topics.signal('b'), PingMessage.draft({ seq: 2 }));
      await waitFor(() => survivor.messages.length === 2 && subscriber.stats().handlerErrors === 4, 'both signals and 4 handler failures');
      expect(seqs(survivor.messages)).toEqual([1, 2]);
      await subscriber.publish(topics.signal('c'), PingMessage.draft({ seq: 3 }));
      await waitFor(() => survivor.messages.length === 3, 'the signal published by the subscriber itself');
    });

    it('hands a retained message to a later subscriber, marked as retained', async () => {
      const swarm = newSwarm();
      const topics = swarmTopics(swarm);
      const topic = topics.checkpoint('agent-1');
      const publisher = await open(swarm);
      const live = recorder();
      await publisher.subscribe(topic, live.handler);
      await publisher.publish(topic, CheckpointMessage.draft({ seq: 3, state: { cash: 100, positions: { AAPL: 2 } } }), { retain: true });
      // Once the live copy arrived, the broker has stored the retained one.
      await waitFor(() => live.messages.length === 1, 'the live copy');
      expect(live.deliveries[0]?.retained).toBe(false);

      const late = await open(swarm);
      const replay = recorder();
      await late.subscribe(topics.allCheckpoints(), replay.handler);
      await waitFor(() => replay.messages.length === 1, 'the retained checkpoint');
      expect(replay.deliveries[0]).toEqual({ topic, retained: true });
      expect(replay.messages[0]?.payload).toEqual({ seq: 3, state: { cash: 100, positions: { AAPL: 2 } } });

      await Promise.all([publisher.close(), late.close()]);
      await harness.publishRaw(swarm, topic, '', { retain: true }); // clears it on a shared broker
    });

    it('publishes the last will of a bus whose connection ends abruptly, after its earlier messages, and none on a clean close', async () => {
      const swarm = newSwarm();
      const topics = swarmTopics(swarm);
      const watcher = await open(swarm);
      const heard = recorder();
      await watcher.subscribe(topics.allHeartbeats(), heard.handler);
      const will = (agentId: string): WillOptions => ({ topic: topics.heartbeat(agentId), message: HeartbeatMessage.draft({ seq: 0, status: 'lost' }) });
      const closing = await open(swarm, { will: will('closes') });
      const crashing = await open(swarm, { will: will('crashes') });
      await crashing.publish(topics.heartbeat('crashes'), HeartbeatMessage.draft({ seq: 1, status: 'running' }));

      // The clean close comes first: a will it wrongly published would arrive before the crash's.
      await closing.close();
      await harness.crash(crashing);
      await waitFor(() => heard.messages.length === 2, 'the heartbeat and the last will');

      expect(heard.messages.map((message) => [message.from, message.type, message.payload])).toEqual([
        [crashing.clientId, 'heartbeat', { seq: 1, status: 'running' }],
        [crashing.clientId, 'heartbeat', { seq: 0, status: 'lost' }],
      ]);
      expect(heard.deliveries[1]).toEqual({ topic: topics.heartbeat('crashes'), retained: false });
      await expect(crashing.publish(topics.heartbeat('crashes'), HeartbeatMessage.draft({ seq: 2, status: 'running' }))).rejects.toBeInstanceOf(BusClosedError);
    });

    it('names the field of every invalid argument', async () => {
      const swarm = newSwarm();
      const topics = swarmTopics(swarm);
      const bus = await open(swarm);
      const noop = (): void => undefined;
      const field = async (call: Promise<unknown>): Promise<string> => {
        const error: unknown = await call.then(
          () => undefined,
          (thrown: unknown) => thrown,
        );
        expect(error).toBeInstanceOf(InvalidInputError);
        return (error as InvalidInputError).field;
      };
      expect(await field(bus.publish('ts/x/bar/+', PingMessage.draft({ seq: 1 })))).toBe('topic');
      expect(await field(bus.publish('', PingMessage.draft({ seq: 1 })))).toBe('topic');
      expect(await field(bus.publish(topics.bar('A'), { type: 'no-such-type', payload: {} }))).toBe('message.type');
      expect(await field(bus.publish(topics.bar('A'), { type: 'ping', payload: { seq: -1 } }))).toBe('message.payload.seq');
      expect(await field(bus.publish(topics.bar('A'), PingMessage.draft({ seq: 1 }), { qos: 3 as 1 }))).toBe('options.qos');
      expect(await field(bus.subscribe('ts/x/#/y', noop))).toBe('filter');
      expect(await field(bus.subscribe(`$share/g/${topics.all()}`, noop))).toBe('filter');
      expect(await field(bus.shareSubscribe('a+b', topics.work('q'), noop))).toBe('group');
      expect(await field(bus.request('elsewhere/inbox', PingMessage.draft({ seq: 1 })))).toBe('topic');
      expect(await field(bus.request(topics.inbox('a'), PingMessage.draft({ seq: 1 }), { timeoutMs: 0 }))).toBe('options.timeoutMs');
      expect(await field(bus.reply(await bus.publish(topics.bar('A'), PingMessage.draft({ seq: 1 })), PongMessage.draft({ seq: 1 })))).toBe('request.replyTo');
    });

    it('closes idempotently, ends pending requests, and refuses later calls with BusClosedError', async () => {
      const swarm = newSwarm();
      const topics = swarmTopics(swarm);
      const bus = await open(swarm);
      const subscription = await bus.subscribe(topics.all(), () => undefined);
      const pending = bus.request(topics.inbox('nobody'), PingMessage.draft({ seq: 1 }), { timeoutMs: 60_000 }).catch((thrown: unknown) => thrown);
      await waitFor(() => bus.stats().pendingRequests === 1, 'the request to be pending');

      const first = bus.close();
      const second = bus.close();
      expect(second).toBe(first);
      await first;
      await bus.close();
      expect(await pending).toBeInstanceOf(BusClosedError);

      const calls: Promise<unknown>[] = [
        bus.publish(topics.bar('A'), PingMessage.draft({ seq: 1 })),
        bus.subscribe(topics.all(), () => undefined),
        bus.shareSubscribe('g', topics.work('q'), () => undefined),
        bus.request(topics.inbox('a'), PingMessage.draft({ seq: 1 })),
        bus.serve(topics.inbox('a'), () => undefined),
        bus.reply({ v: 1, id: 'x', type: 'ping', from: 'y', ts: 0, payload: { seq: 1 }, replyTo: topics.reply('y') }, PongMessage.draft({ seq: 1 })),
      ];
      const outcomes = await Promise.allSettled(calls);
      expect(outcomes.map((outcome) => outcome.status === 'rejected' && isBusClosedError(outcome.reason))).toEqual(calls.map(() => true));
      await subscription.unsubscribe(); // a no-op after close
      expect(bus.stats()).toMatchObject({ pendingRequests: 0, subscriptions: 0 });
    });
  });
}
