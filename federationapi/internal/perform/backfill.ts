/**
 * Outbound backfill (Server-Server API "Backfilling and retrieving missing events"): a room's
 * history behind events whose prev events this server lacks, asked of other servers of the
 * room with GET /backfill, for the roomserver when a client pages back into a gap (/messages).
 *
 * 1. Servers are asked in the given order (the roomserver puts first those that were in the
 *    room at the gap), never ourselves, at most MAX_SERVERS of them and within DEADLINE_MS in
 *    all, until one gives events not held here.
 * 2. An answer is only a claim. At most `limit` of its PDUs are taken; each must be a valid
 *    event of the room's version, signed by the servers that must sign it, and of the room
 *    (checkPDUs, as /send does: one whose content hash does not match is kept redacted, as the
 *    spec requires); others are dropped. So are events held here already with their state, and
 *    repeats.
 * 3. What the events need is fetched from the same server: auth events the roomserver lacks
 *    (GET /event, as outliers), and, for an event whose prev events are neither among the
 *    answer nor held here with state (the oldest of the answer, where this server's history
 *    ends), the state before it (GET /state_ids, its events fetched as outliers), as
 *    timestamp_to_event does for one event.
 * 4. The events go to the roomserver as `old` events, each after its prev and auth events: it
 *    checks them against their auth events and the state before them (rejected ones are stored
 *    but never shown), and publishes `old_room_event` for syncapi.
 */
import type { Logger } from 'pino';
import { Event, type PDUJson } from '../../../internal/matrix/index.js';
import type { InputRoomEvent, RoomserverInternalAPI } from '../../../roomserver/api/index.js';
import type { PerformRemoteBackfillRequest, PerformRemoteBackfillResponse } from '../../api/index.js';
import { encodePathSegment, type FederationClient } from '../../client/index.js';
import { checkPDUs, type PDUKeys } from '../pdus.js';
import { fetchOutliers } from './outliers.js';

const MAX_SERVERS = 5;
/** For the whole backfill: /messages waits for it. */
const DEADLINE_MS = 15_000;
/** For one request to one server. */
const REQUEST_TIMEOUT_MS = 10_000;
/** The most events asked for (and taken from an answer). */
const MAX_LIMIT = 100;
/** Events to walk back from per request (`v`, in the URL). */
const MAX_FROM = 20;
/** Events of one answer whose state is asked for (GET /state_ids); the rest wait for a later backfill. */
const MAX_STATE_FETCHES = 5;
/** PDU bytes per roomserver request: well under NATS' default 1 MiB message limit (polylith). */
const INPUT_REQUEST_BYTES = 512 * 1024;

export type BackfillClient = Pick<FederationClient, 'request'>;
export type BackfillRoomserverAPI = Pick<RoomserverInternalAPI, 'queryLatestEventsAndState' | 'queryEventsById' | 'inputRoomEvents'>;

export interface BackfillerDeps {
  serverName: string;
  client: BackfillClient;
  keys: PDUKeys;
  rsAPI: BackfillRoomserverAPI;
  log: Logger;
  /** Test hook: the time bound of one backfill (default DEADLINE_MS). */
  deadlineMs?: number;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

/**
 * Orders events so that each comes after its prev and auth events among them (the roomserver
 * needs both first), lower depths first where the DAG leaves the order open.
 */
export function dagOrder(events: readonly Event[]): Event[] {
  const byId = new Map(events.map((e) => [e.eventId, e]));
  const out: Event[] = [];
  const placed = new Set<string>();
  const visiting = new Set<string>();
  const place = (root: Event): void => {
    // Iterative depth-first walk: a hostile answer may chain many events.
    const stack: Array<{ e: Event; deps: string[] }> = [{ e: root, deps: [...root.prevEventIds, ...root.authEventIds] }];
    visiting.add(root.eventId);
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const next = top.deps.pop();
      if (next === undefined) {
        stack.pop();
        visiting.delete(top.e.eventId);
        placed.add(top.e.eventId);
        out.push(top.e);
        continue;
      }
      const dep = byId.get(next);
      if (!dep || placed.has(next) || visiting.has(next)) continue;
      visiting.add(next);
      stack.push({ e: dep, deps: [...dep.prevEventIds, ...dep.authEventIds] });
    }
  };
  for (const e of [...events].sort((a, b) => a.depth - b.depth)) if (!placed.has(e.eventId)) place(e);
  return out;
}

/**
 * The newest part of a backfill answer worth inputting: its events at or above the lowest depth
 * at which at most `budget` of them lack a prev event that is neither among them nor `held`
 * (each such event needs the state before it fetched), and how many those are. The events in
 * `wanted` (those asked for) and all above them are always part of it, the budget raised to
 * what they need (the backfill's time bound still holds). Where the DAG forks, an answer walked
 * back from some events can be ragged at its bottom, with more such events than any budget.
 */
export function newestPart(events: readonly Event[], held: (eventId: string) => boolean, budget: number, wanted: ReadonlySet<string>): { events: Event[]; stateFetches: number } {
  const needState = (d: number): number => {
    const part = new Set(events.filter((e) => e.depth >= d).map((e) => e.eventId));
    return events.filter((e) => part.has(e.eventId) && e.prevEventIds.some((p) => !part.has(p) && !held(p))).length;
  };
  const depths = [...new Set(events.map((e) => e.depth))].sort((x, y) => y - x);
  const wantedDepths = events.filter((e) => wanted.has(e.eventId)).map((e) => e.depth);
  let cut = wantedDepths.length > 0 ? Math.min(...wantedDepths) : (depths[0] ?? 0);
  const fetches = Math.max(budget, needState(cut));
  for (const d of depths) {
    if (d >= cut) continue;
    if (needState(d) > fetches) break;
    cut = d;
  }
  return { events: events.filter((e) => e.depth >= cut), stateFetches: needState(cut) };
}

export class Backfiller {
  constructor(private readonly d: BackfillerDeps) {}

  async backfill(req: PerformRemoteBackfillRequest): Promise<PerformRemoteBackfillResponse> {
    const { room_version: roomVersion } = await this.d.rsAPI.queryLatestEventsAndState({ room_id: req.room_id, state_to_fetch: [] });
    if (roomVersion === undefined) return { error: 'not_found', message: `Room ${req.room_id} is not known here` };
    const from = [...new Set(req.event_ids)].slice(0, MAX_FROM);
    if (from.length === 0) return { event_ids: [] };
    const limit = Math.max(1, Math.min(MAX_LIMIT, Math.floor(req.limit)));
    const deadline = Date.now() + (this.d.deadlineMs ?? DEADLINE_MS);
    const servers = [...new Set(req.server_names)].filter((s) => s !== this.d.serverName && s !== '').slice(0, MAX_SERVERS);
    let last: PerformRemoteBackfillResponse = { error: 'unreachable', message: servers.length === 0 ? 'No other server to ask' : 'No server gave events not held here' };
    for (const server of servers) {
      if (Date.now() >= deadline) break;
      try {
        const ids = await this.fromServer(server, roomVersion, req.room_id, from, limit, deadline);
        if (ids !== undefined) return { event_ids: ids, server };
      } catch (err) {
        last = { error: 'unreachable', message: err instanceof Error ? err.message : String(err) };
        this.d.log.debug({ server, roomId: req.room_id, err }, 'federation: backfill via server failed');
      }
    }
    return last;
  }

  private timeout(deadline: number): number {
    return Math.max(1, Math.min(REQUEST_TIMEOUT_MS, deadline - Date.now()));
  }

  /** What the server's answer put into the roomserver; undefined when it gave nothing new. */
  private async fromServer(server: string, roomVersion: string, roomId: string, from: string[], limit: number, deadline: number): Promise<string[] | undefined> {
    const { rsAPI, log } = this.d;
    const res = await this.d.client.request(server, 'GET', `/_matrix/federation/v1/backfill/${encodePathSegment(roomId)}`, { query: { v: from, limit }, timeoutMs: this.timeout(deadline) });
    if (res.status !== 200 || !isObject(res.body) || !Array.isArray(res.body['pdus'])) throw new Error(`${server} answered backfill with ${res.status}`);
    const raws = (res.body['pdus'] as unknown[]).slice(0, limit);
    const checked = await checkPDUs(raws, roomVersion, this.d.keys);
    const byId = new Map<string, Event>();
    let dropped = 0;
    for (const c of checked) {
      if (c.ok && c.event.roomId === roomId) byId.set(c.event.eventId, c.event);
      else dropped++;
    }
    if (dropped > 0) log.info({ server, roomId, dropped, reasons: checked.flatMap((c) => (c.ok ? [] : [c.error])).slice(0, 5) }, 'federation: backfilled events dropped (bad format, signature or room)');
    if (byId.size === 0) return undefined;

    // What the roomserver holds of the answer and of what it refers to.
    const refs = new Set<string>();
    for (const e of byId.values()) for (const id of [e.eventId, ...e.prevEventIds, ...e.authEventIds]) refs.add(id);
    const held = new Map<string, { withState: boolean }>();
    for (const h of (await rsAPI.queryEventsById({ event_ids: [...refs] })).events) {
      const e = Event.fromPDU(h.pdu, h.room_version);
      // Another room's event is no prev or auth event of this room's.
      if (e.roomId === roomId) held.set(e.eventId, { withState: !h.outlier });
    }
    const answered = [...byId.values()].filter((e) => held.get(e.eventId)?.withState !== true);
    if (answered.length === 0) return undefined;
    // The state fetches go to the newest part of the answer, so that the events asked for (what
    // closes the gap a client pages into) are taken. Spent oldest first, they ran out on the
    // ragged bottom of a forked DAG's answer, the asked events were dropped and the gap stayed open.
    const { events: fresh, stateFetches: stateBudget } = newestPart(answered, (id) => held.get(id)?.withState === true, MAX_STATE_FETCHES, new Set(from));
    const freshIds = new Set(fresh.map((e) => e.eventId));

    // Auth events neither in the answer nor held: fetched as outliers.
    const missingAuth = [...new Set(fresh.flatMap((e) => e.authEventIds))].filter((id) => !freshIds.has(id) && !held.has(id));
    await fetchOutliers(this.outlierDeps(deadline), server, roomVersion, roomId, missingAuth, deadline);

    const inputs: InputRoomEvent[] = [];
    const withState = new Set<string>();
    let stateFetches = 0;
    for (const e of dagOrder(fresh)) {
      const atHand = e.prevEventIds.every((p) => withState.has(p) || held.get(p)?.withState === true);
      let stateIds: string[] | undefined;
      if (!atHand && e.prevEventIds.length > 0) {
        // Where our history ends: the state before the event comes from the server.
        if (stateFetches >= stateBudget || Date.now() >= deadline) continue;
        stateFetches++;
        stateIds = await this.stateBefore(server, roomVersion, roomId, e, deadline).catch((err: unknown) => {
          log.debug({ server, eventId: e.eventId, err }, 'federation: state before a backfilled event not fetched');
          return undefined;
        });
        if (stateIds === undefined) continue;
      }
      inputs.push({ kind: 'old', event: { room_version: roomVersion, pdu: e.json as PDUJson }, origin: server, ...(stateIds ? { state_event_ids: stateIds } : {}) });
      withState.add(e.eventId);
    }

    const taken: string[] = [];
    for (const chunk of byteChunks(inputs)) {
      const { results } = await rsAPI.inputRoomEvents({ events: chunk });
      for (const r of results) {
        if (r.status === 'accepted' || r.status === 'duplicate') taken.push(r.event_id);
        else log.debug({ server, eventId: r.event_id, status: r.status, error: r.error }, 'federation: backfilled event not taken');
      }
    }
    log.debug({ server, roomId, asked: from.length, answered: raws.length, input: inputs.length, taken: taken.length, stateFetches }, 'federation: backfilled');
    return taken;
  }

  /** The state before `e` on `server` (GET /state_ids), its events and auth chain fetched as outliers where the roomserver lacks them. */
  private async stateBefore(server: string, roomVersion: string, roomId: string, e: Event, deadline: number): Promise<string[]> {
    const res = await this.d.client.request(server, 'GET', `/_matrix/federation/v1/state_ids/${encodePathSegment(roomId)}`, { query: { event_id: e.eventId }, timeoutMs: this.timeout(deadline) });
    if (res.status !== 200 || !isObject(res.body)) throw new Error(`${server} answered state_ids with ${res.status}`);
    const stateIds = [...new Set(strings(res.body['pdu_ids']))];
    const chainIds = strings(res.body['auth_chain_ids']);
    await fetchOutliers(this.outlierDeps(deadline), server, roomVersion, roomId, [...new Set([...chainIds, ...e.authEventIds, ...stateIds])], deadline);
    return stateIds;
  }

  private outlierDeps(deadline: number): Parameters<typeof fetchOutliers>[0] {
    return {
      rsAPI: this.d.rsAPI,
      keys: this.d.keys,
      fetchEvent: async (server, eventId) => {
        const res = await this.d.client.request(server, 'GET', `/_matrix/federation/v1/event/${encodePathSegment(eventId)}`, { timeoutMs: this.timeout(deadline) });
        return res.status === 200 && isObject(res.body) && Array.isArray(res.body['pdus']) ? (res.body['pdus'] as unknown[])[0] : undefined;
      },
    };
  }
}

/** Inputs split so that no request carries more than INPUT_REQUEST_BYTES of PDUs. */
function byteChunks(inputs: readonly InputRoomEvent[]): InputRoomEvent[][] {
  const out: InputRoomEvent[][] = [];
  let cur: InputRoomEvent[] = [];
  let bytes = 0;
  for (const i of inputs) {
    const size = JSON.stringify(i.event.pdu).length;
    if (cur.length > 0 && bytes + size > INPUT_REQUEST_BYTES) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(i);
    bytes += size;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}
