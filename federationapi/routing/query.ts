/**
 * What other servers ask of us about our users and rooms (Server-Server API):
 *
 * - GET /query/profile and /query/directory: a user's profile, the room an alias names.
 * - GET /user/devices/{userId}: a user's device list with its version (stream_id) and
 *   cross-signing keys, what a server fetches to follow a user's devices.
 * - POST /user/keys/query and /user/keys/claim: device and cross-signing keys, one-time keys.
 * - GET and POST /publicRooms: our room directory.
 *
 * Every question must be about us: a user, alias or key of another server is not ours to
 * answer (400 for the single-subject queries; skipped in the key maps, which the spec says
 * hold local users only). A server is never a user, so it sees no user-signing keys and no
 * signatures private to one of our users.
 */
import type { Context, Hono } from 'hono';
import { badJson, invalidParam, jsonResponse, missingParam, notFound, type JsonBody } from '../../internal/httputil/index.js';
import { MAX_ID_BYTES, domainOf, fitsBytes, isValidServerName, isValidUserId } from '../../internal/matrix/index.js';
import type { RoomserverInternalAPI } from '../../roomserver/api/index.js';
import type { ByUserByKey, ClientUserAPI, KeyObject } from '../../userapi/api/index.js';
import type { FederationAuth } from './fedauth.js';

export type QueryRoomserverAPI = Pick<
  RoomserverInternalAPI,
  'queryRoomIdForAlias' | 'queryServersInRoom' | 'queryPublishedRooms' | 'queryPublicRooms' | 'queryLatestEventsAndState' | 'queryMembershipsForRoom'
>;
export type QueryUserAPI = Pick<ClientUserAPI, 'queryProfile' | 'queryDevices' | 'queryKeys' | 'performClaimKeys' | 'queryDeviceListVersion'>;

export interface QueryDeps {
  serverName: string;
  rsAPI: QueryRoomserverAPI;
  userAPI: QueryUserAPI;
}

/**
 * The asker of key queries: no user has an empty ID, so the key server shows neither
 * user-signing keys nor signatures only their maker may see.
 */
const NO_USER = '';
const PAGE_TOKEN = /^p(0|[1-9][0-9]{0,8})$/;

interface DirectoryQuery {
  /** 0: every room (the spec's default for federation). */
  limit: number;
  offset: number;
  searchTerm?: string;
  /** null stands for rooms without a type. */
  roomTypes?: Array<string | null>;
  thirdPartyInstanceId?: string;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}


/** The JSON body as an object; an absent body is `{}` when allowed. */
function bodyObject(body: unknown, allowEmpty = false): Record<string, unknown> {
  if (body === undefined && allowEmpty) return {};
  if (!isObject(body)) throw badJson('The request body must be a JSON object.');
  return body;
}

function pageOffset(since: string | undefined): number {
  if (since === undefined || since === '') return 0;
  const m = PAGE_TOKEN.exec(since);
  if (!m) throw invalidParam('since is not a token this server gave out');
  return Number(m[1]);
}

export function addQueryRoutes(fed: Hono, auth: FederationAuth, deps: QueryDeps): void {
  const { serverName, rsAPI, userAPI } = deps;
  const isOurs = (id: string): boolean => domainOf(id) === serverName;

  /** A user ID of ours from a request, or 400. */
  const ourUser = (userId: string | undefined, what: string): string => {
    if (userId === undefined || userId === '') throw missingParam(`${what} is required`);
    if (!isValidUserId(userId)) throw invalidParam(`${userId} is not a user ID`);
    if (!isOurs(userId)) throw invalidParam(`User ${userId} is not hosted on this server (${serverName})`);
    return userId;
  };

  // --- Queries -------------------------------------------------------------------------------

  fed.get('/v1/query/profile', async (c) => {
    await auth.authenticate(c);
    const userId = ourUser(c.req.query('user_id'), 'user_id');
    const field = c.req.query('field') || undefined;
    if (field !== undefined && field !== 'displayname' && field !== 'avatar_url') throw invalidParam('field must be displayname or avatar_url');
    const { profile } = await userAPI.queryProfile({ userId });
    if (!profile) throw notFound('User does not exist');
    // Unset fields are left out, which the spec allows (rather than null).
    const out: JsonBody = {};
    if ((field === undefined || field === 'displayname') && profile.displayName !== null) out['displayname'] = profile.displayName;
    if ((field === undefined || field === 'avatar_url') && profile.avatarUrl !== null) out['avatar_url'] = profile.avatarUrl;
    return jsonResponse(out);
  });

  fed.get('/v1/query/directory', async (c) => {
    await auth.authenticate(c);
    const alias = c.req.query('room_alias');
    if (alias === undefined || alias === '') throw missingParam('room_alias is required');
    const server = domainOf(alias);
    if (!alias.startsWith('#') || alias.indexOf(':') < 2 || server === undefined || !isValidServerName(server) || !fitsBytes(alias, MAX_ID_BYTES)) {
      throw invalidParam(`${alias} is not a room alias`);
    }
    if (server !== serverName) throw invalidParam(`Room alias ${alias} is not hosted on this server (${serverName})`);
    const { room_id: roomId } = await rsAPI.queryRoomIdForAlias({ alias });
    if (roomId === undefined) throw notFound('Room alias not found');
    const { servers } = await rsAPI.queryServersInRoom({ room_id: roomId });
    // We hold the alias, so we are a server to ask (and the first), even when no one of ours is joined.
    return jsonResponse({ room_id: roomId, servers: [serverName, ...servers.filter((s) => s !== serverName)] });
  });

  // --- Devices and keys ----------------------------------------------------------------------

  fed.get('/v1/user/devices/:userId', async (c) => {
    await auth.authenticate(c);
    const userId = ourUser(c.req.param('userId'), 'userId');
    // The version is read before the devices, so that it is never newer than the list answered:
    // a change in between is then announced again with a later version, and the receiver applies it.
    const { streamId } = await userAPI.queryDeviceListVersion({ userId });
    const [{ devices }, keys] = await Promise.all([
      userAPI.queryDevices({ userId }),
      userAPI.queryKeys({ userId: NO_USER, userToDevices: { [userId]: [] } }),
    ]);
    const deviceKeys = keys.deviceKeys[userId] ?? {};
    const list = devices.map((d) => {
      const entry: JsonBody = { device_id: d.deviceId };
      const k = deviceKeys[d.deviceId];
      if (k !== undefined) {
        // The display name has its own field here; `unsigned` is what keys/query adds.
        const { unsigned: _unsigned, ...signed } = k;
        entry['keys'] = signed;
      }
      if (d.displayName !== null) entry['device_display_name'] = d.displayName;
      return entry;
    });
    const out: JsonBody = { user_id: userId, stream_id: streamId, devices: list };
    const master = keys.masterKeys[userId];
    const selfSigning = keys.selfSigningKeys[userId];
    if (master !== undefined) out['master_key'] = master;
    if (selfSigning !== undefined) out['self_signing_key'] = selfSigning;
    return jsonResponse(out);
  });

  fed.post('/v1/user/keys/query', async (c) => {
    const { body } = await auth.authenticate(c);
    const wanted = bodyObject(body)['device_keys'];
    if (!isObject(wanted)) throw badJson('device_keys must be an object of user IDs to device lists');
    const userToDevices: Record<string, string[]> = {};
    for (const [userId, devices] of Object.entries(wanted)) {
      if (devices !== null && (!Array.isArray(devices) || !devices.every((d) => typeof d === 'string'))) {
        throw badJson(`device_keys.${userId} must be a list of device IDs`);
      }
      // Other servers' users are theirs to answer for.
      if (isValidUserId(userId) && isOurs(userId)) userToDevices[userId] = (devices ?? []) as string[];
    }
    const out: { device_keys: ByUserByKey<KeyObject>; master_keys: Record<string, KeyObject>; self_signing_keys: Record<string, KeyObject> } = {
      device_keys: {},
      master_keys: {},
      self_signing_keys: {},
    };
    if (Object.keys(userToDevices).length > 0) {
      const res = await userAPI.queryKeys({ userId: NO_USER, userToDevices });
      for (const [u, v] of Object.entries(res.deviceKeys)) if (u in userToDevices) out.device_keys[u] = v;
      for (const [u, v] of Object.entries(res.masterKeys)) if (u in userToDevices) out.master_keys[u] = v;
      for (const [u, v] of Object.entries(res.selfSigningKeys)) if (u in userToDevices) out.self_signing_keys[u] = v;
    }
    return jsonResponse(out);
  });

  fed.post('/v1/user/keys/claim', async (c) => {
    const { body } = await auth.authenticate(c);
    const wanted = bodyObject(body)['one_time_keys'];
    if (!isObject(wanted)) throw badJson('one_time_keys must be an object of user IDs to devices');
    const oneTimeKeys: ByUserByKey<string> = {};
    for (const [userId, devices] of Object.entries(wanted)) {
      if (!isObject(devices) || !Object.values(devices).every((a) => typeof a === 'string')) {
        throw badJson(`one_time_keys.${userId} must map device IDs to algorithms`);
      }
      if (isValidUserId(userId) && isOurs(userId)) oneTimeKeys[userId] = devices as Record<string, string>;
    }
    const out: ByUserByKey<Record<string, unknown>> = {};
    if (Object.keys(oneTimeKeys).length > 0) {
      const res = await userAPI.performClaimKeys({ oneTimeKeys });
      for (const [u, v] of Object.entries(res.oneTimeKeys)) if (u in oneTimeKeys) out[u] = v;
    }
    return jsonResponse({ one_time_keys: out });
  });

  // --- /publicRooms --------------------------------------------------------------------------

  const directory = async (q: DirectoryQuery): Promise<Response> => {
    // Rooms of application service networks: we bridge none, so such a list is empty.
    const { chunk, total } =
      q.thirdPartyInstanceId === undefined
        ? await rsAPI.queryPublicRooms({ offset: q.offset, limit: q.limit, ...(q.searchTerm !== undefined ? { search_term: q.searchTerm } : {}), ...(q.roomTypes !== undefined ? { room_types: q.roomTypes } : {}) })
        : { chunk: [], total: 0 };
    const { offset } = q;
    const end = q.limit === 0 ? total : Math.min(total, offset + q.limit);
    const out: JsonBody = { chunk: chunk as unknown as JsonBody[], total_room_count_estimate: total };
    if (end < total) out['next_batch'] = `p${end}`;
    if (offset > 0) out['prev_batch'] = `p${q.limit === 0 ? 0 : Math.max(0, offset - q.limit)}`;
    return jsonResponse(out);
  };

  const networks = (allNetworks: boolean, instance: string | undefined): Pick<DirectoryQuery, 'thirdPartyInstanceId'> => {
    if (instance === undefined) return {};
    if (allNetworks) throw invalidParam('third_party_instance_id cannot be used with include_all_networks');
    return { thirdPartyInstanceId: instance };
  };

  fed.get('/v1/publicRooms', async (c: Context) => {
    await auth.authenticate(c);
    const rawLimit = c.req.query('limit');
    if (rawLimit !== undefined && rawLimit !== '' && !/^[0-9]{1,9}$/.test(rawLimit)) throw invalidParam('limit must be a non-negative integer');
    const rawAll = c.req.query('include_all_networks');
    if (rawAll !== undefined && rawAll !== '' && rawAll !== 'true' && rawAll !== 'false') throw invalidParam('include_all_networks must be true or false');
    const instance = c.req.query('third_party_instance_id');
    return directory({
      limit: rawLimit ? Number(rawLimit) : 0,
      offset: pageOffset(c.req.query('since')),
      ...networks(rawAll === 'true', instance === '' ? undefined : instance),
    });
  });

  fed.post('/v1/publicRooms', async (c: Context) => {
    const { body } = await auth.authenticate(c);
    const req = bodyObject(body, true);
    const present = (k: string): boolean => req[k] !== undefined && req[k] !== null;
    let limit = 0;
    if (present('limit')) {
      const l = req['limit'];
      if (typeof l !== 'number' || !Number.isInteger(l)) throw badJson('limit must be an integer');
      if (l < 0) throw invalidParam('limit must not be negative');
      limit = l;
    }
    let since: string | undefined;
    if (present('since')) {
      if (typeof req['since'] !== 'string') throw badJson('since must be a string');
      since = req['since'];
    }
    const q: DirectoryQuery = { limit, offset: pageOffset(since) };
    if (present('filter')) {
      const filter = req['filter'];
      if (!isObject(filter)) throw badJson('filter must be an object');
      const term = filter['generic_search_term'];
      if (term !== undefined && term !== null) {
        if (typeof term !== 'string') throw badJson('filter.generic_search_term must be a string');
        q.searchTerm = term;
      }
      const types = filter['room_types'];
      if (types !== undefined && types !== null) {
        if (!Array.isArray(types) || !types.every((t) => t === null || typeof t === 'string')) throw badJson('filter.room_types must be a list of strings and nulls');
        q.roomTypes = types as Array<string | null>;
      }
    }
    if (present('include_all_networks') && typeof req['include_all_networks'] !== 'boolean') throw badJson('include_all_networks must be true or false');
    if (present('third_party_instance_id') && typeof req['third_party_instance_id'] !== 'string') throw badJson('third_party_instance_id must be a string');
    Object.assign(q, networks(req['include_all_networks'] === true, present('third_party_instance_id') ? (req['third_party_instance_id'] as string) : undefined));
    return directory(q);
  });
}
