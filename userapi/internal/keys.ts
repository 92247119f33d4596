/**
 * The key server: end-to-end encryption keys of local devices, handed to clients that ask for
 * them (other servers' users' keys come from the device lists we follow, devicelist.ts, or
 * from their server). The server cannot check most of what a client uploads (device self-signatures are for
 * other clients to verify), but it does check the signatures that bind cross-signing keys
 * together, because a client trusts the server's answer about which keys belong to a user.
 */
import { canonicalJson, decodeBase64, verifyJsonSignature } from '../../internal/matrix/index.js';
import type {
  PerformRefreshRemoteDevicesRequest,
  PerformRefreshRemoteDevicesResponse,
  PerformRemoteKeyChangeRequest,
  PerformRemoteKeyChangeResponse,
  QueryDeviceListVersionRequest,
  QueryDeviceListVersionResponse,
  ByUserByKey,
  FederationKeyClient,
  KeyError,
  KeyObject,
  KeyServerAPI,
  OutputKeyChangeEvent,
  PerformClaimKeysRequest,
  PerformClaimKeysResponse,
  PerformUploadDeviceSignaturesRequest,
  PerformUploadDeviceSignaturesResponse,
  PerformUploadDeviceSigningKeysRequest,
  PerformUploadDeviceSigningKeysResponse,
  PerformUploadKeysRequest,
  PerformUploadKeysResponse,
  QueryCrossSigningStatusRequest,
  QueryCrossSigningStatusResponse,
  QueryKeyChangesRequest,
  QueryKeyChangesResponse,
  QueryKeysRequest,
  QueryKeysResponse,
  QueryOneTimeKeyCountsRequest,
  QueryOneTimeKeyCountsResponse,
} from '../api/keys.js';
import type { KeyStore, StoredSignature } from '../storage/keystore.js';
import type { DeviceListUpdater } from './devicelist.js';
import type { RemoteKeyCache } from './devicelistquery.js';

type CrossSigningType = 'master' | 'self_signing' | 'user_signing';
const KEY_ID = /^[A-Za-z0-9_.-]+:[^\s]+$/;
const DEFAULT_FEDERATION_TIMEOUT_MS = 10_000;
/** How long the admin refreshDevices waits for the list before answering (it goes on after). */
const REFRESH_WAIT_MS = 10_000;

export interface KeyServerDeps {
  serverName: string;
  store: KeyStore;
  /** Display names of a local user's devices (from the devices table), for `unsigned.device_display_name`. */
  deviceNames: (userId: string) => Promise<Map<string, string | null>>;
  publish: (event: OutputKeyChangeEvent) => Promise<void>;
  /** Absent until federationapi has a client: remote users are then reported in `failures`. */
  federation?: FederationKeyClient;
  /**
   * The device lists of other servers' users we follow (devicelist.ts): keys/query answers
   * from them and m.device_list_update EDUs update them. Without it every query of a remote
   * user asks their server.
   */
  deviceLists?: {
    updater: Pick<DeviceListUpdater, 'onDeviceListUpdate' | 'onSigningKeyUpdate' | 'refreshNow'>;
    cache: Pick<RemoteKeyCache, 'answer'>;
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fail(errcode: KeyError['errcode'], message: string): { error: KeyError } {
  return { error: { errcode, message } };
}

function serverOf(userId: string): string {
  const i = userId.indexOf(':');
  return i < 0 ? '' : userId.slice(i + 1);
}

/** The object a signature covers, for comparing an upload with what is stored. */
function signedPart(obj: KeyObject): string {
  const rest = { ...obj };
  delete rest['signatures'];
  delete rest['unsigned'];
  return canonicalJson(rest);
}

function parseJson(text: string): KeyObject {
  return JSON.parse(text) as KeyObject;
}

/** The single ed25519 public key of a cross-signing key, or undefined when it has not exactly one. */
export function crossSigningPublicKey(key: KeyObject): string | undefined {
  const keys = key['keys'];
  if (!isObject(keys)) return undefined;
  const entries = Object.entries(keys);
  if (entries.length !== 1) return undefined;
  const [id, value] = entries[0]!;
  if (!id.startsWith('ed25519:') || typeof value !== 'string' || id.slice('ed25519:'.length) !== value) return undefined;
  try {
    return decodeBase64(value).length === 32 ? value : undefined;
  } catch {
    return undefined;
  }
}

function verifies(obj: KeyObject, signer: string, keyId: string, publicKey: string): boolean {
  try {
    return verifyJsonSignature(obj, signer, keyId, publicKey);
  } catch {
    return false;
  }
}

/** Adds stored signatures to a key object's `signatures`. */
function withSignatures(key: KeyObject, sigs: readonly StoredSignature[]): KeyObject {
  if (sigs.length === 0) return key;
  const signatures: Record<string, Record<string, unknown>> = {};
  const existing = key['signatures'];
  if (isObject(existing)) for (const [u, v] of Object.entries(existing)) if (isObject(v)) signatures[u] = { ...v };
  for (const s of sigs) signatures[s.originUserId] = { ...signatures[s.originUserId], [s.originKeyId]: s.signature };
  return { ...key, signatures };
}

export class KeyServerImpl implements KeyServerAPI {
  constructor(private readonly deps: KeyServerDeps) {}

  private isLocal(userId: string): boolean {
    return serverOf(userId) === this.deps.serverName;
  }

  private async changed(userId: string, fields: Omit<OutputKeyChangeEvent, 'offset' | 'user_id' | 'stream_id' | 'prev_stream_id'>): Promise<void> {
    const deviceList = fields.type === 'device_keys';
    const { offset, streamId, prevStreamId } = await this.deps.store.recordKeyChange(userId, deviceList, fields.visible_to ?? null);
    await this.deps.publish({
      ...fields,
      offset,
      user_id: userId,
      ...(deviceList ? { stream_id: streamId, ...(prevStreamId > 0 ? { prev_stream_id: prevStreamId } : {}) } : {}),
    });
  }

  /** A change of another server's user's keys, for our users' /sync and keys/changes. */
  async announceRemoteChange(change: Omit<OutputKeyChangeEvent, 'offset'>): Promise<void> {
    const { offset } = await this.deps.store.recordKeyChange(change.user_id, false);
    await this.deps.publish({ ...change, offset });
  }

  async performRemoteKeyChange(req: PerformRemoteKeyChangeRequest): Promise<PerformRemoteKeyChangeResponse> {
    if (this.isLocal(req.userId) || serverOf(req.userId) !== req.origin) return { error: 'not a user of the sending server' };
    const lists = this.deps.deviceLists;
    if (req.edu !== undefined && lists) {
      if (req.edu.content['user_id'] !== req.userId) return { error: 'the EDU is about another user' };
      return req.edu.type === 'm.device_list_update'
        ? lists.updater.onDeviceListUpdate(req.origin, req.edu.content)
        : lists.updater.onSigningKeyUpdate(req.origin, req.edu.content);
    }
    await this.announceRemoteChange({ type: 'device_keys', user_id: req.userId });
    return {};
  }

  async performRefreshRemoteDevices(req: PerformRefreshRemoteDevicesRequest): Promise<PerformRefreshRemoteDevicesResponse> {
    if (!/^@[^:]+:.+$/.test(req.userId)) return fail('M_INVALID_PARAM', `${req.userId} is not a user ID`);
    if (this.isLocal(req.userId)) return fail('M_INVALID_PARAM', 'Can not mark local device list as stale');
    if (!this.deps.deviceLists) return fail('M_UNKNOWN', 'Remote device lists are not followed here (federation is off)');
    await this.deps.deviceLists.updater.refreshNow(req.userId, REFRESH_WAIT_MS);
    return {};
  }

  async queryDeviceListVersion(req: QueryDeviceListVersionRequest): Promise<QueryDeviceListVersionResponse> {
    return { streamId: await this.deps.store.deviceStreamId(req.userId) };
  }

  // -------------------------------------------------------------------------------------------
  // Upload

  async performUploadKeys(req: PerformUploadKeysRequest): Promise<PerformUploadKeysResponse> {
    const { userId, deviceId, store } = { ...req, store: this.deps.store };
    const err = (e: { error: KeyError }): PerformUploadKeysResponse => ({ ...e, oneTimeKeyCounts: {} });

    if (req.deviceKeys !== undefined) {
      const problem = this.checkDeviceKeys(req.deviceKeys, userId, deviceId);
      if (problem) return err(problem);
    }
    const otks: Array<{ keyId: string; algorithm: string; keyJson: string }> = [];
    for (const [keyId, key] of Object.entries(req.oneTimeKeys ?? {})) {
      if (!KEY_ID.test(keyId)) return err(fail('M_INVALID_PARAM', `one-time key ID ${keyId} is not algorithm:id`));
      if (typeof key !== 'string' && !isObject(key)) return err(fail('M_INVALID_PARAM', `one-time key ${keyId} must be a string or an object`));
      otks.push({ keyId, algorithm: keyId.slice(0, keyId.indexOf(':')), keyJson: JSON.stringify(key) });
    }
    const fallbacks = new Map<string, { keyId: string; keyJson: string }>();
    for (const [keyId, key] of Object.entries(req.fallbackKeys ?? {})) {
      if (!KEY_ID.test(keyId)) return err(fail('M_INVALID_PARAM', `fallback key ID ${keyId} is not algorithm:id`));
      if (typeof key !== 'string' && !isObject(key)) return err(fail('M_INVALID_PARAM', `fallback key ${keyId} must be a string or an object`));
      const algorithm = keyId.slice(0, keyId.indexOf(':'));
      if (fallbacks.has(algorithm)) return err(fail('M_INVALID_PARAM', `more than one fallback key for ${algorithm}`));
      fallbacks.set(algorithm, { keyId, keyJson: JSON.stringify(key) });
    }

    // A one-time key ID may be uploaded again only with the same key (clients retry uploads).
    if (otks.length > 0) {
      const existing = await store.oneTimeKeys(userId, deviceId, otks.map((k) => k.keyId));
      for (const k of otks) {
        const old = existing.get(k.keyId);
        if (old !== undefined && canonicalJson(JSON.parse(old)) !== canonicalJson(JSON.parse(k.keyJson))) {
          return err(fail('M_INVALID_PARAM', `one-time key ${k.keyId} already exists with different content`));
        }
      }
      await store.insertOneTimeKeys(userId, deviceId, otks.filter((k) => !existing.has(k.keyId)));
    }
    for (const [algorithm, k] of fallbacks) {
      const old = await store.fallbackKey(userId, deviceId, algorithm);
      // The same key again keeps its used flag; a new one is unused.
      if (old === undefined || canonicalJson(JSON.parse(old)) !== canonicalJson(JSON.parse(k.keyJson))) {
        await store.putFallbackKey(userId, deviceId, algorithm, k.keyId, k.keyJson);
      }
    }

    if (req.deviceKeys !== undefined) {
      const stored = (await store.deviceKeys(userId)).get(deviceId);
      const incoming = { ...req.deviceKeys };
      delete incoming['unsigned'];
      if (stored === undefined || canonicalJson(parseJson(stored)) !== canonicalJson(incoming)) {
        await store.putDeviceKeys(userId, deviceId, JSON.stringify(incoming));
        const names = await this.deps.deviceNames(userId);
        await this.changed(userId, { type: 'device_keys', device_id: deviceId, keys: incoming, display_name: names.get(deviceId) ?? null });
      }
    }
    return { oneTimeKeyCounts: await store.oneTimeKeyCounts(userId, deviceId) };
  }

  private checkDeviceKeys(keys: KeyObject, userId: string, deviceId: string): { error: KeyError } | undefined {
    if (keys['user_id'] !== userId) return fail('M_INVALID_PARAM', 'device_keys.user_id must be the uploading user');
    if (keys['device_id'] !== deviceId) return fail('M_INVALID_PARAM', 'device_keys.device_id must be the uploading device');
    // Malformed required fields are bad JSON (as Synapse and Sytest have it); a key for someone else is a bad parameter.
    // algorithms may be left out (Sytest's device-list tests do); given, it must be a list of strings.
    const algorithms = keys['algorithms'];
    if (algorithms !== undefined && (!Array.isArray(algorithms) || !algorithms.every((a) => typeof a === 'string'))) return fail('M_BAD_JSON', 'device_keys.algorithms must be a list of strings');
    // keys may be left out too (Sytest uploads bare device records); given, it must map key IDs to keys.
    const k = keys['keys'];
    if (k !== undefined && (!isObject(k) || !Object.entries(k).every(([id, v]) => KEY_ID.test(id) && typeof v === 'string'))) {
      return fail('M_BAD_JSON', 'device_keys.keys must map algorithm:device IDs to keys');
    }
    if (keys['signatures'] !== undefined && !isObject(keys['signatures'])) return fail('M_BAD_JSON', 'device_keys.signatures must be an object');
    return undefined;
  }

  async queryOneTimeKeyCounts(req: QueryOneTimeKeyCountsRequest): Promise<QueryOneTimeKeyCountsResponse> {
    const [oneTimeKeyCounts, unusedFallbackKeyTypes] = await Promise.all([
      this.deps.store.oneTimeKeyCounts(req.userId, req.deviceId),
      this.deps.store.unusedFallbackKeyTypes(req.userId, req.deviceId),
    ]);
    return { oneTimeKeyCounts, unusedFallbackKeyTypes };
  }

  // -------------------------------------------------------------------------------------------
  // Query and claim

  async queryKeys(req: QueryKeysRequest): Promise<QueryKeysResponse> {
    const out: QueryKeysResponse = { deviceKeys: {}, masterKeys: {}, selfSigningKeys: {}, userSigningKeys: {}, failures: {} };
    const local = Object.keys(req.userToDevices).filter((u) => this.isLocal(u));
    const remote = new Map<string, Record<string, string[]>>();
    for (const [u, devices] of Object.entries(req.userToDevices)) {
      if (this.isLocal(u)) continue;
      const server = serverOf(u);
      if (!server) continue;
      remote.set(server, { ...remote.get(server), [u]: devices });
    }

    if (local.length > 0) {
      const [rows, crossSigning, sigs] = await Promise.all([
        this.deps.store.deviceKeysOf(local),
        this.deps.store.crossSigningKeys(local),
        this.deps.store.signaturesOn(local),
      ]);
      // Signatures a user made on their own keys, plus those the requester made (private to them).
      const visible = (sig: StoredSignature): boolean => sig.originUserId === sig.targetUserId || sig.originUserId === req.userId;
      const sigsOn = new Map<string, StoredSignature[]>();
      for (const s of sigs) {
        if (!visible(s)) continue;
        const k = `${s.targetUserId}\n${s.targetKeyId}`;
        sigsOn.set(k, [...(sigsOn.get(k) ?? []), s]);
      }
      const names = new Map<string, Map<string, string | null>>();
      for (const u of local) names.set(u, await this.deps.deviceNames(u));
      for (const u of local) out.deviceKeys[u] = {};
      for (const r of rows) {
        const wanted = req.userToDevices[r.userId] ?? [];
        if (wanted.length > 0 && !wanted.includes(r.deviceId)) continue;
        // A device that was deleted but whose keys linger is not shown.
        const deviceNames = names.get(r.userId);
        if (!deviceNames?.has(r.deviceId)) continue;
        const key = withSignatures(parseJson(r.keyJson), sigsOn.get(`${r.userId}\n${r.deviceId}`) ?? []);
        out.deviceKeys[r.userId]![r.deviceId] = { ...key, unsigned: { device_display_name: deviceNames.get(r.deviceId) ?? undefined } };
      }
      for (const [u, keys] of crossSigning) {
        const master = keys.get('master');
        if (master !== undefined) {
          const m = parseJson(master);
          const pub = crossSigningPublicKey(m);
          out.masterKeys[u] = withSignatures(m, pub ? (sigsOn.get(`${u}\n${pub}`) ?? []) : []);
        }
        const self = keys.get('self_signing');
        if (self !== undefined) out.selfSigningKeys[u] = parseJson(self);
        const userSigning = keys.get('user_signing');
        if (userSigning !== undefined && u === req.userId) out.userSigningKeys[u] = parseJson(userSigning);
      }
    }

    const timeoutMs = req.timeoutMs ?? DEFAULT_FEDERATION_TIMEOUT_MS;
    await Promise.all(
      [...remote].map(async ([server, wanted]) => {
        if (!this.deps.federation) {
          out.failures[server] = { status: 503, message: 'federation is not available' };
          return;
        }
        let userToDevices = wanted;
        if (this.deps.deviceLists) {
          // The lists we follow answer first; the server is asked only about the rest.
          const r = await this.deps.deviceLists.cache.answer(server, wanted, timeoutMs, out);
          if (r.failure !== undefined) {
            out.failures[server] = { status: 503, message: r.failure };
            return;
          }
          userToDevices = r.ask;
          if (Object.keys(userToDevices).length === 0) return;
        }
        try {
          const r = await this.deps.federation.queryKeys(server, userToDevices, timeoutMs);
          // A server answers only for its own users.
          for (const [u, devices] of Object.entries(r.deviceKeys)) if (serverOf(u) === server && u in userToDevices) out.deviceKeys[u] = devices;
          for (const [u, k] of Object.entries(r.masterKeys)) if (serverOf(u) === server) out.masterKeys[u] = k;
          for (const [u, k] of Object.entries(r.selfSigningKeys)) if (serverOf(u) === server) out.selfSigningKeys[u] = k;
        } catch (e) {
          out.failures[server] = { status: 503, message: e instanceof Error ? e.message : String(e) };
        }
      }),
    );
    if (remote.size > 0 && req.userId !== '') await this.addOwnSignaturesOnRemoteKeys(req.userId, out);
    return out;
  }

  /**
   * Signatures the asker made on other servers' users' keys (with their user-signing key) are
   * kept here, not there: they go into the answer, as for local users.
   */
  private async addOwnSignaturesOnRemoteKeys(asker: string, out: QueryKeysResponse): Promise<void> {
    const targets = [...new Set([...Object.keys(out.deviceKeys), ...Object.keys(out.masterKeys)])].filter((u) => !this.isLocal(u));
    if (targets.length === 0) return;
    const sigs = (await this.deps.store.signaturesOn(targets)).filter((s) => s.originUserId === asker);
    for (const s of sigs) {
      const master = out.masterKeys[s.targetUserId];
      if (master !== undefined && crossSigningPublicKey(master) === s.targetKeyId) out.masterKeys[s.targetUserId] = withSignatures(master, [s]);
      const device = out.deviceKeys[s.targetUserId]?.[s.targetKeyId];
      if (device !== undefined) out.deviceKeys[s.targetUserId]![s.targetKeyId] = withSignatures(device, [s]);
    }
  }

  async performClaimKeys(req: PerformClaimKeysRequest): Promise<PerformClaimKeysResponse> {
    const out: PerformClaimKeysResponse = { oneTimeKeys: {}, failures: {} };
    const remote = new Map<string, ByUserByKey<string>>();
    for (const [userId, devices] of Object.entries(req.oneTimeKeys)) {
      if (!this.isLocal(userId)) {
        const server = serverOf(userId);
        if (server) remote.set(server, { ...remote.get(server), [userId]: devices });
        continue;
      }
      for (const [deviceId, algorithm] of Object.entries(devices)) {
        const key =
          (await this.deps.store.claimOneTimeKey(userId, deviceId, algorithm)) ??
          (await this.deps.store.useFallbackKey(userId, deviceId, algorithm));
        if (!key) continue;
        out.oneTimeKeys[userId] = { ...out.oneTimeKeys[userId], [deviceId]: { [key.keyId]: JSON.parse(key.keyJson) as unknown } };
      }
    }
    await Promise.all(
      [...remote].map(async ([server, keys]) => {
        if (!this.deps.federation) {
          out.failures[server] = { status: 503, message: 'federation is not available' };
          return;
        }
        try {
          const claimed = await this.deps.federation.claimKeys(server, keys, req.timeoutMs ?? DEFAULT_FEDERATION_TIMEOUT_MS);
          for (const [u, devices] of Object.entries(claimed)) if (serverOf(u) === server && u in keys) out.oneTimeKeys[u] = devices;
        } catch (e) {
          out.failures[server] = { status: 503, message: e instanceof Error ? e.message : String(e) };
        }
      }),
    );
    return out;
  }

  async queryKeyChanges(req: QueryKeyChangesRequest): Promise<QueryKeyChangesResponse> {
    return this.deps.store.keyChanges(req.fromOffset, req.toOffset);
  }

  /**
   * Drops the keys of a user's devices that no longer exist and announces each one gone.
   * userapi calls this after deleting devices (logout, device deletion, password change).
   */
  async removeKeysOfDeletedDevices(userId: string, remainingDeviceIds: readonly string[], removedDeviceIds: readonly string[] = []): Promise<void> {
    const keep = new Set(remainingDeviceIds);
    const gone = [...(await this.deps.store.deviceKeys(userId)).keys()].filter((d) => !keep.has(d));
    const deleted = await this.deps.store.deleteDeviceKeys(userId, gone);
    // A device is on the user's device list whether or not it ever uploaded keys: its going is a change either way.
    const announce = new Set([...deleted, ...removedDeviceIds.filter((d) => !keep.has(d))]);
    for (const deviceId of announce) await this.changed(userId, { type: 'device_keys', device_id: deviceId, deleted: true });
  }

  /** A new device: the user's own other devices and room-mates learn that the list changed. */
  async deviceCreated(userId: string, deviceId: string, displayName: string | null): Promise<void> {
    await this.changed(userId, { type: 'device_keys', device_id: deviceId, display_name: displayName });
  }

  /** A device's display name changed: it shows in keys/query and /user/devices, so it is a device list change. */
  async deviceRenamed(userId: string, deviceId: string, displayName: string | null): Promise<void> {
    const stored = (await this.deps.store.deviceKeys(userId)).get(deviceId);
    await this.changed(userId, { type: 'device_keys', device_id: deviceId, ...(stored !== undefined ? { keys: parseJson(stored) } : {}), display_name: displayName });
  }

  // -------------------------------------------------------------------------------------------
  // Cross-signing

  async queryCrossSigningStatus(req: QueryCrossSigningStatusRequest): Promise<QueryCrossSigningStatusResponse> {
    const keys = await this.deps.store.crossSigningKeys([req.userId]);
    return { hasMasterKey: keys.get(req.userId)?.has('master') ?? false };
  }

  private checkCrossSigningKey(key: KeyObject, userId: string, type: CrossSigningType): { error: KeyError } | { publicKey: string } {
    if (key['user_id'] !== userId) return fail('M_INVALID_PARAM', `${type} key: user_id must be the uploading user`);
    const usage = key['usage'];
    if (!Array.isArray(usage) || !usage.includes(type) || !usage.every((u) => typeof u === 'string')) {
      return fail('M_INVALID_PARAM', `${type} key: usage must include ${type}`);
    }
    const publicKey = crossSigningPublicKey(key);
    if (!publicKey) return fail('M_INVALID_PARAM', `${type} key: keys must hold exactly one ed25519 key named by itself`);
    if (key['signatures'] !== undefined && !isObject(key['signatures'])) return fail('M_INVALID_PARAM', `${type} key: signatures must be an object`);
    return { publicKey };
  }

  async performUploadDeviceSigningKeys(req: PerformUploadDeviceSigningKeysRequest): Promise<PerformUploadDeviceSigningKeysResponse> {
    const { userId } = req;
    const stored = (await this.deps.store.crossSigningKeys([userId])).get(userId);
    const uploads: Array<[CrossSigningType, KeyObject | undefined]> = [
      ['master', req.masterKey],
      ['self_signing', req.selfSigningKey],
      ['user_signing', req.userSigningKey],
    ];
    if (uploads.every(([, k]) => k === undefined)) return fail('M_MISSING_PARAM', 'no cross-signing keys to upload');

    const publicKeys = new Map<CrossSigningType, string>();
    for (const [type, key] of uploads) {
      if (key === undefined) continue;
      const checked = this.checkCrossSigningKey(key, userId, type);
      if ('error' in checked) return checked;
      publicKeys.set(type, checked.publicKey);
    }
    const masterJson = req.masterKey ?? (stored?.get('master') !== undefined ? parseJson(stored.get('master')!) : undefined);
    if (!masterJson) return fail('M_MISSING_PARAM', 'a master key must be uploaded first');
    const masterPub = crossSigningPublicKey(masterJson)!;
    // The subkeys must be signed by the master key they belong to.
    for (const [type, key] of uploads) {
      if (key === undefined || type === 'master') continue;
      if (!verifies(key, userId, `ed25519:${masterPub}`, masterPub)) {
        return fail('M_INVALID_SIGNATURE', `${type} key is not signed by the master key`);
      }
    }

    const changes = new Map<string, string>();
    for (const [type, key] of uploads) {
      if (key === undefined) continue;
      const json = JSON.stringify(key);
      const old = stored?.get(type);
      if (old === undefined || canonicalJson(parseJson(old)) !== canonicalJson(key)) changes.set(type, json);
    }
    if (changes.size === 0) return {};
    const newMaster = changes.has('master');
    await this.deps.store.putCrossSigningKeys(userId, changes, newMaster);
    const after = (await this.deps.store.crossSigningKeys([userId])).get(userId);
    const master = after?.get('master');
    const self = after?.get('self_signing');
    // A user-signing key is the user's own business: a change of it alone tells no one else.
    const userSigningOnly = !changes.has('master') && !changes.has('self_signing');
    await this.changed(userId, {
      type: 'cross_signing',
      ...(master !== undefined ? { master_key: parseJson(master) } : {}),
      ...(self !== undefined ? { self_signing_key: parseJson(self) } : {}),
      ...(userSigningOnly ? { visible_to: userId } : {}),
    });
    return {};
  }

  async performUploadDeviceSignatures(req: PerformUploadDeviceSignaturesRequest): Promise<PerformUploadDeviceSignaturesResponse> {
    const { userId } = req;
    const failures: PerformUploadDeviceSignaturesResponse['failures'] = {};
    const failed = (target: string, keyId: string, errcode: string, error: string): void => {
      failures[target] = { ...failures[target], [keyId]: { errcode, error } };
    };
    const mine = (await this.deps.store.crossSigningKeys([userId])).get(userId);
    const pubOf = (type: CrossSigningType): string | undefined => {
      const json = mine?.get(type);
      return json === undefined ? undefined : crossSigningPublicKey(parseJson(json));
    };
    const masterPub = pubOf('master');
    const selfSigningPub = pubOf('self_signing');
    const userSigningPub = pubOf('user_signing');
    const myDevices = await this.deps.store.deviceKeys(userId);
    let changedMine = false;
    const signedOthers = new Set<string>();
    /** Own devices newly signed with the self-signing key: their keys changed for everyone (an m.device_list_update). */
    const signedDevices = new Set<string>();

    for (const [target, byKey] of Object.entries(req.signatures)) {
      if (!isObject(byKey)) continue;
      for (const [keyId, obj] of Object.entries(byKey)) {
        if (!isObject(obj)) {
          failed(target, keyId, 'M_INVALID_PARAM', 'the signed key must be an object');
          continue;
        }
        const sigsBy = obj['signatures'];
        const mySigs = isObject(sigsBy) && isObject(sigsBy[userId]) ? (sigsBy[userId] as Record<string, unknown>) : {};

        if (target === userId && keyId === masterPub) {
          // A device vouching for its user's master key: signed with one of the user's device keys.
          if (signedPart(obj) !== signedPart(parseJson(mine!.get('master')!))) {
            failed(target, keyId, 'M_INVALID_SIGNATURE', 'the signed object is not the stored master key');
            continue;
          }
          let stored = false;
          for (const [sigKeyId, sig] of Object.entries(mySigs)) {
            const deviceId = sigKeyId.startsWith('ed25519:') ? sigKeyId.slice('ed25519:'.length) : undefined;
            const deviceJson = deviceId === undefined ? undefined : myDevices.get(deviceId);
            if (deviceJson === undefined || typeof sig !== 'string') continue;
            const devicePub = (parseJson(deviceJson)['keys'] as Record<string, unknown> | undefined)?.[sigKeyId];
            if (typeof devicePub !== 'string' || !verifies({ ...obj, signatures: { [userId]: { [sigKeyId]: sig } } }, userId, sigKeyId, devicePub)) {
              failed(target, keyId, 'M_INVALID_SIGNATURE', `signature by ${sigKeyId} does not verify`);
              continue;
            }
            await this.deps.store.putSignature({ originUserId: userId, originKeyId: sigKeyId, targetUserId: userId, targetKeyId: keyId, signature: sig });
            stored = true;
          }
          if (stored) changedMine = true;
          else if (!failures[target]?.[keyId]) failed(target, keyId, 'M_INVALID_SIGNATURE', 'no signature by a device of the user');
          continue;
        }

        if (target === userId) {
          // One of the user's own devices, signed with their self-signing key.
          const deviceJson = myDevices.get(keyId);
          if (deviceJson === undefined) {
            failed(target, keyId, 'M_NOT_FOUND', 'unknown device');
            continue;
          }
          if (!selfSigningPub) {
            failed(target, keyId, 'M_INVALID_SIGNATURE', 'the user has no self-signing key');
            continue;
          }
          const sigKeyId = `ed25519:${selfSigningPub}`;
          const sig = mySigs[sigKeyId];
          if (signedPart(obj) !== signedPart(parseJson(deviceJson))) {
            failed(target, keyId, 'M_INVALID_SIGNATURE', 'the signed object is not the stored device key');
            continue;
          }
          if (typeof sig !== 'string' || !verifies(obj, userId, sigKeyId, selfSigningPub)) {
            failed(target, keyId, 'M_INVALID_SIGNATURE', 'no valid signature by the self-signing key');
            continue;
          }
          await this.deps.store.putSignature({ originUserId: userId, originKeyId: sigKeyId, targetUserId: userId, targetKeyId: keyId, signature: sig });
          changedMine = true;
          signedDevices.add(keyId);
          continue;
        }

        // Another user's master key, signed with the requester's user-signing key.
        if (!userSigningPub) {
          failed(target, keyId, 'M_INVALID_SIGNATURE', 'you have no user-signing key');
          continue;
        }
        const theirMaster = this.isLocal(target) ? (await this.deps.store.crossSigningKeys([target])).get(target)?.get('master') : undefined;
        if (this.isLocal(target)) {
          if (theirMaster === undefined || crossSigningPublicKey(parseJson(theirMaster)) !== keyId || signedPart(obj) !== signedPart(parseJson(theirMaster))) {
            failed(target, keyId, 'M_NOT_FOUND', 'that is not the master key of the user');
            continue;
          }
        } else if (crossSigningPublicKey(obj) !== keyId) {
          failed(target, keyId, 'M_INVALID_PARAM', 'the key ID must be the master public key');
          continue;
        }
        const sigKeyId = `ed25519:${userSigningPub}`;
        const sig = mySigs[sigKeyId];
        if (typeof sig !== 'string' || !verifies(obj, userId, sigKeyId, userSigningPub)) {
          failed(target, keyId, 'M_INVALID_SIGNATURE', 'no valid signature by your user-signing key');
          continue;
        }
        await this.deps.store.putSignature({ originUserId: userId, originKeyId: sigKeyId, targetUserId: target, targetKeyId: keyId, signature: sig });
        // User-signing signatures are private to the signer: only they learn that the target's keys changed.
        signedOthers.add(target);
      }
    }
    if (changedMine) {
      const master = mine?.get('master');
      const self = mine?.get('self_signing');
      await this.changed(userId, {
        type: 'cross_signing',
        ...(master !== undefined ? { master_key: parseJson(master) } : {}),
        ...(self !== undefined ? { self_signing_key: parseJson(self) } : {}),
      });
    }
    for (const target of signedOthers) await this.changed(target, { type: 'cross_signing', visible_to: userId });
    if (signedDevices.size > 0) {
      const sigs = (await this.deps.store.signaturesOn([userId])).filter((s) => s.originUserId === userId);
      const names = await this.deps.deviceNames(userId);
      for (const deviceId of signedDevices) {
        const json = myDevices.get(deviceId);
        if (json === undefined) continue;
        const keys = withSignatures(parseJson(json), sigs.filter((s) => s.targetKeyId === deviceId));
        await this.changed(userId, { type: 'device_keys', device_id: deviceId, keys, display_name: names.get(deviceId) ?? null });
      }
    }
    return { failures };
  }
}
