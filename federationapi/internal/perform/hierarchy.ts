/**
 * A space held by other servers, summarised by them (Server-Server `GET /hierarchy/{roomId}`):
 * the `via` servers are asked in turn, and the first answer that is about the room asked for is
 * kept. Answers are hostile input: only the spec's fields of the right types are kept, child
 * events that do not name a child are dropped, and lists are capped.
 *
 * Answers are cached for a minute per (room, suggested_only), as the spec asks: a client paging
 * through a space, or several users opening it, cost the other server one request.
 */
import type { Logger } from 'pino';
import { isRoomIdOfAnyFormat } from '../../../internal/matrix/index.js';
import { compareSpaceChildren, isSuggestedChild, spaceChildVia } from '../../../internal/matrix/spacechildren.js';
import type { JsonObject } from '../../../internal/matrix/index.js';
import type { RoomSummary, SpaceChildEvent } from '../../../roomserver/api/index.js';
import type { QueryRemoteSpaceHierarchyRequest, QueryRemoteSpaceHierarchyResponse } from '../../api/index.js';
import { encodePathSegment, type FederationClient } from '../../client/index.js';

const CACHE_TTL_MS = 60_000;
const CACHE_MAX = 1_000;
const TIMEOUT_MS = 10_000;
/** Servers tried per room. */
const MAX_SERVERS = 5;
const MAX_CHILDREN = 1_000;
const MAX_ALLOWED_ROOMS = 100;
/** Longer strings (names, topics...) are not a summary's. */
const MAX_TEXT = 4_096;

type Ok = Extract<QueryRemoteSpaceHierarchyResponse, { error?: undefined }>;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A RoomSummary of the spec's fields only; undefined when it is not one. */
export function parseRoomSummary(v: unknown): RoomSummary | undefined {
  if (!isObject(v) || typeof v['room_id'] !== 'string' || !isRoomIdOfAnyFormat(v['room_id'])) return undefined;
  const joined = v['num_joined_members'];
  const out: RoomSummary = {
    room_id: v['room_id'],
    num_joined_members: typeof joined === 'number' && Number.isSafeInteger(joined) && joined >= 0 ? joined : 0,
    world_readable: v['world_readable'] === true,
    guest_can_join: v['guest_can_join'] === true,
  };
  for (const key of ['name', 'topic', 'canonical_alias', 'avatar_url', 'join_rule', 'room_type', 'room_version', 'encryption'] as const) {
    const s = v[key];
    if (typeof s === 'string' && s.length <= MAX_TEXT) out[key] = s;
  }
  const allowed = v['allowed_room_ids'];
  if (Array.isArray(allowed)) {
    const ids = allowed.filter((id): id is string => typeof id === 'string' && isRoomIdOfAnyFormat(id)).slice(0, MAX_ALLOWED_ROOMS);
    if (ids.length > 0) out.allowed_room_ids = ids;
  }
  return out;
}

/** An m.space.child stripped event that names a child room; undefined otherwise. */
export function parseSpaceChild(v: unknown): SpaceChildEvent | undefined {
  if (!isObject(v) || v['type'] !== 'm.space.child') return undefined;
  const stateKey = v['state_key'];
  if (typeof stateKey !== 'string' || !isRoomIdOfAnyFormat(stateKey)) return undefined;
  if (spaceChildVia(v['content']) === undefined) return undefined;
  const ts = v['origin_server_ts'];
  return {
    type: 'm.space.child',
    state_key: stateKey,
    content: v['content'] as JsonObject,
    sender: typeof v['sender'] === 'string' ? v['sender'] : '',
    origin_server_ts: typeof ts === 'number' && Number.isSafeInteger(ts) ? ts : 0,
  };
}

/** The checked parts of a /hierarchy answer about `roomId`; undefined when it is not one. */
export function parseHierarchyAnswer(body: unknown, roomId: string, suggestedOnly: boolean): Ok | undefined {
  if (!isObject(body)) return undefined;
  const room = parseRoomSummary(body['room']);
  if (!room || room.room_id !== roomId) return undefined;
  const rawChildren = isObject(body['room']) && Array.isArray(body['room']['children_state']) ? body['room']['children_state'] : [];
  // One event per state key, as in a room's state.
  const byChild = new Map<string, SpaceChildEvent>();
  for (const raw of rawChildren.slice(0, MAX_CHILDREN)) {
    const c = parseSpaceChild(raw);
    if (c && (!suggestedOnly || isSuggestedChild(c.content)) && !byChild.has(c.state_key)) byChild.set(c.state_key, c);
  }
  const childrenState = [...byChild.values()].sort(compareSpaceChildren);
  const children = (Array.isArray(body['children']) ? body['children'] : [])
    .slice(0, MAX_CHILDREN)
    .map(parseRoomSummary)
    .filter((c): c is RoomSummary => c !== undefined);
  const inaccessible = (Array.isArray(body['inaccessible_children']) ? body['inaccessible_children'] : [])
    .slice(0, MAX_CHILDREN)
    .filter((id): id is string => typeof id === 'string' && isRoomIdOfAnyFormat(id));
  return { room, children_state: childrenState, children, inaccessible_children: inaccessible };
}

export class SpaceHierarchyFetcher {
  private readonly cache = new Map<string, { until: number; answer: Ok }>();

  constructor(
    private readonly deps: {
      serverName: string;
      client: Pick<FederationClient, 'request'>;
      log: Logger;
    },
  ) {}

  async fetch(req: QueryRemoteSpaceHierarchyRequest): Promise<QueryRemoteSpaceHierarchyResponse> {
    const key = `${req.room_id}\u0000${req.suggested_only ? 1 : 0}`;
    const hit = this.cache.get(key);
    if (hit && hit.until > Date.now()) return hit.answer;
    const servers = [...new Set(req.server_names)].filter((s) => s !== this.deps.serverName).slice(0, MAX_SERVERS);
    let last: QueryRemoteSpaceHierarchyResponse = { error: 'not_found', message: 'No server to ask' };
    for (const server of servers) {
      try {
        const res = await this.deps.client.request(server, 'GET', `/_matrix/federation/v1/hierarchy/${encodePathSegment(req.room_id)}`, {
          query: { suggested_only: req.suggested_only },
          timeoutMs: TIMEOUT_MS,
        });
        if (res.status !== 200) {
          last = { error: res.status === 404 || res.status === 403 ? 'not_found' : 'unreachable', message: `${server} answered ${res.status}` };
          continue;
        }
        const answer = parseHierarchyAnswer(res.body, req.room_id, req.suggested_only);
        if (!answer) {
          last = { error: 'unreachable', message: `${server} answered with something that is not a hierarchy of ${req.room_id}` };
          continue;
        }
        this.remember(key, answer);
        return answer;
      } catch (err) {
        last = { error: 'unreachable', message: err instanceof Error ? err.message : String(err) };
      }
      this.deps.log.debug({ server, roomId: req.room_id, error: last.message }, 'federation: hierarchy request failed');
    }
    return last;
  }

  private remember(key: string, answer: Ok): void {
    if (this.cache.size >= CACHE_MAX) {
      const now = Date.now();
      for (const [k, v] of this.cache) if (v.until <= now) this.cache.delete(k);
      // Still full: the oldest entries go (a Map iterates in insertion order).
      for (const k of this.cache.keys()) {
        if (this.cache.size < CACHE_MAX) break;
        this.cache.delete(k);
      }
    }
    this.cache.delete(key);
    this.cache.set(key, { until: Date.now() + CACHE_TTL_MS, answer });
  }
}
