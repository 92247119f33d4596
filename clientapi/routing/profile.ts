/**
 * Profiles of local users: GET /profile/{userId} (and each field), PUT displayname and
 * avatar_url for oneself. Remote profiles need federation queries (issue #8); until then a
 * remote user is answered 404. A change is copied into the user's member event in every room
 * they are joined to, as clients read names from room state.
 */
import type { Context, Hono } from 'hono';
import { MatrixError, badJson, forbidden, jsonResponse, notFound, readJsonObject } from '../../internal/httputil/index.js';
import type { Logger } from 'pino';
import type { JsonObject } from '../../internal/matrix/index.js';
import type { FederationInternalAPI } from '../../federationapi/api/index.js';
import type { RoomserverInternalAPI } from '../../roomserver/api/index.js';
import type { ClientUserAPI, Profile } from '../../userapi/api/index.js';
import { requireDevice } from '../auth/device.js';
import { clientRoute } from './paths.js';

const MAX_BODY = 64 * 1024;
const fields = { displayname: 'displayName', avatar_url: 'avatarUrl' } as const;
type Field = keyof typeof fields;

export type ProfileRoomserverAPI = Pick<RoomserverInternalAPI, 'queryRoomsForUser' | 'queryLatestEventsAndState' | 'performSendEvent'>;

/** Sends a new join event with the changed field into each room the user is joined to. */
async function propagate(rsAPI: ProfileRoomserverAPI, log: Logger, userId: string, field: Field, value: string | null): Promise<void> {
  const { room_ids } = await rsAPI.queryRoomsForUser({ user_id: userId, membership: 'join' });
  for (const roomId of room_ids) {
    const { state_events } = await rsAPI.queryLatestEventsAndState({ room_id: roomId, state_to_fetch: [{ type: 'm.room.member', state_key: userId }] });
    const current = state_events[0]?.pdu.content;
    if (current?.['membership'] !== 'join' || current[field] === value || (value === null && current[field] === undefined)) continue;
    const content: JsonObject = { ...(current as JsonObject) };
    if (value === null) delete content[field];
    else content[field] = value;
    // One room refusing (power levels changed under us, say) must not stop the others.
    const res = await rsAPI.performSendEvent({ user_id: userId, room_id: roomId, type: 'm.room.member', state_key: userId, content });
    if (res.error !== undefined) log.warn({ userId, roomId, field, error: res.message }, 'profile change not copied into the room');
  }
}

export function addProfileRoutes(client: Hono, serverName: string, userAPI: ClientUserAPI, rsAPI: ProfileRoomserverAPI, fedAPI: Pick<FederationInternalAPI, 'queryRemoteProfile'>, log: Logger): void {
  const load = async (c: Context): Promise<Profile> => {
    const userId = c.req.param('userId') ?? '';
    // Another server's user: ask that server.
    if (/^@[^:]+:.+$/.test(userId) && userId.slice(userId.indexOf(':') + 1) !== serverName) {
      const res = await fedAPI.queryRemoteProfile({ user_id: userId });
      if (res.error === 'not_found') throw notFound('Profile not found');
      if (res.error !== undefined) throw new MatrixError(502, 'M_UNKNOWN', `Could not ask the user's server: ${res.message}`);
      const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
      return { displayName: str(res.profile['displayname']), avatarUrl: str(res.profile['avatar_url']) };
    }
    const { profile } = await userAPI.queryProfile({ userId });
    if (!profile) throw notFound('Profile not found');
    return profile;
  };

  clientRoute(client, 'get', '/profile/:userId', async (c: Context) => {
    const p = await load(c);
    return jsonResponse({ ...(p.displayName !== null ? { displayname: p.displayName } : {}), ...(p.avatarUrl !== null ? { avatar_url: p.avatarUrl } : {}) });
  });

  for (const field of Object.keys(fields) as Field[]) {
    clientRoute(client, 'get', `/profile/:userId/${field}`, async (c: Context) => {
      const value = (await load(c))[fields[field]];
      return jsonResponse(value !== null ? { [field]: value } : {});
    });

    clientRoute(client, 'put', `/profile/:userId/${field}`, async (c: Context) => {
      // Guests may set a display name (spec, "Guest access"), nothing else of their profile.
      const me = await requireDevice(c, userAPI, { allowGuests: field === 'displayname' });
      const userId = c.req.param('userId') ?? '';
      if (userId !== me.userId) throw forbidden('You may only change your own profile');
      const body = await readJsonObject(c, { maxBytes: MAX_BODY });
      const value = body[field];
      if (value !== null && typeof value !== 'string') throw badJson(`${field} must be a string`);
      if (typeof value === 'string' && value.length > 1024) throw badJson(`${field} is too long`);
      await userAPI.performProfileUpdate({ userId, [fields[field]]: value });
      await propagate(rsAPI, log, userId, field, value);
      return jsonResponse({});
    });
  }
}
