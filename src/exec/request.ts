import { z } from 'zod';
import { InvalidInputError } from '../core/index.js';
import { EXEC_LANGUAGES, type ExecLanguage } from './executor.js';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const USER_NAME = /^[A-Za-z0-9._@:-]{1,128}$/;

/** Largest program accepted, in bytes of UTF-8. */
export const MAX_CODE_BYTES = 1_048_576;

/**
 * One execution request as HTTP, MCP and the CLI send it. Unknown fields are refused, so a misspelt
 * option (`timeout` for `timeoutMs`) is reported instead of silently ignored.
 */
export const execRequestSchema = z
  .strictObject({
    code: z
      .string({ error: 'must be the program text, a string' })
      .refine((code) => Buffer.byteLength(code) <= MAX_CODE_BYTES, `must be at most ${MAX_CODE_BYTES} bytes`),
    language: z.enum(EXEC_LANGUAGES as [ExecLanguage, ...ExecLanguage[]], { error: `must be one of ${EXEC_LANGUAGES.join(', ')}` }).default('python'),
    user: z.string().regex(USER_NAME, "must be 1-128 letters, digits or . _ @ : - (who the execution runs for; fairness is per user)").default('anonymous'),
    priority: z.number().int('must be a whole number').min(-10).max(10).default(0),
    timeoutMs: z.number().int('must be a whole number of ms').min(1).optional(),
    env: z
      .record(z.string().regex(ENV_NAME, 'env var names are letters, digits and underscores, not starting with a digit'), z.string())
      .default({}),
    session: z.string().min(1).max(128).optional(),
  });

/** A request after validation and defaults. */
export type ExecRequestInput = z.input<typeof execRequestSchema>;
export type ParsedExecRequest = z.output<typeof execRequestSchema>;

/**
 * Validates an execution request from outside (HTTP body, MCP arguments, CLI flags).
 * @throws InvalidInputError naming the first field at fault (e.g. `language`, `env.1BAD`) and what is allowed.
 */
export function parseExecRequest(raw: unknown): ParsedExecRequest {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new InvalidInputError('request', 'must be a JSON object like {"code": "print(1)", "language": "python"}');
  }
  const parsed = execRequestSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  if (issue.code === 'unrecognized_keys') {
    throw new InvalidInputError(issue.keys.join(', '), `unknown field; allowed: ${Object.keys(execRequestSchema.shape).join(', ')}`);
  }
  const message = issue.code === 'invalid_key' ? (issue.issues[0]?.message ?? issue.message) : issue.message;
  throw new InvalidInputError(issue.path.map(String).join('.') || 'request', message);
}
