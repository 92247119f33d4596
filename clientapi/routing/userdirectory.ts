/**
 * POST /user_directory/search. As in Dendrite, the directory is the users the searcher shares
 * a room with (from roomserver, once it answers that: issue #4) followed by local users whose
 * ID or display name matches. Matching ignores ASCII case.
 */
import type { Context, Hono } from 'hono';
import { badJson, jsonResponse, missingParam, readJsonObject } from '../../internal/httputil/index.js';
import type { ClientUserAPI } from '../../userapi/api/index.js';
import { requireDevice } from '../auth/device.js';
import { clientRoute } from './paths.js';

const MAX_BODY = 16 * 1024;
const DEFAULT_LIMIT = 10;
const MAX_LIMIT = 100;

export interface DirectoryEntry {
  user_id: string;
  display_name?: string;
  avatar_url?: string;
}

/** Users the searcher shares a room with that match the term; roomserver will supply this. */
export type KnownUsersSearch = (searcher: string, term: string, limit: number) => Promise<DirectoryEntry[]>;

export function addUserDirectoryRoute(client: Hono, userAPI: ClientUserAPI, knownUsers?: KnownUsersSearch): void {
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
    const found = new Map<string, DirectoryEntry>();
    for (const e of knownUsers ? await knownUsers(me.userId, term.trim(), limit + 1) : []) found.set(e.user_id, e);
    if (found.size <= limit) {
      const { profiles } = await userAPI.querySearchProfiles({ searchTerm: term.trim(), limit: limit + 1 });
      for (const p of profiles) {
        if (found.has(p.userId)) continue;
        found.set(p.userId, {
          user_id: p.userId,
          ...(p.displayName !== null ? { display_name: p.displayName } : {}),
          ...(p.avatarUrl !== null ? { avatar_url: p.avatarUrl } : {}),
        });
      }
    }
    const results = [...found.values()];
    return jsonResponse({ results: results.slice(0, limit), limited: results.length > limit });
  });
}
