/** Device management: GET /devices, GET/PUT/DELETE /devices/{deviceId}, POST /delete_devices. */
import type { Context, Hono } from 'hono';
import { badJson, jsonResponse, notFound, readJsonObject } from '../../internal/httputil/index.js';
import type { ClientUserAPI, DeviceInfo } from '../../userapi/api/index.js';
import { requireDevice } from '../auth/device.js';
import type { PasswordUIA } from '../auth/uia.js';
import { clientRoute } from './paths.js';

const MAX_BODY = 64 * 1024;

function deviceJson(d: DeviceInfo): Record<string, unknown> {
  return { device_id: d.deviceId, display_name: d.displayName, last_seen_ts: d.lastSeenTs, last_seen_ip: d.lastSeenIp };
}

export function addDeviceRoutes(client: Hono, userAPI: ClientUserAPI, uia: PasswordUIA): void {
  const find = async (userId: string, deviceId: string): Promise<DeviceInfo | undefined> =>
    (await userAPI.queryDevices({ userId })).devices.find((d) => d.deviceId === deviceId);

  clientRoute(client, 'get', '/devices', async (c: Context) => {
    const me = await requireDevice(c, userAPI, { allowGuests: true });
    const { devices } = await userAPI.queryDevices({ userId: me.userId });
    return jsonResponse({ devices: devices.map(deviceJson) });
  });

  clientRoute(client, 'get', '/devices/:deviceId', async (c: Context) => {
    const me = await requireDevice(c, userAPI, { allowGuests: true });
    const d = await find(me.userId, c.req.param('deviceId') ?? '');
    if (!d) throw notFound('Unknown device');
    return jsonResponse(deviceJson(d));
  });

  clientRoute(client, 'put', '/devices/:deviceId', async (c: Context) => {
    const me = await requireDevice(c, userAPI, { allowGuests: true });
    const body = await readJsonObject(c, { maxBytes: MAX_BODY, allowEmpty: true });
    const name = body['display_name'];
    if (name !== undefined && name !== null && typeof name !== 'string') throw badJson('display_name must be a string');
    if (typeof name === 'string' && name.length > 512) throw badJson('display_name is too long');
    const { found } = await userAPI.performDeviceUpdate({ userId: me.userId, deviceId: c.req.param('deviceId') ?? '', displayName: name ?? null });
    if (!found) throw notFound('Unknown device');
    return jsonResponse({});
  });

  clientRoute(client, 'delete', '/devices/:deviceId', async (c: Context) => {
    const me = await requireDevice(c, userAPI);
    const body = await readJsonObject(c, { maxBytes: MAX_BODY, allowEmpty: true });
    const deviceId = c.req.param('deviceId') ?? '';
    await uia.require(body, me.userId, `DELETE /devices/${deviceId}`);
    await userAPI.performDeviceDeletion({ userId: me.userId, deviceIds: [deviceId] });
    return jsonResponse({});
  });

  clientRoute(client, 'post', '/delete_devices', async (c: Context) => {
    const me = await requireDevice(c, userAPI);
    const body = await readJsonObject(c, { maxBytes: MAX_BODY });
    const ids = body['devices'];
    if (!Array.isArray(ids) || !ids.every((d) => typeof d === 'string')) throw badJson('devices must be a list of device IDs');
    await uia.require(body, me.userId, `POST /delete_devices ${JSON.stringify([...(ids as string[])].sort())}`);
    await userAPI.performDeviceDeletion({ userId: me.userId, deviceIds: ids as string[] });
    return jsonResponse({});
  });
}
