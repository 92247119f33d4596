/**
 * GET /admin/whois/{userId} ("Server administration"): a user's devices and where they were
 * last seen from. Open to server admins, and to users asking about themselves.
 */
import type { Context, Hono } from 'hono';
import { forbidden, invalidParam, jsonResponse } from '../../internal/httputil/index.js';
import { isValidUserId } from '../../internal/matrix/index.js';
import type { ClientUserAPI } from '../../userapi/api/index.js';
import { requireDevice } from '../auth/device.js';
import { clientRoute } from './paths.js';

export function addWhoisRoute(client: Hono, serverName: string, userAPI: ClientUserAPI): void {
  clientRoute(client, 'get', '/admin/whois/:userId', async (c: Context) => {
    const me = await requireDevice(c, userAPI);
    const userId = c.req.param('userId') ?? '';
    if (userId !== me.userId && !me.isAdmin) throw forbidden('Only server admins may look up other users');
    if (!isValidUserId(userId)) throw invalidParam(`${userId} is not a user ID`);
    if (!userId.endsWith(`:${serverName}`)) throw invalidParam('Only users of this server can be looked up');
    const { devices } = await userAPI.queryDevices({ userId });
    // One session per device (this server keeps no more); its connection is the last seen one.
    const out: Record<string, { sessions: Array<{ connections: Array<{ ip: string | null; last_seen: number; user_agent: string | null }> }> }> = {};
    for (const d of devices) {
      const seen = d.lastSeenTs > 0 || d.lastSeenIp !== null;
      out[d.deviceId] = { sessions: [{ connections: seen ? [{ ip: d.lastSeenIp, last_seen: d.lastSeenTs, user_agent: d.lastSeenUserAgent }] : [] }] };
    }
    return jsonResponse({ user_id: userId, devices: out });
  });
}
