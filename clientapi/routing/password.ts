/**
 * POST /account/password and /account/deactivate (which also unbinds the user's 3PIDs from
 * identity servers and leaves the user's rooms), each after proving the password (UIA).
 */
import type { Context, Hono } from 'hono';
import { badJson, jsonResponse, readJsonObject } from '../../internal/httputil/index.js';
import type { Logger } from 'pino';
import type { RoomserverInternalAPI } from '../../roomserver/api/index.js';
import type { ClientUserAPI } from '../../userapi/api/index.js';
import { requireDevice } from '../auth/device.js';
import type { PasswordUIA } from '../auth/uia.js';
import { clientRoute } from './paths.js';
import { optionalIdServer } from './threepid.js';
import type { ThreePidBinder } from './threepidbind.js';

const MAX_BODY = 64 * 1024;

export function addPasswordRoute(
  client: Hono,
  userAPI: ClientUserAPI,
  uia: PasswordUIA,
  rsAPI: Pick<RoomserverInternalAPI, 'queryRoomsForUser' | 'performSendEvent'>,
  log: Logger,
  threePids: Pick<ThreePidBinder, 'unbindAll'>,
): void {
  clientRoute(client, 'post', '/account/password', async (c: Context) => {
    const me = await requireDevice(c, userAPI);
    const body = await readJsonObject(c, { maxBytes: MAX_BODY });
    const password = body['new_password'];
    if (typeof password !== 'string' || password.length === 0) throw badJson('new_password must be a non-empty string');
    if (password.length > 512) throw badJson('new_password is too long');
    const logout = body['logout_devices'];
    if (logout !== undefined && typeof logout !== 'boolean') throw badJson('logout_devices must be true or false');
    await uia.require(body, me.userId, 'POST /account/password');
    await userAPI.performPasswordUpdate({ userId: me.userId, password, logoutDevices: logout ?? true, exceptDeviceId: me.deviceId });
    return jsonResponse({});
  });

  clientRoute(client, 'post', '/account/deactivate', async (c: Context) => {
    const me = await requireDevice(c, userAPI);
    const body = await readJsonObject(c, { maxBytes: MAX_BODY, allowEmpty: true });
    const erase = body['erase'];
    if (erase !== undefined && typeof erase !== 'boolean') throw badJson('erase must be true or false');
    const idServer = optionalIdServer(body);
    await uia.require(body, me.userId, 'POST /account/deactivate');
    // First, as Synapse does: the bindings are the user's last link to their 3PIDs. Best effort.
    const unbindResult = await threePids.unbindAll(me.userId, idServer);
    await userAPI.performAccountDeactivation({ userId: me.userId, erase: erase === true });
    // A deactivated user leaves every room they were in, and declines their invites (spec: "Account deactivation").
    for (const membership of ['join', 'invite', 'knock'] as const) {
      for (const roomId of (await rsAPI.queryRoomsForUser({ user_id: me.userId, membership })).room_ids) {
        const res = await rsAPI.performSendEvent({ user_id: me.userId, room_id: roomId, type: 'm.room.member', state_key: me.userId, content: { membership: 'leave' } });
        if (res.error !== undefined) log.warn({ userId: me.userId, roomId, error: res.message }, 'deactivation: could not leave a room');
      }
    }
    return jsonResponse({ id_server_unbind_result: unbindResult });
  });
}
