/**
 * Dendrite's room and user admin API, for server admins only (POST, as Dendrite has them):
 *   /_dendrite/admin/evacuateRoom/{roomId}   local users leave the room      → {"affected": [user IDs]}
 *   /_dendrite/admin/evacuateUser/{userId}   the user leaves every room      → {"affected": [room IDs]}
 *   /_dendrite/admin/purgeRoom/{roomId}      the room goes from the databases → {}
 *   /_dendrite/admin/resetPassword/{userId}  {"password", "logout_devices"}  → {"password_updated": true}
 */
import type { Context, Hono } from 'hono';
import { badJson, forbidden, invalidParam, jsonResponse, missingParam, notFound, readJsonObject } from '../../internal/httputil/index.js';
import type { RoomserverInternalAPI } from '../../roomserver/api/index.js';
import type { ClientUserAPI } from '../../userapi/api/index.js';
import { requireDevice } from '../auth/device.js';

export type AdminRoomserverAPI = Pick<RoomserverInternalAPI, 'performAdminEvacuateRoom' | 'performAdminEvacuateUser' | 'performAdminPurgeRoom'>;

const MAX_BODY = 16 * 1024;
const MAX_PASSWORD = 512;

function roomIdParam(c: Context): string {
  const id = c.req.param('roomId') ?? '';
  if (!/^![^:]+:.+$/.test(id) && !/^![A-Za-z0-9+/_-]{43}$/.test(id)) throw invalidParam('not a room ID');
  return id;
}

function userIdParam(c: Context): string {
  const id = c.req.param('userId') ?? '';
  if (!/^@[^:]+:.+$/.test(id)) throw invalidParam('not a user ID');
  return id;
}

export function addAdminRoutes(admin: Hono, userAPI: ClientUserAPI, rsAPI: AdminRoomserverAPI, serverName: string): void {
  const requireAdmin = async (c: Context): Promise<void> => {
    const me = await requireDevice(c, userAPI);
    if (!me.isAdmin) throw forbidden('This API is for server admins');
  };

  admin.post('/admin/evacuateRoom/:roomId', async (c: Context) => {
    await requireAdmin(c);
    const res = await rsAPI.performAdminEvacuateRoom({ room_id: roomIdParam(c) });
    if (res.error !== undefined) throw notFound('Room not found');
    return jsonResponse({ affected: res.affected });
  });

  admin.post('/admin/evacuateUser/:userId', async (c: Context) => {
    await requireAdmin(c);
    const userId = userIdParam(c);
    if (userId.slice(userId.indexOf(':') + 1) !== serverName) throw invalidParam('Only local users can be evacuated');
    const res = await rsAPI.performAdminEvacuateUser({ user_id: userId });
    return jsonResponse({ affected: res.affected });
  });

  admin.post('/admin/purgeRoom/:roomId', async (c: Context) => {
    await requireAdmin(c);
    const res = await rsAPI.performAdminPurgeRoom({ room_id: roomIdParam(c) });
    if (res.error !== undefined) throw notFound('Room not found');
    return jsonResponse({});
  });

  admin.post('/admin/resetPassword/:userId', async (c: Context) => {
    await requireAdmin(c);
    const userId = userIdParam(c);
    const colon = userId.indexOf(':');
    if (userId.slice(colon + 1) !== serverName) throw invalidParam('Only local users have passwords here');
    const body = await readJsonObject(c, { maxBytes: MAX_BODY });
    const password = body['password'];
    if (password === undefined || password === '') throw missingParam('Expecting a non-empty password');
    if (typeof password !== 'string') throw badJson('password must be a string');
    if (password.length > MAX_PASSWORD) throw invalidParam('password is too long');
    const logout = body['logout_devices'];
    if (logout !== undefined && typeof logout !== 'boolean') throw badJson('logout_devices must be true or false');
    if ((await userAPI.queryAccountAvailability({ localpart: userId.slice(1, colon) })).available) throw notFound('User does not exist');
    const res = await userAPI.performPasswordUpdate({ userId, password, logoutDevices: logout === true });
    return jsonResponse({ password_updated: res.updated });
  });
}
