/**
 * GET /sync: joined rooms (timeline and the state at its start), rooms left, invites, account
 * data, device list changes and one-time key counts, between the `since` token and now;
 * long-polls up to `timeout` when there is nothing new for the user.
 *
 * The state at the start of a timeline is the current state with the timeline's own state
 * changes undone, newest first, from the adds/removes the roomserver reported for each event.
 */
import type { Context, Hono } from 'hono';
import { authenticate, badJson, jsonResponse, MatrixError, type TokenResolver } from '../../internal/httputil/index.js';
import { Event, type JsonObject, type PDUJson } from '../../internal/matrix/index.js';
import { rulesetFromAccountData, rulesetToAccountData } from '../../internal/pushrules/index.js';
import type { AuthenticatedDevice, ClientUserAPI } from '../../userapi/api/index.js';
import type { Notifier } from '../internal/notifier.js';
import { formatToken, parseToken, ZERO, type StreamPositions } from '../internal/token.js';
import type { StreamEvent, SyncStore } from '../storage/syncstore.js';

const DEFAULT_TIMELINE_LIMIT = 10;
const MAX_TIMELINE_LIMIT = 100;
const MAX_TIMEOUT_MS = 60_000;

export type SyncUserAPI = TokenResolver<AuthenticatedDevice> & Pick<ClientUserAPI, 'queryAccountData' | 'queryFilter' | 'queryKeyChanges' | 'queryOneTimeKeyCounts'>;

function clientEvent(e: StreamEvent, deviceId: string): JsonObject {
  const unsigned: JsonObject = {};
  if (e.txnId !== null && e.deviceId === deviceId) unsigned['transaction_id'] = e.txnId;
  const event = Event.fromStored(JSON.parse(e.json) as PDUJson, e.roomVersion, e.eventId);
  const out = event.toClientEvent('sync');
  return Object.keys(unsigned).length > 0 ? { ...out, unsigned: { ...(out['unsigned'] as JsonObject | undefined), ...unsigned } } : out;
}

/** An event filter's `types` / `not_types` (with `*` wildcards) as a predicate on event types. */
export function typeFilter(part: unknown): (type: string) => boolean {
  if (typeof part !== 'object' || part === null) return () => true;
  const p = part as { types?: unknown; not_types?: unknown };
  const toRegex = (glob: string): RegExp => new RegExp(`^${glob.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);
  const types = Array.isArray(p.types) ? p.types.filter((t): t is string => typeof t === 'string').map(toRegex) : undefined;
  const notTypes = Array.isArray(p.not_types) ? p.not_types.filter((t): t is string => typeof t === 'string').map(toRegex) : [];
  return (type) => !notTypes.some((r) => r.test(type)) && (types === undefined || types.some((r) => r.test(type)));
}

export function addSyncRoute(client: Hono, store: SyncStore, notifier: Notifier, userAPI: SyncUserAPI): void {
  /** The request's filter: inline JSON or a stored filter's ID; {} when none. */
  const filterOf = async (c: Context, userId: string): Promise<Record<string, unknown>> => {
    const raw = c.req.query('filter');
    if (raw === undefined) return {};
    let filter: Record<string, unknown> | undefined;
    if (raw.trim().startsWith('{')) {
      try {
        filter = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        throw badJson('filter is not valid JSON');
      }
    } else {
      filter = (await userAPI.queryFilter({ userId, filterId: raw })).filter;
      if (!filter) throw new MatrixError(400, 'M_INVALID_PARAM', `no filter ${raw}`);
    }
    return typeof filter === 'object' && filter !== null && !Array.isArray(filter) ? filter : {};
  };

  const timelineLimit = (filter: Record<string, unknown>): number => {
    const limit = ((filter['room'] as Record<string, unknown> | undefined)?.['timeline'] as Record<string, unknown> | undefined)?.['limit'];
    return typeof limit === 'number' && Number.isInteger(limit) && limit >= 0 ? Math.min(limit, MAX_TIMELINE_LIMIT) : DEFAULT_TIMELINE_LIMIT;
  };

  /** What changed for the user in (since, to]: whether a response would be empty. */
  const hasNews = async (userId: string, since: StreamPositions, to: StreamPositions): Promise<boolean> => {
    if (to.accountData > since.accountData && (await store.accountDataChanges(userId, since.accountData, to.accountData)).length > 0) return true;
    if (to.invite > since.invite && (await store.invites(userId, since.invite, to.invite)).length > 0) return true;
    if (to.deviceList > since.deviceList) return true;
    if (to.pdu > since.pdu) {
      const rooms = (await store.roomsWithMembership(userId, ['join'])).map((r) => r.roomId);
      if ((await store.roomsWithEvents(since.pdu, to.pdu, rooms)).size > 0) return true;
      if ((await store.membershipEvents(userId, since.pdu, to.pdu)).length > 0) return true;
    }
    return false;
  };

  /** The state before the first of `timeline` (events in order), from the state after the last. */
  const stateAtStart = async (stateAfter: StreamEvent[], timeline: StreamEvent[]): Promise<StreamEvent[]> => {
    const byKey = new Map(stateAfter.map((e) => [`${e.type}\u0000${e.stateKey}`, e]));
    for (const t of [...timeline].reverse()) {
      const [row] = await store.db.selectFrom('syncapi_output_room_events').select(['adds_state', 'removes_state']).where('event_id', '=', t.eventId).execute();
      if (!row) continue;
      const adds = JSON.parse(row.adds_state) as string[];
      const removes = JSON.parse(row.removes_state) as string[];
      for (const [k, e] of byKey) if (adds.includes(e.eventId)) byKey.delete(k);
      for (const r of await store.events(removes)) if (r.stateKey !== null) byKey.set(`${r.type}\u0000${r.stateKey}`, r);
    }
    return [...byKey.values()];
  };

  const roomAccountData = async (userId: string, roomId: string, types: Iterable<string>): Promise<JsonObject[]> => {
    const out: JsonObject[] = [];
    for (const type of new Set(types)) {
      const { content } = await userAPI.queryAccountData({ userId, roomId, type });
      if (content) out.push({ type, content: content as JsonObject });
    }
    return out;
  };

  const build = async (device: AuthenticatedDevice, since: StreamPositions | undefined, to: StreamPositions, filter: Record<string, unknown>, fullState: boolean): Promise<JsonObject> => {
    const limit = timelineLimit(filter);
    const globalTypes_ = typeFilter(filter['account_data']);
    const roomTypes_ = typeFilter((filter['room'] as Record<string, unknown> | undefined)?.['account_data']);
    const userId = device.userId;
    const from = since ?? ZERO;
    const join: Record<string, JsonObject> = {};
    const leave: Record<string, JsonObject> = {};
    const invite: Record<string, JsonObject> = {};

    // Account data changes (all of it on an initial sync), by room.
    const changed = await store.accountDataChanges(userId, from.accountData, to.accountData);
    const roomTypes = new Map<string, string[]>();
    for (const ch of changed) if (ch.roomId !== '') roomTypes.set(ch.roomId, [...(roomTypes.get(ch.roomId) ?? []), ch.type]);

    // Rooms whose membership of ours changed in the range.
    const ownChanges = since ? await store.membershipEvents(userId, from.pdu, to.pdu) : [];
    const lastOwn = new Map<string, StreamEvent>();
    for (const e of ownChanges) lastOwn.set(e.roomId, e);

    for (const { roomId } of await store.roomsWithMembership(userId, ['join'])) {
      const newlyJoined = since !== undefined && lastOwn.has(roomId);
      const full = since === undefined || newlyJoined || fullState;
      const { events, limited } = await store.roomEvents(roomId, full ? 0 : from.pdu, to.pdu, limit);
      const accountData = (await roomAccountData(userId, roomId, roomTypes.get(roomId) ?? [])).filter((a) => roomTypes_(String(a['type'])));
      if (!full && events.length === 0 && accountData.length === 0) continue;
      let state: StreamEvent[] = [];
      if (full || limited) {
        const timelineIds = new Set(events.map((e) => e.eventId));
        state = (await stateAtStart(await store.currentState(roomId), events)).filter((e) => !timelineIds.has(e.eventId));
      }
      join[roomId] = {
        timeline: { events: events.map((e) => clientEvent(e, device.deviceId)), limited: full ? limited : limited, prev_batch: formatToken({ ...to, pdu: Math.max(0, (events[0]?.pos ?? to.pdu + 1) - 1) }) },
        state: { events: state.map((e) => clientEvent(e, device.deviceId)) },
        account_data: { events: accountData },
        ephemeral: { events: [] },
        unread_notifications: { notification_count: 0, highlight_count: 0 },
      };
    }

    // Rooms we left or were removed from in the range: the timeline up to that point.
    for (const [roomId, e] of lastOwn) {
      const membership = (JSON.parse(e.json) as PDUJson).content?.['membership'];
      if (membership !== 'leave' && membership !== 'ban') continue;
      if (join[roomId]) continue;
      const { events, limited } = await store.roomEvents(roomId, from.pdu, e.pos, limit);
      leave[roomId] = { timeline: { events: events.map((x) => clientEvent(x, device.deviceId)), limited }, state: { events: [] }, account_data: { events: [] } };
    }

    // Invites (and their end) in the range.
    for (const i of await store.invites(userId, from.invite, to.invite)) {
      if (i.retired) {
        delete invite[i.roomId];
        continue;
      }
      const inviteEvent = Event.fromPDU(JSON.parse(i.json) as PDUJson, i.roomVersion);
      const stripped = (await store.currentState(i.roomId))
        .filter((s) => ['m.room.create', 'm.room.join_rules', 'm.room.name', 'm.room.avatar', 'm.room.canonical_alias', 'm.room.encryption'].includes(s.type))
        .map((s) => {
          const pdu = JSON.parse(s.json) as PDUJson;
          return { type: s.type, state_key: s.stateKey ?? '', sender: s.sender, content: pdu.content ?? {} };
        });
      invite[i.roomId] = { invite_state: { events: [...stripped, { type: inviteEvent.type, state_key: inviteEvent.stateKey ?? '', sender: inviteEvent.sender, content: inviteEvent.content }] } };
    }

    // Global account data; push rules are always there, as defaults until changed.
    const globalTypes = new Set(changed.filter((c) => c.roomId === '').map((c) => c.type));
    if (since === undefined) globalTypes.add('m.push_rules');
    const accountData: JsonObject[] = [];
    for (const type of globalTypes) {
      if (!globalTypes_(type)) continue;
      const { content } = await userAPI.queryAccountData({ userId, type });
      if (type === 'm.push_rules') accountData.push({ type, content: rulesetToAccountData(rulesetFromAccountData(content, userId)) as JsonObject });
      else if (content) accountData.push({ type, content: content as JsonObject });
    }

    // Device lists of users we share a room with (and our own), and our one-time key counts.
    let changedUsers: string[] = [];
    if (since !== undefined && to.deviceList > from.deviceList) {
      const { userIds } = await userAPI.queryKeyChanges({ fromOffset: from.deviceList, toOffset: to.deviceList });
      const shared = new Set<string>([userId]);
      for (const { roomId } of await store.roomsWithMembership(userId, ['join'])) {
        for (const s of await store.currentState(roomId)) if (s.type === 'm.room.member' && s.stateKey) shared.add(s.stateKey);
      }
      changedUsers = userIds.filter((u) => shared.has(u));
    }
    const counts = await userAPI.queryOneTimeKeyCounts({ userId, deviceId: device.deviceId });

    return {
      next_batch: formatToken(to),
      rooms: { join, leave, invite, knock: {} },
      account_data: { events: accountData },
      presence: { events: [] },
      to_device: { events: [] },
      device_lists: { changed: changedUsers, left: [] },
      device_one_time_keys_count: counts.oneTimeKeyCounts,
      device_unused_fallback_key_types: counts.unusedFallbackKeyTypes,
    };
  };

  const handler = async (c: Context): Promise<Response> => {
    const device = await authenticate(c, userAPI, { allowGuests: true });
    const sinceRaw = c.req.query('since');
    const since = sinceRaw === undefined ? undefined : parseToken(sinceRaw);
    if (sinceRaw !== undefined && since === undefined) throw new MatrixError(400, 'M_INVALID_PARAM', 'since is not a token from this server');
    const timeoutRaw = c.req.query('timeout');
    const timeout = timeoutRaw === undefined ? 0 : Number(timeoutRaw);
    if (!Number.isFinite(timeout) || timeout < 0) throw new MatrixError(400, 'M_INVALID_PARAM', 'timeout must be a non-negative number');
    const fullState = c.req.query('full_state') === 'true';
    const filter = await filterOf(c, device.userId);

    let to = { ...notifier.current };
    if (since !== undefined && !fullState && timeout > 0 && !(await hasNews(device.userId, since, to))) {
      const deadline = Date.now() + Math.min(timeout, MAX_TIMEOUT_MS);
      // Woken by a change for this user, or at the deadline; a change may concern nothing visible, so look again.
      while (Date.now() < deadline) {
        await notifier.wait(device.userId, deadline - Date.now(), c.req.raw.signal);
        to = { ...notifier.current };
        if (c.req.raw.signal.aborted || (await hasNews(device.userId, since, to))) break;
      }
    }
    // A token from a future we do not know (another server's, a reset database) syncs from scratch.
    const known = since && since.pdu <= to.pdu && since.invite <= to.invite && since.accountData <= to.accountData ? since : undefined;
    return jsonResponse(await build(device, known, to, filter, fullState));
  };
  for (const prefix of ['/r0', '/v3']) client.get(`${prefix}/sync`, handler);
}
