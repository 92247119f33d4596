/**
 * POST /_matrix/client/{r0,v3}/search ("Server Side Search"): the `room_events` category on
 * the database's full-text index (storage/search.ts), and Dendrite's admin reindex endpoint,
 * /_dendrite/admin/fulltext/reindex.
 *
 * Who sees what: only rooms the user is or was in (joined, left, banned) are searched, and
 * every hit passes the roomserver's history visibility check for the user at that event
 * (queryVisibleEvents), as do the context events around it. So a user never finds what they
 * could not read with /messages, e.g. events from before they joined a `joined` room, or from
 * after they left.
 *
 * Pages: `next_batch` is `rank_<offset>` (hits skipped, in rank order) or `recent_<pos>` (only
 * hits before that stream position). A page is filled from batches of hits, each checked for
 * visibility and the parts of the filter the index does not apply (`contains_url`), at most
 * MAX_ROUNDS batches per request. As Synapse does, `next_batch` is given whenever a page is
 * full, so the last full page is followed by one empty page without it.
 *
 * `count` is exact (visibility applied) up to EXACT_COUNT_MAX hits; above that it is the
 * index's count over the rooms searched, the "approximate count" the spec allows.
 *
 * `highlights`: the query's words and the words of the returned results that share their
 * stem (approximately: a common prefix), so that clients can mark "messages" for "message".
 *
 * With a `rooms` filter, the predecessors of those rooms (room upgrades) are searched too,
 * as Synapse does, when the user was in them.
 *
 * With `sync_api.search.enabled: false` nothing is indexed and the route answers
 * 400 M_UNKNOWN.
 */
import type { Context, Hono } from 'hono';
import {
  MatrixError,
  authenticate,
  badJson,
  clientRoute,
  forbidden,
  invalidParam,
  jsonResponse,
  missingParam,
  readJsonObject,
  type JsonBody,
  type TokenResolver,
} from '../../internal/httputil/index.js';
import type { JsonObject } from '../../internal/matrix/index.js';
import type { RoomserverInternalAPI } from '../../roomserver/api/index.js';
import type { AuthenticatedDevice } from '../../userapi/api/index.js';
import { clientEvent, contentOf } from '../internal/clientevent.js';
import { eventFilter } from '../internal/filter.js';
import { formatToken, ZERO } from '../internal/token.js';
import {
  ALL_SEARCH_KEYS,
  SEARCH_KEYS,
  isSearchKey,
  parseSearchTerm,
  reindexAll,
  roomPredecessor,
  words,
  type SearchHit,
  type SearchIndex,
  type SearchKey,
  type SearchQuery,
} from '../storage/search.js';
import type { StreamEvent, SyncStore } from '../storage/syncstore.js';
import type { Aggregations, BundleTarget } from '../internal/aggregations.js';

const MAX_BODY = 64 * 1024;
const DEFAULT_LIMIT = 10;
const MAX_LIMIT = 100;
const DEFAULT_CONTEXT = 5;
const MAX_CONTEXT = 100;
/** Hit batches read per request while filling a page. */
const MAX_ROUNDS = 10;
const MAX_BATCH = 500;
/** Up to this many index hits, `count` is computed exactly (with visibility). */
const EXACT_COUNT_MAX = 500;
/** How far back a chain of room upgrades is followed. */
const MAX_PREDECESSORS = 20;

export type SearchRoomserverAPI = Pick<RoomserverInternalAPI, 'queryVisibleEvents' | 'queryMembershipForUser'>;

export interface SearchRouteDeps {
  store: SyncStore;
  /** Undefined when search is disabled (sync_api.search.enabled: false). */
  index: SearchIndex | undefined;
  userAPI: TokenResolver<AuthenticatedDevice>;
  rsAPI: SearchRoomserverAPI;
  /** Bundled aggregations of the results (edits, threads, references), as /messages has them. */
  aggregations?: Aggregations;
}

type Order = 'rank' | 'recent';

interface RoomEventsRequest {
  term: string;
  keys: SearchKey[];
  filterRaw: Record<string, unknown>;
  rooms: string[] | undefined;
  notRooms: Set<string>;
  senders: string[] | undefined;
  notSenders: string[];
  limit: number;
  orderBy: Order;
  context: { before: number; after: number; includeProfile: boolean } | undefined;
  includeState: boolean;
  groupBy: Array<'room_id' | 'sender'>;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function stringList(v: unknown, name: string): string[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw badJson(`${name} must be a list of strings`);
  return v as string[];
}

function count(v: unknown, name: string, dflt: number, max: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw invalidParam(`${name} must be a non-negative integer`);
  return Math.min(v, max);
}

/** The room_events category of a request; undefined when the request has none. */
export function parseRoomEventsRequest(body: JsonBody): RoomEventsRequest | undefined {
  const categories = body['search_categories'];
  if (categories === undefined) throw missingParam('search_categories is required');
  if (!isObject(categories)) throw badJson('search_categories must be an object');
  const re = categories['room_events'];
  if (re === undefined) return undefined;
  if (!isObject(re)) throw badJson('room_events must be an object');
  const term = re['search_term'];
  if (term === undefined) throw missingParam('search_term is required');
  if (typeof term !== 'string') throw badJson('search_term must be a string');

  const rawKeys = stringList(re['keys'], 'keys');
  const unknownKey = rawKeys?.find((k) => !isSearchKey(k));
  if (unknownKey !== undefined) throw invalidParam(`keys: ${unknownKey} is not one of ${ALL_SEARCH_KEYS.join(', ')}`);
  // An empty list reads as the default, all keys.
  const keys = rawKeys && rawKeys.length > 0 ? [...new Set(rawKeys as SearchKey[])] : ALL_SEARCH_KEYS;

  const filterRaw = re['filter'] ?? {};
  if (!isObject(filterRaw)) throw badJson('filter must be an object');
  const limit = count(filterRaw['limit'], 'filter.limit', DEFAULT_LIMIT, MAX_LIMIT);

  const orderBy = re['order_by'] ?? 'rank';
  if (orderBy !== 'rank' && orderBy !== 'recent') throw invalidParam('order_by must be "rank" or "recent"');

  const ec = re['event_context'];
  if (ec !== undefined && !isObject(ec)) throw badJson('event_context must be an object');
  const context = ec
    ? {
        before: count(ec['before_limit'], 'event_context.before_limit', DEFAULT_CONTEXT, MAX_CONTEXT),
        after: count(ec['after_limit'], 'event_context.after_limit', DEFAULT_CONTEXT, MAX_CONTEXT),
        includeProfile: ec['include_profile'] === true,
      }
    : undefined;

  const includeState = re['include_state'] ?? false;
  if (typeof includeState !== 'boolean') throw badJson('include_state must be a boolean');

  const groupBy: Array<'room_id' | 'sender'> = [];
  const groupings = re['groupings'];
  if (groupings !== undefined) {
    if (!isObject(groupings)) throw badJson('groupings must be an object');
    const list = groupings['group_by'] ?? [];
    if (!Array.isArray(list)) throw badJson('groupings.group_by must be a list');
    for (const g of list) {
      const key = isObject(g) ? g['key'] : undefined;
      if (key !== 'room_id' && key !== 'sender') throw invalidParam('groupings.group_by keys must be "room_id" or "sender"');
      if (!groupBy.includes(key)) groupBy.push(key);
    }
  }

  return {
    term,
    keys,
    filterRaw,
    rooms: stringList(filterRaw['rooms'], 'filter.rooms'),
    notRooms: new Set(stringList(filterRaw['not_rooms'], 'filter.not_rooms') ?? []),
    senders: stringList(filterRaw['senders'], 'filter.senders'),
    notSenders: stringList(filterRaw['not_senders'], 'filter.not_senders') ?? [],
    limit,
    orderBy,
    context,
    includeState,
    groupBy,
  };
}

export const formatNextBatch = (order: Order, n: number): string => `${order}_${n}`;

/** The cursor in a next_batch from this server for this order; 400 for anything else. */
export function parseNextBatch(raw: string, order: Order): number {
  const m = /^(rank|recent)_(\d{1,15})$/.exec(raw);
  if (!m || m[1] !== order) throw invalidParam('Unknown next_batch');
  return Number(m[2]);
}

const posToken = (pos: number): string => formatToken({ ...ZERO, pdu: Math.max(0, pos) });

/** Words of the results to highlight: the query's words and result words sharing their stem. */
function highlightsOf(queryWords: readonly string[], texts: readonly string[]): string[] {
  const qs = [...new Set(queryWords.map((w) => w.toLowerCase()))];
  const stems = qs.map((q) => (q.length > 4 ? q.slice(0, Math.max(4, q.length - 2)) : q));
  const out = new Set(qs);
  for (const text of texts) {
    for (const w of words(text)) {
      const lw = w.toLowerCase();
      if (stems.some((s, i) => lw === qs[i] || (s.length >= 4 && lw.startsWith(s)))) out.add(lw);
    }
  }
  return [...out].sort();
}

export function addSearchRoutes(client: Hono, deps: SearchRouteDeps): void {
  const { store, index, userAPI, rsAPI } = deps;

  const visibleIds = async (userId: string, eventIds: string[]): Promise<Set<string>> => {
    if (eventIds.length === 0) return new Set();
    return new Set((await rsAPI.queryVisibleEvents({ event_ids: eventIds, user_id: userId })).visible_event_ids);
  };

  /** Up to `limit` events the user may see around `pos` in a room, newest first backwards. */
  const contextPage = async (userId: string, roomId: string, pos: number, backwards: boolean, limit: number): Promise<StreamEvent[]> => {
    const out: StreamEvent[] = [];
    let cursor = pos;
    for (let round = 0; round < 5 && out.length < limit; round++) {
      const batch = Math.max(limit, 10);
      const rows = await store.roomEventsFrom(roomId, cursor, backwards, batch);
      if (rows.length === 0) break;
      const ok = await visibleIds(userId, rows.map((r) => r.eventId));
      for (const r of rows) if (ok.has(r.eventId) && out.length < limit) out.push(r);
      const last = rows[rows.length - 1]!;
      cursor = backwards ? last.pos - 1 : last.pos;
      if (rows.length < batch) break;
    }
    return out;
  };

  clientRoute(client, 'post', '/search', async (c) => {
    const device = await authenticate(c, userAPI);
    if (!index) throw new MatrixError(400, 'M_UNKNOWN', 'Search has been disabled by the server administrator.');
    const req = parseRoomEventsRequest(await readJsonObject(c, { maxBytes: MAX_BODY }));
    const nextBatch = c.req.query('next_batch');
    if (!req) {
      if (nextBatch !== undefined) throw invalidParam('Unknown next_batch');
      return jsonResponse({ search_categories: {} });
    }
    const cursor = nextBatch !== undefined ? parseNextBatch(nextBatch, req.orderBy) : undefined;
    const userId = device.userId;

    // The rooms to search: those the user is or was in, narrowed by the filter (plus predecessors of the rooms it names).
    const mine = await store.roomsWithMembership(userId, ['join', 'leave', 'ban']);
    const membership = new Map(mine.map((r) => [r.roomId, r.membership]));
    let wanted: Set<string> | undefined;
    if (req.rooms) {
      wanted = new Set(req.rooms);
      for (const roomId of req.rooms) {
        let cur = roomId;
        for (let i = 0; i < MAX_PREDECESSORS; i++) {
          const pred = await roomPredecessor(store.db, cur);
          if (pred === undefined || wanted.has(pred)) break;
          wanted.add(pred);
          cur = pred;
        }
      }
    }
    const roomIds = [...membership.keys()].filter((r) => (wanted === undefined || wanted.has(r)) && !req.notRooms.has(r));
    // Types, senders and contains_url from the filter; rooms were handled above.
    const filter = eventFilter({ ...req.filterRaw, rooms: undefined, not_rooms: undefined });
    const keys = req.keys.filter((k) => filter.allowsType(SEARCH_KEYS[k]));
    const query = parseSearchTerm(req.term);
    const base: SearchQuery = {
      query,
      roomIds,
      keys,
      ...(req.senders !== undefined ? { senders: req.senders } : {}),
      notSenders: req.notSenders,
      orderBy: req.orderBy,
      limit: 0,
    };

    /** The hits of a batch that the user may see and the filter passes, with their events. */
    const admit = async (hits: SearchHit[]): Promise<Map<string, StreamEvent>> => {
      const events = new Map((await store.events(hits.map((h) => h.eventId))).map((e) => [e.eventId, e]));
      const candidates = hits.filter((h) => {
        const e = events.get(h.eventId);
        return e !== undefined && filter.allows({ type: e.type, sender: e.sender, roomId: e.roomId, content: contentOf(e) });
      });
      const ok = await visibleIds(userId, candidates.map((h) => h.eventId));
      return new Map([...events].filter(([id]) => ok.has(id)));
    };

    // Fill the page.
    const picked: Array<{ hit: SearchHit; event: StreamEvent }> = [];
    let offset = req.orderBy === 'rank' ? (cursor ?? 0) : 0;
    let beforePos = req.orderBy === 'recent' ? cursor : undefined;
    let exhausted = req.limit === 0;
    const batchSize = Math.min(MAX_BATCH, req.limit * 2 + 10);
    for (let round = 0; round < MAX_ROUNDS && picked.length < req.limit; round++) {
      const hits = await index.search({ ...base, limit: batchSize, offset, ...(beforePos !== undefined ? { beforePos } : {}) });
      const admitted = await admit(hits);
      let consumed = hits.length;
      for (let i = 0; i < hits.length; i++) {
        const event = admitted.get(hits[i]!.eventId);
        if (!event) continue;
        if (picked.length === req.limit) {
          consumed = i;
          break;
        }
        picked.push({ hit: hits[i]!, event });
      }
      if (consumed > 0) {
        offset += consumed;
        beforePos = hits[consumed - 1]!.pos;
      }
      if (hits.length < batchSize && consumed === hits.length) {
        exhausted = true;
        break;
      }
    }

    // The count: exact when small (or when this first page saw every hit), else the index's.
    let total: number;
    if (cursor === undefined && exhausted) total = picked.length;
    else {
      total = await index.count(base);
      if (total <= EXACT_COUNT_MAX) total = total === 0 ? 0 : (await admit(await index.search({ ...base, orderBy: 'recent', limit: total }))).size;
    }

    const opts = { deviceId: device.deviceId };
    const results: JsonObject[] = [];
    const bundled: BundleTarget[] = [];
    for (const { hit, event } of picked) {
      const json = clientEvent(event, opts);
      bundled.push({ event, json });
      const result: JsonObject = { rank: hit.rank, result: json };
      if (req.context) {
        const before = await contextPage(userId, event.roomId, event.pos - 1, true, req.context.before);
        const after = await contextPage(userId, event.roomId, event.pos, false, req.context.after);
        const ctx: JsonObject = {
          events_before: before.map((e) => clientEvent(e, opts)),
          events_after: after.map((e) => clientEvent(e, opts)),
          start: posToken(before.length > 0 ? before[before.length - 1]!.pos - 1 : event.pos - 1),
          end: posToken(after.length > 0 ? after[after.length - 1]!.pos : event.pos),
        };
        if (req.context.includeProfile) {
          const profiles: JsonObject = {};
          for (const sender of new Set([event, ...before, ...after].map((e) => e.sender))) {
            const m = await store.memberContentAt(event.roomId, sender, event.pos);
            if (!m) continue;
            const p: JsonObject = {};
            if (typeof m['displayname'] === 'string') p['displayname'] = m['displayname'];
            if (typeof m['avatar_url'] === 'string') p['avatar_url'] = m['avatar_url'];
            profiles[sender] = p;
          }
          ctx['profile_info'] = profiles;
        }
        result['context'] = ctx;
      }
      results.push(result);
    }
    if (deps.aggregations) await deps.aggregations.bundle(userId, bundled);

    const texts = picked.map(({ event, hit }) => {
      const v = contentOf(event)[hit.key.slice('content.'.length)];
      return typeof v === 'string' ? v : '';
    });
    const out: JsonObject = {
      results,
      count: total,
      highlights: highlightsOf(query.clauses.flat(2), texts),
    };
    if (picked.length > 0 && (picked.length === req.limit || !exhausted)) {
      out['next_batch'] = formatNextBatch(req.orderBy, req.orderBy === 'rank' ? offset : beforePos!);
    } else if (!exhausted) {
      // Nothing visible in the rounds read, but the index has more: let the client carry on.
      out['next_batch'] = formatNextBatch(req.orderBy, req.orderBy === 'rank' ? offset : (beforePos ?? 0));
    }

    if (req.includeState) {
      const state: JsonObject = {};
      for (const roomId of new Set(picked.map((p) => p.event.roomId))) {
        let events: StreamEvent[];
        if (membership.get(roomId) === 'join') events = await store.currentState(roomId);
        else {
          // A former member sees the state as it was when they left.
          const m = await rsAPI.queryMembershipForUser({ room_id: roomId, user_id: userId });
          const leftAt = m.event_id !== undefined ? await store.eventPos(m.event_id) : undefined;
          if (leftAt === undefined) continue;
          events = await store.stateAt(roomId, leftAt);
        }
        state[roomId] = events.map((e) => clientEvent(e));
      }
      out['state'] = state;
    }

    if (req.groupBy.length > 0) {
      const groups: JsonObject = {};
      for (const key of req.groupBy) {
        const byValue: Record<string, { results: string[]; order: number }> = {};
        for (const { event } of picked) {
          const value = key === 'room_id' ? event.roomId : event.sender;
          (byValue[value] ??= { results: [], order: Object.keys(byValue).length }).results.push(event.eventId);
        }
        groups[key] = byValue;
      }
      out['groups'] = groups;
    }

    return jsonResponse({ search_categories: { room_events: out } });
  });
}

/**
 * Dendrite's /_dendrite/admin/fulltext/reindex (GET, as Dendrite; POST too): rebuilds the
 * index from syncapi's events, for server admins. Answers when done with the number indexed.
 */
export function addSearchAdminRoutes(admin: Hono, deps: Pick<SearchRouteDeps, 'store' | 'index' | 'userAPI'>): void {
  const handler = async (c: Context): Promise<Response> => {
    const device = await authenticate(c, deps.userAPI);
    if (!device.isAdmin) throw forbidden('This API is for server admins');
    if (!deps.index) throw new MatrixError(400, 'M_UNKNOWN', 'Search has been disabled by the server administrator.');
    const indexed = await reindexAll(deps.store.db, deps.index);
    return jsonResponse({ indexed });
  };
  admin.get('/admin/fulltext/reindex', handler);
  admin.post('/admin/fulltext/reindex', handler);
}
