/**
 * The relationships API (client-server v1):
 *
 * - GET /rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]]: a parent's children,
 *   newest first (`dir=b`, the default) or oldest first (`dir=f`), from `from` and up to `to`,
 *   `limit` at a time, optionally following relations of relations (`recurse`, MSC3981, spec
 *   v1.10) up to RECURSION_DEPTH levels, with the filters applied at every level.
 * - GET /rooms/{roomId}/threads: the room's thread roots by latest activity, all or those the
 *   user took part in (`include=participated`).
 *
 * Both order by stream position and use sync tokens whose PDU position marks a gap, as
 * /messages does (a token at N sits just after the event at N), so /sync and /messages tokens
 * work as `from` and `to`. A user who may not read the room gets 403; a parent the user may
 * not see (or that this server does not have) is 404. Children the user may not see and
 * children sent by users they ignore are left out. Every event served carries its bundled
 * aggregations.
 */
import type { Context, Hono } from 'hono';
import { authenticate, invalidParam, jsonResponse, notFound, type TokenResolver } from '../../internal/httputil/index.js';
import { Event, type JsonObject, type PDUJson } from '../../internal/matrix/index.js';
import type { AuthenticatedDevice } from '../../userapi/api/index.js';
import type { Aggregations } from '../internal/aggregations.js';
import { clientEvent } from '../internal/clientevent.js';
import { formatToken, ZERO } from '../internal/token.js';
import { streamPosOfToken } from '../internal/topotoken.js';
import type { RelationsStore } from '../storage/relations.js';
import type { StreamEvent, SyncStore } from '../storage/syncstore.js';
import { readAccess, type ReadAccessRoomserverAPI } from './access.js';

/** Levels followed with `recurse=true` (the spec asks for at least 3). */
export const RECURSION_DEPTH = 3;
const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 1000;
const DEFAULT_THREADS_LIMIT = 10;
const MAX_THREADS_LIMIT = 100;
/** Rounds of reading when visibility filters rows out, so that a page cannot scan without end. */
const MAX_ROUNDS = 10;

export interface RelationsRouteDeps {
  store: SyncStore;
  relations: RelationsStore;
  aggregations: Aggregations;
  userAPI: TokenResolver<AuthenticatedDevice>;
  rsAPI: ReadAccessRoomserverAPI;
}

const ROOM_ID = /^![^:]+(:.+)?$/;

function roomIdParam(c: Context): string {
  const roomId = c.req.param('roomId') ?? '';
  if (!ROOM_ID.test(roomId)) throw invalidParam(`${roomId} is not a room ID`);
  return roomId;
}

function parseLimit(raw: string | undefined, fallback: number, max: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(n) || n < 1) throw invalidParam('limit must be a positive integer');
  return Math.min(n, max);
}

function tokenPos(raw: string | undefined, name: string): number | undefined {
  if (raw === undefined) return undefined;
  const pos = streamPosOfToken(raw);
  if (pos === undefined) throw invalidParam(`${name} is not a pagination token from this server`);
  return pos;
}

/** `recurse` (or MSC3981's unstable name): undefined when absent. */
function parseRecurse(c: Context): boolean | undefined {
  const raw = c.req.query('recurse') ?? c.req.query('org.matrix.msc3981.recurse');
  if (raw === undefined) return undefined;
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  throw invalidParam('recurse must be true or false');
}

const pageToken = (pos: number): string => formatToken({ ...ZERO, pdu: Math.max(0, pos) });

export function addRelationsRoutes(client: Hono, deps: RelationsRouteDeps): void {
  const { store, relations, aggregations, userAPI } = deps;
  const access = readAccess(deps.rsAPI);

  const relationsHandler = async (c: Context): Promise<Response> => {
    const device = await authenticate(c, userAPI, { allowGuests: true });
    const userId = device.userId;
    const roomId = roomIdParam(c);
    const eventId = c.req.param('eventId') ?? '';
    const relType = c.req.param('relType');
    const eventType = c.req.param('eventType');
    const dir = c.req.query('dir') ?? 'b';
    if (dir !== 'b' && dir !== 'f') throw invalidParam('dir must be "b" or "f"');
    const backwards = dir === 'b';
    const limit = parseLimit(c.req.query('limit'), DEFAULT_LIMIT, MAX_LIMIT);
    const fromRaw = c.req.query('from');
    const from = tokenPos(fromRaw, 'from');
    const to = tokenPos(c.req.query('to'), 'to');
    const recurse = parseRecurse(c);
    const depth = recurse === true ? RECURSION_DEPTH : 1;

    await access.requireReader(userId, roomId);
    const [parent] = await store.events([eventId]);
    if (!parent || parent.roomId !== roomId || (await access.visible(userId, [parent])).length === 0) throw notFound('Event not found');
    const ignored = await aggregations.ignoredUsers(userId);

    // Read limit+1 rows a round: the extra one tells whether a next page exists.
    const batch = limit + 1;
    const out: StreamEvent[] = [];
    let cursor = from;
    let more = false;
    let exhausted = false;
    for (let round = 0; round < MAX_ROUNDS && !more && !exhausted; round++) {
      const raw = await relations.children({ roomId, eventId, ...(relType !== undefined ? { relType } : {}), ...(eventType !== undefined ? { eventType } : {}), ...(cursor !== undefined ? { from: cursor } : {}), backwards, limit: batch, depth });
      const rows = to === undefined ? raw : raw.filter((r) => (backwards ? r.pos > to : r.pos <= to));
      exhausted = raw.length < batch || rows.length < raw.length;
      const seen = new Set((await access.visible(userId, rows.filter((r) => !ignored.has(r.sender)))).map((e) => e.eventId));
      for (const r of rows) {
        if (seen.has(r.eventId)) {
          if (out.length === limit) {
            more = true;
            break;
          }
          out.push(r);
        }
        cursor = backwards ? r.pos - 1 : r.pos;
      }
    }
    // Rounds ran out before the end was seen: another page may hold something.
    if (!more && !exhausted && out.length === limit) more = true;

    const opts = { deviceId: device.deviceId };
    const chunk = out.map((e) => ({ event: e, json: clientEvent(e, opts) }));
    await aggregations.bundle(userId, chunk, { ignored, eventOptions: opts });
    const body: JsonObject = { chunk: chunk.map((t) => t.json) };
    if (more && cursor !== undefined) body['next_batch'] = pageToken(cursor);
    if (fromRaw !== undefined) body['prev_batch'] = fromRaw;
    if (recurse !== undefined) body['recursion_depth'] = depth;
    return jsonResponse(body);
  };
  client.get('/v1/rooms/:roomId/relations/:eventId', relationsHandler);
  client.get('/v1/rooms/:roomId/relations/:eventId/:relType', relationsHandler);
  client.get('/v1/rooms/:roomId/relations/:eventId/:relType/:eventType', relationsHandler);

  client.get('/v1/rooms/:roomId/threads', async (c: Context) => {
    const device = await authenticate(c, userAPI);
    const userId = device.userId;
    const roomId = roomIdParam(c);
    const include = c.req.query('include') ?? 'all';
    if (include !== 'all' && include !== 'participated') throw invalidParam('include must be "all" or "participated"');
    const limit = parseLimit(c.req.query('limit'), DEFAULT_THREADS_LIMIT, MAX_THREADS_LIMIT);
    const from = tokenPos(c.req.query('from'), 'from');
    await access.requireReader(userId, roomId);
    const ignored = await aggregations.ignoredUsers(userId);

    const out: StreamEvent[] = [];
    let cursor = from;
    let more = false;
    let exhausted = false;
    for (let round = 0; round < MAX_ROUNDS && !more && !exhausted; round++) {
      const rows = await relations.threadRoots({ roomId, ...(cursor !== undefined ? { upTo: cursor } : {}), ...(include === 'participated' ? { participant: userId } : {}), limit: limit + 1 });
      exhausted = rows.length < limit + 1;
      const seen = new Set((await access.visible(userId, rows.map((r) => r.root))).map((e) => e.eventId));
      for (const r of rows) {
        if (seen.has(r.root.eventId)) {
          if (out.length === limit) {
            more = true;
            break;
          }
          out.push(r.root);
        }
        cursor = r.latestPos - 1;
      }
    }
    if (!more && !exhausted && out.length === limit) more = true;

    const opts = { deviceId: device.deviceId };
    const chunk = out.map((e) => ({ event: e, json: ignored.has(e.sender) ? redactedClientEvent(e) : clientEvent(e, opts) }));
    await aggregations.bundle(userId, chunk, { ignored, eventOptions: opts });
    const body: JsonObject = { chunk: chunk.map((t) => t.json) };
    if (more && cursor !== undefined) body['next_batch'] = pageToken(cursor);
    return jsonResponse(body);
  });
}

/** A root sent by an ignored user is served redacted, as a client aggregating the thread itself would show it. */
function redactedClientEvent(e: StreamEvent): JsonObject {
  return Event.fromStored(JSON.parse(e.json) as PDUJson, e.roomVersion, e.eventId).redacted().toClientEvent('client');
}
