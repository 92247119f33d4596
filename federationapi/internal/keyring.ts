/**
 * The key ring: other servers' signing keys, for checking event signatures and request
 * authentication (Server-Server API "Retrieving server keys").
 *
 * Where keys come from, cheapest first:
 * 1. memory: every key this process learnt, kept for the process' life (a few keys per server
 *    we ever talked to);
 * 2. the database (federationapi_server_keys), read on a miss: a restart fetches nothing again;
 * 3. the network: the server itself (GET /_matrix/key/v2/server) and the configured notaries
 *    (POST /_matrix/key/v2/query), in the order `preferDirectFetch` says; the next source is
 *    tried for whatever the previous one did not answer.
 * Our own keys are answered from the signing identity and never fetched.
 *
 * What is accepted from the network (a response must pass every check or none of it is used):
 * - server_name is the server asked about, valid_until_ts is an integer, verify_keys is a
 *   non-empty map of ed25519 keys;
 * - self-signed: every signature the server made with a key listed in its verify_keys verifies,
 *   and there is at least one (keys of unknown algorithms are ignored, as the appendix says);
 * - from a notary, additionally: at least one of the notary's configured keys signed the entry
 *   and none of its configured keys' signatures fails.
 * valid_until_ts is capped at fetch time + 7 days ("Validity of keys": servers must use the
 * lesser of the field and 7 days into the future).
 *
 * Validity at a time `validAt` (an event's origin_server_ts in room versions 5+, now for request
 * authentication, undefined for older room versions where any known key will do):
 * - a key from verify_keys is valid while validAt <= valid_until_ts (capped);
 * - a key from old_verify_keys is valid for validAt <= expired_ts.
 * A newer response (larger valid_until_ts) replaces what an older one said about a key, never
 * the reverse: a stale notary answer cannot revive a key that has since expired.
 *
 * Load on the network is bounded: concurrent ensures for one server share one load; when no
 * source answered for a server, it is not asked again for NEGATIVE_CACHE_MS; when sources
 * answered but lacked a key (or had it expired), that key is not asked for again for as long.
 * Each network call is given up after `fetchTimeoutMs`.
 */
import type { Logger } from 'pino';
import type { KeyLookup, KeyRequest } from '../../internal/matrix/eventsigning.js';
import type { RequestKeyLookup } from '../../internal/matrix/xmatrix.js';
import { isValidEd25519KeyId, publicKeyObject, type PublicKeyInput } from '../../internal/matrix/keys.js';
import { signatureOf, verifyJsonSignature } from '../../internal/matrix/signing.js';
import type { JsonObject } from '../../internal/matrix/types.js';
import type { SigningIdentity } from '../../internal/signingidentity.js';
import type { ServerKeyStore, StoredServerKey } from '../storage/serverkeys.js';

/** The network side of the key ring; implemented by the federation HTTP client. */
export interface ServerKeyFetcher {
  /** GET /_matrix/key/v2/server from the server itself; the parsed JSON body. */
  fetchServerKeys(serverName: string): Promise<unknown>;
  /** POST /_matrix/key/v2/query to a notary; the parsed JSON body. */
  queryNotary(
    notary: string,
    request: { server_keys: Record<string, Record<string, { minimum_valid_until_ts?: number }>> },
  ): Promise<unknown>;
}

/** A notary we trust (config federation_api.key_perspectives). */
export interface KeyPerspective {
  serverName: string;
  keys: Array<{ keyId: string; publicKey: string }>;
}

/** What the key ring needs of the storage (ServerKeyStore). */
export type KeyRingStore = Pick<ServerKeyStore, 'keysOf' | 'storeKeys' | 'responsesOf'>;

export interface KeyRingDeps {
  store: KeyRingStore;
  fetcher: ServerKeyFetcher;
  identity: SigningIdentity;
  perspectives: readonly KeyPerspective[];
  /** Ask the server itself before the notaries. */
  preferDirectFetch: boolean;
  now?: () => number;
  log?: Logger;
  /** How long one network call may take; 30 s by default. */
  fetchTimeoutMs?: number;
}

/** Servers may not make us trust a key for longer than this past the time we fetched it. */
export const MAX_KEY_VALIDITY_MS = 7 * 24 * 60 * 60 * 1000;
/** How long a failed fetch (or a key the sources did not have) is remembered. */
export const NEGATIVE_CACHE_MS = 60_000;
const DEFAULT_FETCH_TIMEOUT_MS = 30_000;

/** A key as the key ring knows it. */
interface KeyEntry {
  publicKey: string;
  /** Capped at fetch time + 7 days. */
  validUntilTs: number;
  /** Set for keys from old_verify_keys. */
  expiredTs: number | null;
}

/** A response that passed the checks. */
export interface VerifiedKeyResponse {
  serverName: string;
  /** As the server wrote it (not capped). */
  validUntilTs: number;
  keys: Array<{ keyId: string; publicKey: string; expiredTs: number | null }>;
  /** The response with only the origin's signatures: what notaries re-serve. */
  json: JsonObject;
}

interface Need {
  keyId: string;
  validAt: number | undefined;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isTimestamp = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function usablePublicKey(key: unknown): key is string {
  if (typeof key !== 'string') return false;
  try {
    publicKeyObject(key);
    return true;
  } catch {
    return false;
  }
}

function safeVerify(obj: object, serverName: string, keyId: string, publicKey: string): boolean {
  try {
    return verifyJsonSignature(obj, serverName, keyId, publicKey);
  } catch {
    return false; // no canonical form or an unusable key: nothing verifies
  }
}

/**
 * Checks a /_matrix/key/v2/server response (or one entry of a notary's answer) claimed to be
 * `serverName`'s: shape, server_name and self-signature. Throws an Error saying what is wrong.
 */
export function verifyServerKeyResponse(raw: unknown, serverName: string): VerifiedKeyResponse {
  if (!isObject(raw)) throw new Error('the response is not a JSON object');
  if (raw.server_name !== serverName) throw new Error(`server_name ${JSON.stringify(raw.server_name)} is not ${serverName}`);
  if (!isTimestamp(raw.valid_until_ts)) throw new Error('valid_until_ts is missing or not an integer');
  if (!isObject(raw.verify_keys)) throw new Error('verify_keys is missing');
  const keys: VerifiedKeyResponse['keys'] = [];
  const current = new Map<string, string>();
  for (const [keyId, value] of Object.entries(raw.verify_keys)) {
    if (!keyId.startsWith('ed25519:')) continue; // algorithms we do not know
    if (!isValidEd25519KeyId(keyId)) throw new Error(`malformed key ID ${JSON.stringify(keyId)}`);
    const key = isObject(value) ? value.key : undefined;
    if (!usablePublicKey(key)) throw new Error(`verify key ${keyId} is not an ed25519 public key`);
    current.set(keyId, key);
    keys.push({ keyId, publicKey: key, expiredTs: null });
  }
  if (current.size === 0) throw new Error('verify_keys holds no ed25519 key');

  const signatures = isObject(raw.signatures) ? raw.signatures[serverName] : undefined;
  if (!isObject(signatures)) throw new Error(`not signed by ${serverName}`);
  let verified = 0;
  for (const keyId of Object.keys(signatures)) {
    const publicKey = current.get(keyId);
    if (publicKey === undefined) continue; // signed with a key it does not list: proves nothing
    if (!safeVerify(raw, serverName, keyId, publicKey)) throw new Error(`the signature with ${keyId} does not verify`);
    verified++;
  }
  if (verified === 0) throw new Error(`not signed by ${serverName} with any of its verify_keys`);

  // Old keys cannot prove anything about the response; entries we cannot use are skipped.
  if (isObject(raw.old_verify_keys)) {
    for (const [keyId, value] of Object.entries(raw.old_verify_keys)) {
      if (current.has(keyId) || !isValidEd25519KeyId(keyId) || !isObject(value)) continue;
      if (!usablePublicKey(value.key) || !isTimestamp(value.expired_ts)) continue;
      keys.push({ keyId, publicKey: value.key, expiredTs: value.expired_ts });
    }
  }
  const json: JsonObject = { ...(raw as JsonObject), signatures: { [serverName]: signatures as JsonObject } };
  return { serverName, validUntilTs: raw.valid_until_ts, keys, json };
}

/** Whether `notary` signed `entry` with one of its configured keys, and with none wrongly. */
function notarySigned(entry: object, notary: KeyPerspective): boolean {
  let ok = false;
  for (const { keyId, publicKey } of notary.keys) {
    if (signatureOf(entry, notary.serverName, keyId) === undefined) continue;
    if (!safeVerify(entry, notary.serverName, keyId, publicKey)) return false;
    ok = true;
  }
  return ok;
}

function isValidAt(entry: KeyEntry, validAt: number | undefined): boolean {
  if (validAt === undefined) return true;
  return entry.expiredTs !== null ? validAt <= entry.expiredTs : validAt <= entry.validUntilTs;
}

/** Timeouts: a key fetch hanging forever must not hold every later ensure for its server. */
async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export class KeyRing {
  private readonly store: KeyRingStore;
  private readonly fetcher: ServerKeyFetcher;
  private readonly identity: SigningIdentity;
  private readonly perspectives: readonly KeyPerspective[];
  private readonly preferDirectFetch: boolean;
  private readonly now: () => number;
  private readonly log: Logger | undefined;
  private readonly fetchTimeoutMs: number;

  /** server → key ID → key */
  private readonly cache = new Map<string, Map<string, KeyEntry>>();
  /** Loads under way, by server: later ensures wait for them instead of fetching again. */
  private readonly inflight = new Map<string, Promise<void>>();
  /** server → until when it is not asked again: no source answered for it. */
  private readonly failedUntil = new Map<string, number>();
  /** `server\nkeyId` → until when the key is not asked for again: the sources lacked it. */
  private readonly missingUntil = new Map<string, number>();
  /** server → until when the notary endpoints do not refetch it. */
  private readonly refreshedUntil = new Map<string, number>();

  constructor(deps: KeyRingDeps) {
    this.store = deps.store;
    this.fetcher = deps.fetcher;
    this.identity = deps.identity;
    this.perspectives = deps.perspectives.filter((p) => p.serverName !== deps.identity.serverName);
    this.preferDirectFetch = deps.preferDirectFetch;
    this.now = deps.now ?? Date.now;
    this.log = deps.log;
    this.fetchTimeoutMs = deps.fetchTimeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS;
  }

  /**
   * The key, from memory only, if it is valid at `validAt` (see the file comment). Call
   * `ensure` first for keys that may have to be loaded.
   */
  readonly keyLookup: KeyLookup = (serverName, keyId, validAt) => {
    if (serverName === this.identity.serverName) return this.ownKey(keyId, validAt);
    const entry = this.cache.get(serverName)?.get(keyId);
    return entry && isValidAt(entry, validAt) ? entry.publicKey : undefined;
  };

  /** For X-Matrix request authentication: the key must be valid now. */
  readonly requestKeyLookup: RequestKeyLookup = async (origin, keyId): Promise<PublicKeyInput | undefined> => {
    const validAt = this.now();
    await this.ensure([{ serverName: origin, keyIds: [keyId], validAt }]);
    return this.keyLookup(origin, keyId, validAt);
  };

  /**
   * Loads the keys that are not in memory or not valid at their `validAt`: from the database,
   * then the network. Never throws: keys that could not be had are simply not found by
   * keyLookup afterwards.
   */
  async ensure(requests: readonly KeyRequest[]): Promise<void> {
    // A second pass covers a key that a load we merely waited for was not looking for.
    for (let pass = 0; pass < 2; pass++) {
      const needs = this.unsatisfied(this.group(requests));
      if (needs.size === 0) return;
      const now = this.now();
      const waits: Array<Promise<void>> = [];
      const start = new Map<string, Need[]>();
      for (const [server, list] of needs) {
        const running = this.inflight.get(server);
        if (running) {
          waits.push(running);
          continue;
        }
        if ((this.failedUntil.get(server) ?? 0) > now) continue;
        const fresh = list.filter((n) => (this.missingUntil.get(missingKey(server, n.keyId)) ?? 0) <= now);
        if (fresh.length > 0) start.set(server, fresh);
      }
      if (start.size > 0) waits.push(this.track([...start.keys()], () => this.load(start)));
      if (waits.length === 0) return;
      await Promise.all(waits);
    }
  }

  /**
   * For the notary endpoints: the origin-signed responses we hold for `serverName` that are
   * valid until at least `minimumValidUntilTs` (fetched from the server when we hold none, or
   * none listing every key of `keyIds`). When the server cannot be reached, the most recent
   * response we hold, so that old events can still be checked. Our own server: a fresh response
   * of ours.
   */
  async serverKeyResponses(serverName: string, keyIds: readonly string[], minimumValidUntilTs: number): Promise<JsonObject[]> {
    if (serverName === this.identity.serverName) return [this.ownKeyResponse()];
    let stored = await this.storedResponses(serverName);
    const fitting = (): VerifiedKeyResponse[] => stored.filter((r) => r.validUntilTs >= minimumValidUntilTs);
    const covers = (rs: VerifiedKeyResponse[]): boolean =>
      rs.length > 0 && keyIds.every((id) => rs.some((r) => r.keys.some((k) => k.keyId === id)));
    if (!covers(fitting())) {
      // A key ID never seen from the server is worth a fetch even soon after another one
      // (once per key ID per NEGATIVE_CACHE_MS): the server may have just rotated to it.
      const now = this.now();
      const unseen = keyIds.filter((id) => !stored.some((r) => r.keys.some((k) => k.keyId === id)) && (this.missingUntil.get(missingKey(serverName, id)) ?? 0) <= now);
      await this.refreshDirect(serverName, unseen.length > 0);
      stored = await this.storedResponses(serverName);
      for (const id of unseen) if (!stored.some((r) => r.keys.some((k) => k.keyId === id))) this.missingUntil.set(missingKey(serverName, id), now + NEGATIVE_CACHE_MS);
    }
    // Responses holding an asked-for key first, newest first; with none valid long enough, the
    // best expired one is still an answer (the asker may only need to check old signatures).
    const holdsAsked = (r: VerifiedKeyResponse): boolean => keyIds.some((id) => r.keys.some((k) => k.keyId === id));
    const ranked = (rs: VerifiedKeyResponse[]): VerifiedKeyResponse[] =>
      [...rs].sort((a, b) => Number(holdsAsked(b)) - Number(holdsAsked(a)) || b.validUntilTs - a.validUntilTs);
    const good = fitting();
    return (good.length > 0 ? ranked(good) : ranked(stored).slice(0, 1)).map((r) => r.json);
  }

  /** Our own /_matrix/key/v2/server response, signed. */
  ownKeyResponse(): JsonObject {
    const oldVerifyKeys: JsonObject = {};
    for (const k of this.identity.oldKeys) oldVerifyKeys[k.keyId] = { key: k.publicKeyBase64, expired_ts: k.expiredTs };
    return this.identity.signJson({
      server_name: this.identity.serverName,
      valid_until_ts: this.now() + this.identity.keyValidityPeriodMs,
      verify_keys: { [this.identity.keyId]: { key: this.identity.publicKeyBase64 } },
      old_verify_keys: oldVerifyKeys,
    });
  }

  // -------------------------------------------------------------------------------------------

  private ownKey(keyId: string, validAt: number | undefined): PublicKeyInput | undefined {
    if (keyId === this.identity.keyId) return this.identity.publicKeyBase64;
    const old = this.identity.oldKeys.find((k) => k.keyId === keyId);
    return old && (validAt === undefined || validAt <= old.expiredTs) ? old.publicKeyBase64 : undefined;
  }

  private group(requests: readonly KeyRequest[]): Map<string, Need[]> {
    const out = new Map<string, Need[]>();
    for (const r of requests) {
      if (r.serverName === this.identity.serverName) continue;
      for (const keyId of r.keyIds) {
        let list = out.get(r.serverName);
        if (!list) out.set(r.serverName, (list = []));
        list.push({ keyId, validAt: r.validAt });
      }
    }
    return out;
  }

  /** The needs that memory does not answer. */
  private unsatisfied(needs: ReadonlyMap<string, Need[]>): Map<string, Need[]> {
    const out = new Map<string, Need[]>();
    for (const [server, list] of needs) {
      const missing = list.filter((n) => this.keyLookup(server, n.keyId, n.validAt) === undefined);
      if (missing.length > 0) out.set(server, missing);
    }
    return out;
  }

  /** Runs a load registered as in flight for `servers` until it ends. Never rejects. */
  private track(servers: readonly string[], load: () => Promise<void>): Promise<void> {
    const task: Promise<void> = load()
      .catch((err: unknown) => {
        this.log?.error({ err, servers }, 'loading server keys failed');
      })
      .finally(() => {
        for (const s of servers) if (this.inflight.get(s) === task) this.inflight.delete(s);
      });
    for (const s of servers) this.inflight.set(s, task);
    return task;
  }

  private async load(needs: Map<string, Need[]>): Promise<void> {
    await Promise.all(
      [...needs.keys()].map(async (server) => {
        try {
          for (const k of await this.store.keysOf(server)) {
            this.remember(server, k.keyId, { publicKey: k.publicKey, validUntilTs: k.validUntilTs, expiredTs: k.expiredTs });
          }
        } catch (err) {
          this.log?.warn({ err, server_name: server }, 'reading stored server keys failed');
        }
      }),
    );
    const remaining = this.unsatisfied(needs);
    if (remaining.size > 0) await this.fetchFromNetwork(remaining);
  }

  private async fetchFromNetwork(needs: Map<string, Need[]>): Promise<void> {
    const answered = new Set<string>();
    let remaining = needs;
    const sources = this.preferDirectFetch ? (['direct', 'notaries'] as const) : (['notaries', 'direct'] as const);
    for (const source of sources) {
      if (remaining.size === 0) break;
      if (source === 'direct') {
        await Promise.all(
          [...remaining.keys()].map(async (server) => {
            if (await this.fetchDirect(server)) answered.add(server);
          }),
        );
      } else {
        for (const notary of this.perspectives) {
          if (remaining.size === 0) break;
          for (const server of await this.fetchFromNotary(notary, remaining)) answered.add(server);
          remaining = this.unsatisfied(remaining);
        }
      }
      remaining = this.unsatisfied(remaining);
    }
    const until = this.now() + NEGATIVE_CACHE_MS;
    for (const server of needs.keys()) {
      if (answered.has(server)) this.failedUntil.delete(server);
      else this.failedUntil.set(server, until);
    }
    for (const [server, list] of remaining) {
      if (!answered.has(server)) continue;
      for (const n of list) this.missingUntil.set(missingKey(server, n.keyId), until);
      this.log?.info({ server_name: server, key_ids: list.map((n) => n.keyId) }, 'server keys not found or not valid');
    }
    this.prune();
  }

  /** Asks the server itself; true when it gave a valid response. */
  private async fetchDirect(serverName: string): Promise<boolean> {
    try {
      const raw = await withTimeout(this.fetcher.fetchServerKeys(serverName), this.fetchTimeoutMs, 'key fetch');
      await this.absorb(verifyServerKeyResponse(raw, serverName));
      return true;
    } catch (err) {
      this.log?.warn({ err, server_name: serverName }, 'fetching server keys from the server failed');
      return false;
    }
  }

  /** Asks a notary about every server in `needs`; the servers it gave a valid response for. */
  private async fetchFromNotary(notary: KeyPerspective, needs: Map<string, Need[]>): Promise<Set<string>> {
    const answered = new Set<string>();
    const serverKeys: Record<string, Record<string, { minimum_valid_until_ts?: number }>> = {};
    for (const [server, list] of needs) {
      const criteria: Record<string, { minimum_valid_until_ts?: number }> = {};
      for (const n of list) {
        const prev = criteria[n.keyId]?.minimum_valid_until_ts;
        criteria[n.keyId] = n.validAt === undefined && prev === undefined ? {} : { minimum_valid_until_ts: Math.max(prev ?? 0, n.validAt ?? 0) };
      }
      serverKeys[server] = criteria;
    }
    let raw: unknown;
    try {
      raw = await withTimeout(this.fetcher.queryNotary(notary.serverName, { server_keys: serverKeys }), this.fetchTimeoutMs, 'notary query');
    } catch (err) {
      this.log?.warn({ err, notary: notary.serverName }, 'querying the notary failed');
      return answered;
    }
    const entries = isObject(raw) && Array.isArray(raw.server_keys) ? raw.server_keys : undefined;
    if (!entries) {
      this.log?.warn({ notary: notary.serverName }, 'the notary answered without a server_keys list');
      return answered;
    }
    for (const entry of entries) {
      const server = isObject(entry) ? entry.server_name : undefined;
      if (typeof server !== 'string' || !needs.has(server)) continue; // not what we asked about
      try {
        if (!notarySigned(entry as object, notary)) throw new Error(`not signed by the notary ${notary.serverName} with a configured key`);
        await this.absorb(verifyServerKeyResponse(entry, server));
        answered.add(server);
      } catch (err) {
        this.log?.warn({ err, notary: notary.serverName, server_name: server }, 'refused server keys from a notary');
      }
    }
    return answered;
  }

  /** Keeps a verified response's keys: memory, then the database. */
  private async absorb(response: VerifiedKeyResponse): Promise<void> {
    const fetchedTs = this.now();
    const validUntilTs = Math.min(response.validUntilTs, fetchedTs + MAX_KEY_VALIDITY_MS);
    const rows: StoredServerKey[] = response.keys.map((k) => ({
      serverName: response.serverName,
      keyId: k.keyId,
      publicKey: k.publicKey,
      validUntilTs,
      expiredTs: k.expiredTs,
      fetchedTs,
    }));
    for (const r of rows) this.remember(r.serverName, r.keyId, { publicKey: r.publicKey, validUntilTs: r.validUntilTs, expiredTs: r.expiredTs });
    try {
      await this.store.storeKeys(rows, JSON.stringify(response.json));
    } catch (err) {
      // Memory still has them; the next process fetches again.
      this.log?.warn({ err, server_name: response.serverName }, 'storing server keys failed');
    }
  }

  /** The same rule as the database: a response at least as fresh replaces what we had. */
  private remember(serverName: string, keyId: string, entry: KeyEntry): void {
    let keys = this.cache.get(serverName);
    if (!keys) this.cache.set(serverName, (keys = new Map()));
    const old = keys.get(keyId);
    if (!old || entry.validUntilTs >= old.validUntilTs) keys.set(keyId, entry);
  }

  /** The stored responses, re-checked (they are re-served with our signature), newest first. */
  private async storedResponses(serverName: string): Promise<VerifiedKeyResponse[]> {
    const out: VerifiedKeyResponse[] = [];
    for (const r of await this.store.responsesOf(serverName)) {
      try {
        out.push(verifyServerKeyResponse(JSON.parse(r.json) as unknown, serverName));
      } catch (err) {
        this.log?.warn({ err, server_name: serverName }, 'a stored server key response does not verify');
      }
    }
    return out;
  }

  /** A direct fetch for the notary endpoints, at most once per NEGATIVE_CACHE_MS per server unless `force`d. */
  private async refreshDirect(serverName: string, force = false): Promise<void> {
    const running = this.inflight.get(serverName);
    if (running) return running;
    const now = this.now();
    if (!force && ((this.refreshedUntil.get(serverName) ?? 0) > now || (this.failedUntil.get(serverName) ?? 0) > now)) return;
    return this.track([serverName], async () => {
      if (!(await this.fetchDirect(serverName))) {
        this.failedUntil.set(serverName, this.now() + NEGATIVE_CACHE_MS);
        return;
      }
      this.failedUntil.delete(serverName);
      // Refetches wait only once the server has given keys valid now: one whose keys have all
      // expired is asked again when someone needs newer ones (it may have rotated them).
      if ((await this.storedResponses(serverName)).some((r) => r.validUntilTs > this.now())) this.refreshedUntil.set(serverName, this.now() + NEGATIVE_CACHE_MS);
    });
  }

  /** Drops negative entries that have run out, once the maps grow. */
  private prune(): void {
    const now = this.now();
    for (const map of [this.failedUntil, this.missingUntil, this.refreshedUntil]) {
      if (map.size < 1000) continue;
      for (const [k, until] of map) if (until <= now) map.delete(k);
    }
  }
}

function missingKey(serverName: string, keyId: string): string {
  return `${serverName}\n${keyId}`;
}
