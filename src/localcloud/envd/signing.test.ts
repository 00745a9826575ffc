import { getSignature } from 'e2b';
import { describe, expect, it } from 'vitest';
import { isSignableFileRequest, refuseSignature, signedWith } from './signing.js';

const TOKEN = 'access-token-of-the-sandbox';
const NOW_MS = 1_800_000_000_000;

/** The query of a file URL signed by the pinned SDK's own getSignature. */
async function signedQuery(path: string, operation: 'read' | 'write', user: string | undefined, expirationInSeconds?: number): Promise<URLSearchParams> {
  const { signature, expiration } = await getSignature({ path, operation, user, envdAccessToken: TOKEN, expirationInSeconds });
  const query = new URLSearchParams({ path, signature });
  if (user !== undefined) query.set('username', user);
  if (expiration !== null) query.set('signature_expiration', String(expiration));
  return query;
}

describe('signed file URLs', () => {
  it('accepts what the SDK signs, for each operation, user and expiration', async () => {
    for (const user of [undefined, 'user', 'root']) {
      expect(refuseSignature(await signedQuery('hello.txt', 'read', user), 'GET', TOKEN, Date.now())).toBeUndefined();
      expect(refuseSignature(await signedQuery('/home/user/a b.txt', 'write', user, 120), 'POST', TOKEN, Date.now())).toBeUndefined();
    }
  });

  it("refuses another token's, path's or operation's signature, and an expired one, in envd's words", async () => {
    const query = await signedQuery('hello.txt', 'read', 'user', 60);
    expect(signedWith(query, 'GET', 'another-token')).toBe(false);
    expect(refuseSignature(query, 'POST', TOKEN, Date.now())).toBe('invalid signature');
    const otherPath = new URLSearchParams(query);
    otherPath.set('path', 'other.txt');
    expect(refuseSignature(otherPath, 'GET', TOKEN, Date.now())).toBe('invalid signature');
    const later = Date.now() + 61_000;
    expect(refuseSignature(query, 'GET', TOKEN, later)).toBe('signature is already expired');
    const unsigned = new URLSearchParams({ path: 'hello.txt' });
    expect(refuseSignature(unsigned, 'GET', TOKEN, NOW_MS)).toBe('missing signature query parameter');
    const badExpiration = new URLSearchParams(query);
    badExpiration.set('signature_expiration', 'soon');
    expect(refuseSignature(badExpiration, 'GET', TOKEN, NOW_MS)).toContain('invalid signature_expiration');
  });

  it('lets only GET and POST /files be signed', () => {
    expect([isSignableFileRequest('GET', '/files'), isSignableFileRequest('POST', '/files'), isSignableFileRequest('DELETE', '/files'), isSignableFileRequest('POST', '/process.Process/Start')]).toEqual([true, true, false, false]);
  });
});
