import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { InvalidInputError } from '../core/index.js';
import {
  BUILTIN_MESSAGES,
  CheckpointMessage,
  ControlMessage,
  DEFAULT_MAX_MESSAGE_BYTES,
  type Envelope,
  EnvelopeCodec,
  type EnvelopeMeta,
  ErrorMessage,
  HeartbeatMessage,
  type MessageDraft,
  MessageRegistry,
  PingMessage,
  PongMessage,
  compileEnvelopeCodecOptions,
  defaultRegistry,
  defineMessage,
  readEnvelopeAddressing,
} from './envelope.js';
import { BusMessageError } from './errors.js';

const meta: EnvelopeMeta = { id: 'm1', from: 'agent-1', ts: 1_700_000_000_000 };
const TOPIC = 'ts/alpha/heartbeat/agent-1';

/** A message type with nesting, to check field paths. */
const OrderMessage = defineMessage(
  'order.submit',
  z.object({
    symbol: z.string().min(1),
    legs: z.array(z.object({ side: z.enum(['buy', 'sell']), qty: z.number().positive() })).min(1),
  }),
);

describe('defineMessage and MessageRegistry', () => {
  it('defines a type in one line, with a typed draft and a narrowing guard', () => {
    const draft = OrderMessage.draft({ symbol: 'AAPL', legs: [{ side: 'buy', qty: 10 }] }, { to: 'venue' });
    expect(draft).toEqual({ type: 'order.submit', payload: { symbol: 'AAPL', legs: [{ side: 'buy', qty: 10 }] }, to: 'venue' });
    expect(PingMessage.draft({ seq: 1 })).toEqual({ type: 'ping', payload: { seq: 1 } });
    const envelope = { v: 1, id: 'x', type: 'ping', from: 'a', ts: 0, payload: { seq: 3 } } as Envelope;
    expect(PingMessage.is(envelope)).toBe(true);
    expect(PongMessage.is(envelope)).toBe(false);
    expect(Object.isFrozen(OrderMessage)).toBe(true);
  });

  it.each([
    ['heartbeat', true],
    ['order.ack', true],
    ['risk-limit.v2', true],
    ['', false],
    ['Heartbeat', false],
    ['order..ack', false],
    ['order.', false],
    ['1order', false],
    ['with space', false],
    ['a'.repeat(65), false],
  ])('accepts %j as a type name: %s', (type, valid) => {
    const define = (): unknown => defineMessage(type, z.object({}));
    if (valid) expect(define).not.toThrow();
    else expect(define).toThrow(/^type: must be lowercase words joined by '\.' or '-'/);
  });

  it('refuses a schema that is not zod', () => {
    expect(() => defineMessage('thing', { parse: () => 1 } as unknown as z.ZodType)).toThrow(/^schema: must be a zod schema/);
  });

  it('always holds the built-in types and grows immutably', () => {
    expect(defaultRegistry.types()).toEqual(['checkpoint', 'control', 'error', 'heartbeat', 'ping', 'pong']);
    expect(BUILTIN_MESSAGES.map((definition) => definition.type)).toEqual(['heartbeat', 'control', 'checkpoint', 'ping', 'pong', 'error']);
    const withOrders = defaultRegistry.with(OrderMessage);
    expect(withOrders.has('order.submit')).toBe(true);
    expect(defaultRegistry.has('order.submit')).toBe(false);
    expect(MessageRegistry.create(OrderMessage).types()).toEqual(withOrders.types());
    expect(withOrders.with(OrderMessage).types()).toEqual(withOrders.types()); // the same definition again is a no-op
    expect(withOrders.get('order.submit')).toBe(OrderMessage);
    expect(() => withOrders.with(defineMessage('order.submit', z.object({})))).toThrow(/^type: message type 'order.submit' is already registered/);
    expect(() => MessageRegistry.create(defineMessage('ping', z.object({})))).toThrow(InvalidInputError);
  });
});

describe('EnvelopeCodec.encode', () => {
  const codec = new EnvelopeCodec({ registry: MessageRegistry.create(OrderMessage) });

  it('wraps a valid draft in a frozen version-1 envelope and encodes it as JSON', () => {
    const { envelope, bytes } = codec.encode(HeartbeatMessage.draft({ seq: 4, status: 'running', load: 0.5 }), { ...meta, replyTo: 'ts/alpha/reply/c1', correlationId: 'r9' });
    expect(envelope).toEqual({
      v: 1,
      id: 'm1',
      type: 'heartbeat',
      from: 'agent-1',
      ts: 1_700_000_000_000,
      payload: { seq: 4, status: 'running', load: 0.5 },
      replyTo: 'ts/alpha/reply/c1',
      correlationId: 'r9',
    });
    expect(JSON.parse(bytes.toString('utf8'))).toEqual(envelope);
    expect(Object.isFrozen(envelope) && Object.isFrozen(envelope.payload)).toBe(true);
  });

  it('leaves out optional fields that are not set, and drops payload fields the schema does not know', () => {
    const { envelope, bytes } = codec.encode({ type: 'ping', payload: { seq: 1, extra: true } }, meta);
    expect(envelope).toEqual({ v: 1, id: 'm1', type: 'ping', from: 'agent-1', ts: 1_700_000_000_000, payload: { seq: 1 } });
    expect(bytes.toString('utf8')).toBe('{"v":1,"id":"m1","type":"ping","from":"agent-1","ts":1700000000000,"payload":{"seq":1}}');
  });

  it.each<[string, MessageDraft, string, RegExp]>([
    ['an unknown type', { type: 'bar', payload: {} }, 'message.type', /unknown message type "bar" \(known: checkpoint, control, error, heartbeat, order.submit, ping, pong\); register it/],
    ['a missing payload field', { type: 'heartbeat', payload: { status: 'running' } }, 'message.payload.seq', /expected number, received undefined \(message type 'heartbeat'\)/],
    ['a wrongly typed payload field', HeartbeatMessage.draft({ seq: 'one' as unknown as number, status: 'running' }), 'message.payload.seq', /expected number, received string/],
    ['a negative seq', HeartbeatMessage.draft({ seq: -1, status: 'running' }), 'message.payload.seq', />=0/],
    ['an unknown status', { type: 'heartbeat', payload: { seq: 1, status: 'asleep' } }, 'message.payload.status', /expected one of "starting"\|"running"/],
    ['an unknown command', { type: 'control', payload: { command: 'reboot' } }, 'message.payload.command', /"stop"\|"checkpoint"\|"pause"\|"resume"/],
    ['a non-JSON checkpoint state', CheckpointMessage.draft({ seq: 1, state: { cash: Number.NaN } }), 'message.payload.state.cash', /./],
    ['an error without retryable', { type: 'error', payload: { code: 'x', message: 'y' } }, 'message.payload.retryable', /expected boolean/],
    ['a nested field', OrderMessage.draft({ symbol: 'AAPL', legs: [{ side: 'buy', qty: 1 }, { side: 'sell', qty: 0 }] }), 'message.payload.legs[1].qty', />0/],
    ['an empty addressee', { type: 'ping', payload: { seq: 1 }, to: '' }, 'message.to', /too small|>=1/i],
    ['no draft at all', null as unknown as MessageDraft, 'message', /must be a message draft/],
  ])('refuses %s, naming the field', (_what, draft, field, message) => {
    let error: unknown;
    try {
      codec.encode(draft, meta);
    } catch (thrown) {
      error = thrown;
    }
    expect(error).toBeInstanceOf(InvalidInputError);
    expect((error as InvalidInputError).field).toBe(field);
    expect((error as Error).message).toMatch(message);
  });

  it('refuses a message that encodes to more than maxMessageBytes', () => {
    const small = new EnvelopeCodec({ maxMessageBytes: 300 });
    expect(() => small.encode(PingMessage.draft({ seq: 1, note: 'x'.repeat(200) }), meta)).not.toThrow();
    expect(() => small.encode(PingMessage.draft({ seq: 1, note: 'x'.repeat(300) }), meta)).toThrow(
      /^message: encodes to 3\d\d bytes, over the 300-byte limit \(maxMessageBytes\)/,
    );
  });
});

describe('EnvelopeCodec.decode', () => {
  const codec = new EnvelopeCodec({ maxMessageBytes: 1024 });
  const wire = (overrides: Record<string, unknown> = {}): Buffer =>
    Buffer.from(JSON.stringify({ v: 1, id: 'm1', type: 'heartbeat', from: 'agent-1', ts: 5, payload: { seq: 1, status: 'running' }, ...overrides }));

  it('round-trips what encode produced', () => {
    const { envelope, bytes } = codec.encode(ControlMessage.draft({ command: 'pause', reason: 'drawdown' }, { to: 'agent-2' }), meta);
    const decoded = codec.decode('ts/alpha/control/all', bytes);
    expect(decoded).toEqual(envelope);
    expect(Object.isFrozen(decoded) && Object.isFrozen(decoded.payload)).toBe(true);
  });

  it('drops unknown envelope and payload fields (a newer sender does not break an older receiver)', () => {
    const decoded = codec.decode(TOPIC, wire({ traceId: 't-1', payload: { seq: 1, status: 'running', cpu: 0.3 } }));
    expect(decoded).toEqual({ v: 1, id: 'm1', type: 'heartbeat', from: 'agent-1', ts: 5, payload: { seq: 1, status: 'running' } });
  });

  it.each<[string, Buffer, string, string, RegExp]>([
    ['too many bytes', wire({ payload: { seq: 1, status: 'running', pad: 'x'.repeat(1100) } }), 'oversize', '(message)', /1\d{3} bytes is over the 1024-byte limit/],
    ['not JSON', Buffer.from('{"v":1,'), 'not-json', '(message)', /is not UTF-8 JSON/],
    ['invalid UTF-8', Buffer.from([0x7b, 0xff, 0x7d]), 'not-json', '(message)', /is not UTF-8 JSON/],
    ['a JSON array', Buffer.from('[1,2]'), 'invalid-envelope', '(message)', /expected object/],
    ['a missing id', wire({ id: undefined }), 'invalid-envelope', 'id', /expected string/],
    ['a negative ts', wire({ ts: -1 }), 'invalid-envelope', 'ts', />=0/],
    ['a fractional ts', wire({ ts: 1.5 }), 'invalid-envelope', 'ts', /expected int/],
    ['another version', wire({ v: 2 }), 'invalid-envelope', 'v', /unsupported envelope version 2; this bus reads version 1/],
    ['no version', wire({ v: undefined }), 'invalid-envelope', 'v', /expected 1/],
    ['several problems', wire({ id: 7, from: 8 }), 'invalid-envelope', 'id', /\(and 1 more problem\)/],
    ['an unknown type', wire({ type: 'bar' }), 'unknown-type', 'type', /unknown message type "bar" \(known: checkpoint, control, error, heartbeat, ping, pong\)/],
    ['a wrong payload', wire({ payload: { seq: 'one', status: 'running' } }), 'invalid-payload', 'payload.seq', /expected number, received string/],
    ['a missing payload', wire({ payload: undefined }), 'invalid-envelope', 'payload', /^is required/],
    ['a null payload', wire({ payload: null }), 'invalid-payload', 'payload', /expected object/],
  ])('refuses %s with a BusMessageError naming the field and the topic', (_what, bytes, reason, field, detail) => {
    let error: unknown;
    try {
      codec.decode(TOPIC, bytes);
    } catch (thrown) {
      error = thrown;
    }
    expect(error).toBeInstanceOf(BusMessageError);
    expect(error).toMatchObject({ topic: TOPIC, reason, field, retryable: false });
    expect((error as BusMessageError).detail).toMatch(detail);
    expect((error as Error).message).toContain(`dropped a message on '${TOPIC}' (${reason}): ${field}: `);
  });

  it('decodes error messages for request/reply', () => {
    const { bytes } = codec.encode(ErrorMessage.draft({ code: 'book-closed', message: 'closed', retryable: true }), meta);
    const decoded = codec.decode('ts/alpha/reply/c1', bytes);
    expect(ErrorMessage.is(decoded) && decoded.payload.retryable).toBe(true);
  });
});

describe('readEnvelopeAddressing', () => {
  it('reads the sender, reply topic and request id of what encode produced', () => {
    const { bytes } = new EnvelopeCodec().encode(PingMessage.draft({ seq: 1 }), { id: 'r1', from: 'a1', ts: 5, replyTo: 'ts/s/reply/a1' });
    expect(readEnvelopeAddressing(bytes)).toEqual({ id: 'r1', from: 'a1', replyTo: 'ts/s/reply/a1', correlationId: undefined });
  });

  it.each([
    ['not JSON', Buffer.from('hello')],
    ['not UTF-8', Buffer.from([0x7b, 0xff, 0x7d])],
    ['a JSON array', Buffer.from('[{"from":"a1"}]')],
    ['JSON null', Buffer.from('null')],
  ])('gives nothing for %s, which no bus accepts', (_what, bytes) => {
    expect(readEnvelopeAddressing(bytes)).toBeUndefined();
  });

  it('leaves out fields that are not strings, and takes the last of repeated keys as JSON.parse does', () => {
    expect(readEnvelopeAddressing(Buffer.from('{"from":1,"correlationId":"c","from":"b2","replyTo":null}'))).toEqual({
      id: undefined,
      from: 'b2',
      replyTo: undefined,
      correlationId: 'c',
    });
  });
});

describe('compileEnvelopeCodecOptions', () => {
  it('fills in defaults and names the field of an invalid option', () => {
    expect(compileEnvelopeCodecOptions()).toEqual({ registry: defaultRegistry, maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES });
    expect(DEFAULT_MAX_MESSAGE_BYTES).toBe(262_144);
    expect(() => compileEnvelopeCodecOptions({ maxMessageBytes: 255 })).toThrow(/^maxMessageBytes: must be an integer number of bytes >= 256, got 255$/);
    expect(() => compileEnvelopeCodecOptions({ maxMessageBytes: 1e3 + 0.5 })).toThrow(/^maxMessageBytes: /);
    expect(() => compileEnvelopeCodecOptions({ registry: {} as MessageRegistry })).toThrow(/^registry: must be a MessageRegistry/);
  });
});
