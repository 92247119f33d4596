/**
 * Account data, global and per room, and room tags (stored as the room's `m.tag` account
 * data). Types the server manages itself (m.fully_read, m.push_rules) cannot be set here.
 */
import type { Context, Hono } from 'hono';
import { badJson, forbidden, jsonResponse, notFound, readJsonObject } from '../../internal/httputil/index.js';
import type { ClientUserAPI } from '../../userapi/api/index.js';
import { requireDevice } from '../auth/device.js';
import { clientRoute } from './paths.js';

const MAX_BODY = 64 * 1024;
const serverManaged = new Set(['m.fully_read', 'm.push_rules']);

/** m.ignored_user_list is read by the server (sync hides ignored users), so its shape is checked. */
function checkIgnoredUsers(content: Record<string, unknown>): void {
  const ignored = content['ignored_users'];
  if (typeof ignored !== 'object' || ignored === null || Array.isArray(ignored)) throw badJson('ignored_users must be an object of user IDs');
  for (const userId of Object.keys(ignored)) {
    if (!/^@[^:]+:.+$/.test(userId)) throw badJson(`${userId} in ignored_users is not a user ID`);
  }
}

export function addAccountDataRoutes(client: Hono, userAPI: ClientUserAPI): void {
  /** The requester, who must be the user in the path. */
  const owner = async (c: Context): Promise<string> => {
    const me = await requireDevice(c, userAPI, { allowGuests: true });
    if (c.req.param('userId') !== me.userId) throw forbidden('You may only access your own account data');
    return me.userId;
  };
  const roomOf = (c: Context): string | undefined => {
    const roomId = c.req.param('roomId');
    if (roomId === undefined) return undefined;
    if (!/^![^:]+(:.+)?$/.test(roomId)) throw badJson(`${roomId} is not a room ID`);
    return roomId;
  };

  for (const path of ['/user/:userId/account_data/:type', '/user/:userId/rooms/:roomId/account_data/:type']) {
    clientRoute(client, 'put', path, async (c: Context) => {
      const userId = await owner(c);
      const type = c.req.param('type') ?? '';
      if (serverManaged.has(type)) throw badJson(`${type} is managed by the server and cannot be set here`);
      const content = await readJsonObject(c, { maxBytes: MAX_BODY });
      if (type === 'm.ignored_user_list') checkIgnoredUsers(content);
      const roomId = roomOf(c);
      await userAPI.performAccountDataUpdate({ userId, type, content, ...(roomId ? { roomId } : {}) });
      return jsonResponse({});
    });
    clientRoute(client, 'get', path, async (c: Context) => {
      const userId = await owner(c);
      const roomId = roomOf(c);
      const { content } = await userAPI.queryAccountData({ userId, type: c.req.param('type') ?? '', ...(roomId ? { roomId } : {}) });
      if (!content) throw notFound('No account data of that type');
      return jsonResponse(content);
    });
  }

  const tagsOf = async (userId: string, roomId: string): Promise<Record<string, unknown>> => {
    const { content } = await userAPI.queryAccountData({ userId, roomId, type: 'm.tag' });
    const tags = content?.['tags'];
    return typeof tags === 'object' && tags !== null && !Array.isArray(tags) ? (tags as Record<string, unknown>) : {};
  };

  clientRoute(client, 'get', '/user/:userId/rooms/:roomId/tags', async (c: Context) => {
    const userId = await owner(c);
    return jsonResponse({ tags: await tagsOf(userId, roomOf(c) ?? '') });
  });
  clientRoute(client, 'put', '/user/:userId/rooms/:roomId/tags/:tag', async (c: Context) => {
    const userId = await owner(c);
    const roomId = roomOf(c) ?? '';
    const body = await readJsonObject(c, { maxBytes: MAX_BODY, allowEmpty: true });
    const order = body['order'];
    if (order !== undefined && (typeof order !== 'number' || !Number.isFinite(order))) throw badJson('order must be a number');
    const tag = c.req.param('tag') ?? '';
    if (tag.length === 0 || tag.length > 255) throw badJson('tag names are 1 to 255 characters');
    const tags = { ...(await tagsOf(userId, roomId)), [tag]: order === undefined ? {} : { order } };
    await userAPI.performAccountDataUpdate({ userId, roomId, type: 'm.tag', content: { tags } });
    return jsonResponse({});
  });
  clientRoute(client, 'delete', '/user/:userId/rooms/:roomId/tags/:tag', async (c: Context) => {
    const userId = await owner(c);
    const roomId = roomOf(c) ?? '';
    const tags = { ...(await tagsOf(userId, roomId)) };
    delete tags[c.req.param('tag') ?? ''];
    await userAPI.performAccountDataUpdate({ userId, roomId, type: 'm.tag', content: { tags } });
    return jsonResponse({});
  });
}
