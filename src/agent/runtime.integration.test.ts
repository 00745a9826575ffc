import { afterEach, describe, expect, it } from 'vitest';
import {
  CheckpointMessage,
  ControlMessage,
  type EmbeddedBroker,
  type Envelope,
  HeartbeatMessage,
  type MqttBus,
  type MqttBusOptions,
  connectBus,
  startEmbeddedBroker,
  swarmTopics,
} from '../bus/index.js';
import { ManualClock, silentLogger } from '../core/index.js';
import type { Bar } from '../market/index.js';
import { type StrategySpec, buildStrategy, collectIntents } from '../strategy/index.js';
import {
  type AgentConfig,
  CONTROL_PLANE_ID,
  DecisionMessage,
  type IntentPayload,
  HealthReportMessage,
  HealthRequestMessage,
  OrdersMessage,
  OrdersResultMessage,
  ReplayDoneMessage,
  ReplayMessage,
  type Resume,
  SignalMessage,
  type StepPayload,
  StepMessage,
  TaskMessage,
  TaskResultMessage,
  swarmRegistry,
} from './protocol.js';
import { type AgentExit, AgentRuntime, digestOf } from './runtime.js';
import { agentConfigOf } from '../../test/fixtures/agent-config.js';

const SWARM = 'rt';
const topics = swarmTopics(SWARM);
const SMA: StrategySpec = { type: 'sma-crossover', symbol: 'AAA', fastPeriod: 2, slowPeriod: 3, sizing: { type: 'fixed-quantity', units: 5 } };
const SMA_NAME = buildStrategy(SMA).name;
const PEER_STRATEGY = { name: 'peer-momentum', symbols: ['BBB'] };

/** Closes that make the fast SMA cross the slow one both ways, several times. */
const CLOSES = [10, 9, 8, 9, 10, 11, 10, 9, 8, 9, 11, 12, 11, 10, 9, 10, 12];

/** Step `index`: bars of AAA and BBB, and an account that holds AAA from step 8 on (so exits happen too). */
function stepAt(index: number, participants: string[] = []): StepPayload {
  const close = CLOSES[index] as number;
  const bar = (symbol: string, price: number): StepPayload['bars'][number] => ({
    symbol,
    timeMs: Date.UTC(2024, 0, 1 + index),
    open: price,
    high: price + 0.5,
    low: price - 0.5,
    close: price,
    volume: 1_000,
  });
  return {
    index,
    bars: [bar('AAA', close), bar('BBB', 50 + index)],
    account: { equity: 100_000, peakEquity: 100_000, positions: index >= 8 ? [['AAA', 5]] : [] },
    participants,
  };
}

/** What the strategy gives, in process, for `steps` fed in order: the intents of each step, as on the wire. */
function inProcess(steps: readonly StepPayload[]): IntentPayload[][] {
  const strategies = [buildStrategy(SMA)];
  return steps.map((step) =>
    collectIntents(strategies, step.bars as Bar[], { equity: step.account.equity, positions: new Map(step.account.positions) }, step.index).map(
      (intent) => JSON.parse(JSON.stringify(intent)) as IntentPayload,
    ),
  );
}

/** A complete agent config: a lone trader running the SMA strategy; `changes` override. */
function configOf(agentId: string, changes: Partial<AgentConfig> = {}): AgentConfig {
  return agentConfigOf(SWARM, agentId, { strategies: [{ index: 0, spec: SMA }], allStrategies: [{ name: SMA_NAME, symbols: ['AAA'] }], capabilities: ['indicators'], ...changes });
}

/**
 * Resolves once `condition()` holds, polling; rejects after `timeoutMs` naming `what`. Only for
 * messages crossing the broker (the agent's own time is the manual clock). A copy of the bus
 * testkit's helper, which other domains may not import (lint:deps).
 */
async function waitFor(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

describe('AgentRuntime (in process, on the embedded broker)', () => {
  let broker: EmbeddedBroker | undefined;
  const buses: MqttBus[] = [];
  const runtimes: AgentRuntime[] = [];

  afterEach(async () => {
    for (const runtime of runtimes.splice(0)) await runtime.stop({ reason: 'stop-requested', detail: 'test over', exitCode: 0 });
    await Promise.all(buses.splice(0).map((bus) => bus.close()));
    await broker?.close();
    broker = undefined;
  });

  async function startBroker(): Promise<EmbeddedBroker> {
    broker = await startEmbeddedBroker({ logger: silentLogger });
    return broker;
  }

  /** A bus for the test itself (control plane, venue, peers): admin rights, the system clock, `clientId` as its `from`. */
  async function testBus(clientId: string, options: Partial<MqttBusOptions> = {}): Promise<MqttBus> {
    const b = broker as EmbeddedBroker;
    const bus = await connectBus({ url: b.url, ...b.adminCredentials, clientId, registry: swarmRegistry, logger: silentLogger, ...options });
    buses.push(bus);
    return bus;
  }

  /** Starts an agent on its own bus (agent credentials, the manual clock), as `src/agent/main.ts` does. */
  async function startAgent(config: AgentConfig, clock: ManualClock): Promise<{ runtime: AgentRuntime; bus: MqttBus; exit: { value: AgentExit | undefined } }> {
    const b = broker as EmbeddedBroker;
    const bus = await connectBus({
      url: b.url,
      ...b.issueCredentials({ swarmId: SWARM, agentId: config.agentId, requestsTo: config.workers.map((worker) => worker.id) }),
      clientId: config.agentId,
      clock,
      registry: swarmRegistry,
      logger: silentLogger,
    });
    buses.push(bus);
    const runtime = new AgentRuntime({ bus, config, clock, logger: silentLogger });
    runtimes.push(runtime);
    await runtime.start();
    const exit: { value: AgentExit | undefined } = { value: undefined };
    void runtime.done.then((value) => {
      exit.value = value;
    });
    return { runtime, bus, exit };
  }

  /** Collects every envelope on `filter` (subscribed before anything is sent). */
  async function record(bus: MqttBus, filter: string): Promise<Envelope[]> {
    const seen: Envelope[] = [];
    await bus.subscribe(filter, (envelope) => {
      seen.push(envelope);
    });
    return seen;
  }

  /** Asks the agent for a checkpoint and returns its state (control messages are never held). */
  async function checkpointOf(control: MqttBus, checkpoints: Envelope[], agentId: string): Promise<Record<string, unknown>> {
    const before = checkpoints.length;
    await control.publish(topics.control(agentId), ControlMessage.draft({ command: 'checkpoint' }));
    await waitFor(() => checkpoints.length > before, 'a checkpoint');
    const last = checkpoints.at(-1) as Envelope;
    if (!CheckpointMessage.is(last)) throw new Error(`expected a checkpoint, got ${last.type}`);
    return last.payload.state as Record<string, unknown>;
  }

  const signalsOf = (envelopes: readonly Envelope[]): Array<{ index: number; intents: IntentPayload[]; strategies: string[] }> =>
    envelopes.filter((e) => SignalMessage.is(e)).map((e) => (e as Envelope & { payload: { index: number; intents: IntentPayload[]; strategies: string[] } }).payload);

  const statusesOf = (envelopes: readonly Envelope[]): string[] => envelopes.map((e) => (HeartbeatMessage.is(e) ? e.payload.status : e.type));

  it('a trader answers each step with a signal holding the intents collectIntents gives', async () => {
    await startBroker();
    const clock = new ManualClock(1_000_000);
    const control = await testBus(CONTROL_PLANE_ID);
    const signals = await record(control, topics.signal('trader-1'));
    await startAgent(configOf('trader-1'), clock);

    const steps = CLOSES.map((_, i) => stepAt(i, ['trader-1']));
    for (const step of steps) await control.publish(topics.step(), StepMessage.draft(step));
    await waitFor(() => signals.length === steps.length, `${steps.length} signals`);

    const expected = inProcess(steps);
    expect(expected.flat().map((i) => i.intent)).toEqual(expect.arrayContaining(['enter-long', 'exit-long']));
    expect(signalsOf(signals)).toEqual(steps.map((step, i) => ({ index: step.index, intents: expected[i], strategies: [SMA_NAME] })));
    expect(signals.every((e) => e.from === 'trader-1')).toBe(true);
  });

  it('answers a health request with its own view: the last step, how far it signalled, its checkpoint, errors, memory, epoch', async () => {
    await startBroker();
    const clock = new ManualClock(1_000_000);
    const control = await testBus(CONTROL_PLANE_ID);
    const signals = await record(control, topics.signal('trader-1'));
    await startAgent(configOf('trader-1', { checkpointEverySteps: 4, epoch: 3 }), clock);
    const steps = CLOSES.slice(0, 6).map((_, i) => stepAt(i, ['trader-1']));
    for (const step of steps) await control.publish(topics.step(), StepMessage.draft(step));
    await waitFor(() => signals.length === steps.length, `${steps.length} signals`);
    const reply = await control.request(topics.inbox('trader-1'), HealthRequestMessage.draft({ seq: 7 }), { timeoutMs: 5_000 });
    if (!HealthReportMessage.is(reply)) throw new Error(`expected health.report, got ${reply.type}`);
    expect(reply.payload).toEqual({
      seq: 7,
      lastStep: 5,
      signalledUpTo: 5,
      decidedUpTo: -1,
      errors: 0,
      // Checkpoints every 4 steps: the one after step 3.
      checkpointedUpTo: 3,
      replaying: false,
      halted: null,
      rssBytes: expect.any(Number) as number,
      epoch: 3,
    });
    expect(reply.payload.rssBytes).toBeGreaterThan(1_000_000);
  });

  it('a coordinator routes tasks only to workers that run: a lost worker is skipped until it beats running again', async () => {
    await startBroker();
    const b = broker as EmbeddedBroker;
    const clock = new ManualClock(1_000_000);
    const control = await testBus(CONTROL_PLANE_ID);
    const workers = new Map<string, MqttBus>();
    for (const id of ['w1', 'w2']) {
      const bus = await connectBus({ url: b.url, ...b.issueCredentials({ swarmId: SWARM, agentId: id }), clientId: id, registry: swarmRegistry, logger: silentLogger });
      buses.push(bus);
      await bus.serve(topics.inbox(id), (request) => (TaskMessage.is(request) ? TaskResultMessage.draft({ id: request.payload.id, worker: id, value: 1 }) : undefined));
      workers.set(id, bus);
    }
    const beat = (id: string, status: 'running' | 'lost'): Promise<unknown> => (workers.get(id) as MqttBus).publish(topics.heartbeat(id), HeartbeatMessage.draft({ seq: 0, status, epoch: 0 }));
    const { runtime } = await startAgent(
      configOf('coordinator-1', {
        kind: 'coordinator',
        strategies: [],
        readsSteps: false,
        routing: 'round-robin',
        workers: [
          { id: 'w1', capabilities: [] },
          { id: 'w2', capabilities: [] },
        ],
      }),
      clock,
    );
    const routedTo = async (count: number): Promise<string[]> => {
      const answered: string[] = [];
      for (let i = 0; i < count; i++) {
        const reply = await control.request(topics.inbox('coordinator-1'), TaskMessage.draft({ id: `t${i}`, indicator: 'sma', period: 2, values: [1, 2, 3] }), { timeoutMs: 5_000 });
        if (!TaskResultMessage.is(reply)) throw new Error(`expected task.result, got ${reply.type}`);
        answered.push(reply.payload.worker);
      }
      return answered;
    };
    expect(await routedTo(2)).toEqual(['w1', 'w2']);
    await beat('w1', 'lost');
    await waitFor(() => runtime.counters.tasks >= 2, 'the tasks to be counted');
    await control.request(topics.inbox('coordinator-1'), HealthRequestMessage.draft({ seq: 0 }), { timeoutMs: 5_000 });
    expect(await routedTo(3)).toEqual(['w2', 'w2', 'w2']);
    await beat('w1', 'running');
    await control.request(topics.inbox('coordinator-1'), HealthRequestMessage.draft({ seq: 1 }), { timeoutMs: 5_000 });
    expect(await routedTo(2)).toEqual(['w1', 'w2']);
  });

  it('a repeated step (the control plane publishing it again) is answered again with the same signal, not recomputed', async () => {
    await startBroker();
    const clock = new ManualClock(1_000_000);
    const control = await testBus(CONTROL_PLANE_ID);
    const signals = await record(control, topics.signal('trader-1'));
    await startAgent(configOf('trader-1'), clock);
    const steps = CLOSES.map((_, i) => stepAt(i, ['trader-1']));
    for (const step of steps) await control.publish(topics.step(), StepMessage.draft(step));
    await waitFor(() => signals.length === steps.length, `${steps.length} signals`);
    const last = steps.at(-1) as StepPayload;
    await control.publish(topics.step(), StepMessage.draft(last));
    await waitFor(() => signals.length === steps.length + 1, 'the signal sent again');
    expect(signalsOf(signals).at(-1)).toEqual(signalsOf(signals).at(-2));
  });

  it('a mesh decider waits for its peer, sends the decided orders to the venue, and publishes the decision with its digest', async () => {
    await startBroker();
    const clock = new ManualClock(1_000_000);
    const control = await testBus(CONTROL_PLANE_ID);
    const peer = await testBus('peer');
    const decisions = await record(control, topics.decision('decider'));
    const checkpoints = await record(control, topics.checkpoint('decider'));
    const orders: Envelope[] = [];
    await control.serve(topics.order('decider'), (request) => {
      orders.push(request);
      if (!OrdersMessage.is(request)) throw new Error(`unexpected ${request.type}`);
      return OrdersResultMessage.draft({
        index: request.payload.index,
        results: request.payload.approved.map((_, i) => ({ clientOrderId: `c-${request.payload.index}-${i}`, status: 'accepted' as const })),
      });
    });
    const config = configOf('decider', {
      pipeline: {},
      submits: true,
      upstream: ['peer'],
      allStrategies: [PEER_STRATEGY, { name: SMA_NAME, symbols: ['AAA'] }],
    });
    const { runtime } = await startAgent(config, clock);
    const mine = inProcess(CLOSES.slice(0, 6).map((_, i) => stepAt(i)));
    const enters = mine.findIndex((intents) => intents.length > 0);
    expect(enters).toBeGreaterThan(0);
    const peerIntent: IntentPayload = { strategy: PEER_STRATEGY.name, symbol: 'BBB', side: 'buy', quantity: 3, type: 'market', intent: 'enter-long' };

    // Lockstep: one step at a time. At each, the agent has signalled but decides nothing until the peer's signal is in.
    for (let i = 0; i <= enters; i++) {
      await control.publish(topics.step(), StepMessage.draft(stepAt(i, ['decider', 'peer'])));
      await waitFor(() => runtime.counters.steps === i + 1, `step ${i} to arrive`);
      expect(await checkpointOf(control, checkpoints, 'decider')).toMatchObject({ signalledUpTo: i, decidedUpTo: i - 1, counters: { decisions: i } });
      expect([orders.length, decisions.length]).toEqual([0, i]);
      await peer.publish(topics.signal('peer'), SignalMessage.draft({ index: i, intents: i === enters ? [peerIntent] : [], strategies: [PEER_STRATEGY.name] }));
      await waitFor(() => decisions.length === i + 1, `the decision of step ${i}`);
    }

    // The peer's strategy comes first in the run's order, so its intent comes first.
    const approved = [peerIntent, ...(mine[enters] as IntentPayload[])];
    const last = decisions.at(-1) as Envelope;
    if (!DecisionMessage.is(last)) throw new Error(`expected a decision, got ${last.type}`);
    expect(last.from).toBe('decider');
    expect(last.payload).toEqual({
      index: enters,
      approved,
      rejected: [],
      digest: digestOf(approved),
      orders: approved.map((_, i) => ({ clientOrderId: `c-${enters}-${i}`, status: 'accepted' })),
    });
    expect(decisions.map((e) => (DecisionMessage.is(e) ? e.payload.index : -1))).toEqual(Array.from({ length: enters + 1 }, (_, i) => i));
    expect(decisions.slice(0, -1).every((e) => DecisionMessage.is(e) && e.payload.approved.length === 0 && e.payload.digest === digestOf([]))).toBe(true);
    // Steps with nothing to submit need no round trip to the venue: one orders request, answered before its decision.
    expect(orders.map((e) => (OrdersMessage.is(e) ? e.payload.index : -1))).toEqual([enters]);
    expect((orders.at(-1) as Envelope).payload).toEqual({ index: enters, approved, rejected: [], digest: digestOf(approved), epoch: 0 });
    expect(runtime.counters).toMatchObject({ decisions: enters + 1, ordersSubmitted: approved.length, errors: 0 });
  });

  it('submits the orders again when a step comes again after the venue could not be reached, and only then publishes the decision', async () => {
    await startBroker();
    const clock = new ManualClock(1_000_000);
    const control = await testBus(CONTROL_PLANE_ID);
    const decisions = await record(control, topics.decision('decider'));
    const requests: number[] = [];
    await control.serve(topics.order('decider'), (request) => {
      if (!OrdersMessage.is(request)) throw new Error(`unexpected ${request.type}`);
      requests.push(request.payload.index);
      // The first request fails, as one that met a broker restart or a venue that timed out would.
      if (requests.length === 1) throw new Error('venue unreachable');
      return OrdersResultMessage.draft({ index: request.payload.index, results: request.payload.approved.map((_, i) => ({ clientOrderId: `c-${i}`, status: 'accepted' as const })) });
    });
    const { runtime } = await startAgent(configOf('decider', { pipeline: {}, submits: true }), clock);
    const enters = inProcess(CLOSES.map((_, i) => stepAt(i))).findIndex((intents) => intents.length > 0);
    for (let i = 0; i <= enters; i++) await control.publish(topics.step(), StepMessage.draft(stepAt(i, ['decider'])));
    await waitFor(() => runtime.counters.errors === 1, 'the failed orders request');
    expect(decisions).toHaveLength(enters);
    expect(requests).toEqual([enters]);

    // The control plane publishes the step again: the same orders go to the venue, then the decision.
    await control.publish(topics.step(), StepMessage.draft(stepAt(enters, ['decider'])));
    await waitFor(() => decisions.length === enters + 1, 'the decision of the step');
    expect(requests).toEqual([enters, enters]);
    const last = decisions.at(-1) as Envelope;
    if (!DecisionMessage.is(last)) throw new Error(`expected a decision, got ${last.type}`);
    expect(last.payload.index).toBe(enters);
    expect(last.payload.orders?.map((order) => order.status)).toEqual(last.payload.approved.map(() => 'accepted'));
    expect(runtime.counters).toMatchObject({ decisions: enters + 1, errors: 1 });
  });

  it('rewound by a new control plane (adoption), drops the orders request its old one never answered: the step is submitted again at once, and no error is counted', async () => {
    await startBroker();
    const clock = new ManualClock(1_000_000);
    const control = await testBus(CONTROL_PLANE_ID);
    const decisions = await record(control, topics.decision('decider'));
    const checkpoints = await record(control, topics.checkpoint('decider'));
    const requests: number[] = [];
    // The first orders request meets a control plane that died: no answer, until the test ends.
    let answerLate: (() => void) | undefined;
    await control.serve(topics.order('decider'), async (request) => {
      if (!OrdersMessage.is(request)) throw new Error(`unexpected ${request.type}`);
      requests.push(request.payload.index);
      if (requests.length === 1) await new Promise<void>((resolve) => (answerLate = resolve));
      return OrdersResultMessage.draft({ index: request.payload.index, results: request.payload.approved.map((_, i) => ({ clientOrderId: `c-${i}`, status: 'accepted' as const })) });
    });
    const { runtime } = await startAgent(configOf('decider', { pipeline: {}, submits: true }), clock);
    const enters = inProcess(CLOSES.map((_, i) => stepAt(i))).findIndex((intents) => intents.length > 0);
    for (let i = 0; i < enters; i++) await control.publish(topics.step(), StepMessage.draft(stepAt(i, ['decider'])));
    await waitFor(() => decisions.length === enters, 'the decisions before the orders');
    const { resume } = (await checkpointOf(control, checkpoints, 'decider')) as { resume: Resume };
    await control.publish(topics.step(), StepMessage.draft(stepAt(enters, ['decider'])));
    await waitFor(() => requests.length === 1, 'the orders request');

    // The new control plane adopts the process: it rewinds it to its checkpoint and publishes the step again.
    await control.request(topics.inbox('decider'), ReplayMessage.draft({ steps: [], signals: [], last: true, resume }), { timeoutMs: 5_000 });
    await control.publish(topics.step(), StepMessage.draft(stepAt(enters, ['decider'])));
    // On the agent's clock the old request never times out: only a rewind that drops it lets the step through.
    await waitFor(() => decisions.length === enters + 1, 'the decision of the step, submitted again');
    expect(requests).toEqual([enters, enters]);
    const last = decisions.at(-1) as Envelope;
    expect(DecisionMessage.is(last) && last.payload.orders?.map((order) => order.status)).toEqual((last.payload as { approved: unknown[] }).approved.map(() => 'accepted'));

    // The old request's answer, had it come, changes nothing; its wait ending is no error either.
    answerLate?.();
    clock.advance(configOf('decider').orderTimeoutMs);
    await control.publish(topics.step(), StepMessage.draft(stepAt(enters + 1, ['decider'])));
    await waitFor(() => decisions.length === enters + 2, 'the next decision');
    expect(runtime.counters).toMatchObject({ decisions: enters + 2, errors: 0 });
  });

  it('a stop request publishes a last checkpoint with the counters and ends with stop-requested, exit code 0', async () => {
    await startBroker();
    const clock = new ManualClock(1_000_000);
    const control = await testBus(CONTROL_PLANE_ID);
    const checkpoints = await record(control, topics.checkpoint('trader-1'));
    const signals = await record(control, topics.signal('trader-1'));
    const { runtime } = await startAgent(configOf('trader-1'), clock);
    for (let i = 0; i < 4; i++) await control.publish(topics.step(), StepMessage.draft(stepAt(i)));
    await waitFor(() => signals.length === 4, 'four signals');

    await control.publish(topics.control('trader-1'), ControlMessage.draft({ command: 'stop', reason: 'run over' }));
    expect(await runtime.done).toEqual({ reason: 'stop-requested', detail: 'run over', exitCode: 0 });
    // The first is the checkpoint after step 0; the last, the stop's.
    await waitFor(() => checkpoints.length === 2, 'the last checkpoint');
    const last = checkpoints[1] as Envelope;
    if (!CheckpointMessage.is(last)) throw new Error(`expected a checkpoint, got ${last.type}`);
    expect(last.payload.state).toMatchObject({
      signalledUpTo: 3,
      decidedUpTo: -1,
      halted: null,
      counters: { steps: 4, signals: 4, decisions: 0, ordersSubmitted: 0, refusedSteps: 0, tasks: 0, errors: 0, replayed: 0 },
      pipeline: null,
    });
    // Stopping again changes nothing.
    expect(await runtime.stop({ reason: 'fatal', detail: 'late', exitCode: 1 })).toEqual({ reason: 'stop-requested', detail: 'run over', exitCode: 0 });
  });

  it('a stop sent to every agent (control/all) stops it too', async () => {
    await startBroker();
    const clock = new ManualClock(1_000_000);
    const control = await testBus(CONTROL_PLANE_ID);
    const { runtime } = await startAgent(configOf('trader-1'), clock);
    await control.publish(topics.controlAll(), ControlMessage.draft({ command: 'stop' }));
    expect(await runtime.done).toEqual({ reason: 'stop-requested', detail: 'stop requested', exitCode: 0 });
  });

  it('stays up while control-plane heartbeats arrive, and exits with control-plane-lost (code 1) once they stop', async () => {
    await startBroker();
    const clock = new ManualClock(1_000_000);
    const control = await testBus(CONTROL_PLANE_ID);
    const heartbeats = await record(control, topics.heartbeat('trader-1'));
    const config = configOf('trader-1', { heartbeatMs: 100, controlPlaneTimeoutMs: 1_000 });
    const { bus, exit } = await startAgent(config, clock);
    await waitFor(() => heartbeats.length === 1, 'the first heartbeat');
    const heard = (): number => bus.stats().byType['heartbeat']?.received ?? 0;

    // 5 × 500 ms = 2.5 s on the agent's clock, well past the 1 s timeout, with a heartbeat in each half second.
    for (let seq = 0; seq < 5; seq++) {
      await control.publish(topics.heartbeat(CONTROL_PLANE_ID), HeartbeatMessage.draft({ seq, status: 'running' }));
      await waitFor(() => heard() === seq + 1, `control-plane heartbeat ${seq} to reach the agent`);
      expect(clock.advance(500)).toBe(5);
      expect(clock.pendingTimers).toBe(1);
    }
    await waitFor(() => heartbeats.length === 26, 'the agent heartbeats');
    expect(new Set(statusesOf(heartbeats))).toEqual(new Set(['running']));
    expect(exit.value).toBeUndefined();

    // Silence since the last heartbeat (500 ms ago): still alive at exactly the timeout, lost at the first beat past it.
    clock.advance(500);
    expect(clock.pendingTimers).toBe(1);
    expect(exit.value).toBeUndefined();
    clock.advance(100);
    expect(clock.pendingTimers).toBe(0);
    const ended = await waitForExit(exit);
    expect(ended).toMatchObject({ reason: 'control-plane-lost', exitCode: 1 });
    expect(ended.detail).toBe('nothing from the control plane for 1100 ms');
  });

  it('steps count as word from the control plane', async () => {
    await startBroker();
    const clock = new ManualClock(1_000_000);
    const control = await testBus(CONTROL_PLANE_ID);
    const { runtime, exit } = await startAgent(configOf('trader-1', { heartbeatMs: 100, controlPlaneTimeoutMs: 1_000 }), clock);
    for (let i = 0; i < 3; i++) {
      await control.publish(topics.step(), StepMessage.draft(stepAt(i)));
      await waitFor(() => runtime.counters.steps === i + 1, `step ${i}`);
      clock.advance(900);
    }
    expect(clock.pendingTimers).toBe(1);
    expect(exit.value).toBeUndefined();
    clock.advance(200);
    expect((await waitForExit(exit)).reason).toBe('control-plane-lost');
  });

  it("a star spoke stops signalling once the hub's last will arrives, and its heartbeats say degraded", async () => {
    await startBroker();
    const b = broker as EmbeddedBroker;
    const clock = new ManualClock(1_000_000);
    const control = await testBus(CONTROL_PLANE_ID);
    const signals = await record(control, topics.signal('spoke-1'));
    const heartbeats = await record(control, topics.heartbeat('spoke-1'));
    const checkpoints = await record(control, topics.checkpoint('spoke-1'));
    // The hub: an agent connection with its last will, as src/agent/main.ts sets it.
    const hubCredentials = b.issueCredentials({ swarmId: SWARM, agentId: 'hub' });
    const hub = await connectBus({
      url: b.url,
      ...hubCredentials,
      clientId: 'hub',
      registry: swarmRegistry,
      logger: silentLogger,
      reconnectPeriodMs: 0,
      will: { topic: topics.heartbeat('hub'), message: HeartbeatMessage.draft({ seq: 0, status: 'lost' }) },
    });
    buses.push(hub);
    const { runtime } = await startAgent(configOf('spoke-1', { requires: ['hub'], peerTimeoutMs: 1_000 }), clock);
    await hub.publish(topics.heartbeat('hub'), HeartbeatMessage.draft({ seq: 0, status: 'running' }));

    await control.publish(topics.step(), StepMessage.draft(stepAt(0)));
    await waitFor(() => signals.length === 1, 'the signal of step 0');
    await waitFor(() => heartbeats.length === 1, 'the first heartbeat');
    expect(statusesOf(heartbeats)).toEqual(['running']);

    // The hub's connection is cut: the broker publishes its will.
    expect(b.revoke(hubCredentials.username)).toBe(1);
    await waitFor(() => runtime.halted !== undefined, 'the hub to be lost');
    expect(runtime.halted).toBe('hub-lost');

    await control.publish(topics.step(), StepMessage.draft(stepAt(1)));
    await control.publish(topics.step(), StepMessage.draft(stepAt(2)));
    // Halted, it leaves the steps unsignalled (the checkpoint request comes after them, in order).
    const state = await checkpointOf(control, checkpoints, 'spoke-1');
    expect(state).toMatchObject({ signalledUpTo: 0, halted: 'hub-lost', counters: { steps: 1, signals: 1 } });
    expect(signalsOf(signals).map((s) => s.index)).toEqual([0]);

    clock.advance(200);
    await waitFor(() => heartbeats.length === 3, 'two more heartbeats');
    expect(statusesOf(heartbeats)).toEqual(['running', 'degraded', 'degraded']);

    // The hub's standby takes over (a process of a higher epoch): the spoke trades again, from the step it left.
    const promoted = await connectBus({ url: b.url, ...b.issueCredentials({ swarmId: SWARM, agentId: 'hub' }), clientId: 'hub', connectionId: `${SWARM}.hub.1`, registry: swarmRegistry, logger: silentLogger });
    buses.push(promoted);
    await promoted.publish(topics.heartbeat('hub'), HeartbeatMessage.draft({ seq: 0, status: 'starting', epoch: 1 }));
    await waitFor(() => runtime.halted === undefined, 'the spoke to trade again');
    await control.publish(topics.step(), StepMessage.draft(stepAt(1)));
    await waitFor(() => signals.length === 2, 'the signal of step 1');
    expect(signalsOf(signals).map((s) => s.index)).toEqual([0, 1]);
  });

  it('a spoke whose hub falls silent past peerTimeoutMs halts too', async () => {
    await startBroker();
    const clock = new ManualClock(1_000_000);
    const control = await testBus(CONTROL_PLANE_ID);
    const heartbeats = await record(control, topics.heartbeat('spoke-1'));
    const { runtime } = await startAgent(configOf('spoke-1', { requires: ['hub'], peerTimeoutMs: 1_000, heartbeatMs: 100 }), clock);
    clock.advance(1_000);
    expect(runtime.halted).toBeUndefined();
    clock.advance(100);
    expect(runtime.halted).toBe('hub-lost');
    await waitFor(() => heartbeats.length === 12, 'the heartbeats');
    expect(statusesOf(heartbeats).slice(-2)).toEqual(['running', 'degraded']);
  });

  it('with replayFirst, holds a step until the replay (last: true) is applied, then answers it with the rebuilt indicator state', async () => {
    await startBroker();
    const clock = new ManualClock(1_000_000);
    const control = await testBus(CONTROL_PLANE_ID);
    const signals = await record(control, topics.signal('trader-1'));
    const heartbeats = await record(control, topics.heartbeat('trader-1'));
    const checkpoints = await record(control, topics.checkpoint('trader-1'));
    const { runtime, bus } = await startAgent(configOf('trader-1', { replayFirst: true }), clock);
    await waitFor(() => heartbeats.length === 1, 'the first heartbeat');
    expect(statusesOf(heartbeats)).toEqual(['starting']);

    // A step whose intents need the earlier steps' history (a fresh strategy gives none on it).
    const all = CLOSES.map((_, i) => stepAt(i));
    const expected = inProcess(all);
    const live = expected.findIndex((intents, i) => i >= 3 && intents.length > 0);
    expect(live).toBeGreaterThan(0);
    expect(inProcess([all[live] as StepPayload])).toEqual([[]]);

    await control.publish(topics.step(), StepMessage.draft(all[live] as StepPayload));
    await waitFor(() => (bus.stats().byType['step']?.received ?? 0) === 1, 'the step to reach the agent');
    expect(await checkpointOf(control, checkpoints, 'trader-1')).toMatchObject({ signalledUpTo: -1, counters: { steps: 0, signals: 0 } });
    expect(signals).toEqual([]);

    // A first chunk does not release the held step; the last one does.
    const first = await control.request(topics.inbox('trader-1'), ReplayMessage.draft({ steps: all.slice(0, 2), signals: [], last: false }), { timeoutMs: 5_000 });
    expect(ReplayDoneMessage.is(first) && first.payload).toEqual({ upTo: 1 });
    // The agent applies a chunk (and releases held work after the last) before it replies.
    expect(runtime.counters).toMatchObject({ replayed: 2, steps: 2, signals: 0 });
    const done = await control.request(topics.inbox('trader-1'), ReplayMessage.draft({ steps: all.slice(2, live), signals: [], last: true }), { timeoutMs: 5_000 });
    expect(ReplayDoneMessage.is(done) && done.payload).toEqual({ upTo: live - 1 });

    await waitFor(() => signals.length === 1, 'the held step to be answered');
    expect(signalsOf(signals)).toEqual([{ index: live, intents: expected[live], strategies: [SMA_NAME] }]);
    expect(runtime.counters).toMatchObject({ replayed: live, steps: live + 1, signals: 1 });

    clock.advance(100);
    await waitFor(() => heartbeats.length === 2, 'the next heartbeat');
    expect(statusesOf(heartbeats)).toEqual(['starting', 'running']);
  });
});

/** Polls until `exit.value` is set (the agent's bus closes over the network), and returns it. */
async function waitForExit(exit: { value: AgentExit | undefined }): Promise<AgentExit> {
  await waitFor(() => exit.value !== undefined, 'the agent to stop');
  return exit.value as AgentExit;
}
