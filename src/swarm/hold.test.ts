import { afterEach, describe, expect, it } from 'vitest';
import { CONTROL_PLANE_ID } from '../agent/index.js';
import { HeartbeatMessage, type MemoryBroker, createMemoryBroker, createMemoryBus, swarmTopics } from '../bus/index.js';
import { ManualClock, silentLogger } from '../core/index.js';
import { ControlBeatHold, HOLD_BEAT_MS } from './hold.js';

describe('ControlBeatHold', () => {
  let broker: MemoryBroker;
  afterEach(() => broker.close());

  /** The seqs of the control plane's heartbeats each swarm's agents hear. */
  async function listen(swarmIds: readonly string[]): Promise<Map<string, number[]>> {
    const heard = new Map<string, number[]>(swarmIds.map((id) => [id, []]));
    const agent = createMemoryBus({ broker, logger: silentLogger });
    for (const id of swarmIds) {
      await agent.subscribe(swarmTopics(id).heartbeat(CONTROL_PLANE_ID), (envelope) => {
        if (HeartbeatMessage.is(envelope)) heard.get(id)?.push(envelope.payload.seq);
      });
    }
    return heard;
  }

  it('beats for every held swarm at once and every HOLD_BEAT_MS, until each is released or it closes', async () => {
    broker = createMemoryBroker({ logger: silentLogger });
    const heard = await listen(['a', 'b', 'c']);
    const clock = new ManualClock(0);
    const hold = new ControlBeatHold({ bus: createMemoryBus({ broker, logger: silentLogger }), clock, swarmIds: ['a', 'b'] });
    await broker.flush();
    expect(Object.fromEntries(heard)).toEqual({ a: [0], b: [0], c: [] });

    clock.advance(HOLD_BEAT_MS);
    await broker.flush();
    expect(Object.fromEntries(heard)).toEqual({ a: [0, 1], b: [0, 1], c: [] });

    hold.release('a');
    clock.advance(HOLD_BEAT_MS);
    await broker.flush();
    expect(Object.fromEntries(heard)).toEqual({ a: [0, 1], b: [0, 1, 2], c: [] });
    expect(hold.held).toEqual(['b']);

    hold.close();
    clock.advance(10 * HOLD_BEAT_MS);
    await broker.flush();
    expect(Object.fromEntries(heard)).toEqual({ a: [0, 1], b: [0, 1, 2], c: [] });
    expect(clock.pendingTimers).toBe(0);
  });

  it('sets no timer when it holds nothing, and none after its last swarm is released', () => {
    broker = createMemoryBroker({ logger: silentLogger });
    const clock = new ManualClock(0);
    new ControlBeatHold({ bus: createMemoryBus({ broker, logger: silentLogger }), clock, swarmIds: [] });
    expect(clock.pendingTimers).toBe(0);
    const hold = new ControlBeatHold({ bus: createMemoryBus({ broker, logger: silentLogger }), clock, swarmIds: ['a'] });
    hold.release('a');
    expect(clock.pendingTimers).toBe(0);
  });
});
