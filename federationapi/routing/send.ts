/**
 * PUT /send/{txnId}: another server's transaction of PDUs and EDUs.
 *
 * - Idempotent per origin and transaction ID: a retried transaction gets the first answer.
 * - PDUs are checked on receipt (format, signatures, hashes), refused for rooms we do not
 *   have or whose ACL bars the origin, and put through the roomserver in order: each room's
 *   PDUs in one request (one transaction there; rooms side by side), which stops at the first
 *   event the roomserver cannot take for want of events we lack. That event then makes us ask
 *   the origin for them (get_missing_events, bounded; a gap before the events pulled so is
 *   bridged with the state there, from /state_ids) and goes in alone; the rest follow it. A
 *   pushed event whose prev events are still missing is refused. Each PDU's outcome is in the
 *   answer.
 * - EDUs become the ephemeral messages syncapi consumes: typing, receipts, presence and
 *   to-device messages, each only for users of the origin.
 */
import type { Hono } from 'hono';
import type { Logger } from 'pino';
import { MatrixError, jsonResponse } from '../../internal/httputil/index.js';
import { Event, domainOf, type JsonObject, type PDUJson } from '../../internal/matrix/index.js';
import { authOrder } from '../internal/authorder.js';
import type { EphemeralProducer } from '../../syncapi/api/producer.js';
import type { InputResult } from '../../roomserver/api/index.js';
import type { ClientUserAPI } from '../../userapi/api/index.js';
import { checkPDUs, type CheckedPDU, type PDUKeys } from '../internal/pdus.js';
import { serverAllowedByAcl } from '../internal/acl.js';
import type { RoomReader } from './events.js';
import type { FederationAuth } from './fedauth.js';

const MAX_PDUS = 50;
const MAX_EDUS = 100;
/** PDU bytes per roomserver request: well under NATS' default 1 MiB message limit (polylith). */
const INPUT_REQUEST_BYTES = 512 * 1024;
const MISSING_EVENTS_LIMIT = 20;
const TXN_CACHE = 10_000;

/** What fetching missing events needs from the federation client. */
export interface MissingEventsFetcher {
  getMissingEvents(destination: string, roomId: string, req: { earliest_events: string[]; latest_events: string[]; limit?: number; min_depth?: number }): Promise<{ events: unknown[] }>;
  getEvent(destination: string, eventId: string): Promise<{ pdus: unknown[] }>;
  stateIds(destination: string, roomId: string, eventId: string): Promise<{ pdu_ids: string[]; auth_chain_ids: string[] }>;
  eventAuth(destination: string, roomId: string, eventId: string): Promise<{ auth_chain: unknown[] }>;
}

/** Events fetched one by one are capped: a gap this big is not bridged event by event. */
const MAX_FETCHED_EVENTS = 500;
/** Prev events of one pulled event whose state is fetched (each costs a /state_ids). */
const MAX_GAP_PREVS = 5;

export interface SendDeps {
  reader: RoomReader;
  keys: PDUKeys;
  producer: EphemeralProducer;
  userAPI: Pick<ClientUserAPI, 'queryDevices' | 'performRemoteKeyChange'>;
  fetcher: MissingEventsFetcher;
  presenceInbound: boolean;
  log: Logger;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A PDU's entry in the answer: a rejected or soft-failed event was received and judged, not an error of the transaction (as Synapse answers). */
function pduError(res: { status: string; error?: string }): string | undefined {
  if (res.status === 'accepted' || res.status === 'duplicate' || res.status === 'rejected' || res.status === 'soft_failed') return undefined;
  return res.error ?? res.status;
}

export function addSendRoute(fed: Hono, auth: FederationAuth, d: SendDeps): void {
  const { reader } = d;
  const rsAPI = reader.rsAPI;
  const answered = new Map<string, JsonObject>();

  /** Fetches events by ID from `origin` (those the roomserver lacks), checked, as outliers in auth order. */
  const fetchOutliers = async (origin: string, roomVersion: string, roomId: string, ids: readonly string[]): Promise<void> => {
    const have = new Set((await rsAPI.queryEventsById({ event_ids: [...ids] })).events.map((h) => Event.fromPDU(h.pdu, h.room_version).eventId));
    const wanted = ids.filter((id) => !have.has(id)).slice(0, MAX_FETCHED_EVENTS);
    const raws: unknown[] = [];
    for (let i = 0; i < wanted.length; i += 20) {
      const got = await Promise.all(wanted.slice(i, i + 20).map((id) => d.fetcher.getEvent(origin, id).then((t) => t.pdus[0], () => undefined)));
      raws.push(...got.filter((x) => x !== undefined));
    }
    await inputOutliers(origin, roomVersion, roomId, raws);
  };

  const inputOutliers = async (origin: string, roomVersion: string, roomId: string, raws: readonly unknown[]): Promise<void> => {
    const checked = await checkPDUs(raws, roomVersion, d.keys);
    const good = checked.flatMap((c) => (c.ok && c.event.roomId === roomId ? [c.event] : []));
    if (good.length === 0) return;
    await rsAPI.inputRoomEvents({ events: authOrder(good).map((e) => ({ kind: 'outlier', event: { room_version: roomVersion, pdu: e.json as PDUJson }, origin })) });
  };

  /**
   * The state after each prev event of a pulled event that the roomserver lacks, as `origin`
   * tells it: the state before it (GET /state_ids, the events fetched as outliers) with the
   * prev event itself when it is state. The roomserver resolves the state before the pulled
   * event from these and its other prev events; the prev events stay outliers (as in Synapse,
   * whose /state of them then answers 404). For events pulled by get_missing_events, whose
   * earliest ones always border a gap.
   */
  const statesAfterGap = async (origin: string, roomVersion: string, roomId: string, missingPrevs: readonly string[]): Promise<Record<string, string[]>> => {
    const out: Record<string, string[]> = {};
    for (const prev of missingPrevs.slice(0, MAX_GAP_PREVS)) {
      const ids = await d.fetcher.stateIds(origin, roomId, prev);
      await fetchOutliers(origin, roomVersion, roomId, [...ids.auth_chain_ids, ...ids.pdu_ids, prev]);
      const held = (await rsAPI.queryEventsById({ event_ids: [...ids.pdu_ids, prev] })).events.map((h) => Event.fromPDU(h.pdu, h.room_version));
      const prevEvent = held.find((e) => e.eventId === prev);
      if (!prevEvent) continue;
      const byKey = new Map<string, string>();
      for (const e of held) if (e.eventId !== prev && e.stateKey !== undefined) byKey.set(`${e.type}\u0000${e.stateKey}`, e.eventId);
      if (prevEvent.stateKey !== undefined) byKey.set(`${prevEvent.type}\u0000${prevEvent.stateKey}`, prevEvent.eventId);
      out[prev] = [...byKey.values()];
    }
    return out;
  };

  /**
   * Inputs one checked event, fetching what it needs from `origin` when the roomserver lacks
   * it: auth events; for an event `pushed` to us (in /send), its missing prev events through
   * get_missing_events, those pulled events taken in first, oldest first, each with the state
   * at any gap before it. A pushed event whose prev events are still missing then is refused
   * (it must not become the room's only extremity on the origin's word, as Synapse reasons),
   * without asking for the state at the gap. `first`: the roomserver's answer to the event
   * already submitted (in a batch), to go on from.
   */
  const inputPDU = async (origin: string, roomVersion: string, event: Event, mode: 'pushed' | 'pulled', first?: InputResult): Promise<string | undefined> => {
    const roomId = event.roomId;
    const pdu = event.json as PDUJson;
    const input = async (prevStates?: Record<string, string[]>): Promise<{ status: string; error?: string }> =>
      (await rsAPI.inputRoomEvents({ events: [{ kind: 'new', event: { room_version: roomVersion, pdu }, origin, ...(prevStates ? { prev_states: prevStates } : {}) }] })).results[0] ?? {
        status: 'error',
        error: 'no result',
      };
    let res: { status: string; error?: string } = first ?? (await input());
    if (res.status === 'error' && /missing auth events/.test(res.error ?? '')) {
      try {
        await inputOutliers(origin, roomVersion, roomId, (await d.fetcher.eventAuth(origin, roomId, event.eventId)).auth_chain);
      } catch (err) {
        // No /event_auth: fetch the auth events one by one (and theirs, a few levels up).
        d.log.debug({ err, origin, roomId }, 'federation: event_auth failed; fetching auth events one by one');
        const fetched: unknown[] = [];
        const asked = new Set<string>();
        let ids = [...event.authEventIds];
        for (let level = 0; level < 10 && ids.length > 0 && asked.size < MAX_FETCHED_EVENTS; level++) {
          const have = new Set((await rsAPI.queryEventsById({ event_ids: ids })).events.map((h) => Event.fromPDU(h.pdu, h.room_version).eventId));
          const want = ids.filter((id) => !have.has(id) && !asked.has(id));
          for (const id of want) asked.add(id);
          const raws = (await Promise.all(want.map((id) => d.fetcher.getEvent(origin, id).then((t) => t.pdus[0], () => undefined)))).filter((x) => x !== undefined);
          fetched.push(...raws);
          const parsed = (await checkPDUs(raws, roomVersion, d.keys)).flatMap((c) => (c.ok ? [c.event] : []));
          ids = [...new Set(parsed.flatMap((e) => e.authEventIds))];
        }
        await inputOutliers(origin, roomVersion, roomId, fetched);
      }
      res = await input();
    }
    const missingPrevs = (): string[] => {
      const m = /missing prev events \(or their state\): (.*)$/.exec(res.status === 'error' ? (res.error ?? '') : '');
      return m ? m[1]!.split(', ').filter((id) => id !== '') : [];
    };
    if (missingPrevs().length > 0 && mode === 'pulled') {
      try {
        res = await input(await statesAfterGap(origin, roomVersion, roomId, missingPrevs()));
      } catch (err) {
        d.log.info({ err, origin, roomId, eventId: event.eventId }, 'federation: could not fetch the state before a pulled event');
      }
    } else if (missingPrevs().length > 0) {
      try {
        const { latest_event_ids } = await rsAPI.queryLatestEventsAndState({ room_id: roomId, state_to_fetch: [] });
        const missing = await d.fetcher.getMissingEvents(origin, roomId, {
          earliest_events: latest_event_ids,
          latest_events: [event.eventId],
          limit: MISSING_EVENTS_LIMIT,
          min_depth: Math.max(0, event.depth - MISSING_EVENTS_LIMIT),
        });
        const checked = await checkPDUs(Array.isArray(missing.events) ? missing.events : [], roomVersion, d.keys);
        const good = checked.flatMap((c) => (c.ok && c.event.roomId === roomId && c.event.eventId !== event.eventId ? [c.event] : [])).sort((a, b) => a.depth - b.depth);
        for (const e of good) await inputPDU(origin, roomVersion, e, 'pulled');
      } catch (err) {
        d.log.info({ err, origin, roomId }, 'federation: could not fetch missing events');
      }
      res = await input();
    }
    return pduError(res);
  };

  /**
   * A room's checked events, in order: in requests of many events (stopping at the first error),
   * each failed one through inputPDU (which fetches what it lacked), then on with the rest.
   */
  const inputRoom = async (origin: string, roomVersion: string, events: readonly Event[], results: Record<string, JsonObject>): Promise<void> => {
    let next = 0;
    while (next < events.length) {
      const chunk: Event[] = [];
      let bytes = 0;
      for (const e of events.slice(next)) {
        const size = JSON.stringify(e.json).length;
        if (chunk.length > 0 && bytes + size > INPUT_REQUEST_BYTES) break;
        chunk.push(e);
        bytes += size;
      }
      const { results: res } = await rsAPI.inputRoomEvents({
        events: chunk.map((e) => ({ kind: 'new', event: { room_version: roomVersion, pdu: e.json as PDUJson }, origin })),
        stop_at_error: true,
      });
      for (const [i, e] of chunk.entries()) {
        next++;
        const r = res[i] ?? { event_id: e.eventId, status: 'error', error: 'no result' };
        if (r.status !== 'error') {
          results[e.eventId] = {};
          continue;
        }
        const error = await inputPDU(origin, roomVersion, e, 'pushed', r);
        results[e.eventId] = error === undefined ? {} : { error };
        break;
      }
    }
  };

  const handlePDUs = async (origin: string, pdus: unknown[]): Promise<Record<string, JsonObject>> => {
    const results: Record<string, JsonObject> = {};
    // The rooms first (version, ACL), then each room's PDUs checked in one batch (signatures
    // on the thread pool together), rooms side by side, then the events put in, in the order
    // they came.
    const rooms = new Map<string, { version: string } | { error: string }>();
    const byRoom = new Map<string, Array<{ index: number; raw: unknown }>>();
    pdus.forEach((raw, index) => {
      const roomId = isObject(raw) && typeof raw['room_id'] === 'string' ? raw['room_id'] : undefined;
      if (roomId !== undefined) byRoom.set(roomId, [...(byRoom.get(roomId) ?? []), { index, raw }]);
    });
    const checkedAt = new Map<number, { version: string; checked: CheckedPDU }>();
    const checkRoom = async (roomId: string, items: Array<{ index: number; raw: unknown }>): Promise<void> => {
      const res = await rsAPI.queryLatestEventsAndState({ room_id: roomId, state_to_fetch: [{ type: 'm.room.server_acl', state_key: '' }] });
      let room: { version: string } | { error: string };
      if (!res.room_exists || res.room_version === undefined) room = { error: 'unknown room' };
      else if (!serverAllowedByAcl(res.state_events[0]?.pdu.content as Record<string, unknown> | undefined, origin)) room = { error: 'server denied by the room ACL' };
      else room = { version: res.room_version };
      rooms.set(roomId, room);
      if ('error' in room) {
        d.log.debug({ origin, roomId, error: room.error, pdus: items.length }, 'federation: PDUs dropped');
        // Where we know the room's version we can name the events refused.
        if (res.room_version !== undefined) {
          for (const item of items) {
            try {
              results[Event.fromPDU(item.raw, res.room_version).eventId] = { error: room.error };
            } catch {
              // Not an event at all: nothing to name.
            }
          }
        }
        return;
      }
      const { version } = room;
      const checked = await checkPDUs(items.map((i) => i.raw), version, d.keys);
      items.forEach((item, i) => checkedAt.set(item.index, { version, checked: checked[i]! }));
    };
    await Promise.all([...byRoom].map(([roomId, items]) => checkRoom(roomId, items)));
    // From room version 6 a float or an integer outside ±(2^53-1) makes a PDU invalid JSON. Such
    // a PDU fails the whole transaction, before any of it goes in, as Dendrite answers (Sytest
    // 'Server rejects invalid JSON in a version 6 room'): the sender's encoder is at fault.
    for (const { checked } of checkedAt.values()) {
      if (!checked.ok && checked.code === 'not_canonical') throw new MatrixError(400, 'M_BAD_JSON', `A PDU is not valid JSON for its room version: ${checked.error}`);
    }
    const toInput = new Map<string, { version: string; events: Event[] }>();
    for (let index = 0; index < pdus.length; index++) {
      const at = checkedAt.get(index);
      if (!at) continue;
      const { checked, version } = at;
      if (!checked.ok) {
        if (checked.eventId) results[checked.eventId] = { error: checked.error };
        continue;
      }
      let room = toInput.get(checked.event.roomId);
      if (!room) toInput.set(checked.event.roomId, (room = { version, events: [] }));
      room.events.push(checked.event);
    }
    await Promise.all([...toInput.values()].map((r) => inputRoom(origin, r.version, r.events, results)));
    return results;
  };

  const handleEDU = async (origin: string, edu: Record<string, unknown>): Promise<void> => {
    const content = isObject(edu['content']) ? edu['content'] : {};
    const fromOrigin = (userId: unknown): userId is string => typeof userId === 'string' && /^@[^:]+:.+$/.test(userId) && domainOf(userId) === origin;
    switch (edu['edu_type']) {
      case 'm.typing': {
        const roomId = content['room_id'];
        if (typeof roomId !== 'string' || !fromOrigin(content['user_id']) || typeof content['typing'] !== 'boolean') return;
        const m = await rsAPI.queryMembershipForUser({ room_id: roomId, user_id: content['user_id'] });
        if (m.membership !== 'join') return;
        await d.producer.typing({ room_id: roomId, user_id: content['user_id'], typing: content['typing'], ...(content['typing'] ? { timeout_ms: 30_000 } : {}) });
        return;
      }
      case 'm.receipt': {
        for (const [roomId, byType] of Object.entries(content)) {
          if (!isObject(byType)) continue;
          for (const [type, byUser] of Object.entries(byType)) {
            if (type !== 'm.read' || !isObject(byUser)) continue;
            for (const [userId, receipt] of Object.entries(byUser)) {
              if (!fromOrigin(userId) || !isObject(receipt) || !Array.isArray(receipt['event_ids'])) continue;
              const data = isObject(receipt['data']) ? receipt['data'] : {};
              for (const eventId of receipt['event_ids']) {
                if (typeof eventId !== 'string') continue;
                await d.producer.receipt({
                  room_id: roomId,
                  user_id: userId,
                  event_id: eventId,
                  receipt_type: type,
                  ...(typeof data['thread_id'] === 'string' ? { thread_id: data['thread_id'] } : {}),
                  ts: typeof data['ts'] === 'number' ? data['ts'] : Date.now(),
                });
              }
            }
          }
        }
        return;
      }
      case 'm.presence': {
        if (!d.presenceInbound || !Array.isArray(content['push'])) return;
        for (const p of content['push']) {
          if (!isObject(p) || !fromOrigin(p['user_id'])) continue;
          const state = p['presence'];
          if (state !== 'online' && state !== 'offline' && state !== 'unavailable') continue;
          const ago = typeof p['last_active_ago'] === 'number' && p['last_active_ago'] >= 0 ? p['last_active_ago'] : 0;
          await d.producer.presence({ user_id: p['user_id'], presence: state, ...(typeof p['status_msg'] === 'string' ? { status_msg: p['status_msg'] } : {}), last_active_ts: Date.now() - ago });
        }
        return;
      }
      case 'm.direct_to_device': {
        const sender = content['sender'];
        const type = content['type'];
        if (!fromOrigin(sender) || typeof type !== 'string' || !isObject(content['messages'])) return;
        for (const [userId, devices] of Object.entries(content['messages'])) {
          if (!isObject(devices) || !/^@[^:]+:.+$/.test(userId) || domainOf(userId) !== reader.serverName) continue;
          for (const [deviceId, message] of Object.entries(devices)) {
            if (!isObject(message)) continue;
            const ids = deviceId === '*' ? (await d.userAPI.queryDevices({ userId })).devices.map((x) => x.deviceId) : [deviceId];
            for (const id of ids) await d.producer.sendToDevice({ sender, user_id: userId, device_id: id, type, content: message as JsonObject });
          }
        }
        return;
      }
      case 'm.device_list_update':
      case 'm.signing_key_update': {
        // Their keys changed: the key server updates the list it follows (a gap is fetched in
        // the background, not waited for here) and our users learn of the change.
        if (!fromOrigin(content['user_id'])) return;
        const res = await d.userAPI.performRemoteKeyChange({ userId: content['user_id'], origin, edu: { type: edu['edu_type'], content } });
        if (res.error !== undefined) d.log.debug({ origin, eduType: edu['edu_type'], error: res.error }, 'federation: device list EDU ignored');
        return;
      }
      default:
        // Other EDUs are not ours to act on.
        return;
    }
  };

  fed.put('/v1/send/:txnId', async (c) => {
    const { origin, body } = await auth.authenticate(c);
    const key = `${origin}\n${c.req.param('txnId') ?? ''}`;
    const previous = answered.get(key);
    if (previous) return jsonResponse(previous);
    if (!isObject(body)) throw new MatrixError(400, 'M_BAD_JSON', 'The transaction must be a JSON object');
    const pdus = Array.isArray(body['pdus']) ? body['pdus'] : [];
    const edus = Array.isArray(body['edus']) ? body['edus'] : [];
    if (pdus.length > MAX_PDUS || edus.length > MAX_EDUS) throw new MatrixError(400, 'M_BAD_JSON', `A transaction holds at most ${MAX_PDUS} PDUs and ${MAX_EDUS} EDUs`);
    const results = await handlePDUs(origin, pdus);
    for (const edu of edus) {
      if (!isObject(edu)) continue;
      try {
        await handleEDU(origin, edu);
      } catch (err) {
        d.log.warn({ err, origin, eduType: edu['edu_type'] }, 'federation: EDU not processed');
      }
    }
    const answer: JsonObject = { pdus: results };
    if (answered.size >= TXN_CACHE) answered.delete(answered.keys().next().value!);
    answered.set(key, answer);
    return jsonResponse(answer);
  });
}
