/**
 * Reading rooms over federation: GET /event/{eventId}, /state/{roomId}, /state_ids/{roomId},
 * /event_auth/{roomId}/{eventId}, /backfill/{roomId} and POST /get_missing_events/{roomId}.
 * A server sees what history visibility lets its users see ("Authorization and room access"),
 * and nothing of a room whose ACL bars it.
 */
import type { Context, Hono } from 'hono';
import { forbidden, invalidParam, jsonResponse, notFound } from '../../internal/httputil/index.js';
import { Event, type JsonObject } from '../../internal/matrix/index.js';
import type { HeaderedEvent, RoomserverInternalAPI } from '../../roomserver/api/index.js';
import { serverAllowedByAcl } from '../internal/acl.js';
import { authChain, walkBack } from '../internal/authchain.js';
import type { FederationAuth } from './fedauth.js';

export type FederationRoomserverAPI = Pick<
  RoomserverInternalAPI,
  'queryEventsById' | 'queryVisibleEvents' | 'queryLatestEventsAndState' | 'queryStateAfterEvents' | 'queryStateBeforeEvent' | 'queryMembershipForUser' | 'queryServersInRoom' | 'inputRoomEvents'
>;

const MAX_BACKFILL = 100;
const MAX_MISSING = 50;

/** The shared checks and lookups of the room-reading routes. */
export class RoomReader {
  constructor(
    readonly serverName: string,
    readonly rsAPI: FederationRoomserverAPI,
  ) {}

  /** Refuses a server the room's ACL bars (403), or a room we do not have (404). */
  async requireRoomAccess(roomId: string, origin: string): Promise<{ roomVersion: string }> {
    const res = await this.rsAPI.queryLatestEventsAndState({ room_id: roomId, state_to_fetch: [{ type: 'm.room.server_acl', state_key: '' }] });
    if (!res.room_exists || res.room_version === undefined) throw notFound(`Room ${roomId} is not known here`);
    if (!serverAllowedByAcl(res.state_events[0]?.pdu.content as Record<string, unknown> | undefined, origin)) throw forbidden('Server is banned from this room by its ACL');
    return { roomVersion: res.room_version };
  }

  /** The events (accepted, of `roomId` when given) that `origin` may see. */
  async visibleTo(origin: string, events: readonly HeaderedEvent[], roomId?: string): Promise<HeaderedEvent[]> {
    const inRoom = roomId === undefined ? events : events.filter((e) => e.pdu.room_id === roomId || Event.fromPDU(e.pdu, e.room_version).roomId === roomId);
    if (inRoom.length === 0) return [];
    const ids = inRoom.map((e) => Event.fromPDU(e.pdu, e.room_version).eventId);
    const ok = new Set((await this.rsAPI.queryVisibleEvents({ event_ids: ids, server_name: origin })).visible_event_ids);
    return inRoom.filter((_, i) => ok.has(ids[i]!));
  }

  /** One event of the room the origin may see, or 404; `withState`: one whose state we have (not an outlier). */
  async visibleEvent(origin: string, roomId: string | undefined, eventId: string, withState = false): Promise<Event> {
    const { events } = await this.rsAPI.queryEventsById({ event_ids: [eventId] });
    const accepted = events.filter((e) => !e.rejected && !(withState && e.outlier));
    const [seen] = await this.visibleTo(origin, accepted, roomId);
    if (!seen) throw notFound('Event not found');
    return Event.fromPDU(seen.pdu, seen.room_version);
  }

  /** The state before `event` and the auth chain of that state (and of the event). */
  async stateBefore(event: Event): Promise<{ state: HeaderedEvent[]; authChain: HeaderedEvent[] }> {
    // The event's own snapshot: its prev events may be outliers here (a gap bridged with given state).
    const { state_events } = await this.rsAPI.queryStateBeforeEvent({ room_id: event.roomId, event_id: event.eventId });
    const stateEvents = state_events.map((h) => Event.fromPDU(h.pdu, h.room_version));
    return { state: state_events, authChain: await authChain(this.rsAPI, [...stateEvents, event]) };
  }
}

const pdu = (h: HeaderedEvent): JsonObject => h.pdu as unknown as JsonObject;

export function addEventRoutes(fed: Hono, auth: FederationAuth, reader: RoomReader): void {
  const transaction = (pdus: JsonObject[]): JsonObject => ({ origin: reader.serverName, origin_server_ts: Date.now(), pdus });

  fed.get('/v1/event/:eventId', async (c) => {
    const { origin } = await auth.authenticate(c);
    const event = await reader.visibleEvent(origin, undefined, c.req.param('eventId') ?? '');
    await reader.requireRoomAccess(event.roomId, origin);
    return jsonResponse(transaction([event.json as unknown as JsonObject]));
  });

  const stateAt = async (c: Context): Promise<{ state: HeaderedEvent[]; authChain: HeaderedEvent[] }> => {
    const { origin } = await auth.authenticate(c);
    const roomId = c.req.param('roomId') ?? '';
    const eventId = c.req.query('event_id');
    if (!eventId) throw invalidParam('event_id is required');
    await reader.requireRoomAccess(roomId, origin);
    return reader.stateBefore(await reader.visibleEvent(origin, roomId, eventId, true));
  };
  const idOf = (h: HeaderedEvent): string => Event.fromPDU(h.pdu, h.room_version).eventId;
  fed.get('/v1/state/:roomId', async (c) => {
    const { state, authChain: chain } = await stateAt(c);
    return jsonResponse({ pdus: state.map(pdu), auth_chain: chain.map(pdu) });
  });
  fed.get('/v1/state_ids/:roomId', async (c) => {
    const { state, authChain: chain } = await stateAt(c);
    return jsonResponse({ pdu_ids: state.map(idOf), auth_chain_ids: chain.map(idOf) });
  });

  fed.get('/v1/event_auth/:roomId/:eventId', async (c) => {
    const { origin } = await auth.authenticate(c);
    const roomId = c.req.param('roomId') ?? '';
    await reader.requireRoomAccess(roomId, origin);
    const event = await reader.visibleEvent(origin, roomId, c.req.param('eventId') ?? '');
    return jsonResponse({ auth_chain: (await authChain(reader.rsAPI, [event])).map(pdu) });
  });

  fed.get('/v1/backfill/:roomId', async (c) => {
    const { origin } = await auth.authenticate(c);
    const roomId = c.req.param('roomId') ?? '';
    await reader.requireRoomAccess(roomId, origin);
    const from = c.req.queries('v') ?? [];
    if (from.length === 0) throw invalidParam('v (the events to backfill from) is required');
    const limitRaw = Number(c.req.query('limit') ?? '10');
    if (!Number.isInteger(limitRaw) || limitRaw < 0) throw invalidParam('limit must be a non-negative integer');
    // The events named are part of the answer (the spec: "including the given events").
    const found = await walkBack(reader.rsAPI, from, { limit: Math.min(limitRaw, MAX_BACKFILL), includeFrom: true });
    const headered = found.filter((e) => e.roomId === roomId).map((e) => ({ room_version: e.roomVersion.id, pdu: e.json }) as HeaderedEvent);
    return jsonResponse(transaction((await reader.visibleTo(origin, headered, roomId)).map(pdu)));
  });

  fed.post('/v1/get_missing_events/:roomId', async (c) => {
    const { origin, body } = await auth.authenticate(c);
    const roomId = c.req.param('roomId') ?? '';
    const req = (typeof body === 'object' && body !== null && !Array.isArray(body) ? body : {}) as Record<string, unknown>;
    // The room's ACL first: a banned server learns nothing, not even that its request was malformed.
    await reader.requireRoomAccess(roomId, origin);
    const ids = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
    const earliest = ids(req['earliest_events']);
    const latest = ids(req['latest_events']);
    // Nothing to walk back from: nothing is missing (Synapse answers so too).
    if (latest.length === 0) return jsonResponse({ events: [] });
    const limit = typeof req['limit'] === 'number' && Number.isInteger(req['limit']) && req['limit'] > 0 ? Math.min(req['limit'], MAX_MISSING) : 10;
    const minDepth = typeof req['min_depth'] === 'number' ? req['min_depth'] : 0;
    const found = await walkBack(reader.rsAPI, latest, { limit, stopAt: new Set(earliest), minDepth });
    const headered = found.filter((e) => e.roomId === roomId).map((e) => ({ room_version: e.roomVersion.id, pdu: e.json }) as HeaderedEvent);
    // Oldest first, as the receiving server will apply them.
    const visible = await reader.visibleTo(origin, headered, roomId);
    visible.sort((a, b) => Number(a.pdu.depth ?? 0) - Number(b.pdu.depth ?? 0));
    return jsonResponse({ events: visible.map(pdu) });
  });
}
