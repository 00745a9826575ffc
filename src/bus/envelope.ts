import { z } from 'zod';
import { InvalidInputError } from '../core/index.js';
import { BusMessageError, type BusMessageErrorReason } from './errors.js';
import { MAX_TOPIC_BYTES } from './topics.js';

/** The envelope version this code writes and reads. */
export const ENVELOPE_VERSION = 1;

/** The default largest message accepted, in bytes of encoded JSON: 256 KiB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024;

/** The longest message type name, in characters. */
export const MAX_TYPE_LENGTH = 64;

/** Lowercase words joined by `.` or `-`: `heartbeat`, `order.ack`, `risk-limit`. */
const TYPE_PATTERN = /^[a-z][a-z0-9]*(?:[.-][a-z0-9]+)*$/;

const identifier = z.string().min(1).max(128);
const participant = z.string().min(1).max(256);

/**
 * The wire form of every bus message (version 1), as JSON:
 * `{ v: 1, id, type, from, to?, ts, payload, replyTo?, correlationId? }`.
 *
 * - `id`: unique per message (random); a reply's `correlationId` is the request's `id`.
 * - `type`: selects the payload schema in a {@link MessageRegistry}.
 * - `from`: the sending bus's client id; `to`: the addressee, when there is one (informational: topics route).
 * - `ts`: when it was sent, in ms since the Unix epoch, from the sender's injected `Clock`.
 * - `replyTo`: set on requests: the topic the reply goes to.
 *
 * Unknown fields are dropped rather than refused, so a newer sender adding an optional field does not
 * break older receivers; a change that would break them bumps `v`.
 */
export const envelopeSchema = z.object({
  v: z.literal(ENVELOPE_VERSION),
  id: identifier,
  type: z.string().min(1).max(MAX_TYPE_LENGTH),
  from: participant,
  to: participant.optional(),
  ts: z.int().nonnegative(),
  // Checked against the type's schema next; here it only has to be present.
  payload: z.custom<unknown>((value) => value !== undefined, { message: 'is required: the message content, checked against its type\'s schema' }),
  replyTo: z.string().min(1).max(MAX_TOPIC_BYTES).optional(),
  correlationId: identifier.optional(),
});

/** A decoded, validated message. Frozen (deeply): messages are immutable. */
export interface Envelope<P = unknown, T extends string = string> {
  readonly v: typeof ENVELOPE_VERSION;
  readonly id: string;
  readonly type: T;
  readonly from: string;
  readonly to?: string;
  readonly ts: number;
  readonly payload: P;
  readonly replyTo?: string;
  readonly correlationId?: string;
}

/**
 * What a caller hands to `publish`/`request`/`reply`: the type and payload (and optionally the
 * addressee). The bus adds `v`, `id`, `from`, `ts` and, for requests and replies, `replyTo`/`correlationId`.
 */
export interface MessageDraft<P = unknown, T extends string = string> {
  readonly type: T;
  readonly payload: P;
  /** The addressee's id, when the message is for one agent. */
  readonly to?: string;
}

/**
 * A message type: its name and the zod schema of its payload. Made by {@link defineMessage}.
 * `draft` builds a typed {@link MessageDraft}; `is` narrows a received envelope to this type.
 */
export interface MessageDefinition<T extends string = string, S extends z.ZodType = z.ZodType> {
  readonly type: T;
  readonly schema: S;
  /** A draft of this type, typed by the schema (validated again when published). */
  draft(payload: z.input<S>, options?: { readonly to?: string }): MessageDraft<z.input<S>, T>;
  /** Whether `envelope` is of this type; its payload then has the schema's output type. */
  is(envelope: Envelope): envelope is Envelope<z.output<S>, T>;
}

/** The payload type of a {@link MessageDefinition}. */
export type PayloadOf<D> = D extends MessageDefinition<string, infer S> ? z.output<S> : never;

/**
 * Defines a message type. Adding a type is one line:
 * `export const BarMessage = defineMessage('bar', barSchema);` then `MessageRegistry.create(BarMessage)`.
 * @param type lowercase words joined by `.` or `-` (`order.ack`), at most 64 characters
 * @param schema the zod schema of the payload; it should accept only JSON values
 * @throws InvalidInputError naming `type` or `schema`.
 */
export function defineMessage<T extends string, S extends z.ZodType>(type: T, schema: S): MessageDefinition<T, S> {
  if (typeof type !== 'string' || !TYPE_PATTERN.test(type) || type.length > MAX_TYPE_LENGTH) {
    throw new InvalidInputError(
      'type',
      `must be lowercase words joined by '.' or '-' (like 'heartbeat' or 'order.ack'), at most ${MAX_TYPE_LENGTH} characters, got ${JSON.stringify(type)}`,
    );
  }
  if (!(schema instanceof z.ZodType)) throw new InvalidInputError('schema', `must be a zod schema (message type '${type}')`);
  return Object.freeze({
    type,
    schema,
    draft: (payload: z.input<S>, options: { readonly to?: string } = {}): MessageDraft<z.input<S>, T> =>
      options.to === undefined ? { type, payload } : { type, payload, to: options.to },
    is: (envelope: Envelope): envelope is Envelope<z.output<S>, T> => envelope.type === type,
  });
}

/** What an agent reports about itself in a heartbeat (`lost`: its last will, published by the broker when its connection dropped). */
/** `standby`: a hot standby, ready to take over its agent's role when promoted. */
export const AGENT_STATUSES = ['starting', 'running', 'paused', 'degraded', 'stopping', 'lost', 'standby'] as const;

/** Commands a control message can carry. */
export const CONTROL_COMMANDS = ['stop', 'checkpoint', 'pause', 'resume', 'promote'] as const;

/**
 * `heartbeat`: an agent is alive. `seq` counts up from 0 per agent run; `load` is the fraction of
 * its capacity in use (above 1 means overloaded).
 */
export const HeartbeatMessage = defineMessage(
  'heartbeat',
  z.object({
    seq: z.int().nonnegative(),
    status: z.enum(AGENT_STATUSES),
    load: z.number().nonnegative().optional(),
    /** Which process of its agent sent it (see `AgentConfig.epoch`): a replaced one's beats and will are ignored. */
    epoch: z.int().nonnegative().optional(),
  }),
);

/** `control`: tells an agent (or every agent) to stop, checkpoint, pause or resume, or its standby to take over (`promote`). */
export const ControlMessage = defineMessage(
  'control',
  z.object({
    command: z.enum(CONTROL_COMMANDS),
    reason: z.string().max(1000).optional(),
    /** `promote`: the epoch of the standby that takes over; processes of other epochs ignore it. */
    epoch: z.int().nonnegative().optional(),
  }),
);

/** `checkpoint`: an agent's saved state (any JSON), numbered by `seq` so the latest wins. */
export const CheckpointMessage = defineMessage(
  'checkpoint',
  z.object({
    seq: z.int().nonnegative(),
    state: z.json(),
  }),
);

const pingSchema = z.object({
  seq: z.int().nonnegative(),
  note: z.string().max(1000).optional(),
});

/** `ping`: a probe (tests, liveness checks); answered with a `pong` of the same `seq`. */
export const PingMessage = defineMessage('ping', pingSchema);

/** `pong`: the answer to a `ping`. */
export const PongMessage = defineMessage('pong', pingSchema);

/**
 * `error`: something went wrong; `retryable` says whether trying again may help. `bus.serve`
 * answers a request with one when its handler throws, and `bus.request` turns it into a `BusRemoteError`.
 */
export const ErrorMessage = defineMessage(
  'error',
  z.object({
    code: z.string().min(1).max(100),
    message: z.string().max(10_000),
    retryable: z.boolean(),
  }),
);

/** The message types every registry contains. */
export const BUILTIN_MESSAGES: readonly MessageDefinition[] = Object.freeze([
  HeartbeatMessage,
  ControlMessage,
  CheckpointMessage,
  PingMessage,
  PongMessage,
  ErrorMessage,
]);

/**
 * The message types a bus knows, by name. Immutable: {@link MessageRegistry.with} returns a new
 * registry. Every registry contains {@link BUILTIN_MESSAGES}.
 */
export class MessageRegistry {
  private constructor(private readonly definitions: ReadonlyMap<string, MessageDefinition>) {}

  /**
   * The built-in types plus `definitions`.
   * @throws InvalidInputError naming `type` when two different definitions share a name.
   */
  static create(...definitions: readonly MessageDefinition[]): MessageRegistry {
    return new MessageRegistry(new Map()).with(...BUILTIN_MESSAGES, ...definitions);
  }

  /**
   * A registry with `definitions` added. Adding the same definition again is a no-op.
   * @throws InvalidInputError naming `type` when a different definition already has the name.
   */
  with(...definitions: readonly MessageDefinition[]): MessageRegistry {
    const next = new Map(this.definitions);
    for (const definition of definitions) {
      const existing = next.get(definition.type);
      if (existing && existing !== definition) {
        throw new InvalidInputError(
          'type',
          `message type '${definition.type}' is already registered with another schema; give the new type another name`,
        );
      }
      next.set(definition.type, definition);
    }
    return new MessageRegistry(next);
  }

  /** The definition of `type`, if registered. */
  get(type: string): MessageDefinition | undefined {
    return this.definitions.get(type);
  }

  /** Whether `type` is registered. */
  has(type: string): boolean {
    return this.definitions.has(type);
  }

  /** The registered type names, sorted. */
  types(): string[] {
    return [...this.definitions.keys()].sort();
  }
}

/** The registry of {@link BUILTIN_MESSAGES}. */
export const defaultRegistry = MessageRegistry.create();

/** Options of {@link EnvelopeCodec}. */
export interface EnvelopeCodecOptions {
  /**
   * The message types accepted on both sides.
   * @default defaultRegistry
   */
  registry?: MessageRegistry;
  /**
   * The largest encoded message accepted, in bytes; larger incoming messages are dropped and
   * larger outgoing ones refused. An integer >= 256.
   * @default 262_144 (256 KiB)
   */
  maxMessageBytes?: number;
}

/** The complete, validated form of {@link EnvelopeCodecOptions}. */
export interface EnvelopeCodecConfig {
  readonly registry: MessageRegistry;
  readonly maxMessageBytes: number;
}

/** Fields the bus adds to a draft. */
export interface EnvelopeMeta {
  readonly id: string;
  readonly from: string;
  readonly ts: number;
  readonly replyTo?: string;
  readonly correlationId?: string;
}

/**
 * Validates options and fills in defaults.
 * @throws InvalidInputError naming `registry` or `maxMessageBytes`.
 */
export function compileEnvelopeCodecOptions(options: EnvelopeCodecOptions = {}): EnvelopeCodecConfig {
  const registry = options.registry ?? defaultRegistry;
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  if (!(registry instanceof MessageRegistry)) {
    throw new InvalidInputError('registry', 'must be a MessageRegistry (MessageRegistry.create(...definitions))');
  }
  if (!Number.isSafeInteger(maxMessageBytes) || maxMessageBytes < 256) {
    throw new InvalidInputError('maxMessageBytes', `must be an integer number of bytes >= 256, got ${String(maxMessageBytes)}`);
  }
  return Object.freeze({ registry, maxMessageBytes });
}

/** The addressing fields of an encoded envelope; a field that is absent or not a string is `undefined`. */
export interface EnvelopeAddressing {
  readonly id: string | undefined;
  /** The sending bus's client id. */
  readonly from: string | undefined;
  /** Set on requests: where the reply goes. */
  readonly replyTo: string | undefined;
  /** Set on replies: the `id` of the request answered. */
  readonly correlationId: string | undefined;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Reads who sent an encoded message and where its reply goes (or what it answers), without
 * validating the rest: what the embedded broker's access control checks. `undefined` when the bytes
 * are not a UTF-8 JSON object, which no bus accepts as a message. Parses as {@link EnvelopeCodec.decode}
 * does, so a bus that accepts the message sees the same fields.
 */
export function readEnvelopeAddressing(bytes: Uint8Array): EnvelopeAddressing | undefined {
  let json: unknown;
  try {
    json = JSON.parse(strictUtf8.decode(bytes));
  } catch {
    return undefined;
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return undefined;
  const fields = json as Record<string, unknown>;
  const text = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);
  return { id: text(fields.id), from: text(fields.from), replyTo: text(fields.replyTo), correlationId: text(fields.correlationId) };
}

/**
 * Turns drafts into envelope bytes and bytes back into validated envelopes. Pure: time and ids
 * come in through {@link EnvelopeMeta}.
 */
export class EnvelopeCodec {
  readonly config: EnvelopeCodecConfig;
  private readonly decoder = new TextDecoder('utf-8', { fatal: true });

  /** @throws InvalidInputError naming the invalid option. */
  constructor(options: EnvelopeCodecOptions = {}) {
    this.config = compileEnvelopeCodecOptions(options);
  }

  /**
   * Validates `draft` against its type's schema and encodes the envelope as UTF-8 JSON.
   * @returns the frozen envelope (payload as the schema output) and its bytes.
   * @throws InvalidInputError naming the field (`message.type`, `message.payload.seq`, `message`)
   *   when the type is unknown, the payload invalid, or the encoding longer than `maxMessageBytes`.
   */
  encode(draft: MessageDraft, meta: EnvelopeMeta): { envelope: Envelope; bytes: Buffer } {
    if (typeof draft !== 'object' || draft === null) {
      throw new InvalidInputError('message', 'must be a message draft { type, payload, to? } (see defineMessage(...).draft)');
    }
    const definition = typeof draft.type === 'string' ? this.config.registry.get(draft.type) : undefined;
    if (!definition) {
      throw new InvalidInputError('message.type', `${unknownTypeText(draft.type, this.config.registry)}; register it with defineMessage and MessageRegistry.create, and give the registry to the bus`);
    }
    const payload = definition.schema.safeParse(draft.payload);
    if (!payload.success) {
      const issue = firstIssue(payload.error.issues);
      throw new InvalidInputError(`message.${issuePath(['payload', ...issue.path])}`, `${issue.message} (message type '${definition.type}')`);
    }
    const candidate = {
      v: ENVELOPE_VERSION,
      id: meta.id,
      type: definition.type,
      from: meta.from,
      ...(draft.to === undefined ? {} : { to: draft.to }),
      ts: meta.ts,
      payload: payload.data,
      ...(meta.replyTo === undefined ? {} : { replyTo: meta.replyTo }),
      ...(meta.correlationId === undefined ? {} : { correlationId: meta.correlationId }),
    };
    const checked = envelopeSchema.safeParse(candidate);
    if (!checked.success) {
      const issue = firstIssue(checked.error.issues);
      throw new InvalidInputError(`message.${issuePath(issue.path)}`, issue.message);
    }
    const bytes = Buffer.from(JSON.stringify(candidate), 'utf8');
    if (bytes.length > this.config.maxMessageBytes) {
      throw new InvalidInputError(
        'message',
        `encodes to ${bytes.length} bytes, over the ${this.config.maxMessageBytes}-byte limit (maxMessageBytes); send less (for example a reference to the data) or raise the limit on every bus`,
      );
    }
    return { envelope: deepFreeze(candidate) as Envelope, bytes };
  }

  /**
   * Decodes and validates a received message.
   * @param topic the topic it arrived on (named in errors)
   * @throws BusMessageError naming the field, when the bytes are too many, not JSON, not an
   *   envelope, of an unknown type or with an invalid payload.
   */
  decode(topic: string, bytes: Uint8Array): Envelope {
    if (bytes.length > this.config.maxMessageBytes) {
      throw new BusMessageError(
        topic,
        'oversize',
        '(message)',
        `${bytes.length} bytes is over the ${this.config.maxMessageBytes}-byte limit (maxMessageBytes)`,
      );
    }
    let json: unknown;
    try {
      json = JSON.parse(this.decoder.decode(bytes));
    } catch (error) {
      throw new BusMessageError(topic, 'not-json', '(message)', 'is not UTF-8 JSON', { cause: error });
    }
    if (typeof json === 'object' && json !== null && 'v' in json && json.v !== ENVELOPE_VERSION) {
      throw new BusMessageError(topic, 'invalid-envelope', 'v', `unsupported envelope version ${JSON.stringify(json.v)}; this bus reads version ${ENVELOPE_VERSION}`);
    }
    const envelope = envelopeSchema.safeParse(json);
    if (!envelope.success) throw fromIssues(topic, 'invalid-envelope', envelope.error.issues, []);
    const definition = this.config.registry.get(envelope.data.type);
    if (!definition) {
      throw new BusMessageError(topic, 'unknown-type', 'type', unknownTypeText(envelope.data.type, this.config.registry));
    }
    const payload = definition.schema.safeParse(envelope.data.payload);
    if (!payload.success) throw fromIssues(topic, 'invalid-payload', payload.error.issues, ['payload']);
    const result: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(envelope.data)) if (value !== undefined) result[key] = value;
    result.payload = payload.data;
    return deepFreeze(result) as unknown as Envelope;
  }
}

type Issue = z.core.$ZodIssue;

function fromIssues(topic: string, reason: BusMessageErrorReason, issues: readonly Issue[], prefix: PropertyKey[]): BusMessageError {
  const issue = firstIssue(issues);
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more problem${issues.length > 2 ? 's' : ''})` : '';
  return new BusMessageError(topic, reason, issuePath([...prefix, ...issue.path]), `${issue.message}${more}`);
}

/** The first issue, descending into union alternatives so the path names the deepest field. */
function firstIssue(issues: readonly Issue[]): { path: PropertyKey[]; message: string } {
  const issue = issues[0];
  if (!issue) return { path: [], message: 'invalid' };
  let best = { path: [...issue.path], message: issue.message };
  if (issue.code === 'invalid_union') {
    // A union (z.json) fails in every alternative; the one that got deepest names the real culprit.
    for (const alternative of issue.errors) {
      const inner = firstIssue(alternative);
      if (issue.path.length + inner.path.length > best.path.length) {
        best = { path: [...issue.path, ...inner.path], message: inner.message };
      }
    }
  }
  return best;
}

function issuePath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(message)';
  let text = '';
  for (const key of path) {
    if (typeof key === 'number') text += `[${key}]`;
    else text += text === '' ? String(key) : `.${String(key)}`;
  }
  return text;
}

function unknownTypeText(type: unknown, registry: MessageRegistry): string {
  return `unknown message type ${JSON.stringify(type)} (known: ${registry.types().join(', ')})`;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
