/**
 * The read side of rooms beyond /sync: GET /rooms/{roomId}/messages (paging through history),
 * /rooms/{roomId}/context/{eventId}, /rooms/{roomId}/event/{eventId} and
 * /rooms/{roomId}/members. History visibility is the roomserver's decision, from the state at
 * each event; filters come from syncapi's filter reader.
 *
 * Pagination tokens are sync tokens whose PDU position marks a gap in the room's stream: a
 * token at N sits just after the event at position N, so backwards paging from it returns
 * events at or before N and forwards paging returns those after N. A /sync `prev_batch` is
 * such a token, so a client can page back from its timeline.
 */
import type { Context, Hono } from 'hono';
import { authenticate, clientRoute, forbidden, invalidParam, jsonResponse, notFound, type TokenResolver } from '../../internal/httputil/index.js';
import { Event, type JsonObject } from '../../internal/matrix/index.js';
import type { RoomserverInternalAPI } from '../../roomserver/api/index.js';
import type { AuthenticatedDevice } from '../../userapi/api/index.js';
import { clientEvent, contentOf } from '../internal/clientevent.js';
import { eventFilter, type EventFilter } from '../internal/filter.js';
import { formatToken, parseToken, ZERO } from '../internal/token.js';
import type { StreamEvent, SyncStore } from '../storage/syncstore.js';
import type { Aggregations, BundleTarget } from '../internal/aggregations.js';
import { readAccess } from './access.js';

const DEFAULT_LIMIT = 10;
const MAX_LIMIT = 1000;
/** Rows read per round while filling a page; rounds are capped so a sparse filter cannot scan a whole room. */
const SCAN_BATCH = 100;
const MAX_SCAN_ROUNDS = 20;

export type MessagesRoomserverAPI = Pick<RoomserverInternalAPI, 'queryVisibleEvents' | 'queryMembershipForUser' | 'queryStateAfterEvents' | 'queryEventsById' | 'queryLatestEventsAndState'>;

const ROOM_ID = /^![^:]+(:.+)?$/;

function roomIdParam(c: Context): string {
  const roomId = c.req.param('roomId') ?? '';
  if (!ROOM_ID.test(roomId)) throw invalidParam(`${roomId} is not a room ID`);
  return roomId;
}

function parseFilterParam(raw: string | undefined): unknown {
  if (raw === undefined || raw === '') return {};
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    throw invalidParam('filter is not valid JSON');
  }
}

function parseLimit(raw: string | undefined): number {
  if (raw === undefined) return DEFAULT_LIMIT;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw invalidParam('limit must be a non-negative integer');
  return Math.min(n, MAX_LIMIT);
}

function tokenPos(raw: string, name: string): number {
  const t = parseToken(raw);
  if (!t) throw invalidParam(`${name} is not a pagination token from this server`);
  return t.pdu;
}

const pageToken = (pos: number): string => formatToken({ ...ZERO, pdu: Math.max(0, pos) });

export function addMessagesRoutes(client: Hono, store: SyncStore, userAPI: TokenResolver<AuthenticatedDevice>, rsAPI: MessagesRoomserverAPI, aggregations?: Aggregations): void {
  // Whether the user may read the room at all (a member now or before, or a world_readable room), and each event.
  const { requireReader, visible } = readAccess(rsAPI);
  /** Adds bundled aggregations (when syncapi serves them) to the events of a response. */
  const bundle = async (userId: string, targets: BundleTarget[]): Promise<void> => {
    if (aggregations) await aggregations.bundle(userId, targets);
  };

  const passes = (filter: EventFilter, e: StreamEvent): boolean => filter.allows({ type: e.type, sender: e.sender, roomId: e.roomId, content: contentOf(e) });

  /**
   * Up to `limit` events the user may see and the filter passes, from `pos` in a direction,
   * stopping at `bound` (exclusive of the gap it names). `next` is where the following page
   * starts.
   */
  const page = async (
    userId: string,
    roomId: string,
    pos: number,
    backwards: boolean,
    limit: number,
    filter: EventFilter,
    bound?: number,
  ): Promise<{ events: StreamEvent[]; next: number }> => {
    const out: StreamEvent[] = [];
    let cursor = pos;
    for (let round = 0; round < MAX_SCAN_ROUNDS && out.length < limit; round++) {
      const raw = await store.roomEventsFrom(roomId, cursor, backwards, SCAN_BATCH);
      const rows = bound === undefined ? raw : raw.filter((r) => (backwards ? r.pos > bound : r.pos <= bound));
      if (rows.length === 0) break;
      let taken = rows.length;
      const seen = await visible(userId, rows.filter((r) => passes(filter, r)));
      for (const e of seen) {
        if (out.length === limit) {
          taken = rows.indexOf(e);
          break;
        }
        out.push(e);
      }
      const last = rows[taken - 1]!;
      cursor = backwards ? last.pos - 1 : last.pos;
      // The room (or the `to` bound) ran out this way.
      if (raw.length < SCAN_BATCH || rows.length < raw.length) break;
    }
    return { events: out, next: cursor };
  };

  /** Member events of the senders of `events` (lazy-loading members), from a given state. */
  const membersOfSenders = (state: StreamEvent[], events: StreamEvent[]): StreamEvent[] => {
    const senders = new Set(events.map((e) => e.sender));
    return state.filter((s) => s.type === 'm.room.member' && s.stateKey !== null && senders.has(s.stateKey));
  };

  clientRoute(client, 'get', '/rooms/:roomId/messages', async (c) => {
    const device = await authenticate(c, userAPI, { allowGuests: true });
    const roomId = roomIdParam(c);
    const dir = c.req.query('dir') ?? 'f';
    if (dir !== 'b' && dir !== 'f') throw invalidParam('dir must be "b" or "f"');
    const backwards = dir === 'b';
    const limit = parseLimit(c.req.query('limit'));
    const filter = eventFilter(parseFilterParam(c.req.query('filter')));
    if (!filter.allowsRoom(roomId)) return jsonResponse({ chunk: [], start: c.req.query('from') ?? pageToken(0) });
    const fromRaw = c.req.query('from');
    const toRaw = c.req.query('to');
    await requireReader(device.userId, roomId);
    // Without `from`, backwards starts at the newest event the user may see (for one who left,
    // their leave) and forwards at the oldest.
    let from = fromRaw !== undefined ? tokenPos(fromRaw, 'from') : backwards ? await store.maxEventPos() : 0;
    if (fromRaw === undefined && backwards) {
      const m = await rsAPI.queryMembershipForUser({ room_id: roomId, user_id: device.userId });
      if ((m.membership === 'leave' || m.membership === 'ban') && m.event_id !== undefined) from = Math.min(from, (await store.eventPos(m.event_id)) ?? from);
    }
    const to = toRaw !== undefined ? tokenPos(toRaw, 'to') : undefined;
    const { events, next } = await page(device.userId, roomId, from, backwards, limit, filter, to);
    const chunk = events.map((e) => ({ event: e, json: clientEvent(e, { deviceId: device.deviceId }) }));
    await bundle(device.userId, chunk);
    const body: JsonObject = { chunk: chunk.map((t) => t.json), start: pageToken(from) };
    // As Synapse and Dendrite do, `end` is left out exactly when the chunk is empty.
    if (events.length > 0) body['end'] = pageToken(next);
    if (filter.lazyLoadMembers && events.length > 0) {
      body['state'] = membersOfSenders(await store.currentState(roomId), events).map((e) => clientEvent(e));
    }
    return jsonResponse(body);
  });

  clientRoute(client, 'get', '/rooms/:roomId/context/:eventId', async (c) => {
    const device = await authenticate(c, userAPI, { allowGuests: true });
    const roomId = roomIdParam(c);
    const eventId = c.req.param('eventId') ?? '';
    const limit = parseLimit(c.req.query('limit'));
    const filter = eventFilter(parseFilterParam(c.req.query('filter')));
    await requireReader(device.userId, roomId);
    const [target] = await store.events([eventId]);
    if (!target || target.roomId !== roomId || (await visible(device.userId, [target])).length === 0) throw notFound('Event not found');
    const beforeLimit = Math.floor(limit / 2);
    const before = await page(device.userId, roomId, target.pos - 1, true, beforeLimit, filter);
    const after = await page(device.userId, roomId, target.pos, false, limit - beforeLimit, filter);
    const last = after.events[after.events.length - 1] ?? target;
    const { state_events } = await rsAPI.queryStateAfterEvents({ room_id: roomId, prev_event_ids: [last.eventId] });
    let state = state_events.map((h) => Event.fromPDU(h.pdu, h.room_version));
    if (filter.lazyLoadMembers) {
      const senders = new Set([target, ...before.events, ...after.events].map((e) => e.sender));
      state = state.filter((s) => s.type === 'm.room.member' && s.stateKey !== undefined && senders.has(s.stateKey));
    }
    const opts = { deviceId: device.deviceId };
    const serve = (e: StreamEvent): BundleTarget => ({ event: e, json: clientEvent(e, opts) });
    const [event, eventsBefore, eventsAfter] = [serve(target), before.events.map(serve), after.events.map(serve)];
    await bundle(device.userId, [event, ...eventsBefore, ...eventsAfter]);
    return jsonResponse({
      event: event.json,
      events_before: eventsBefore.map((t) => t.json),
      events_after: eventsAfter.map((t) => t.json),
      start: pageToken(before.events.length > 0 ? before.events[before.events.length - 1]!.pos - 1 : target.pos - 1),
      end: pageToken(last.pos),
      state: state.map((s) => s.toClientEvent('client')),
    });
  });

  clientRoute(client, 'get', '/rooms/:roomId/event/:eventId', async (c) => {
    const device = await authenticate(c, userAPI, { allowGuests: true });
    const roomId = roomIdParam(c);
    const eventId = c.req.param('eventId') ?? '';
    const [stored] = await store.events([eventId]);
    if (stored && stored.roomId === roomId && (await visible(device.userId, [stored])).length > 0) {
      const served = { event: stored, json: clientEvent(stored, { deviceId: device.deviceId }) };
      await bundle(device.userId, [served]);
      return jsonResponse(served.json);
    }
    // Events syncapi never streamed (outliers, rejected) are not served; an invisible one reads as missing.
    throw notFound('Event not found');
  });

  clientRoute(client, 'get', '/rooms/:roomId/members', async (c) => {
    const device = await authenticate(c, userAPI, { allowGuests: true });
    const roomId = roomIdParam(c);
    const membership = c.req.query('membership');
    const notMembership = c.req.query('not_membership');
    const atRaw = c.req.query('at');
    const m = await rsAPI.queryMembershipForUser({ room_id: roomId, user_id: device.userId });
    let at = atRaw !== undefined ? tokenPos(atRaw, 'at') : undefined;
    if (m.membership !== 'join') {
      // A former member sees the members as they were when they left, and no later.
      if ((m.membership === 'leave' || m.membership === 'ban') && m.event_id !== undefined) {
        const leftAt = await store.eventPos(m.event_id);
        if (leftAt === undefined) throw forbidden('You are not in this room');
        at = at === undefined ? leftAt : Math.min(at, leftAt);
      } else {
        await requireReader(device.userId, roomId);
      }
    }
    const state = at === undefined ? await store.currentState(roomId) : await store.stateAt(roomId, at);
    const members = state.filter((s) => {
      if (s.type !== 'm.room.member') return false;
      const mem = contentOf(s)['membership'];
      return (membership === undefined || mem === membership) && (notMembership === undefined || mem !== notMembership);
    });
    return jsonResponse({ chunk: members.map((e) => clientEvent(e)) });
  });
}
