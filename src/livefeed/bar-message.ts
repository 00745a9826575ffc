import { z } from 'zod';
import { defineMessage } from '../bus/index.js';
import { type Bar, freezeBar, validateBar } from '../market/index.js';

const isoDateTime = z.iso.datetime({ offset: true });

const price = z.number().refine(Number.isFinite, 'must be a finite number');

/**
 * The payload of a `bar` message, as a user's publisher sends it on `ts/<swarm>/market/bars`:
 * `{ symbol, time, open, high, low, close, volume }`, where `time` is the start of the bar, in ms
 * since the epoch or as an ISO 8601 date-time with a zone (`2024-05-01T13:30:00Z`).
 */
export const barPayloadSchema = z.strictObject({
  symbol: z.string().min(1).max(128),
  time: z.custom<number | string>((value) => (Number.isSafeInteger(value) && (value as number) >= 0) || isoDateTime.safeParse(value).success, {
    message: 'must be ms since the epoch (a whole number >= 0) or an ISO 8601 date-time with a zone, such as "2024-05-01T13:30:00Z"',
  }),
  open: price,
  high: price,
  low: price,
  close: price,
  volume: z.number().nonnegative().refine(Number.isFinite, 'must be a finite number'),
});

/** A `bar` payload (see {@link barPayloadSchema}). */
export type BarPayload = z.input<typeof barPayloadSchema>;

/**
 * `bar`: one market bar coming in on a deployment's `market/bars` topic. The bus checks only that
 * the payload is an object, so that a malformed bar reaches the bus feed, which drops it, counts it
 * and says which field is wrong and what it allows ({@link parseBarPayload}), instead of vanishing
 * into the bus's count of invalid messages. Register it on the deployment's bus:
 * `MessageRegistry.create(BarMessage)`.
 */
export const BarMessage = defineMessage(
  'bar',
  z.custom<BarPayload>((value) => typeof value === 'object' && value !== null && !Array.isArray(value), { message: 'must be an object { symbol, time, open, high, low, close, volume }' }),
);

/** What {@link parseBarPayload} gives: the bar, or the first field at fault and what it allows. */
export type ParsedBar = { readonly ok: true; readonly bar: Bar } | { readonly ok: false; readonly field: string; readonly problem: string };

/**
 * A frozen {@link Bar} from a `bar` payload: the shape checked by {@link barPayloadSchema}, then the
 * market's own rules ({@link validateBar}: prices > 0, high and low around open and close).
 */
export function parseBarPayload(payload: unknown): ParsedBar {
  const parsed = barPayloadSchema.safeParse(payload);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue === undefined || issue.path.length === 0 ? '(payload)' : issue.path.map(String).join('.');
    return { ok: false, field, problem: issue?.message ?? 'invalid' };
  }
  const { time, ...rest } = parsed.data;
  const bar = freezeBar({ ...rest, timeMs: typeof time === 'number' ? time : Date.parse(time) });
  const problems = validateBar(bar);
  const first = problems[0];
  if (first !== undefined) return { ok: false, field: first.field === 'timeMs' ? 'time' : first.field, problem: first.message };
  return { ok: true, bar };
}
