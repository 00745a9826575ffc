/**
 * Signed file URLs, as envd checks them: `sandbox.downloadUrl(path)` and `uploadUrl(path)` of a secure
 * sandbox carry `signature=v1_<sha256>` (and `signature_expiration`, unix seconds, when the SDK is given
 * `useSignatureExpiration`), so that anyone holding the URL may read or write that one file, as that user,
 * until then, without the sandbox's access token. The signature is the unpadded base64 SHA-256 of
 * `<path>:<read|write>:<username>:<envdAccessToken>[:<expiration>]`, path and username as the URL gives them.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

/** The file routes envd lets through with a signature instead of the access token. */
export function isSignableFileRequest(method: string | undefined, pathname: string): boolean {
  return pathname === '/files' && (method === 'GET' || method === 'POST');
}

/** The signature of a file URL of `method` for the sandbox whose access token is `accessToken`. */
function signatureOf(query: URLSearchParams, method: string | undefined, accessToken: string): string {
  const parts = [query.get('path') ?? '', method === 'POST' ? 'write' : 'read', query.get('username') ?? '', accessToken];
  const expiration = query.get('signature_expiration');
  if (expiration !== null) parts.push(expiration);
  return `v1_${createHash('sha256').update(parts.join(':'), 'utf8').digest('base64').replace(/=+$/, '')}`;
}

/** Whether the URL's signature was made with `accessToken` (its expiration aside). */
export function signedWith(query: URLSearchParams, method: string | undefined, accessToken: string): boolean {
  const given = Buffer.from(query.get('signature') ?? '');
  const expected = Buffer.from(signatureOf(query, method, accessToken));
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/**
 * Why a signed file request is refused (envd's words, which E2B's tests compare), or undefined when its
 * signature was made with `accessToken` and has not expired at `nowMs`.
 */
export function refuseSignature(query: URLSearchParams, method: string | undefined, accessToken: string, nowMs: number): string | undefined {
  if (query.get('signature') === null) return 'missing signature query parameter';
  const expiration = query.get('signature_expiration');
  if (expiration !== null && !/^-?\d+$/.test(expiration)) return 'invalid signature_expiration: give unix seconds, as the SDK\'s downloadUrl and uploadUrl do';
  if (!signedWith(query, method, accessToken)) return 'invalid signature';
  if (expiration !== null && Number(expiration) < Math.floor(nowMs / 1000)) return 'signature is already expired';
  return undefined;
}
