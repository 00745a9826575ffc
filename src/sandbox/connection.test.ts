import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../core/index.js';
import { apiKeyOf, resolveSandboxConnection, type ResolveSandboxConnectionOptions } from './connection.js';
import { MissingApiKeyError } from './errors.js';

const local = { apiUrl: 'http://127.0.0.1:4000', sandboxUrl: 'http://127.0.0.1:4001', apiKey: 'local-key' };

describe('resolveSandboxConnection', () => {
  it.each([
    { name: 'e2b: only the API key, URLs left to the SDK', options: { kind: 'e2b', env: { E2B_API_KEY: 'e2b_123' } }, expected: { apiKey: 'e2b_123' } },
    { name: 'e2b ignores a local connection', options: { kind: 'e2b', local, env: { E2B_API_KEY: 'e2b_123' } }, expected: { apiKey: 'e2b_123' } },
    { name: 'local: the given connection', options: { kind: 'local', local, env: {} }, expected: local },
    {
      name: 'local: sandboxUrl defaults to apiUrl',
      options: { kind: 'local', local: { apiUrl: local.apiUrl, apiKey: 'k' }, env: { E2B_API_KEY: 'ignored' } },
      expected: { apiKey: 'k', apiUrl: local.apiUrl, sandboxUrl: local.apiUrl },
    },
  ] satisfies { name: string; options: ResolveSandboxConnectionOptions; expected: object }[])('$name', ({ options, expected }) => {
    expect(resolveSandboxConnection(options)).toEqual(expected);
  });

  it.each([
    { options: { kind: 'e2b', env: {} }, field: 'E2B_API_KEY', message: /E2B_API_KEY: is not set.*export E2B_API_KEY=.*--sandbox local/ },
    { options: { kind: 'e2b', env: { E2B_API_KEY: ' ' } }, field: 'E2B_API_KEY', message: /is not set/ },
    { options: { kind: 'local', env: {} }, field: 'local', message: /startLocalCloud\(\.\.\.\)\.connection/ },
    { options: { kind: 'local', local: { ...local, apiKey: '' }, env: {} }, field: 'local.apiKey', message: /non-empty/ },
    { options: { kind: 'local', local: { ...local, apiUrl: 'localhost:4000' }, env: {} }, field: 'local.apiUrl', message: /http\(s\) URL/ },
    { options: { kind: 'cloud', env: {} }, field: 'kind', message: /must be one of local, e2b, got cloud/ },
  ])('refuses $field: $message', ({ options, field, message }) => {
    const error = (() => {
      try {
        resolveSandboxConnection(options as ResolveSandboxConnectionOptions);
      } catch (caught) {
        return caught;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(InvalidInputError);
    expect((error as InvalidInputError).field).toBe(field);
    expect((error as Error).message).toMatch(message);
  });
});

describe('apiKeyOf', () => {
  it('takes the connection\'s key first, else E2B_API_KEY', () => {
    expect(apiKeyOf({ apiKey: 'given' }, { E2B_API_KEY: 'from-env' })).toBe('given');
    expect(apiKeyOf({ apiUrl: 'http://127.0.0.1:4000' }, { E2B_API_KEY: 'from-env' })).toBe('from-env');
  });

  it.each([{ connection: {}, env: {} }, { connection: { apiKey: '' }, env: { E2B_API_KEY: 'ignored' } }])(
    'refuses $connection with $env with the one MissingApiKeyError',
    ({ connection, env }) => {
      const error = (() => {
        try {
          return apiKeyOf(connection, env);
        } catch (caught) {
          return caught;
        }
      })();
      expect(error).toBeInstanceOf(MissingApiKeyError);
      expect(error).toBeInstanceOf(InvalidInputError);
      expect(error).toMatchObject({ name: 'MissingApiKeyError', field: 'E2B_API_KEY', retryable: false });
      expect((error as Error).message).toBe(
        'E2B_API_KEY: is not set, and E2B cloud sandboxes need it: export E2B_API_KEY=<your key from https://e2b.dev/dashboard>, ' +
          'or use --sandbox local to run sandboxes on this machine',
      );
    },
  );
});
