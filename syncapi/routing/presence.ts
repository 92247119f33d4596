/** GET and PUT /presence/{userId}/status. */
import type { Hono } from 'hono';
import { authenticate, badJson, clientRoute, forbidden, invalidParam, jsonResponse, readJsonObject, type TokenResolver } from '../../internal/httputil/index.js';
import type { AuthenticatedDevice } from '../../userapi/api/index.js';
import { PRESENCE_STATES, type PresenceService, type PresenceState } from '../internal/presence.js';

const USER_ID = /^@[^:]+:.+$/;
const MAX_STATUS_MSG = 1024;

export function addPresenceRoutes(client: Hono, presence: PresenceService, userAPI: TokenResolver<AuthenticatedDevice>): void {
  clientRoute(client, 'get', '/presence/:userId/status', async (c) => {
    await authenticate(c, userAPI, { allowGuests: true });
    const userId = c.req.param('userId') ?? '';
    if (!USER_ID.test(userId)) throw invalidParam(`${userId} is not a user ID`);
    return jsonResponse(await presence.content(userId));
  });

  clientRoute(client, 'put', '/presence/:userId/status', async (c) => {
    const device = await authenticate(c, userAPI, { allowGuests: true });
    const userId = c.req.param('userId') ?? '';
    if (userId !== device.userId) throw forbidden('You may only set your own presence');
    const body = await readJsonObject(c, { maxBytes: 64 * 1024 });
    const state = body['presence'];
    if (typeof state !== 'string' || !PRESENCE_STATES.includes(state as PresenceState)) throw invalidParam('presence must be online, offline or unavailable');
    const msg = body['status_msg'];
    if (msg !== undefined && msg !== null && typeof msg !== 'string') throw badJson('status_msg must be a string');
    if (typeof msg === 'string' && msg.length > MAX_STATUS_MSG) throw invalidParam(`status_msg is longer than ${MAX_STATUS_MSG} characters`);
    await presence.set(userId, state as PresenceState, msg === undefined ? undefined : msg);
    return jsonResponse({});
  });
}
