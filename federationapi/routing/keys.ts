import type { Hono } from 'hono';
import type { JsonObject } from '../../internal/matrix/types.js';
import type { SigningIdentity } from '../../internal/signingidentity.js';

/**
 * GET /_matrix/key/v2/server: our verify keys, signed with the current key. The answer is
 * cached until half its validity has passed, so that a burst of key fetches costs one
 * signature.
 */
export function addServerKeyRoutes(key: Hono, identity: SigningIdentity, now: () => number = Date.now): void {
  let cached: { body: string; refreshAt: number } | undefined;
  const build = (): string => {
    const t = now();
    const oldVerifyKeys: JsonObject = {};
    for (const k of identity.oldKeys) oldVerifyKeys[k.keyId] = { key: k.publicKeyBase64, expired_ts: k.expiredTs };
    const doc: JsonObject = {
      server_name: identity.serverName,
      valid_until_ts: t + identity.keyValidityPeriodMs,
      verify_keys: { [identity.keyId]: { key: identity.publicKeyBase64 } },
      old_verify_keys: oldVerifyKeys,
    };
    cached = { body: JSON.stringify(identity.signJson(doc)), refreshAt: t + identity.keyValidityPeriodMs / 2 };
    return cached.body;
  };
  const handler = (): Response => {
    const body = cached && now() < cached.refreshAt ? cached.body : build();
    return new Response(body, { headers: { 'Content-Type': 'application/json' } });
  };
  key.get('/v2/server', handler);
  // The deprecated form with a key ID answers with every key, as the spec allows.
  key.get('/v2/server/:keyId', handler);
}
