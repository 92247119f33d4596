/**
 * Dendrite's admin refreshDevices, for server admins only:
 *   POST /_dendrite/admin/refreshDevices/{userId}   another server's user's device list is
 *   marked stale and fetched again from their server → {}
 */
import type { Context, Hono } from 'hono';
import { forbidden, invalidParam, jsonResponse, MatrixError } from '../../internal/httputil/index.js';
import type { ClientUserAPI } from '../../userapi/api/index.js';
import { requireDevice } from '../auth/device.js';

export function addAdminDeviceRoutes(admin: Hono, userAPI: ClientUserAPI): void {
  admin.post('/admin/refreshDevices/:userId', async (c: Context) => {
    const me = await requireDevice(c, userAPI);
    if (!me.isAdmin) throw forbidden('This API is for server admins');
    const userId = c.req.param('userId') ?? '';
    if (!/^@[^:]+:.+$/.test(userId)) throw invalidParam('not a user ID');
    const res = await userAPI.performRefreshRemoteDevices({ userId });
    if (res.error !== undefined) {
      if (res.error.errcode === 'M_INVALID_PARAM') throw invalidParam(res.error.message);
      throw new MatrixError(400, 'M_UNKNOWN', res.error.message);
    }
    return jsonResponse({});
  });
}
