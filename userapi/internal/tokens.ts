import { createHash, randomBytes } from 'node:crypto';

/** A new access token: 32 random bytes, URL-safe, with a recognisable prefix. */
export function newAccessToken(): string {
  return `syt_${randomBytes(32).toString('base64url')}`;
}

/** A new refresh token: as an access token, with its own prefix so the two are never confused. */
export function newRefreshToken(): string {
  return `syr_${randomBytes(32).toString('base64url')}`;
}

/** A new single-use login token (m.login.token). */
export function newLoginToken(): string {
  return `syl_${randomBytes(32).toString('base64url')}`;
}

/** What is stored: the token's SHA-256, so the database alone cannot authenticate anyone. */
export function hashAccessToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

/** A device ID as clients expect: 10 upper-case letters. */
export function newDeviceId(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
  const bytes = randomBytes(10);
  let out = '';
  for (const b of bytes) out += alphabet[b % 26];
  return out;
}
