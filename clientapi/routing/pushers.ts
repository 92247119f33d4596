/**
 * Pushers and notifications: GET /pushers, POST /pushers/set, GET /notifications. Pushers
 * and notifications are userapi's; these routes check the request and call it.
 */
import type { Context, Hono } from 'hono';
import { clientRoute, invalidParam, jsonResponse, missingParam, readJsonObject } from '../../internal/httputil/index.js';
import type { ClientUserAPI } from '../../userapi/api/index.js';
import { requireDevice } from '../auth/device.js';

const MAX_BODY = 64 * 1024;
const DEFAULT_NOTIFICATIONS_LIMIT = 20;

/** Spec limits: app_id up to 64 characters, pushkey up to 512 bytes. */
const MAX_APP_ID = 64;
const MAX_PUSHKEY_BYTES = 512;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function requiredString(body: Record<string, unknown>, key: string): string {
  const v = body[key];
  if (v === undefined || v === null) throw missingParam(`${key} is required`);
  if (typeof v !== 'string') throw invalidParam(`${key} must be a string`);
  return v;
}

/** An http pusher's data.url: an absolute http(s) URL (the spec asks for https; test gateways use http). */
function validPushUrl(v: unknown): boolean {
  if (typeof v !== 'string') return false;
  try {
    const u = new URL(v);
    return (u.protocol === 'https:' || u.protocol === 'http:') && u.hostname !== '';
  } catch {
    return false;
  }
}

export function addPusherRoutes(client: Hono, userAPI: ClientUserAPI): void {
  clientRoute(client, 'get', '/pushers', async (c: Context) => {
    const me = await requireDevice(c, userAPI);
    return jsonResponse(await userAPI.queryPushers({ userId: me.userId }));
  });

  clientRoute(client, 'post', '/pushers/set', async (c: Context) => {
    const me = await requireDevice(c, userAPI);
    const body = await readJsonObject(c, { maxBytes: MAX_BODY });
    const appId = requiredString(body, 'app_id');
    const pushkey = requiredString(body, 'pushkey');
    if (appId.length === 0 || appId.length > MAX_APP_ID) throw invalidParam(`app_id must be 1 to ${MAX_APP_ID} characters`);
    if (pushkey.length === 0 || Buffer.byteLength(pushkey) > MAX_PUSHKEY_BYTES) throw invalidParam(`pushkey must be 1 to ${MAX_PUSHKEY_BYTES} bytes`);
    if (!('kind' in body)) throw missingParam('kind is required');
    const kind = body['kind'];
    if (kind === null) {
      // kind null deletes the pusher.
      await userAPI.performPusherDeletion({ userId: me.userId, appId, pushkey });
      return jsonResponse({});
    }
    if (kind !== 'http' && kind !== 'email') throw invalidParam('kind must be "http", "email" or null');
    const appDisplayName = requiredString(body, 'app_display_name');
    const deviceDisplayName = requiredString(body, 'device_display_name');
    const lang = requiredString(body, 'lang');
    if (body['profile_tag'] !== undefined && typeof body['profile_tag'] !== 'string') throw invalidParam('profile_tag must be a string');
    if (body['data'] === undefined) throw missingParam('data is required');
    const data = body['data'];
    if (!isObject(data)) throw invalidParam('data must be an object');
    if (kind === 'http') {
      if (data['url'] === undefined) throw missingParam('data.url is required for http pushers');
      if (!validPushUrl(data['url'])) throw invalidParam('data.url must be an absolute http(s) URL');
      if (data['format'] !== undefined && typeof data['format'] !== 'string') throw invalidParam('data.format must be a string');
    }
    if (body['append'] !== undefined && typeof body['append'] !== 'boolean') throw invalidParam('append must be true or false');
    await userAPI.performPusherSet({
      userId: me.userId,
      deviceId: me.deviceId,
      append: body['append'] === true,
      pusher: {
        pushkey,
        kind,
        app_id: appId,
        app_display_name: appDisplayName,
        device_display_name: deviceDisplayName,
        ...(typeof body['profile_tag'] === 'string' ? { profile_tag: body['profile_tag'] } : {}),
        lang,
        data,
      },
    });
    return jsonResponse({});
  });

  clientRoute(client, 'get', '/notifications', async (c: Context) => {
    const me = await requireDevice(c, userAPI);
    const limitRaw = c.req.query('limit');
    let limit = DEFAULT_NOTIFICATIONS_LIMIT;
    if (limitRaw !== undefined) {
      if (!/^\d{1,6}$/.test(limitRaw) || Number(limitRaw) < 1) throw invalidParam('limit must be a positive integer');
      limit = Number(limitRaw);
    }
    const from = c.req.query('from');
    const only = c.req.query('only');
    const res = await userAPI.queryNotifications({ userId: me.userId, limit, onlyHighlight: only === 'highlight', ...(from !== undefined ? { from } : {}) });
    return jsonResponse({ notifications: res.notifications, ...(res.nextToken !== undefined ? { next_token: res.nextToken } : {}) });
  });
}
