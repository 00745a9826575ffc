import { randomBytes } from 'node:crypto';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

/**
 * A random identifier of lowercase letters and digits, from the OS's secure random source.
 * Security-relevant (sandbox ids, access tokens), so it never comes from a seeded `Rng`.
 */
export function randomId(length = 20): string {
  const bytes = randomBytes(length);
  let id = '';
  // 252 = 7 * 36: bytes at or above it are rejected so every character is equally likely.
  for (const byte of bytes) if (byte < 252) id += ALPHABET[byte % 36];
  return id.length === length ? id : id + randomId(length - id.length);
}

/** A random hex token of `bytes` bytes. */
export function randomToken(bytes = 24): string {
  return randomBytes(bytes).toString('hex');
}
