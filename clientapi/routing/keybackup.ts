/**
 * Server-side key backup routes: /room_keys/version (create, get, update, delete) and
 * /room_keys/keys (all, per room, per session: put, get, delete), for the requesting user.
 */
import type { Context, Hono } from 'hono';
import { MatrixError, badJson, invalidParam, jsonResponse, missingParam, notFound, readJsonObject, type JsonBody } from '../../internal/httputil/index.js';
import type { BackupKeys, ClientUserAPI, KeyBackupCountResponse, KeyBackupSession } from '../../userapi/api/index.js';
import { requireDevice } from '../auth/device.js';
import { clientRoute } from './paths.js';

const MAX_VERSION_BODY = 64 * 1024;
/** A client backs up every session of every room at once when it first enables backup. */
const MAX_KEYS_BODY = 8 * 1024 * 1024;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function sessionKey(v: unknown, where: string): KeyBackupSession {
  if (!isObject(v)) throw badJson(`${where} must be an object`);
  for (const field of ['first_message_index', 'forwarded_count'] as const) {
    const n = v[field];
    if (n === undefined) throw missingParam(`${where}.${field} is required`);
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw badJson(`${where}.${field} must be a non-negative integer`);
  }
  if (typeof v['is_verified'] !== 'boolean') throw badJson(`${where}.is_verified must be true or false`);
  if (v['session_data'] === undefined) throw missingParam(`${where}.session_data is required`);
  return { first_message_index: v['first_message_index'] as number, forwarded_count: v['forwarded_count'] as number, is_verified: v['is_verified'], session_data: v['session_data'] };
}

function sessionsOf(v: unknown, where: string): Record<string, KeyBackupSession> {
  if (!isObject(v)) throw badJson(`${where} must be an object`);
  const out: Record<string, KeyBackupSession> = {};
  for (const [id, key] of Object.entries(v)) out[id] = sessionKey(key, `${where}.${id}`);
  return out;
}

function countError(res: KeyBackupCountResponse): MatrixError | undefined {
  if (res.error === 'not_found') return notFound('Unknown backup version');
  if (res.error === 'wrong_version') {
    return new MatrixError(403, 'M_WRONG_ROOM_KEYS_VERSION', 'This is not the current backup version', res.currentVersion !== undefined ? { current_version: res.currentVersion } : {});
  }
  return undefined;
}

export function addKeyBackupRoutes(client: Hono, userAPI: ClientUserAPI): void {
  const versionBody = async (c: Context): Promise<{ algorithm: string; authData: unknown; body: JsonBody }> => {
    const body = await readJsonObject(c, { maxBytes: MAX_VERSION_BODY });
    if (typeof body['algorithm'] !== 'string') throw missingParam('algorithm is required');
    if (body['auth_data'] === undefined) throw missingParam('auth_data is required');
    return { algorithm: body['algorithm'], authData: body['auth_data'], body };
  };

  clientRoute(client, 'post', '/room_keys/version', async (c: Context) => {
    const me = await requireDevice(c, userAPI);
    const { algorithm, authData } = await versionBody(c);
    return jsonResponse(await userAPI.performKeyBackupVersionCreation({ userId: me.userId, algorithm, authData }));
  });

  const getVersion = async (c: Context, version: string | undefined): Promise<Response> => {
    const me = await requireDevice(c, userAPI);
    const { info } = await userAPI.queryKeyBackupVersion({ userId: me.userId, ...(version !== undefined ? { version } : {}) });
    if (!info) throw notFound(version === undefined ? 'No current backup version' : 'Unknown backup version');
    return jsonResponse(info);
  };
  clientRoute(client, 'get', '/room_keys/version', (c) => getVersion(c, undefined));
  clientRoute(client, 'get', '/room_keys/version/:version', (c) => getVersion(c, c.req.param('version')));

  clientRoute(client, 'put', '/room_keys/version/:version', async (c: Context) => {
    const me = await requireDevice(c, userAPI);
    const version = c.req.param('version') ?? '';
    const { algorithm, authData, body } = await versionBody(c);
    // Some clients send the version back as a number.
    if (body['version'] !== undefined && String(body['version']) !== version) throw invalidParam('version in the body does not match the path');
    const res = await userAPI.performKeyBackupVersionUpdate({ userId: me.userId, version, algorithm, authData });
    if (res.error === 'not_found') throw notFound('Unknown backup version');
    if (res.error === 'algorithm_mismatch') throw invalidParam('algorithm does not match the backup version');
    return jsonResponse({});
  });

  clientRoute(client, 'delete', '/room_keys/version/:version', async (c: Context) => {
    const me = await requireDevice(c, userAPI);
    const res = await userAPI.performKeyBackupVersionDeletion({ userId: me.userId, version: c.req.param('version') ?? '' });
    if (res.error) throw notFound('Unknown backup version');
    return jsonResponse({});
  });

  const versionParam = (c: Context): string => {
    const v = c.req.query('version');
    if (v === undefined) throw missingParam('version is required');
    return v;
  };

  for (const path of ['/room_keys/keys', '/room_keys/keys/:roomId', '/room_keys/keys/:roomId/:sessionId']) {
    clientRoute(client, 'put', path, async (c: Context) => {
      const me = await requireDevice(c, userAPI);
      const version = versionParam(c);
      const body = await readJsonObject(c, { maxBytes: MAX_KEYS_BODY });
      const roomId = c.req.param('roomId');
      const sessionId = c.req.param('sessionId');
      let keys: BackupKeys;
      if (roomId !== undefined && sessionId !== undefined) keys = { [roomId]: { [sessionId]: sessionKey(body, 'body') } };
      else if (roomId !== undefined) keys = { [roomId]: sessionsOf(body['sessions'], 'sessions') };
      else {
        if (!isObject(body['rooms'])) throw badJson('rooms must be an object');
        keys = {};
        for (const [r, room] of Object.entries(body['rooms'])) {
          if (!isObject(room)) throw badJson(`rooms.${r} must be an object`);
          keys[r] = sessionsOf(room['sessions'], `rooms.${r}.sessions`);
        }
      }
      const res = await userAPI.performKeyBackupUpload({ userId: me.userId, version, keys });
      const err = countError(res);
      if (err) throw err;
      return jsonResponse({ count: res.count, etag: res.etag });
    });

    clientRoute(client, 'get', path, async (c: Context) => {
      const me = await requireDevice(c, userAPI);
      const roomId = c.req.param('roomId');
      const sessionId = c.req.param('sessionId');
      const res = await userAPI.queryKeyBackup({ userId: me.userId, version: versionParam(c), ...(roomId !== undefined ? { roomId } : {}), ...(sessionId !== undefined ? { sessionId } : {}) });
      if (res.error || !res.keys) throw notFound('Unknown backup version');
      if (roomId !== undefined && sessionId !== undefined) {
        const key = res.keys[roomId]?.[sessionId];
        if (!key) throw notFound('No key backed up for that session');
        return jsonResponse(key);
      }
      if (roomId !== undefined) return jsonResponse({ sessions: res.keys[roomId] ?? {} });
      return jsonResponse({ rooms: Object.fromEntries(Object.entries(res.keys).map(([r, sessions]) => [r, { sessions }])) });
    });

    clientRoute(client, 'delete', path, async (c: Context) => {
      const me = await requireDevice(c, userAPI);
      const roomId = c.req.param('roomId');
      const sessionId = c.req.param('sessionId');
      const res = await userAPI.performKeyBackupDeletion({ userId: me.userId, version: versionParam(c), ...(roomId !== undefined ? { roomId } : {}), ...(sessionId !== undefined ? { sessionId } : {}) });
      const err = countError(res);
      if (err) throw err;
      return jsonResponse({ count: res.count, etag: res.etag });
    });
  }
}
