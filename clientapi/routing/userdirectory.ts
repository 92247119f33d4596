/**
 * POST /user_directory/search: the users the searcher shares a room with, and the users of
 * public rooms this server is in (roomserver's queryKnownUsers), whose user ID or display name
 * contains the term, ignoring case. Users in no room the searcher may see are not found.
 */
import type { Context, Hono } from 'hono';
import { badJson, jsonResponse, missingParam, readJsonObject } from '../../internal/httputil/index.js';
import type { RoomserverInternalAPI } from '../../roomserver/api/index.js';
import type { ClientUserAPI } from '../../userapi/api/index.js';
import { requireDevice } from '../auth/device.js';
import { clientRoute } from './paths.js';

const MAX_BODY = 16 * 1024;
const DEFAULT_LIMIT = 10;
const MAX_LIMIT = 100;

export function addUserDirectoryRoute(client: Hono, userAPI: ClientUserAPI, rsAPI: Pick<RoomserverInternalAPI, 'queryKnownUsers'>): void {
  clientRoute(client, 'post', '/user_directory/search', async (c: Context) => {
    const me = await requireDevice(c, userAPI);
    const body = await readJsonObject(c, { maxBytes: MAX_BODY });
    const term = body['search_term'];
    if (term === undefined || term === null) throw missingParam('search_term is required');
    if (typeof term !== 'string') throw badJson('search_term must be a string');
    const rawLimit = body['limit'] ?? DEFAULT_LIMIT;
    if (typeof rawLimit !== 'number' || !Number.isInteger(rawLimit) || rawLimit < 0) throw badJson('limit must be a non-negative integer');
    const limit = Math.min(rawLimit, MAX_LIMIT);
    // One more than asked for tells whether the answer was cut short.
    const { users } = await rsAPI.queryKnownUsers({ user_id: me.userId, search_term: term.trim(), limit: limit + 1 });
    return jsonResponse({ results: users.slice(0, limit), limited: users.length > limit });
  });
}
