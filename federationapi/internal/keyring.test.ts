import type { Kysely } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildEvent, generateSigningKey, signJson, type JsonObject, type SigningKey } from '../../internal/matrix/index.js';
import type { SigningIdentity } from '../../internal/signingidentity.js';
import { runMigrations } from '../../internal/sqlutil/index.js';
import { describeEachDatabase } from '../../internal/sqlutil/testing.js';
import { federationapiMigrations } from '../storage/migrations.js';
import { ServerKeyStore, type FederationapiServerKeysDatabase } from '../storage/serverkeys.js';
import { KeyRing, MAX_KEY_VALIDITY_MS, NEGATIVE_CACHE_MS, verifyServerKeyResponse, type KeyPerspective, type ServerKeyFetcher } from './keyring.js';

const T0 = 1_700_000_000_000;
const DAY = 24 * 60 * 60 * 1000;

function identityOf(serverName: string, key: SigningKey, oldKeys: SigningIdentity['oldKeys'] = []): SigningIdentity {
  return {
    serverName,
    keyId: key.keyId,
    publicKeyBase64: key.publicKeyBase64,
    signJson: (o) => signJson(o, serverName, key.keyId, key),
    buildEvent: (fields, version) => buildEvent(fields, version, serverName, key.keyId, key),
    signRequest: () => '',
      signEvent: (pdu) => pdu,
    oldKeys,
    keyValidityPeriodMs: DAY,
  };
}

/** A remote server's /_matrix/key/v2/server response. */
function keyResponse(
  serverName: string,
  key: SigningKey,
  validUntilTs: number,
  opts: { old?: Array<{ key: SigningKey; expiredTs: number }>; signWith?: SigningKey; claimName?: string } = {},
): JsonObject {
  const old: JsonObject = {};
  for (const o of opts.old ?? []) old[o.key.keyId] = { key: o.key.publicKeyBase64, expired_ts: o.expiredTs };
  const doc: JsonObject = {
    server_name: opts.claimName ?? serverName,
    valid_until_ts: validUntilTs,
    verify_keys: { [key.keyId]: { key: key.publicKeyBase64 } },
    old_verify_keys: old,
  };
  // signWith: a forger's key under the listed key ID.
  return signJson(doc, opts.claimName ?? serverName, key.keyId, opts.signWith ?? key);
}

interface FakeFetcher extends ServerKeyFetcher {
  direct: string[];
  notary: Array<{ notary: string; request: unknown }>;
}

function fakeFetcher(
  direct: (server: string) => unknown,
  notary: (notary: string, request: { server_keys: Record<string, unknown> }) => unknown = () => {
    throw new Error('no notary');
  },
): FakeFetcher {
  const f: FakeFetcher = {
    direct: [],
    notary: [],
    fetchServerKeys: async (server) => {
      f.direct.push(server);
      return direct(server);
    },
    queryNotary: async (n, request) => {
      f.notary.push({ notary: n, request });
      return notary(n, request);
    },
  };
  return f;
}

describe('verifyServerKeyResponse', () => {
  const key = generateSigningKey();
  it('accepts a self-signed response and keeps only the origin signature', () => {
    const doc = signJson(keyResponse('a.test', key, T0), 'other.test', key.keyId, key);
    const v = verifyServerKeyResponse(doc, 'a.test');
    expect(v.keys).toEqual([{ keyId: key.keyId, publicKey: key.publicKeyBase64, expiredTs: null }]);
    expect(Object.keys(v.json.signatures as JsonObject)).toEqual(['a.test']);
  });
  it('refuses missing valid_until_ts, missing signatures, unlisted signing keys and bad keys', () => {
    const good = keyResponse('a.test', key, T0);
    expect(() => verifyServerKeyResponse({ ...good, valid_until_ts: undefined }, 'a.test')).toThrow(/valid_until_ts/);
    expect(() => verifyServerKeyResponse({ ...good, signatures: {} }, 'a.test')).toThrow(/not signed/);
    const other = generateSigningKey();
    const signedByUnlisted = signJson({ ...good, signatures: {} }, 'a.test', other.keyId, other);
    expect(() => verifyServerKeyResponse(signedByUnlisted, 'a.test')).toThrow(/any of its verify_keys/);
    expect(() => verifyServerKeyResponse({ ...good, verify_keys: { [key.keyId]: { key: 'nope' } } }, 'a.test')).toThrow(/public key/);
    expect(() => verifyServerKeyResponse([good], 'a.test')).toThrow(/JSON object/);
  });
});

describeEachDatabase<FederationapiServerKeysDatabase>('KeyRing', (ctx) => {
  let store: ServerKeyStore;
  beforeAll(async () => {
    await runMigrations(ctx.db() as unknown as Kysely<unknown>, ctx.dialect, 'federationapi', federationapiMigrations);
    store = new ServerKeyStore(ctx.db());
  });
  const us = identityOf('us.test', generateSigningKey());
  let n = 0;
  const serverName = (): string => `remote${++n}.test`;
  const ring = (fetcher: ServerKeyFetcher, opts: { perspectives?: KeyPerspective[]; preferDirectFetch?: boolean; clock?: { t: number } } = {}) => {
    const clock = opts.clock ?? { t: T0 };
    return new KeyRing({
      store,
      fetcher,
      identity: us,
      perspectives: opts.perspectives ?? [],
      preferDirectFetch: opts.preferDirectFetch ?? true,
      now: () => clock.t,
      fetchTimeoutMs: 200,
    });
  };

  it('fetches from the server, then answers from memory and later from the database', async () => {
    const server = serverName();
    const key = generateSigningKey();
    const fetcher = fakeFetcher(() => keyResponse(server, key, T0 + DAY));
    const kr = ring(fetcher);
    expect(kr.keyLookup(server, key.keyId, T0)).toBeUndefined();
    await kr.ensure([{ serverName: server, keyIds: [key.keyId], validAt: T0 }]);
    expect(kr.keyLookup(server, key.keyId, T0)).toBe(key.publicKeyBase64);
    await kr.ensure([{ serverName: server, keyIds: [key.keyId], validAt: T0 + 1000 }]);
    expect(fetcher.direct).toEqual([server]);

    const fetcher2 = fakeFetcher(() => {
      throw new Error('must not fetch');
    });
    const kr2 = ring(fetcher2);
    expect(await kr2.requestKeyLookup(server, key.keyId)).toBe(key.publicKeyBase64);
    expect(fetcher2.direct).toEqual([]);
    expect((await store.keysOf(server))[0]).toMatchObject({ keyId: key.keyId, validUntilTs: T0 + DAY, expiredTs: null, fetchedTs: T0 });
  });

  it('applies the validity rules: valid_until_ts (capped at 7 days) and expired_ts of old keys', async () => {
    const server = serverName();
    const key = generateSigningKey();
    const old = generateSigningKey();
    const fetcher = fakeFetcher(() => keyResponse(server, key, T0 + 30 * DAY, { old: [{ key: old, expiredTs: T0 - DAY }] }));
    const clock = { t: T0 };
    const kr = ring(fetcher, { clock });
    await kr.ensure([{ serverName: server, keyIds: [key.keyId, old.keyId], validAt: T0 - 2 * DAY }]);
    // current key: valid up to the cap, not after (room versions 5+); any time without validAt
    expect(kr.keyLookup(server, key.keyId, T0 + MAX_KEY_VALIDITY_MS)).toBe(key.publicKeyBase64);
    expect(kr.keyLookup(server, key.keyId, T0 + MAX_KEY_VALIDITY_MS + 1)).toBeUndefined();
    expect(kr.keyLookup(server, key.keyId, undefined)).toBe(key.publicKeyBase64);
    // old key: valid for events before it expired, not after, and not for requests now
    expect(kr.keyLookup(server, old.keyId, T0 - 2 * DAY)).toBe(old.publicKeyBase64);
    expect(kr.keyLookup(server, old.keyId, T0 - DAY + 1)).toBeUndefined();
    expect(kr.keyLookup(server, old.keyId, undefined)).toBe(old.publicKeyBase64);
    expect(await kr.requestKeyLookup(server, old.keyId)).toBeUndefined();
    expect(fetcher.direct).toHaveLength(2); // the request lookup tried once more for the old key

    // An expired key is refetched (the server may have renewed it), once per negative-cache period.
    clock.t = T0 + 8 * DAY;
    expect(await kr.requestKeyLookup(server, key.keyId)).toBe(key.publicKeyBase64); // renewed: now + 7 days
    expect(fetcher.direct).toHaveLength(3);
  });

  it('refuses an expired key for a v5+ event and does not refetch it within a minute', async () => {
    const server = serverName();
    const key = generateSigningKey();
    const fetcher = fakeFetcher(() => keyResponse(server, key, T0 + 1000));
    const clock = { t: T0 };
    const kr = ring(fetcher, { clock });
    const req = { serverName: server, keyIds: [key.keyId], validAt: T0 + 5000 };
    await kr.ensure([req]);
    expect(kr.keyLookup(server, key.keyId, req.validAt)).toBeUndefined();
    expect(kr.keyLookup(server, key.keyId, T0 + 1000)).toBe(key.publicKeyBase64);
    await kr.ensure([req]);
    expect(fetcher.direct).toHaveLength(1);
    clock.t += NEGATIVE_CACHE_MS + 1;
    await kr.ensure([req]);
    expect(fetcher.direct).toHaveLength(2);
  });

  it('refuses a forged self-signature, a server_name mismatch and garbage', async () => {
    const key = generateSigningKey();
    const forger = generateSigningKey();
    const forged = serverName();
    const mismatch = serverName();
    const garbage = serverName();
    const fetcher = fakeFetcher((s) => {
      if (s === forged) return keyResponse(s, key, T0 + DAY, { signWith: forger });
      if (s === mismatch) return keyResponse(s, key, T0 + DAY, { claimName: 'evil.test' });
      return 'not json at all';
    });
    const kr = ring(fetcher);
    await kr.ensure([forged, mismatch, garbage].map((s) => ({ serverName: s, keyIds: [key.keyId], validAt: T0 })));
    for (const s of [forged, mismatch, garbage]) {
      expect(kr.keyLookup(s, key.keyId, undefined)).toBeUndefined();
      expect(await store.keysOf(s)).toEqual([]);
    }
    expect(fetcher.direct.sort()).toEqual([forged, mismatch, garbage].sort());
  });

  it('asks notaries first unless preferDirectFetch, checking the notary signature and the origin signature', async () => {
    const notaryKey = generateSigningKey();
    const wrongNotaryKey = generateSigningKey();
    const notary: KeyPerspective = { serverName: 'notary.test', keys: [{ keyId: notaryKey.keyId, publicKey: notaryKey.publicKeyBase64 }] };
    const good = serverName();
    const badNotarySig = serverName();
    const forgedOrigin = serverName();
    const key = generateSigningKey();
    const forger = generateSigningKey();
    const notarise = (doc: JsonObject, k: SigningKey) => signJson(doc, 'notary.test', notaryKey.keyId, k);
    const fetcher = fakeFetcher(
      (s) => keyResponse(s, key, T0 + DAY),
      () => ({
        server_keys: [
          notarise(keyResponse(good, key, T0 + DAY), notaryKey),
          notarise(keyResponse(badNotarySig, key, T0 + DAY), wrongNotaryKey),
          notarise(keyResponse(forgedOrigin, key, T0 + DAY, { signWith: forger }), notaryKey),
          notarise(keyResponse('unasked.test', key, T0 + DAY), notaryKey),
        ],
      }),
    );
    const kr = ring(fetcher, { perspectives: [notary], preferDirectFetch: false });
    await kr.ensure([good, badNotarySig, forgedOrigin].map((s) => ({ serverName: s, keyIds: [key.keyId], validAt: T0 })));
    expect(fetcher.notary).toEqual([
      {
        notary: 'notary.test',
        request: {
          server_keys: {
            [good]: { [key.keyId]: { minimum_valid_until_ts: T0 } },
            [badNotarySig]: { [key.keyId]: { minimum_valid_until_ts: T0 } },
            [forgedOrigin]: { [key.keyId]: { minimum_valid_until_ts: T0 } },
          },
        },
      },
    ]);
    // The refused entries were then fetched directly (where the fake server answers honestly).
    expect(fetcher.direct.sort()).toEqual([badNotarySig, forgedOrigin].sort());
    for (const s of [good, badNotarySig, forgedOrigin]) expect(kr.keyLookup(s, key.keyId, T0)).toBe(key.publicKeyBase64);
    expect(kr.keyLookup('unasked.test', key.keyId, T0)).toBeUndefined();
    // The stored response carries the origin signature only.
    const [stored] = await store.responsesOf(good);
    expect(Object.keys((JSON.parse(stored!.json) as { signatures: object }).signatures)).toEqual([good]);
  });

  it('falls back to the notaries when the direct fetch fails', async () => {
    const notaryKey = generateSigningKey();
    const notary: KeyPerspective = { serverName: 'notary.test', keys: [{ keyId: notaryKey.keyId, publicKey: notaryKey.publicKeyBase64 }] };
    const server = serverName();
    const key = generateSigningKey();
    const fetcher = fakeFetcher(
      () => {
        throw new Error('connection refused');
      },
      () => ({ server_keys: [signJson(keyResponse(server, key, T0 + DAY), 'notary.test', notaryKey.keyId, notaryKey)] }),
    );
    const kr = ring(fetcher, { perspectives: [notary], preferDirectFetch: true });
    await kr.ensure([{ serverName: server, keyIds: [key.keyId], validAt: undefined }]);
    expect(fetcher.direct).toEqual([server]);
    expect(fetcher.notary).toEqual([{ notary: 'notary.test', request: { server_keys: { [server]: { [key.keyId]: {} } } } }]);
    expect(kr.keyLookup(server, key.keyId, undefined)).toBe(key.publicKeyBase64);
  });

  it('shares one fetch among concurrent ensures', async () => {
    const server = serverName();
    const key = generateSigningKey();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const fetcher = fakeFetcher(async () => {
      await gate;
      return keyResponse(server, key, T0 + DAY);
    });
    const kr = ring(fetcher);
    const req = [{ serverName: server, keyIds: [key.keyId], validAt: T0 }];
    const all = Promise.all([kr.ensure(req), kr.ensure(req), kr.requestKeyLookup(server, key.keyId)]);
    await new Promise((r) => setTimeout(r, 20));
    release();
    const [, , viaRequest] = await all;
    expect(viaRequest).toBe(key.publicKeyBase64);
    expect(fetcher.direct).toEqual([server]);
  });

  it('remembers a failed server for a minute', async () => {
    const server = serverName();
    const key = generateSigningKey();
    let up = false;
    const fetcher = fakeFetcher(() => {
      if (!up) throw new Error('down');
      return keyResponse(server, key, T0 + DAY);
    });
    const clock = { t: T0 };
    const kr = ring(fetcher, { clock });
    const req = [{ serverName: server, keyIds: [key.keyId], validAt: T0 }];
    await kr.ensure(req);
    up = true;
    await kr.ensure(req);
    await kr.ensure([{ serverName: server, keyIds: ['ed25519:other'], validAt: T0 }]);
    expect(fetcher.direct).toHaveLength(1);
    expect(kr.keyLookup(server, key.keyId, T0)).toBeUndefined();
    clock.t += NEGATIVE_CACHE_MS + 1;
    await kr.ensure(req);
    expect(fetcher.direct).toHaveLength(2);
    expect(kr.keyLookup(server, key.keyId, T0)).toBe(key.publicKeyBase64);
  });

  it('gives up on a fetch that hangs', async () => {
    const server = serverName();
    const fetcher = fakeFetcher(() => new Promise(() => undefined));
    const kr = ring(fetcher);
    expect(await kr.requestKeyLookup(server, 'ed25519:x')).toBeUndefined();
  });

  it('answers our own keys from the identity without fetching', async () => {
    const key = generateSigningKey();
    const old = generateSigningKey();
    const identity = identityOf('self.test', key, [{ keyId: old.keyId, publicKeyBase64: old.publicKeyBase64, expiredTs: T0 }]);
    const fetcher = fakeFetcher(() => {
      throw new Error('must not fetch');
    });
    const kr = new KeyRing({ store, fetcher, identity, perspectives: [], preferDirectFetch: true, now: () => T0 + 1 });
    await kr.ensure([{ serverName: 'self.test', keyIds: [key.keyId, old.keyId, 'ed25519:nope'], validAt: T0 + 1 }]);
    expect(kr.keyLookup('self.test', key.keyId, T0 + 10 * DAY)).toBe(key.publicKeyBase64);
    expect(kr.keyLookup('self.test', old.keyId, T0)).toBe(old.publicKeyBase64);
    expect(kr.keyLookup('self.test', old.keyId, T0 + 1)).toBeUndefined();
    expect(await kr.requestKeyLookup('self.test', key.keyId)).toBe(key.publicKeyBase64);
    expect(fetcher.direct).toEqual([]);
    const own = kr.ownKeyResponse();
    expect(verifyServerKeyResponse(own, 'self.test').keys.map((k) => k.keyId)).toEqual([key.keyId, old.keyId]);
  });

  it('does not let a stale response undo a newer one', async () => {
    const server = serverName();
    const key = generateSigningKey();
    const next = generateSigningKey();
    // Newer: the key has been retired. Then a notary serves an older response listing it as current.
    let response = keyResponse(server, next, T0 + 2 * DAY, { old: [{ key, expiredTs: T0 }] });
    const fetcher = fakeFetcher(() => response);
    const clock = { t: T0 };
    const kr = ring(fetcher, { clock });
    await kr.ensure([{ serverName: server, keyIds: [next.keyId], validAt: T0 }]);
    response = keyResponse(server, key, T0 + DAY);
    clock.t += NEGATIVE_CACHE_MS + 1;
    await kr.ensure([{ serverName: server, keyIds: [key.keyId], validAt: T0 + 1 }]);
    expect(fetcher.direct).toHaveLength(2);
    expect(kr.keyLookup(server, key.keyId, T0 + 1)).toBeUndefined();
    expect((await store.keysOf(server)).find((k) => k.keyId === key.keyId)?.expiredTs).toBe(T0);
  });
});
