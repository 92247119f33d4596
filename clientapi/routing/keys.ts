/**
 * End-to-end encryption keys: keys/upload, keys/query, keys/claim, and cross-signing
 * (keys/device_signing/upload, keys/signatures/upload). The key server in userapi does the
 * work; these routes check the shape of requests and turn its answers into the spec's JSON.
 * keys/changes is served by syncapi, which owns sync tokens (as in Dendrite).
 */
import type { Context, Hono } from 'hono';
import { MatrixError, badJson, invalidParam, jsonResponse, readJsonObject, type JsonBody } from '../../internal/httputil/index.js';
import type { ByUserByKey, ClientUserAPI, KeyError, KeyObject } from '../../userapi/api/index.js';
import { requireDevice } from '../auth/device.js';
import type { PasswordUIA } from '../auth/uia.js';
import { clientRoute } from './paths.js';

/** A client uploads up to a few hundred one-time keys at once; 1 MiB is ample. */
const MAX_UPLOAD = 1024 * 1024;
const MAX_QUERY = 1024 * 1024;
const MAX_TIMEOUT_MS = 60_000;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function keyError(e: KeyError): MatrixError {
  const status = e.errcode === 'M_FORBIDDEN' ? 403 : e.errcode === 'M_NOT_FOUND' ? 404 : e.errcode === 'M_UNKNOWN' ? 500 : 400;
  return new MatrixError(status, e.errcode, e.message);
}

function optionalObject(body: JsonBody, field: string): KeyObject | undefined {
  const v = body[field];
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw badJson(`${field} must be an object`);
  return v;
}

function timeoutOf(body: JsonBody): number | undefined {
  const t = body['timeout'];
  if (t === undefined || t === null) return undefined;
  if (typeof t !== 'number' || !Number.isFinite(t) || t < 0) throw badJson('timeout must be a non-negative number of milliseconds');
  return Math.min(t, MAX_TIMEOUT_MS);
}

export function addKeyRoutes(client: Hono, userAPI: ClientUserAPI, uia: PasswordUIA): void {
  clientRoute(client, 'post', '/keys/upload', async (c: Context) => {
    const me = await requireDevice(c, userAPI, { allowGuests: true });
    const body = await readJsonObject(c, { maxBytes: MAX_UPLOAD, allowEmpty: true });
    const deviceKeys = optionalObject(body, 'device_keys');
    const oneTimeKeys = optionalObject(body, 'one_time_keys');
    // Fallback keys under their MSC2732 name too: clients released before the spec still send it.
    const fallbackKeys = optionalObject(body, 'fallback_keys') ?? optionalObject(body, 'org.matrix.msc2732.fallback_keys');
    const res = await userAPI.performUploadKeys({
      userId: me.userId,
      deviceId: me.deviceId,
      ...(deviceKeys ? { deviceKeys } : {}),
      ...(oneTimeKeys ? { oneTimeKeys } : {}),
      ...(fallbackKeys ? { fallbackKeys } : {}),
    });
    if (res.error) throw keyError(res.error);
    return jsonResponse({ one_time_key_counts: res.oneTimeKeyCounts });
  });

  clientRoute(client, 'post', '/keys/query', async (c: Context) => {
    const me = await requireDevice(c, userAPI, { allowGuests: true });
    const body = await readJsonObject(c, { maxBytes: MAX_QUERY });
    const wanted = body['device_keys'];
    if (!isObject(wanted)) throw badJson('device_keys must be an object of user IDs to device lists');
    const userToDevices: Record<string, string[]> = {};
    for (const [userId, devices] of Object.entries(wanted)) {
      if (!/^@[^:]+:.+$/.test(userId)) throw invalidParam(`${userId} is not a user ID`);
      if (devices === null) {
        userToDevices[userId] = [];
        continue;
      }
      if (!Array.isArray(devices) || !devices.every((d) => typeof d === 'string')) throw badJson(`device_keys.${userId} must be a list of device IDs`);
      userToDevices[userId] = devices as string[];
    }
    const timeoutMs = timeoutOf(body);
    const res = await userAPI.queryKeys({ userId: me.userId, userToDevices, ...(timeoutMs !== undefined ? { timeoutMs } : {}) });
    return jsonResponse({
      device_keys: res.deviceKeys,
      failures: res.failures,
      master_keys: res.masterKeys,
      self_signing_keys: res.selfSigningKeys,
      user_signing_keys: res.userSigningKeys,
    });
  });

  clientRoute(client, 'post', '/keys/claim', async (c: Context) => {
    await requireDevice(c, userAPI, { allowGuests: true });
    const body = await readJsonObject(c, { maxBytes: MAX_QUERY });
    const wanted = body['one_time_keys'];
    if (!isObject(wanted)) throw badJson('one_time_keys must be an object of user IDs to devices');
    const oneTimeKeys: ByUserByKey<string> = {};
    for (const [userId, devices] of Object.entries(wanted)) {
      if (!/^@[^:]+:.+$/.test(userId)) throw invalidParam(`${userId} is not a user ID`);
      if (!isObject(devices) || !Object.values(devices).every((a) => typeof a === 'string')) {
        throw badJson(`one_time_keys.${userId} must map device IDs to algorithms`);
      }
      oneTimeKeys[userId] = devices as Record<string, string>;
    }
    const timeoutMs = timeoutOf(body);
    const res = await userAPI.performClaimKeys({ oneTimeKeys, ...(timeoutMs !== undefined ? { timeoutMs } : {}) });
    return jsonResponse({ one_time_keys: res.oneTimeKeys, failures: res.failures });
  });

  const deviceSigningUpload = async (c: Context): Promise<Response> => {
    const me = await requireDevice(c, userAPI);
    const body = await readJsonObject(c, { maxBytes: MAX_QUERY });
    const masterKey = optionalObject(body, 'master_key');
    const selfSigningKey = optionalObject(body, 'self_signing_key');
    const userSigningKey = optionalObject(body, 'user_signing_key');
    // Replacing cross-signing keys needs the password; setting them up the first time does not.
    const { hasMasterKey } = await userAPI.queryCrossSigningStatus({ userId: me.userId });
    if (hasMasterKey) await uia.require(body, me.userId, 'POST /keys/device_signing/upload');
    const res = await userAPI.performUploadDeviceSigningKeys({
      userId: me.userId,
      ...(masterKey ? { masterKey } : {}),
      ...(selfSigningKey ? { selfSigningKey } : {}),
      ...(userSigningKey ? { userSigningKey } : {}),
    });
    if (res.error) throw keyError(res.error);
    return jsonResponse({});
  };

  const signaturesUpload = async (c: Context): Promise<Response> => {
    const me = await requireDevice(c, userAPI);
    const body = await readJsonObject(c, { maxBytes: MAX_QUERY });
    const signatures: ByUserByKey<KeyObject> = {};
    for (const [userId, keys] of Object.entries(body)) {
      if (!/^@[^:]+:.+$/.test(userId)) throw invalidParam(`${userId} is not a user ID`);
      if (!isObject(keys) || !Object.values(keys).every(isObject)) throw badJson(`${userId} must map key IDs to signed keys`);
      signatures[userId] = keys as Record<string, KeyObject>;
    }
    const res = await userAPI.performUploadDeviceSignatures({ userId: me.userId, signatures });
    return jsonResponse({ failures: res.failures });
  };

  // Cross-signing was served under /unstable before it was specified; clients still use it.
  clientRoute(client, 'post', '/keys/device_signing/upload', deviceSigningUpload);
  clientRoute(client, 'post', '/keys/signatures/upload', signaturesUpload);
  client.post('/unstable/keys/device_signing/upload', deviceSigningUpload);
  client.post('/unstable/keys/signatures/upload', signaturesUpload);
}
