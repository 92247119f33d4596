/**
 * The room directory (Client-Server API, "Room aliases" and "Room discovery"):
 *
 * - `/directory/room/{roomAlias}`: PUT maps one of our aliases to a room, GET resolves an alias
 *   (ours only until federation queries exist: other servers' aliases read as unknown), DELETE
 *   removes a mapping (its creator, or whoever may change the room's canonical alias, decides
 *   in the roomserver).
 * - `/rooms/{roomId}/aliases`: the local aliases of a room, for its members (or anyone when the
 *   room is world_readable).
 * - `/directory/list/room/{roomId}`: whether a room is published, and publishing it, which we
 *   allow to joined members who may send `m.room.canonical_alias` (the state that advertises a
 *   room is the same trust as listing it).
 * - `/publicRooms`: the published rooms, largest first, with a search filter and paging.
 *
 * Paging tokens are opaque to clients; inside they are an offset into the sorted, filtered
 * list (`o<n>`). An offset can skip or repeat a room when the list changes between two pages;
 * that is the usual trade-off of public room lists (Synapse's keyset tokens have it too, in
 * other places), and the list is small enough to be rebuilt per request.
 */
import type { Context, Hono } from 'hono';
import { MatrixError, badJson, forbidden, invalidParam, jsonResponse, missingParam, notFound, readJsonObject, type JsonBody } from '../../internal/httputil/index.js';
import { powerLevelsOf, requiredEventLevel, userPowerLevel } from '../../internal/matrix/auth/index.js';
import { Event, MAX_ID_BYTES, fitsBytes, isRoomIdOfAnyFormat, isValidServerName, type JsonObject } from '../../internal/matrix/index.js';
import type { FederationInternalAPI } from '../../federationapi/api/index.js';
import type { HeaderedEvent, RoomserverInternalAPI } from '../../roomserver/api/index.js';
import type { Config } from '../../setup/config/config.js';
import type { ClientUserAPI } from '../../userapi/api/index.js';
import { requireDevice } from '../auth/device.js';
import { clientRoute } from './paths.js';

const MAX_BODY = 16 * 1024;
/** The most rooms one /publicRooms page holds, also the page size when the client names none. */
const MAX_PAGE = 500;
const TOKEN = /^o(0|[1-9][0-9]{0,8})$/;

interface PublicRoomsQuery {
  limit?: number;
  since?: string;
  searchTerm?: string;
  /** Room types wanted; null stands for rooms without a type. Absent: every room. */
  roomTypes?: Array<string | null>;
  /** An application service network: we have none, so such a query lists nothing. */
  thirdPartyInstanceId?: string;
}

/** The `#localpart:server` parts of an alias; M_INVALID_PARAM when it is not one. */
function parseAlias(alias: string): { localpart: string; server: string } {
  const colon = alias.indexOf(':');
  const localpart = colon > 0 ? alias.slice(1, colon) : '';
  const server = colon > 0 ? alias.slice(colon + 1) : '';
  if (
    !alias.startsWith('#') ||
    localpart.length === 0 ||
    // Any code points but ':' and NUL (appendices, "Room aliases"); whitespace only invites confusion.
    /[\s\u0000]/.test(localpart) ||
    !isValidServerName(server) ||
    !fitsBytes(alias, MAX_ID_BYTES)
  ) {
    throw invalidParam(`${alias} is not a valid room alias`);
  }
  return { localpart, server };
}

function roomIdParam(c: Context): string {
  const roomId = c.req.param('roomId') ?? '';
  if (!isRoomIdOfAnyFormat(roomId)) throw invalidParam(`${roomId} is not a room ID`);
  return roomId;
}

function stringField(content: JsonObject | undefined, key: string): string | undefined {
  const v = content?.[key];
  return typeof v === 'string' ? v : undefined;
}

/** A limit from a query string or a body: a non-negative integer, clamped to MAX_PAGE; 0 or absent means a full page. */
function pageSize(limit: number | undefined): number {
  if (limit === undefined || limit === 0) return MAX_PAGE;
  return Math.min(limit, MAX_PAGE);
}

function offsetOf(since: string | undefined): number {
  if (since === undefined) return 0;
  const m = TOKEN.exec(since);
  if (!m) throw invalidParam('since is not a token this server gave out');
  return Number(m[1]);
}

export function addDirectoryRoutes(client: Hono, cfg: Config, userAPI: ClientUserAPI, rsAPI: RoomserverInternalAPI, fedAPI: Pick<FederationInternalAPI, 'queryRemoteDirectory' | 'queryRemotePublicRooms'>): void {
  const serverName = cfg.global.serverName;

  const roomExists = async (roomId: string): Promise<boolean> =>
    (await rsAPI.queryLatestEventsAndState({ room_id: roomId, state_to_fetch: [{ type: 'm.room.create', state_key: '' }] })).room_exists;

  const isWorldReadable = async (roomId: string): Promise<boolean> => {
    const { state_events } = await rsAPI.queryLatestEventsAndState({ room_id: roomId, state_to_fetch: [{ type: 'm.room.history_visibility', state_key: '' }] });
    return stringField(state_events[0]?.pdu.content, 'history_visibility') === 'world_readable';
  };

  // --- Aliases -------------------------------------------------------------------------------

  clientRoute(client, 'put', '/directory/room/:roomAlias', async (c: Context) => {
    const me = await requireDevice(c, userAPI);
    const alias = c.req.param('roomAlias') ?? '';
    const { server } = parseAlias(alias);
    if (server !== serverName) throw invalidParam(`Aliases may only be created on this server (${serverName})`);
    const body = await readJsonObject(c, { maxBytes: MAX_BODY });
    const roomId = body['room_id'];
    if (roomId === undefined) throw missingParam('room_id is required');
    if (typeof roomId !== 'string') throw badJson('room_id must be a string');
    if (!isRoomIdOfAnyFormat(roomId)) throw invalidParam(`${roomId} is not a room ID`);
    const res = await rsAPI.performSetRoomAlias({ alias, room_id: roomId, user_id: me.userId });
    if (res.error === 'unknown_room') throw notFound(`This server does not know the room ${roomId}`);
    // 409 with M_UNKNOWN is what the spec (and every server) answers for a taken alias.
    if (res.error === 'alias_exists') throw new MatrixError(409, 'M_UNKNOWN', `Room alias ${alias} already exists`);
    return jsonResponse({});
  });

  clientRoute(client, 'get', '/directory/room/:roomAlias', async (c: Context) => {
    const alias = c.req.param('roomAlias') ?? '';
    parseAlias(alias);
    // Another server's alias: ask that server.
    if (alias.slice(alias.indexOf(':') + 1) !== serverName) {
      const res = await fedAPI.queryRemoteDirectory({ alias });
      if (res.error === 'not_found') throw notFound(`Room alias ${alias} not found`);
      if (res.error !== undefined) throw new MatrixError(502, 'M_UNKNOWN', `Could not ask the alias's server: ${res.message}`);
      return jsonResponse({ room_id: res.room_id, servers: res.servers });
    }
    const { room_id: roomId } = await rsAPI.queryRoomIdForAlias({ alias });
    if (roomId === undefined) throw notFound(`Room alias ${alias} not found`);
    const { servers } = await rsAPI.queryServersInRoom({ room_id: roomId });
    // We hold the alias, so we are always one of the servers to ask, and the first one.
    return jsonResponse({ room_id: roomId, servers: [serverName, ...servers.filter((s) => s !== serverName)] });
  });

  clientRoute(client, 'delete', '/directory/room/:roomAlias', async (c: Context) => {
    const me = await requireDevice(c, userAPI);
    const alias = c.req.param('roomAlias') ?? '';
    parseAlias(alias);
    const { room_id: roomId } = await rsAPI.queryRoomIdForAlias({ alias });
    const res = await rsAPI.performRemoveRoomAlias({ alias, user_id: me.userId });
    if (res.error === 'not_found') throw notFound(`Room alias ${alias} not found`);
    if (res.error === 'forbidden') throw forbidden('You may not remove this alias');
    // An alias that is gone cannot stay the room's canonical one (as Synapse does): drop it from the event, if the user may.
    if (roomId !== undefined) {
      const [canonical] = (await rsAPI.queryLatestEventsAndState({ room_id: roomId, state_to_fetch: [{ type: 'm.room.canonical_alias', state_key: '' }] })).state_events;
      const content = (canonical?.pdu.content ?? {}) as JsonObject;
      const alt = Array.isArray(content['alt_aliases']) ? (content['alt_aliases'] as unknown[]) : [];
      if (content['alias'] === alias || alt.includes(alias)) {
        const next: JsonObject = { ...content };
        if (next['alias'] === alias) delete next['alias'];
        if (alt.includes(alias)) next['alt_aliases'] = alt.filter((a): a is string => typeof a === 'string' && a !== alias);
        await rsAPI.performSendEvent({ user_id: me.userId, room_id: roomId, type: 'm.room.canonical_alias', state_key: '', content: next });
      }
    }
    return jsonResponse({});
  });

  clientRoute(client, 'get', '/rooms/:roomId/aliases', async (c: Context) => {
    const me = await requireDevice(c, userAPI, { allowGuests: true });
    const roomId = roomIdParam(c);
    const m = await rsAPI.queryMembershipForUser({ room_id: roomId, user_id: me.userId });
    // Unknown rooms answer as rooms one is not in, so that the answer does not tell them apart.
    if (!m.room_exists || (m.membership !== 'join' && !(await isWorldReadable(roomId)))) throw forbidden('You are not a member of the room');
    return jsonResponse({ aliases: (await rsAPI.queryAliasesForRoom({ room_id: roomId })).aliases });
  });

  // --- Publishing ----------------------------------------------------------------------------

  clientRoute(client, 'get', '/directory/list/room/:roomId', async (c: Context) => {
    const roomId = roomIdParam(c);
    if (!(await roomExists(roomId))) throw notFound('Room not found');
    const { room_ids } = await rsAPI.queryPublishedRooms({ room_id: roomId });
    return jsonResponse({ visibility: room_ids.includes(roomId) ? 'public' : 'private' });
  });

  clientRoute(client, 'put', '/directory/list/room/:roomId', async (c: Context) => {
    const me = await requireDevice(c, userAPI);
    const roomId = roomIdParam(c);
    const body = await readJsonObject(c, { maxBytes: MAX_BODY, allowEmpty: true });
    // The spec's default is public.
    const visibility = body['visibility'] ?? 'public';
    if (visibility !== 'public' && visibility !== 'private') throw invalidParam('visibility must be "public" or "private"');

    const { room_exists, state_events } = await rsAPI.queryLatestEventsAndState({
      room_id: roomId,
      state_to_fetch: [
        { type: 'm.room.create', state_key: '' },
        { type: 'm.room.power_levels', state_key: '' },
        { type: 'm.room.member', state_key: me.userId },
      ],
    });
    if (!room_exists) throw notFound('Room not found');
    const byType = new Map(state_events.map((e) => [e.pdu.type, e]));
    if (stringField(byType.get('m.room.member')?.pdu.content, 'membership') !== 'join') throw forbidden('You are not a member of the room');
    const asEvent = (e: HeaderedEvent | undefined): Event | undefined => (e ? Event.fromPDU(e.pdu, e.room_version) : undefined);
    const create = asEvent(byType.get('m.room.create'));
    const levels = powerLevelsOf(asEvent(byType.get('m.room.power_levels')), create);
    if (userPowerLevel(me.userId, levels, create) < requiredEventLevel('m.room.canonical_alias', true, levels)) {
      throw forbidden('You need the power to change the room canonical alias to publish the room');
    }
    const res = await rsAPI.performPublish({ room_id: roomId, visibility });
    if (res.error === 'unknown_room') throw notFound('Room not found');
    return jsonResponse({});
  });

  // --- /publicRooms --------------------------------------------------------------------------

  const publicRooms = async (c: Context, q: PublicRoomsQuery): Promise<Response> => {
    const server = c.req.query('server');
    if (server !== undefined && server !== '' && server !== serverName) {
      if (!isValidServerName(server)) throw invalidParam(`${server} is not a server name`);
      // Another server's list, asked of it; its paging tokens are its own and pass through.
      const res = await fedAPI.queryRemotePublicRooms({
        server_name: server,
        ...(q.limit !== undefined ? { limit: q.limit } : {}),
        ...(q.since !== undefined ? { since: q.since } : {}),
        ...(q.searchTerm !== undefined ? { search_term: q.searchTerm } : {}),
        ...(q.thirdPartyInstanceId !== undefined ? { third_party_instance_id: q.thirdPartyInstanceId } : {}),
      });
      if (res.error !== undefined) throw new MatrixError(502, 'M_UNKNOWN', `Could not read the room list of ${server}: ${res.message}`);
      return jsonResponse(res);
    }
    const offset = offsetOf(q.since);
    const limit = pageSize(q.limit);

    // Rooms of application service networks: we bridge none, so such a list is empty.
    const { chunk, total } =
      q.thirdPartyInstanceId === undefined
        ? await rsAPI.queryPublicRooms({ offset, limit, ...(q.searchTerm !== undefined ? { search_term: q.searchTerm } : {}), ...(q.roomTypes !== undefined ? { room_types: q.roomTypes } : {}) })
        : { chunk: [], total: 0 };
    const out: JsonBody = { chunk: chunk as unknown as JsonBody[], total_room_count_estimate: total };
    if (offset + limit < total) out['next_batch'] = `o${offset + limit}`;
    if (offset > 0) out['prev_batch'] = `o${Math.max(0, offset - limit)}`;
    return jsonResponse(out);
  };

  clientRoute(client, 'get', '/publicRooms', async (c: Context) => {
    // Reading the list needs no account (as in Synapse and Dendrite); POST, per the spec, does.
    const rawLimit = c.req.query('limit');
    let limit: number | undefined;
    if (rawLimit !== undefined && rawLimit !== '') {
      if (!/^[0-9]{1,9}$/.test(rawLimit)) throw invalidParam('limit must be a non-negative integer');
      limit = Number(rawLimit);
    }
    const since = c.req.query('since');
    return publicRooms(c, { ...(limit !== undefined ? { limit } : {}), ...(since !== undefined && since !== '' ? { since } : {}) });
  });

  clientRoute(client, 'post', '/publicRooms', async (c: Context) => {
    await requireDevice(c, userAPI, { allowGuests: true });
    const body = await readJsonObject(c, { maxBytes: MAX_BODY, allowEmpty: true });
    const q: PublicRoomsQuery = {};
    const limit = body['limit'];
    if (limit !== undefined && limit !== null) {
      if (typeof limit !== 'number' || !Number.isInteger(limit)) throw badJson('limit must be an integer');
      if (limit < 0) throw invalidParam('limit must not be negative');
      q.limit = limit;
    }
    const since = body['since'];
    if (since !== undefined && since !== null) {
      if (typeof since !== 'string') throw badJson('since must be a string');
      q.since = since;
    }
    const filter = body['filter'];
    if (filter !== undefined && filter !== null) {
      if (typeof filter !== 'object' || Array.isArray(filter)) throw badJson('filter must be an object');
      const f = filter as Record<string, unknown>;
      const term = f['generic_search_term'];
      if (term !== undefined && term !== null) {
        if (typeof term !== 'string') throw badJson('filter.generic_search_term must be a string');
        q.searchTerm = term;
      }
      const types = f['room_types'];
      if (types !== undefined && types !== null) {
        if (!Array.isArray(types) || !types.every((t) => t === null || typeof t === 'string')) throw badJson('filter.room_types must be a list of strings and nulls');
        q.roomTypes = types as Array<string | null>;
      }
    }
    const allNetworks = body['include_all_networks'];
    if (allNetworks !== undefined && allNetworks !== null && typeof allNetworks !== 'boolean') throw badJson('include_all_networks must be true or false');
    const instance = body['third_party_instance_id'];
    if (instance !== undefined && instance !== null) {
      if (typeof instance !== 'string') throw badJson('third_party_instance_id must be a string');
      if (allNetworks === true) throw invalidParam('third_party_instance_id cannot be used with include_all_networks');
      q.thirdPartyInstanceId = instance;
    }
    return publicRooms(c, q);
  });
}
