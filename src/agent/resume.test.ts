import { afterEach, describe, expect, it } from 'vitest';
import { CheckpointMessage, type Envelope, type MemoryBroker, createMemoryBroker, createMemoryBus, swarmTopics } from '../bus/index.js';
import { ManualClock, silentLogger } from '../core/index.js';
import { buildStrategy, type StrategySpec } from '../strategy/index.js';
import {
  type AgentConfig,
  CONTROL_PLANE_ID,
  ReplayMessage,
  type Resume,
  type ResumeState,
  SignalMessage,
  type StepPayload,
  StepMessage,
  resumeSchema,
  resumeStateSchema,
  swarmRegistry,
} from './protocol.js';
import { AgentRuntime } from './runtime.js';
import { agentConfigOf } from '../../test/fixtures/agent-config.js';

/**
 * An agent restarted from a checkpoint goes on exactly as the agent that wrote it: in process, on
 * the memory bus and a manual clock.
 */

const SWARM = 'resume';
const topics = swarmTopics(SWARM);
const EMA: StrategySpec = { type: 'ema-crossover', symbol: 'AAA', fastPeriod: 3, slowPeriod: 7, sizing: { type: 'fixed-quantity', units: 5 } };

/** Step `index` of a wavy price that makes the EMAs cross both ways several times. */
function stepAt(index: number): StepPayload {
  const close = 100 + 8 * Math.sin(index / 3) + index * 0.1;
  return {
    index,
    bars: [{ symbol: 'AAA', timeMs: Date.UTC(2024, 0, 1 + index), open: close, high: close + 1, low: close - 1, close, volume: 1_000 }],
    account: { equity: 100_000, peakEquity: 100_000, positions: [] },
    participants: ['trader'],
  };
}

function configOf(spec: StrategySpec, changes: Partial<AgentConfig> = {}): AgentConfig {
  return agentConfigOf(SWARM, 'trader', { strategies: [{ index: 0, spec }], allStrategies: [{ name: buildStrategy(spec).name, symbols: ['AAA'] }], checkpointEverySteps: 5, ...changes });
}

const brokers: MemoryBroker[] = [];
const runtimes: AgentRuntime[] = [];
afterEach(async () => {
  for (const runtime of runtimes.splice(0)) await runtime.stop({ reason: 'stop-requested', detail: 'test over', exitCode: 0 });
  await Promise.all(brokers.splice(0).map((broker) => broker.close()));
});

async function world() {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const broker = createMemoryBroker({ logger: silentLogger });
  brokers.push(broker);
  const control = createMemoryBus({ broker, clientId: CONTROL_PLANE_ID, clock, registry: swarmRegistry, logger: silentLogger });
  const signals: Array<{ index: number; intents: unknown }> = [];
  const checkpoints: Envelope[] = [];
  await control.subscribe(topics.signal('trader'), (envelope) => {
    if (SignalMessage.is(envelope)) signals.push({ index: envelope.payload.index, intents: envelope.payload.intents });
  });
  await control.subscribe(topics.checkpoint('trader'), (envelope) => {
    checkpoints.push(envelope);
  });
  const start = async (config: AgentConfig): Promise<AgentRuntime> => {
    const bus = createMemoryBus({ broker, agent: { swarmId: SWARM, agentId: config.agentId }, clock, registry: swarmRegistry, logger: silentLogger });
    const runtime = new AgentRuntime({ bus, config, clock, logger: silentLogger });
    runtimes.push(runtime);
    await runtime.start();
    return runtime;
  };
  const publish = async (from: number, to: number): Promise<void> => {
    for (let index = from; index < to; index++) await control.publish(topics.step(), StepMessage.draft(stepAt(index)));
    await broker.flush();
  };
  return { broker, control, signals, checkpoints, start, publish };
}

/** What the last checkpoint in `checkpoints` lets a restart resume from, and its state read back. */
function lastResume(checkpoints: readonly Envelope[]): { resume: Resume; state: ResumeState } {
  const last = checkpoints.at(-1);
  if (last === undefined || !CheckpointMessage.is(last)) throw new Error('no checkpoint was published');
  const resume = resumeSchema.parse((last.payload.state as { resume?: unknown } | null)?.resume);
  return { resume, state: resumeStateSchema.parse(JSON.parse(resume.state)) };
}

describe('an agent resumed from its checkpoint', () => {
  it('checkpoints after the first step and then every checkpointEverySteps steps, and a fresh agent that takes the checkpoint up signals what the first one does', async () => {
    const first = await world();
    await first.start(configOf(EMA));
    await first.publish(0, 40);
    // After steps 0, 4, 9, …, 39.
    expect(first.checkpoints.length).toBe(9);
    const { resume, state } = lastResume(first.checkpoints);
    expect(resume.replayFrom).toBe(40);
    expect(state).toMatchObject({ replayFrom: 40, signalledUpTo: 39, decidedUpTo: -1, pipeline: null });
    expect(state.sent.signal.map((entry) => entry.index)).toContain(39);
    const straight = first.signals.filter((signal) => signal.index >= 40);
    await first.publish(40, 60);
    const expected = first.signals.filter((signal) => signal.index >= 40);
    expect(straight).toEqual([]);

    const second = await world();
    await second.start(configOf(EMA, { replayFirst: true }));
    await second.control.request(topics.inbox('trader'), ReplayMessage.draft({ steps: [], signals: [], last: true, resume }), { timeoutMs: 1_000 });
    // The step it signalled last, published again, is answered again from what the checkpoint kept.
    await second.publish(39, 60);
    expect(second.signals.find((signal) => signal.index === 39)).toEqual(first.signals.find((signal) => signal.index === 39));
    expect(second.signals.filter((signal) => signal.index >= 40)).toEqual(expected);
    expect(expected.some((signal) => (signal.intents as unknown[]).length > 0)).toBe(true);
  });

  it('refuses a checkpoint of other strategies, naming what differs, and changes nothing', async () => {
    const first = await world();
    await first.start(configOf(EMA));
    await first.publish(0, 10);
    const { resume } = lastResume(first.checkpoints);

    const other = await world();
    const runtime = await other.start(configOf({ ...EMA, slowPeriod: 9 }, { replayFirst: true }));
    const refused = await other.control
      .request(topics.inbox('trader'), ReplayMessage.draft({ steps: [], signals: [], last: true, resume }), { timeoutMs: 1_000 })
      .then(
        () => undefined,
        (error: unknown) => error as Error,
      );
    expect(refused?.message).toMatch(/IncompatibleSnapshotError: cannot restore the strategies \(ema-crossover-AAA-3-9\) from this snapshot: .*names\[0\] is "ema-crossover-AAA-3-7" in the snapshot and "ema-crossover-AAA-3-9" here\. Nothing was restored/);
    expect(runtime.counters.steps).toBe(0);
  });
});
