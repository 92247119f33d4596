import { Hono } from 'hono';
import type { Kysely } from 'kysely';
import pino from 'pino';
import { beforeAll, expect, it } from 'vitest';
import { matrixErrorHandler } from '../../internal/httputil/index.js';
import { buildEvent, generateSigningKey, signJson, verifyJsonSignature, type JsonObject, type SigningKey } from '../../internal/matrix/index.js';
import type { SigningIdentity } from '../../internal/signingidentity.js';
import { runMigrations } from '../../internal/sqlutil/index.js';
import { describeEachDatabase } from '../../internal/sqlutil/testing.js';
import { KeyRing, NEGATIVE_CACHE_MS, type ServerKeyFetcher } from '../internal/keyring.js';
import { federationapiMigrations } from '../storage/migrations.js';
import { ServerKeyStore, type FederationapiServerKeysDatabase } from '../storage/serverkeys.js';
import { addNotaryRoutes } from './notary.js';

const T0 = 1_700_000_000_000;
const DAY = 24 * 60 * 60 * 1000;

function identityOf(serverName: string, key: SigningKey): SigningIdentity {
  return {
    serverName,
    keyId: key.keyId,
    publicKeyBase64: key.publicKeyBase64,
    signJson: (o) => signJson(o, serverName, key.keyId, key),
    buildEvent: (fields, version) => buildEvent(fields, version, serverName, key.keyId, key),
    signRequest: () => '',
      signEvent: (pdu) => pdu,
    oldKeys: [],
    keyValidityPeriodMs: DAY,
  };
}

function keyResponse(serverName: string, key: SigningKey, validUntilTs: number): JsonObject {
  return signJson(
    { server_name: serverName, valid_until_ts: validUntilTs, verify_keys: { [key.keyId]: { key: key.publicKeyBase64 } }, old_verify_keys: {} },
    serverName,
    key.keyId,
    key,
  );
}

describeEachDatabase<FederationapiServerKeysDatabase>('notary routes', (ctx) => {
  const ourKey = generateSigningKey();
  const us = identityOf('us.test', ourKey);
  const remoteKey = generateSigningKey();
  const clock = { t: T0 };
  let remoteValidUntil = T0 + DAY;
  let remoteUp = true;
  let directFetches = 0;
  /** What old.test, a server whose keys have expired, answers next (an Error: it fails). */
  let oldServerAnswer: JsonObject | Error = new Error('unreachable');
  let oldServerFetches = 0;
  const fetcher: ServerKeyFetcher = {
    fetchServerKeys: async (server) => {
      if (server === 'old.test') {
        oldServerFetches++;
        if (oldServerAnswer instanceof Error) throw oldServerAnswer;
        return oldServerAnswer;
      }
      directFetches++;
      if (!remoteUp || server !== 'remote.test') throw new Error('unreachable');
      return keyResponse('remote.test', remoteKey, remoteValidUntil);
    },
    queryNotary: async () => {
      throw new Error('no notaries here');
    },
  };
  let app: Hono;
  let store: ServerKeyStore;
  beforeAll(async () => {
    await runMigrations(ctx.db() as unknown as Kysely<unknown>, ctx.dialect, 'federationapi', federationapiMigrations);
    store = new ServerKeyStore(ctx.db());
    const keyRing = new KeyRing({ store, fetcher, identity: us, perspectives: [], preferDirectFetch: true, now: () => clock.t });
    const key = new Hono();
    addNotaryRoutes(key, keyRing, us, () => clock.t);
    app = new Hono();
    app.route('/_matrix/key', key);
    app.onError(matrixErrorHandler(pino({ level: 'silent' })));
  });

  const post = (body: unknown) =>
    app.request('/_matrix/key/v2/query', { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'Content-Type': 'application/json' } });
  const serverKeys = async (res: Response): Promise<JsonObject[]> => {
    expect(res.status).toBe(200);
    return ((await res.json()) as { server_keys: JsonObject[] }).server_keys;
  };
  const signedByBoth = (entry: JsonObject, origin: string, originKey: SigningKey) => {
    expect(verifyJsonSignature(entry, origin, originKey.keyId, originKey.publicKeyBase64)).toBe(true);
    expect(verifyJsonSignature(entry, 'us.test', ourKey.keyId, ourKey.publicKeyBase64)).toBe(true);
  };

  it('POST: answers a remote server with its own response, signed by us as well', async () => {
    const keys = await serverKeys(await post({ server_keys: { 'remote.test': { [remoteKey.keyId]: { minimum_valid_until_ts: T0 } } } }));
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatchObject({ server_name: 'remote.test', valid_until_ts: T0 + DAY });
    signedByBoth(keys[0]!, 'remote.test', remoteKey);
    expect(directFetches).toBe(1);
    // Stored now: asked again, nothing is fetched.
    const again = await serverKeys(await post({ server_keys: { 'remote.test': {} } }));
    expect(again).toEqual(keys);
    expect(directFetches).toBe(1);
  });

  it('POST: answers our own keys from the identity', async () => {
    const keys = await serverKeys(await post({ server_keys: { 'us.test': {}, 'not a server name!': {} } }));
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatchObject({ server_name: 'us.test', verify_keys: { [ourKey.keyId]: { key: ourKey.publicKeyBase64 } } });
    signedByBoth(keys[0]!, 'us.test', ourKey);
  });

  it('GET: refetches when nothing stored is valid long enough, at most once a minute; serves the last response when the server is down', async () => {
    const before = directFetches;
    remoteValidUntil = T0 + 3 * DAY;
    const url = `/_matrix/key/v2/query/remote.test?minimum_valid_until_ts=${T0 + 2 * DAY}`;
    // Fetched less than a minute ago (previous test): the newest response we hold, no fetch.
    expect((await serverKeys(await app.request(url))).map((k) => k.valid_until_ts)).toEqual([T0 + DAY]);
    expect(directFetches).toBe(before);
    clock.t += NEGATIVE_CACHE_MS + 1;
    const keys = await serverKeys(await app.request(url));
    expect(directFetches).toBe(before + 1);
    expect(keys.map((k) => k.valid_until_ts)).toEqual([T0 + 3 * DAY]);
    signedByBoth(keys[0]!, 'remote.test', remoteKey);

    // Wanting more than any response offers: one refetch, then the newest we hold.
    const far = `/_matrix/key/v2/query/remote.test?minimum_valid_until_ts=${T0 + 10 * DAY}`;
    clock.t += NEGATIVE_CACHE_MS + 1;
    remoteUp = false;
    const stale = await serverKeys(await app.request(far));
    expect(stale.map((k) => k.valid_until_ts)).toEqual([T0 + 3 * DAY]);
    await serverKeys(await app.request(far));
    expect(directFetches).toBe(before + 2);

    // The deprecated form with a key ID.
    const byKeyId = await serverKeys(await app.request(`/_matrix/key/v2/query/remote.test/${encodeURIComponent(remoteKey.keyId)}`));
    expect(byKeyId).toHaveLength(1);
    // A server we know nothing of and cannot reach.
    expect(await serverKeys(await app.request('/_matrix/key/v2/query/unknown.test'))).toEqual([]);
    remoteUp = true;
  });

  it('asks a server whose keys have all expired again each time newer ones are wanted, and serves the expired key meanwhile (Sytest "Key notary server should return an expired key if it can\'t find any others")', async () => {
    const key0 = generateSigningKey();
    const expiry = clock.t - DAY;
    oldServerAnswer = keyResponse('old.test', key0, expiry);
    const ask = async (minimum?: number) =>
      serverKeys(await post({ server_keys: { 'old.test': { [key0.keyId]: minimum === undefined ? {} : { minimum_valid_until_ts: minimum } } } }));
    expect((await ask()).map((k) => k.valid_until_ts)).toEqual([expiry]);
    expect(oldServerFetches).toBe(1);
    // Newer keys wanted: asked again at once (the same expired answer), and that answer served.
    const second = await ask(expiry + 1000);
    expect(oldServerFetches).toBe(2);
    expect(second.map((k) => [k.valid_until_ts, Object.keys(k.verify_keys as JsonObject)])).toEqual([[expiry, [key0.keyId]]]);
    // The server fails: the expired key is still the answer.
    oldServerAnswer = new Error('400');
    const third = await ask(expiry + 1000);
    expect(oldServerFetches).toBe(3);
    expect(third.map((k) => k.valid_until_ts)).toEqual([expiry]);
  });

  it('keeps a key the origin server forgot, and answers it first when asked for it (Sytest "Key notary server must not overwrite a valid key with a spurious result")', async () => {
    const key1 = generateSigningKey();
    const key2 = generateSigningKey();
    const expiry = clock.t - DAY;
    // The previous test's server failed just now: a key ID never seen is still fetched at once.
    oldServerAnswer = keyResponse('old.test', key1, expiry + 2 * NEGATIVE_CACHE_MS);
    const ask = async (minimum: number) => serverKeys(await post({ server_keys: { 'old.test': { [key1.keyId]: { minimum_valid_until_ts: minimum } } } }));
    expect(Object.keys((await ask(expiry))[0]!.verify_keys as JsonObject)).toEqual([key1.keyId]);
    // The origin now answers with another key only.
    oldServerAnswer = keyResponse('old.test', key2, expiry + 2 * NEGATIVE_CACHE_MS + 1000);
    const before = oldServerFetches;
    await ask(clock.t);
    expect(oldServerFetches).toBe(before + 1);
    const third = await ask(expiry);
    expect(Object.keys(third[0]!.verify_keys as JsonObject)).toEqual([key1.keyId]);
    // An unknown key ID of a failing server is fetched once a minute, not on every request.
    oldServerAnswer = new Error('down');
    const fetches = oldServerFetches;
    const ghost = 'ed25519:ghost';
    await post({ server_keys: { 'old.test': { [ghost]: {} } } });
    await post({ server_keys: { 'old.test': { [ghost]: {} } } });
    expect(oldServerFetches).toBe(fetches + 1);
  });

  it('refuses bad requests', async () => {
    const err = async (res: Response, status: number, errcode: string) => {
      expect(res.status).toBe(status);
      expect(((await res.json()) as { errcode: string }).errcode).toBe(errcode);
    };
    await err(await post('{not json'), 400, 'M_NOT_JSON');
    await err(await post([]), 400, 'M_BAD_JSON');
    await err(await post({}), 400, 'M_BAD_JSON');
    await err(await post({ server_keys: [] }), 400, 'M_BAD_JSON');
    await err(await post({ server_keys: { 'remote.test': 'all' } }), 400, 'M_BAD_JSON');
    await err(await post({ server_keys: { 'remote.test': { 'ed25519:a': 1 } } }), 400, 'M_BAD_JSON');
    await err(await post({ server_keys: { 'remote.test': { 'ed25519:a': { minimum_valid_until_ts: 'soon' } } } }), 400, 'M_BAD_JSON');
    await err(await app.request('/_matrix/key/v2/query/remote.test?minimum_valid_until_ts=soon'), 400, 'M_INVALID_PARAM');
  });

  it('answers in a form another key ring accepts from a notary', async () => {
    const fromUs: ServerKeyFetcher = {
      fetchServerKeys: async () => {
        throw new Error('direct fetch must not be used');
      },
      queryNotary: async (notary, request) => {
        expect(notary).toBe('us.test');
        return (await post(request)).json();
      },
    };
    const other = new KeyRing({
      store: new ServerKeyStore(ctx.db()), // sharing the table is fine: it only reads what we wrote
      fetcher: fromUs,
      identity: identityOf('other.test', generateSigningKey()),
      perspectives: [{ serverName: 'us.test', keys: [{ keyId: ourKey.keyId, publicKey: ourKey.publicKeyBase64 }] }],
      preferDirectFetch: false,
      now: () => clock.t,
    });
    await other.ensure([
      { serverName: 'remote.test', keyIds: [remoteKey.keyId], validAt: T0 },
      { serverName: 'us.test', keyIds: [ourKey.keyId], validAt: clock.t },
    ]);
    expect(other.keyLookup('remote.test', remoteKey.keyId, T0)).toBe(remoteKey.publicKeyBase64);
    expect(other.keyLookup('us.test', ourKey.keyId, clock.t)).toBe(ourKey.publicKeyBase64);
  });
});
