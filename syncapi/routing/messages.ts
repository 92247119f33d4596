/**
 * The read side of rooms beyond /sync: GET /rooms/{roomId}/messages (paging through history),
 * /rooms/{roomId}/context/{eventId}, /rooms/{roomId}/event/{eventId} and
 * /rooms/{roomId}/members. History visibility is the roomserver's decision, from the state at
 * each event; filters come from syncapi's filter reader.
 *
 * /messages and /context go through a room in topological order: by depth, then by stream
 * position (as Dendrite and Synapse do), so that history backfilled after the fact comes in its
 * place. Their tokens are topological (`t<depth>_<pos>`, internal/topotoken.ts), a place just
 * after the event at (depth, pos): backwards paging from it returns events at or before it and
 * forwards paging those after it. A /sync `prev_batch` (a stream token) is accepted too and
 * placed just before the room's first event after it, so a client pages back from its timeline.
 *
 * Paging backwards into a gap in the room's history here (an event whose prev events syncapi
 * lacks: a room joined over federation starts with one before the join), the history behind it
 * is backfilled (internal/backfill.ts: the roomserver asks other servers of the room) before the
 * page goes past it. A gap above the page's start is filled first: what is missing there may
 * belong in the page. At most MAX_FILLS fills per request: past them the page ends at the next
 * gap, for the next request to fill. Only a gap that could not be filled (left alone for a
 * while) is paged past.
 */
import type { Context, Hono } from 'hono';
import { authenticate, clientRoute, forbidden, invalidParam, jsonResponse, notFound, type TokenResolver } from '../../internal/httputil/index.js';
import { Event, type JsonObject } from '../../internal/matrix/index.js';
import type { RoomserverInternalAPI } from '../../roomserver/api/index.js';
import type { AuthenticatedDevice } from '../../userapi/api/index.js';
import { clientEvent, contentOf } from '../internal/clientevent.js';
import { eventFilter, type EventFilter } from '../internal/filter.js';
import type { Gap, HistoryFiller } from '../internal/backfill.js';
import { parseToken } from '../internal/token.js';
import { formatTopoToken, parseTopoToken } from '../internal/topotoken.js';
import type { StreamEvent, SyncStore } from '../storage/syncstore.js';
import { compareTopo, type TopoKey } from '../storage/topology.js';
import type { Aggregations, BundleTarget } from '../internal/aggregations.js';
import { readAccess } from './access.js';

const DEFAULT_LIMIT = 10;
const MAX_LIMIT = 1000;
/** Rows read per round while filling a page; rounds are capped so a sparse filter cannot scan a whole room. */
const SCAN_BATCH = 100;
const MAX_SCAN_ROUNDS = 20;
/** Gaps filled (backfilled) per /messages request at most. */
const MAX_FILLS = 3;
/** No gap is passed over by name: one a fill left open after bringing history is filled again. */
const NO_SKIP: ReadonlySet<string> = new Set();
/** Before every event (depths are never negative). */
const START: TopoKey = { depth: -1, pos: 0 };

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

const keyOfEvent = (e: StreamEvent): TopoKey => ({ depth: e.depth, pos: e.pos });
/** Just before the event: where backwards paging past it goes on. */
const justBefore = (k: TopoKey): TopoKey => ({ depth: k.depth, pos: k.pos - 1 });

export function addMessagesRoutes(client: Hono, store: SyncStore, userAPI: TokenResolver<AuthenticatedDevice>, rsAPI: MessagesRoomserverAPI, aggregations?: Aggregations, filler?: HistoryFiller): void {
  // Whether the user may read the room at all (a member now or before, or a world_readable room), and each event.
  const { requireReader, visible } = readAccess(rsAPI);
  /** Adds bundled aggregations (when syncapi serves them) to the events of a response. */
  const bundle = async (userId: string, targets: BundleTarget[]): Promise<void> => {
    if (aggregations) await aggregations.bundle(userId, targets);
  };

  const passes = (filter: EventFilter, e: StreamEvent): boolean => filter.allows({ type: e.type, sender: e.sender, roomId: e.roomId, content: contentOf(e) });

  /** The place a `from`/`to` token names in the room: topological as it is, a stream token placed in the room's order. */
  const tokenKey = async (roomId: string, raw: string, name: string): Promise<TopoKey> => {
    const topo = parseTopoToken(raw);
    if (topo) return topo;
    const stream = parseToken(raw);
    if (!stream) throw invalidParam(`${name} is not a pagination token from this server`);
    return store.topoKeyAtStreamPos(roomId, stream.pdu);
  };

  /**
   * Up to `limit` events the user may see and the filter passes, from `from` in a direction,
   * stopping at `bound` (exclusive of the place it names). `next` is where the following page
   * starts. With `fillGaps` (backwards only), gaps met on the way are backfilled first.
   */
  const page = async (
    userId: string,
    roomId: string,
    from: TopoKey,
    backwards: boolean,
    limit: number,
    filter: EventFilter,
    bound?: TopoKey,
    fillGaps = false,
  ): Promise<{ events: StreamEvent[]; next: TopoKey }> => {
    const out: StreamEvent[] = [];
    let cursor = from;
    let fills = 0;
    const fill = async (gap: Gap): Promise<void> => {
      fills++;
      await filler!.fill(roomId, gap);
    };
    for (let round = 0; round < MAX_SCAN_ROUNDS && out.length < limit; round++) {
      let gap: Gap | undefined;
      // Out of fills with events in hand: the page ends at the next gap (the next request fills
      // it), never reading past it into history that lacks what lies behind it, which, filled
      // later, would land above the next page's start. (An empty page still reads on past gaps:
      // an empty chunk tells the client that the room's history ends.)
      let wall = false;
      if (backwards && fillGaps && filler && (fills < MAX_FILLS || out.length > 0)) {
        // A gap filled in this request but still open comes again if its fill brought history
        // (it rests otherwise): it stops the page, as any gap does, until closed.
        gap = await filler.nextGap(roomId, NO_SKIP);
        // A gap below `to` is not this page's.
        if (gap && bound !== undefined && compareTopo(gap, bound) <= 0) gap = undefined;
        wall = gap !== undefined && fills >= MAX_FILLS;
        // Above the page: what is missing behind it may belong in the page; it comes first.
        if (gap && compareTopo(gap, cursor) > 0) {
          if (wall) break;
          await fill(gap);
          continue;
        }
      }
      const raw = await store.roomEventsTopo(roomId, cursor, backwards, SCAN_BATCH);
      const exhausted = raw.length < SCAN_BATCH;
      // Rows up to `to`, and (backwards) down to the gap: events below it wait for its history.
      const beyondBound = bound === undefined ? -1 : raw.findIndex((r) => (backwards ? compareTopo(keyOfEvent(r), bound) <= 0 : compareTopo(keyOfEvent(r), bound) > 0));
      const belowGap = gap === undefined ? -1 : raw.findIndex((r) => compareTopo(keyOfEvent(r), gap) < 0);
      let rows = raw;
      let stop: 'bound' | 'gap' | undefined;
      if (belowGap >= 0 && (beyondBound < 0 || belowGap <= beyondBound)) {
        rows = raw.slice(0, belowGap);
        stop = 'gap';
      } else if (beyondBound >= 0) {
        rows = raw.slice(0, beyondBound);
        stop = 'bound';
      } else if (gap !== undefined && exhausted) {
        // Nothing here below the gap at all: the room's history here starts at it.
        stop = 'gap';
      }
      let taken = rows.length;
      const seen = await visible(userId, rows.filter((r) => passes(filter, r)));
      for (const e of seen) {
        if (out.length === limit) {
          taken = rows.indexOf(e);
          break;
        }
        out.push(e);
      }
      if (taken > 0) {
        const last = rows[taken - 1]!;
        cursor = backwards ? justBefore(keyOfEvent(last)) : keyOfEvent(last);
      }
      if (out.length >= limit || stop === 'bound') break;
      if (stop === 'gap') {
        if (wall) break;
        await fill(gap!);
        continue;
      }
      // The room ran out this way.
      if (exhausted) break;
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
    const fromRaw = c.req.query('from');
    const toRaw = c.req.query('to');
    if (fromRaw !== undefined && !parseTopoToken(fromRaw) && !parseToken(fromRaw)) throw invalidParam('from is not a pagination token from this server');
    if (!filter.allowsRoom(roomId)) return jsonResponse({ chunk: [], start: fromRaw ?? formatTopoToken(START) });
    await requireReader(device.userId, roomId);
    // Without `from`, backwards starts at the room's last event (for one who left, at their
    // leave) and forwards at its first.
    let from = fromRaw !== undefined ? await tokenKey(roomId, fromRaw, 'from') : backwards ? ((await store.maxTopoKey(roomId)) ?? START) : START;
    if (fromRaw === undefined && backwards) {
      const m = await rsAPI.queryMembershipForUser({ room_id: roomId, user_id: device.userId });
      if ((m.membership === 'leave' || m.membership === 'ban') && m.event_id !== undefined) {
        const left = await store.eventKey(m.event_id);
        if (left && compareTopo(left, from) < 0) from = { depth: left.depth, pos: left.pos };
      }
    }
    const to = toRaw !== undefined ? await tokenKey(roomId, toRaw, 'to') : undefined;
    const { events, next } = await page(device.userId, roomId, from, backwards, limit, filter, to, true);
    const chunk = events.map((e) => ({ event: e, json: clientEvent(e, { deviceId: device.deviceId }) }));
    await bundle(device.userId, chunk);
    const body: JsonObject = { chunk: chunk.map((t) => t.json), start: fromRaw ?? formatTopoToken(from) };
    // As Synapse and Dendrite do, `end` is left out exactly when the chunk is empty.
    if (events.length > 0) body['end'] = formatTopoToken(next);
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
    const at = keyOfEvent(target);
    const before = await page(device.userId, roomId, justBefore(at), true, beforeLimit, filter);
    const after = await page(device.userId, roomId, at, false, limit - beforeLimit, filter);
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
      start: formatTopoToken(before.events.length > 0 ? justBefore(keyOfEvent(before.events[before.events.length - 1]!)) : justBefore(at)),
      end: formatTopoToken(keyOfEvent(last)),
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
    // `at` as a stream position; a topological token in backfilled history names the event instead (no stream position holds its state).
    let at: number | undefined;
    let atHistory: string | undefined;
    if (atRaw !== undefined) {
      const topo = parseTopoToken(atRaw);
      const stream = topo ? undefined : parseToken(atRaw);
      if (!topo && !stream) throw invalidParam('at is not a pagination token from this server');
      if (topo) {
        const [e] = await store.roomEventsTopo(roomId, topo, true, 1);
        if (e && e.pos <= 0) atHistory = e.eventId;
        else at = e?.pos ?? 0;
      } else at = stream!.pdu;
    }
    if (m.membership !== 'join') {
      // A former member sees the members as they were when they left, and no later.
      if ((m.membership === 'leave' || m.membership === 'ban') && m.event_id !== undefined) {
        const leftAt = await store.eventPos(m.event_id);
        if (leftAt === undefined) throw forbidden('You are not in this room');
        if (atHistory === undefined) at = at === undefined ? leftAt : Math.min(at, leftAt);
      } else {
        await requireReader(device.userId, roomId);
      }
    }
    const wanted = (type: string, content: Record<string, unknown>): boolean => {
      if (type !== 'm.room.member') return false;
      const mem = content['membership'];
      return (membership === undefined || mem === membership) && (notMembership === undefined || mem !== notMembership);
    };
    if (atHistory !== undefined) {
      const { state_events } = await rsAPI.queryStateAfterEvents({ room_id: roomId, prev_event_ids: [atHistory] });
      const then = state_events.map((h) => Event.fromPDU(h.pdu, h.room_version)).filter((e) => wanted(e.type, e.content));
      return jsonResponse({ chunk: then.map((e) => e.toClientEvent('client')) });
    }
    const state = at === undefined ? await store.currentState(roomId) : await store.stateAt(roomId, at);
    const members = state.filter((s) => wanted(s.type, contentOf(s)));
    return jsonResponse({ chunk: members.map((e) => clientEvent(e)) });
  });
}
