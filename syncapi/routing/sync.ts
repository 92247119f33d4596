/**
 * GET /sync: joined rooms (timeline and the state at its start), rooms left, invites, account
 * data, device list changes and one-time key counts, between the `since` token and now;
 * long-polls up to `timeout` when there is nothing new for the user.
 *
 * The state at the start of a timeline is the current state with the timeline's own state
 * changes undone, newest first, from the adds/removes the roomserver reported for each event.
 */
import type { Context, Hono } from 'hono';
import { authenticate, badJson, clientRoute, jsonResponse, MatrixError, type TokenResolver } from '../../internal/httputil/index.js';
import { Event, type JsonObject, type PDUJson } from '../../internal/matrix/index.js';
import type { RoomserverInternalAPI } from '../../roomserver/api/index.js';
import { clientEvent, contentOf, syncEventOptions, type ClientEventOptions } from '../internal/clientevent.js';
import { syncFilter, type EventFilter, type SyncFilter } from '../internal/filter.js';
import { rulesetFromAccountData, rulesetToAccountData } from '../../internal/pushrules/index.js';
import type { AuthenticatedDevice, ClientUserAPI } from '../../userapi/api/index.js';
import type { Notifier } from '../internal/notifier.js';
import { PRESENCE_STATES, presenceContent, type PresenceService, type PresenceState } from '../internal/presence.js';
import type { TypingCache } from '../internal/typing.js';
import { joinedMembers, roomMates } from '../consumers/ephemeral.js';
import { usersNoLongerShared } from './keychanges.js';
import { knockRooms } from './knocks.js';
import type { EphemeralStore, Receipt } from '../storage/ephemeral.js';
import { formatToken, parseToken, ZERO, type StreamPositions } from '../internal/token.js';
import type { StreamEvent, SyncStore } from '../storage/syncstore.js';
import { LazyLoadStore } from '../storage/lazyload.js';
import type { PeekStore } from '../storage/peeks.js';
import type { PeekActivity } from '../internal/peekactivity.js';
import type { Aggregations, BundleTarget } from '../internal/aggregations.js';

const DEFAULT_TIMELINE_LIMIT = 10;
const MAX_TIMELINE_LIMIT = 100;
const MAX_TIMEOUT_MS = 60_000;

export type SyncUserAPI = TokenResolver<AuthenticatedDevice> & Pick<ClientUserAPI, 'queryAccountData' | 'queryFilter' | 'queryKeyChanges' | 'queryOneTimeKeyCounts' | 'queryUnreadCounts'>;

export type SyncRoomserverAPI = Pick<RoomserverInternalAPI, 'queryVisibleEvents' | 'queryMembershipForUser'>;

/** Rows read per round when a timeline filter skips events. */
const TIMELINE_SCAN_BATCH = 50;

export interface SyncRouteDeps {
  store: SyncStore;
  ephemeral: EphemeralStore;
  typing: TypingCache;
  presence: PresenceService;
  notifier: Notifier;
  userAPI: SyncUserAPI;
  rsAPI: SyncRoomserverAPI;
  /** Local peeks (MSC2753): the device's peeked rooms come in the `peek` section. */
  peeks: PeekStore;
  /** Told of each /sync: a device that syncs counts as peeking (its quiet rooms are peeked again). */
  peekActivity?: Pick<PeekActivity, 'touch'>;
  /** Bundled aggregations (m.relations) for the events of limited timelines. */
  aggregations?: Aggregations;
}

/** To-device messages per response; the rest wait for the next sync. */
const TO_DEVICE_LIMIT = 100;

export function addSyncRoute(client: Hono, deps: SyncRouteDeps): void {
  const { store, ephemeral, typing, presence, notifier, userAPI, rsAPI, peeks } = deps;
  const lazyLoad = new LazyLoadStore(store.db);
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

  /**
   * The newest events of a room in (from, to] that the timeline filter passes (and, when
   * `checkVisibility`, that the user may see), up to the filter's limit, oldest first, and
   * whether more such events were left out. Events of the current state are always shown
   * (`alwaysVisible`), even from a stretch of history the user may not see, so that a client
   * rejoining a room learns how it changed (Synapse does the same). With `allState` (a peek),
   * every state event is shown: a peeker is given the room's state anyway, and its timeline
   * then starts at the room's creation with an empty state section, as Sytest expects.
   */
  const timeline = async (
    userId: string,
    roomId: string,
    from: number,
    to: number,
    filter: EventFilter,
    checkVisibility: boolean,
    alwaysVisible: ReadonlySet<string>,
    ignored: ReadonlySet<string> = new Set(),
    allState = false,
  ): Promise<{ events: StreamEvent[]; limited: boolean }> => {
    const limit = filter.limit ?? DEFAULT_TIMELINE_LIMIT;
    const picked: StreamEvent[] = [];
    let cursor = to;
    // A filter that passes little could otherwise walk a whole room's history.
    for (let round = 0; round < 20; round++) {
      const rows = (await store.roomEventsFrom(roomId, cursor, true, Math.max(limit + 1, TIMELINE_SCAN_BATCH))).filter((r) => r.pos > from);
      if (rows.length === 0) break;
      // Events of users the syncing user ignores are not shown (their state still counts).
      let passing = rows.filter((r) => !(ignored.has(r.sender) && r.stateKey === null)).filter((r) => filter.allows({ type: r.type, sender: r.sender, roomId, content: contentOf(r) }));
      if (checkVisibility && passing.length > 0) {
        const ok = new Set((await rsAPI.queryVisibleEvents({ event_ids: passing.map((r) => r.eventId), user_id: userId })).visible_event_ids);
        passing = passing.filter((r) => ok.has(r.eventId) || alwaysVisible.has(r.eventId) || (allState && r.stateKey !== null));
      }
      picked.push(...passing);
      if (picked.length > limit) break;
      cursor = rows[rows.length - 1]!.pos - 1;
    }
    return { events: picked.slice(0, limit).reverse(), limited: picked.length > limit };
  };

  /**
   * The members whose member events a lazy-loading client needs for a timeline: the senders
   * of its events, less those whose own member event the timeline shows before (or as) their
   * first event, as it tells the client who they are.
   */
  const timelineSenders = (events: StreamEvent[]): Set<string> => {
    const senders = new Set<string>();
    const shown = new Set<string>();
    for (const e of events) {
      if (e.type === 'm.room.member' && e.stateKey !== null && !senders.has(e.stateKey)) shown.add(e.stateKey);
      if (!shown.has(e.sender)) senders.add(e.sender);
    }
    return senders;
  };

  /** What changed for the user in (since, to]: whether a response would be empty. */
  const hasNews = async (userId: string, deviceId: string, since: StreamPositions, to: StreamPositions): Promise<boolean> => {
    if (to.accountData > since.accountData && (await store.accountDataChanges(userId, since.accountData, to.accountData)).length > 0) return true;
    if (to.invite > since.invite && (await store.invites(userId, since.invite, to.invite)).length > 0) return true;
    if (to.deviceList > since.deviceList) return true;
    if (to.toDevice > since.toDevice && (await ephemeral.hasToDevice(userId, deviceId, since.toDevice, to.toDevice))) return true;
    const joinedRooms = (await store.roomsWithMembership(userId, ['join'])).map((r) => r.roomId);
    if (joinedRooms.some((r) => typing.changedSince(r, since.typing))) return true;
    if (to.receipt > since.receipt && (await ephemeral.receipts(joinedRooms, since.receipt, to.receipt)).some((r) => r.receiptType !== 'm.read.private' || r.userId === userId)) return true;
    if (presence.enabled && to.presence > since.presence && (await ephemeral.presenceChanges([...(await roomMates(store, userId))], since.presence, to.presence)).length > 0) return true;
    const peeked = await peeks.forDevice(userId, deviceId);
    // A peek that began since the device's last sync brings the room in full.
    if (peeked.some((p) => !p.sent)) return true;
    if (to.pdu > since.pdu) {
      const rooms = [...(await store.roomsWithMembership(userId, ['join'])).map((r) => r.roomId), ...peeked.map((p) => p.roomId)];
      if ((await store.roomsWithEvents(since.pdu, to.pdu, rooms)).size > 0) return true;
      if ((await store.membershipEvents(userId, since.pdu, to.pdu)).length > 0) return true;
    }
    return false;
  };

  /** The state before the first of `timeline` (events in order), from the state after the last. */
  const stateAtStart = async (stateAfter: StreamEvent[], timeline: StreamEvent[]): Promise<StreamEvent[]> => {
    const byId = new Map(stateAfter.map((e) => [e.eventId, e]));
    const deltas = await store.stateDeltas(timeline.map((t) => t.eventId));
    for (const t of [...timeline].reverse()) {
      const d = deltas.get(t.eventId);
      if (!d) continue;
      for (const id of d.adds) byId.delete(id);
      for (const r of await store.events(d.removes)) if (r.stateKey !== null) byId.set(r.eventId, r);
    }
    return [...byId.values()];
  };

  const roomAccountData = async (userId: string, roomId: string, types: Iterable<string>): Promise<JsonObject[]> => {
    const out: JsonObject[] = [];
    for (const type of new Set(types)) {
      const { content } = await userAPI.queryAccountData({ userId, roomId, type });
      if (content) out.push({ type, content: content as JsonObject });
    }
    return out;
  };

  const build = async (device: AuthenticatedDevice, since: StreamPositions | undefined, to: StreamPositions, filter: SyncFilter, fullState: boolean, withPeeks = true): Promise<JsonObject> => {
    const userId = device.userId;
    const opts: ClientEventOptions = syncEventOptions(filter, device.deviceId);
    // m.ignored_user_list: their messages and invites are not shown.
    const ignoredContent = (await userAPI.queryAccountData({ userId, type: 'm.ignored_user_list' })).content as { ignored_users?: unknown } | undefined;
    const ignored = new Set(typeof ignoredContent?.ignored_users === 'object' && ignoredContent.ignored_users !== null ? Object.keys(ignoredContent.ignored_users) : []);
    const from = since ?? ZERO;
    const join: Record<string, JsonObject> = {};
    const leave: Record<string, JsonObject> = {};
    const invite: Record<string, JsonObject> = {};
    const roomFilter = filter.room;
    /** Timeline events that get bundled aggregations, across all rooms of the response. */
    const bundle: BundleTarget[] = [];
    const stateFilter = (state: StreamEvent[]): StreamEvent[] => state.filter((e) => roomFilter.state.allows({ type: e.type, sender: e.sender, roomId: e.roomId, content: contentOf(e) }));
    const lazy = roomFilter.state.lazyLoadMembers;
    // A new sync sequence: the client has forgotten the members it was sent.
    if (since === undefined || fullState) await lazyLoad.clearDevice(userId, device.deviceId);

    // Account data changes (all of it on an initial sync), by room.
    const changed = await store.accountDataChanges(userId, from.accountData, to.accountData);
    const roomTypes = new Map<string, string[]>();
    for (const ch of changed) if (ch.roomId !== '') roomTypes.set(ch.roomId, [...(roomTypes.get(ch.roomId) ?? []), ch.type]);

    // Rooms whose membership of ours changed in the range.
    const ownChanges = since ? await store.membershipEvents(userId, from.pdu, to.pdu) : [];
    const lastOwn = new Map<string, StreamEvent>();
    for (const e of ownChanges) lastOwn.set(e.roomId, e);

    /**
     * A room's timeline and state section; `upTo` is where the user's view of the room ends.
     * `full` (initial sync, or a room the user came into since the token) gives the whole state
     * at the timeline's start and a timeline that counts as limited; otherwise a gap in the
     * timeline brings the state that changed in it.
     */
    const roomSection = async (
      roomId: string,
      full: boolean,
      upTo: number,
      stateAfterOf: () => Promise<StreamEvent[]>,
      peeking = false,
      wasAway = false,
    ): Promise<{ timeline: JsonObject; state: JsonObject; events: StreamEvent[] }> => {
      // The room's state after `upTo` is read only when this section needs it (full, gapped or lazy-loading).
      let loaded: Promise<StreamEvent[]> | undefined;
      const stateAfter = (): Promise<StreamEvent[]> => (loaded ??= stateAfterOf());
      // History is checked for a full timeline, and for one where the user left and came back
      // in the gap (what was sent while away may be hidden); current-state events always show then.
      const checked = full || wasAway;
      const stateIds = checked ? new Set((await stateAfter()).map((e) => e.eventId)) : new Set<string>();
      const { events, limited } = await timeline(userId, roomId, full ? 0 : from.pdu, upTo, roomFilter.timeline, checked, stateIds, ignored, peeking);
      let state: StreamEvent[] = [];
      // A lazy-loading client may need member events even when nothing else changed.
      if (full || limited || (lazy && events.length > 0)) {
        const timelineIds = new Set(events.map((e) => e.eventId));
        const atStart = (await stateAtStart(await stateAfter(), events)).filter((e) => !timelineIds.has(e.eventId));
        if (full) state = atStart;
        else if (limited) state = await changedSince(roomId, from.pdu, atStart);
        if (lazy) state = await lazyMembers(roomId, full, state, atStart, events);
        state = stateFilter(state);
      }
      if (lazy) {
        // What the device now knows of each member: the state sent, then the timeline's own member events.
        const sent = [...state, ...events].filter((e) => e.type === 'm.room.member' && e.stateKey !== null).map((e) => ({ targetUserId: e.stateKey!, eventId: e.eventId }));
        await lazyLoad.recordSent(userId, device.deviceId, roomId, sent);
      }
      const served = events.map((e) => ({ event: e, json: clientEvent(e, opts) }));
      // Bundled aggregations go with limited timelines (the spec's rule), all computed at the end of the response at once.
      if (limited || (full && since !== undefined)) bundle.push(...served);
      return {
        events,
        timeline: { events: served.map((t) => t.json), limited: limited || (full && since !== undefined), prev_batch: prevBatch(to, events[0], upTo) },
        state: { events: state.map((e) => clientEvent(e, opts)) },
      };
    };

    /**
     * The state section when lazy-loading members: the non-member state of `state` as it is;
     * member events only for the timeline's senders (at the timeline's start, whether or not
     * they changed since the token), the room's heroes, the user when the whole state is
     * given, and, past a full sync, every member whose membership changed in a gap. Without
     * include_redundant_members, a member event this device was sent already stays out; a
     * hero's stays out then in any case (the spec wants heroes "unless they are redundant";
     * include_redundant_members is about the timeline's senders, as Synapse reads it).
     */
    const lazyMembers = async (roomId: string, full: boolean, state: StreamEvent[], atStart: StreamEvent[], events: StreamEvent[]): Promise<StreamEvent[]> => {
      const needed = timelineSenders(events);
      if (full) needed.add(userId);
      const heroes = new Set((((await summaryOf(roomId))['m.heroes'] as string[] | undefined) ?? []).filter((h) => !needed.has(h)));
      const out = new Map<string, StreamEvent>();
      for (const e of state) if (e.type !== 'm.room.member' || !full) out.set(e.eventId, e);
      for (const e of atStart) if (e.type === 'm.room.member' && e.stateKey !== null && (needed.has(e.stateKey) || heroes.has(e.stateKey))) out.set(e.eventId, e);
      let picked = [...out.values()];
      const targets = picked.filter((e) => e.type === 'm.room.member' && e.stateKey !== null).map((e) => e.stateKey!);
      const sent = await lazyLoad.sentMembers(userId, device.deviceId, roomId, targets);
      const redundantOk = roomFilter.state.includeRedundantMembers;
      picked = picked.filter((e) => e.type !== 'm.room.member' || e.stateKey === null || sent.get(e.stateKey) !== e.eventId || (redundantOk && !heroes.has(e.stateKey)));
      return picked;
    };

    /**
     * The entries of `atStart` that the holder of a token at `pos` does not have: those whose
     * first change after `pos` is their addition (an entry no change touched, or one first
     * removed, was state at `pos`). Read from the room's state changes since `pos` alone, so
     * the cost is the changes in the gap, not the events (nor the room's whole state at `pos`).
     */
    const changedSince = async (roomId: string, pos: number, atStart: StreamEvent[]): Promise<StreamEvent[]> => {
      const firstChange = new Map<string, 'add' | 'remove'>();
      for (const c of await store.stateChangesAfter(roomId, pos)) {
        for (const id of c.removes) if (!firstChange.has(id)) firstChange.set(id, 'remove');
        for (const id of c.adds) if (!firstChange.has(id)) firstChange.set(id, 'add');
      }
      return atStart.filter((e) => firstChange.get(e.eventId) === 'add');
    };

    /** Each room's summary, read once per response (lazy-loading wants its heroes too). */
    const summaries = new Map<string, Promise<JsonObject>>();
    const summaryOf = (roomId: string): Promise<JsonObject> => {
      let s = summaries.get(roomId);
      if (!s) summaries.set(roomId, (s = roomSummary(store, roomId, userId)));
      return s;
    };

    /** Whether the user came into the room (was not joined) after the since token. */
    const cameIn = async (roomId: string): Promise<boolean> => since !== undefined && lastOwn.has(roomId) && (await store.membershipAt(roomId, userId, from.pdu)) !== 'join';

    const joinedRooms = (await store.roomsWithMembership(userId, ['join'])).map((r) => r.roomId).filter((r) => roomFilter.allowsRoom(r));
    const newlyJoinedRooms = new Set<string>();
    const roomsWithNews = since === undefined || to.pdu <= from.pdu ? new Set<string>() : await store.roomsWithEvents(from.pdu, to.pdu, joinedRooms);
    const receiptsByRoom = new Map<string, Receipt[]>();
    if (roomFilter.ephemeral.allowsType('m.receipt')) {
      for (const r of await ephemeral.receipts(joinedRooms, since === undefined ? 0 : from.receipt, to.receipt)) {
        if (r.receiptType === 'm.read.private' && r.userId !== userId) continue;
        receiptsByRoom.set(r.roomId, [...(receiptsByRoom.get(r.roomId) ?? []), r]);
      }
    }
    // Unread counts of every joined room, in one call to userapi (which keeps them).
    const byThread = roomFilter.timeline.unreadThreadNotifications;
    const unreadRes = joinedRooms.length > 0 ? await userAPI.queryUnreadCounts({ userId, roomIds: joinedRooms, ...(byThread ? { byThread } : {}) }) : { counts: {} };
    const unread = unreadRes.counts;
    // Rooms whose only news is a change of unread counts (a receipt sent from another device).
    const countsChanged = since === undefined ? new Set<string>() : notifier.roomsWithCountChanges(userId, from.notification);
    for (const roomId of joinedRooms) {
      const newlyJoined = await cameIn(roomId);
      if (newlyJoined) newlyJoinedRooms.add(roomId);
      const full = since === undefined || newlyJoined || fullState;
      const accountData = (await roomAccountData(userId, roomId, roomTypes.get(roomId) ?? [])).filter((a) => roomFilter.accountData.allowsType(String(a['type'])));
      const ephemeralEvents: JsonObject[] = [];
      const typers = typing.usersTyping(roomId);
      // A room new to this sync also reports a change it saw since the token (someone stopping
      // typing), or on an initial sync any typing since the server started, as Synapse does.
      const typingNews = typing.changedSince(roomId, from.typing);
      if (roomFilter.ephemeral.allowsType('m.typing') && (since === undefined || newlyJoined ? typers.length > 0 || typingNews : typingNews)) {
        ephemeralEvents.push({ type: 'm.typing', content: { user_ids: typers } });
      }
      const receipts = receiptsByRoom.get(roomId);
      if (receipts) ephemeralEvents.push(receiptEvent(receipts));
      if (!full && accountData.length === 0 && ephemeralEvents.length === 0 && !roomsWithNews.has(roomId) && !countsChanged.has(roomId)) continue;
      // Joined at the token and now, but its membership changed between: it left and came back.
      const wasAway = !full && lastOwn.has(roomId);
      const section = await roomSection(roomId, full, to.pdu, () => store.currentState(roomId), false, wasAway);
      if (!full && section.events.length === 0 && accountData.length === 0 && ephemeralEvents.length === 0 && !countsChanged.has(roomId)) continue;
      join[roomId] = {
        summary: await summaryOf(roomId),
        timeline: section.timeline,
        state: section.state,
        account_data: { events: accountData },
        ephemeral: { events: ephemeralEvents },
        unread_notifications: unread[roomId] ?? { notification_count: 0, highlight_count: 0 },
        ...(byThread ? { unread_thread_notifications: unreadRes.thread_counts?.[roomId] ?? {} } : {}),
      };
    }

    // Rooms this device peeks into (MSC2753) and is not joined to: like a joined room, in full
    // on the first sync since the peek began.
    const peek: Record<string, JsonObject> = {};
    if (withPeeks) {
      const joinedNow = new Set((await store.roomsWithMembership(userId, ['join'])).map((r) => r.roomId));
      const peeked = (await peeks.forDevice(userId, device.deviceId)).filter((p) => !joinedNow.has(p.roomId) && roomFilter.allowsRoom(p.roomId));
      const peekNews = since === undefined || to.pdu <= from.pdu ? new Set<string>() : await store.roomsWithEvents(from.pdu, to.pdu, peeked.map((p) => p.roomId));
      const sent: string[] = [];
      for (const p of peeked) {
        const full = since === undefined || fullState || !p.sent;
        if (!full && !peekNews.has(p.roomId)) continue;
        const section = await roomSection(p.roomId, full, to.pdu, () => store.currentState(p.roomId), true);
        if (!p.sent) sent.push(p.roomId);
        if (!full && section.events.length === 0) continue;
        peek[p.roomId] = { summary: await summaryOf(p.roomId), timeline: section.timeline, state: section.state, account_data: { events: [] }, ephemeral: { events: [] } };
      }
      await peeks.markSent(userId, device.deviceId, sent);
    }

    // Rooms we left or were removed from in the range (or, with include_leave on an initial
    // sync, all rooms we are out of): the timeline up to the leave and the state then.
    const leftRooms = new Map<string, StreamEvent>();
    for (const [roomId, e] of lastOwn) {
      const membership = contentOf(e)['membership'];
      if ((membership === 'leave' || membership === 'ban') && !join[roomId]) leftRooms.set(roomId, e);
    }
    if (since === undefined && roomFilter.includeLeave) {
      for (const { roomId } of await store.roomsWithMembership(userId, ['leave', 'ban'])) {
        const [own] = (await store.currentState(roomId)).filter((s) => s.type === 'm.room.member' && s.stateKey === userId);
        if (own) leftRooms.set(roomId, own);
      }
    }
    for (const [roomId, e] of leftRooms) {
      if (!roomFilter.allowsRoom(roomId)) continue;
      // A room the user forgot stays out of their syncs.
      if ((await rsAPI.queryMembershipForUser({ room_id: roomId, user_id: userId })).forgotten === true) continue;
      const section = await roomSection(roomId, since === undefined || (await cameIn(roomId)), e.pos, () => store.stateAt(roomId, e.pos));
      leave[roomId] = { timeline: section.timeline, state: section.state, account_data: { events: [] } };
    }

    // Invites (and their end) in the range.
    for (const i of await store.invites(userId, from.invite, to.invite)) {
      if (i.retired) {
        delete invite[i.roomId];
        continue;
      }
      if (!roomFilter.allowsRoom(i.roomId)) continue;
      const inviteEvent = Event.fromPDU(JSON.parse(i.json) as PDUJson, i.roomVersion);
      if (ignored.has(inviteEvent.sender)) continue;
      // An invite from another server brings the room's stripped state with it; our own rooms' comes from their current state.
      const sent = (JSON.parse(i.json) as { unsigned?: { invite_room_state?: unknown } }).unsigned?.invite_room_state;
      const stripped = Array.isArray(sent)
        ? sent.filter((x): x is JsonObject => typeof x === 'object' && x !== null && !Array.isArray(x))
        : (await store.currentState(i.roomId))
            // The inviter's own membership too, as Synapse gives it (clients show who invited them).
            .filter((s) => ['m.room.create', 'm.room.join_rules', 'm.room.name', 'm.room.avatar', 'm.room.canonical_alias', 'm.room.encryption'].includes(s.type) || (s.type === 'm.room.member' && s.stateKey === inviteEvent.sender))
            .map((s) => ({ type: s.type, state_key: s.stateKey ?? '', sender: s.sender, content: contentOf(s) as JsonObject }));
      invite[i.roomId] = { invite_state: { events: [...stripped, { type: inviteEvent.type, state_key: inviteEvent.stateKey ?? '', sender: inviteEvent.sender, content: inviteEvent.content }] } };
    }

    // Global account data; push rules are always there, as defaults until changed.
    const globalTypes = new Set(changed.filter((c) => c.roomId === '').map((c) => c.type));
    if (since === undefined) globalTypes.add('m.push_rules');
    const accountData: JsonObject[] = [];
    for (const type of globalTypes) {
      if (!filter.accountData.allowsType(type)) continue;
      const { content } = await userAPI.queryAccountData({ userId, type });
      if (type === 'm.push_rules') accountData.push({ type, content: rulesetToAccountData(rulesetFromAccountData(content, userId)) as JsonObject });
      else if (content) accountData.push({ type, content: content as JsonObject });
    }

    // Device lists: changes of users we share a room with (and our own), users who newly share
    // one (their devices are news to us), and users who share none any more (left).
    const changedSet = new Set<string>();
    const leftUsers: string[] = [];
    if (since !== undefined) {
      const mates = await roomMates(store, userId);
      if (to.deviceList > from.deviceList) {
        const { userIds, privateChanges } = await userAPI.queryKeyChanges({ fromOffset: from.deviceList, toOffset: to.deviceList });
        for (const u of userIds) if (mates.has(u)) changedSet.add(u);
        for (const p of privateChanges ?? []) if (p.visibleTo === userId) changedSet.add(p.userId);
      }
      if (to.pdu > from.pdu) {
        // Users who came into a room of ours (joined, invited or knocking): their devices are news, as Synapse counts them.
        for (const u of await store.joinsInRange(joinedRooms, from.pdu, to.pdu, ['join', 'invite', 'knock'])) if (u !== userId) changedSet.add(u);
        for (const roomId of newlyJoinedRooms) for (const u of await joinedMembers(store, roomId)) if (u !== userId) changedSet.add(u);
        // One who came in (an invite) is changed, not left.
        leftUsers.push(...(await usersNoLongerShared(store, userId, from.pdu, to.pdu, mates)).filter((u) => !changedSet.has(u)));
      }
    }
    const changedUsers = [...changedSet];
    const counts = await userAPI.queryOneTimeKeyCounts({ userId, deviceId: device.deviceId });

    // To-device messages: those up to the since token were delivered, so they go; the next
    // batch moves only as far as the messages given, so a backlog spreads over several syncs.
    if (since !== undefined && from.toDevice > 0) await ephemeral.ackToDevice(userId, device.deviceId, from.toDevice);
    const toDevice = await ephemeral.toDevice(userId, device.deviceId, since === undefined ? 0 : from.toDevice, to.toDevice, TO_DEVICE_LIMIT);
    const nextBatch = toDevice.length === TO_DEVICE_LIMIT ? { ...to, toDevice: toDevice[toDevice.length - 1]!.pos } : to;

    // Presence of the user and their room-mates that changed (all of it on an initial sync).
    const presenceEvents: JsonObject[] = [];
    if (presence.enabled && filter.presence.allowsType('m.presence')) {
      const changes = since === undefined || to.presence > from.presence ? await ephemeral.presenceChanges([...(await roomMates(store, userId))], since === undefined ? 0 : from.presence, to.presence) : [];
      // Users newly sharing a room with us (we joined theirs, or they joined ours) bring their presence whatever its age.
      if (since !== undefined) {
        const fresh = new Set<string>(await store.joinsInRange(joinedRooms, from.pdu, to.pdu));
        for (const roomId of newlyJoinedRooms) for (const u of await joinedMembers(store, roomId)) fresh.add(u);
        fresh.delete(userId);
        const have = new Set(changes.map((c) => c.userId));
        for (const u of fresh) {
          if (have.has(u)) continue;
          // Someone who never set a presence reads as offline.
          const p = await ephemeral.presence(u);
          if (p) changes.push(p);
          else if (filter.presence.allows({ type: 'm.presence', sender: u, roomId: '' })) presenceEvents.push({ type: 'm.presence', sender: u, content: { presence: 'offline' } });
        }
      }
      for (const p of changes) {
        if (filter.presence.allows({ type: 'm.presence', sender: p.userId, roomId: '' })) presenceEvents.push({ type: 'm.presence', sender: p.userId, content: presenceContent(p) });
      }
    }

    if (deps.aggregations && bundle.length > 0) await deps.aggregations.bundle(userId, bundle, { ignored, eventOptions: opts });
    return {
      next_batch: formatToken(nextBatch),
      rooms: {
        join,
        peek,
        leave,
        invite,
        knock: Object.fromEntries(Object.entries(await knockRooms(store, userId, since === undefined ? 0 : from.pdu, to.pdu)).filter(([r]) => roomFilter.allowsRoom(r))),
      },
      account_data: { events: accountData },
      presence: { events: presenceEvents },
      to_device: { events: toDevice.map((m) => m.event) },
      device_lists: { changed: changedUsers, left: leftUsers },
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
    const filter = syncFilter(await filterOf(c, device.userId), MAX_TIMELINE_LIMIT);
    const setPresence = c.req.query('set_presence') ?? 'online';
    if (!PRESENCE_STATES.includes(setPresence as PresenceState)) throw new MatrixError(400, 'M_INVALID_PARAM', 'set_presence must be online, offline or unavailable');
    await presence.touchFromSync(device.userId, setPresence as PresenceState);
    await deps.peekActivity?.touch(device.userId, device.deviceId);

    // Read before looking for news: a change after this point wakes the wait below at once.
    let seen = notifier.changeCount(device.userId);
    let to = { ...notifier.current };
    if (since !== undefined && !fullState && timeout > 0 && !(await hasNews(device.userId, device.deviceId, since, to))) {
      const deadline = Date.now() + Math.min(timeout, MAX_TIMEOUT_MS);
      // Woken by a change for this user, or at the deadline; a change may concern nothing visible, so look again.
      while (Date.now() < deadline) {
        await notifier.wait(device.userId, deadline - Date.now(), c.req.raw.signal, seen);
        seen = notifier.changeCount(device.userId);
        to = { ...notifier.current };
        if (c.req.raw.signal.aborted || (await hasNews(device.userId, device.deviceId, since, to))) break;
      }
    }
    // A token from a future we do not know (another server's, a reset database) syncs from scratch.
    const known = since && since.pdu <= to.pdu && since.invite <= to.invite && since.accountData <= to.accountData ? since : undefined;
    return jsonResponse(await build(device, known, to, filter, fullState));
  };
  clientRoute(client, 'get', '/sync', handler);

  /**
   * GET /events (deprecated, still used by older clients and Sytest): the events after `from`
   * (a sync token; now when absent) as one flat list, long-polling up to `timeout`. Built from
   * the same sections as /sync: room events, typing and receipts (with their room_id),
   * presence, and invites.
   */
  clientRoute(client, 'get', '/events', async (c: Context) => {
    const device = await authenticate(c, userAPI, { allowGuests: true });
    // An empty `from` (Sytest sends one before it has a token) means now, as an absent one.
    const fromRaw = c.req.query('from') || undefined;
    const parsed = fromRaw === undefined ? undefined : parseToken(fromRaw);
    if (fromRaw !== undefined && parsed === undefined) throw new MatrixError(400, 'M_INVALID_PARAM', 'from is not a token from this server');
    const from = parsed ?? { ...notifier.current };
    const timeout = Math.min(Number(c.req.query('timeout') ?? '30000') || 0, MAX_TIMEOUT_MS);
    let seen = notifier.changeCount(device.userId);
    let to = { ...notifier.current };
    if (timeout > 0 && !(await hasNews(device.userId, device.deviceId, from, to))) {
      const deadline = Date.now() + timeout;
      while (Date.now() < deadline) {
        await notifier.wait(device.userId, deadline - Date.now(), c.req.raw.signal, seen);
        seen = notifier.changeCount(device.userId);
        to = { ...notifier.current };
        if (c.req.raw.signal.aborted || (await hasNews(device.userId, device.deviceId, from, to))) break;
      }
    }
    const body = await build(device, from, to, syncFilter({ room: { timeline: { limit: MAX_TIMELINE_LIMIT } } }, MAX_TIMELINE_LIMIT), false, false);
    const chunk: JsonObject[] = [];
    const rooms = body['rooms'] as { join: Record<string, JsonObject>; invite: Record<string, JsonObject> };
    for (const [roomId, room] of Object.entries(rooms.join)) {
      for (const e of (room['timeline'] as { events: JsonObject[] }).events) chunk.push({ ...e, room_id: roomId });
      for (const e of (room['ephemeral'] as { events: JsonObject[] }).events) chunk.push({ ...e, room_id: roomId });
    }
    for (const [roomId, room] of Object.entries(rooms.invite)) {
      const member = (room['invite_state'] as { events: JsonObject[] }).events.find((e) => e['type'] === 'm.room.member' && e['state_key'] === device.userId);
      if (member) chunk.push({ ...member, room_id: roomId });
    }
    for (const e of (body['presence'] as { events: JsonObject[] }).events) chunk.push(e);
    return jsonResponse({ start: formatToken(from), end: body['next_batch'] as string, chunk });
  });
}

/**
 * The token to page back from a timeline: just before its first event, so /messages gives
 * what came earlier. A timeline that starts at the room's creation has nothing earlier; its
 * token then includes the create event, as Dendrite's does (clients and Sytest expect a first
 * page back to hold events).
 */
function prevBatch(to: StreamPositions, first: StreamEvent | undefined, upTo: number): string {
  if (!first) return formatToken({ ...to, pdu: upTo });
  return formatToken({ ...to, pdu: first.type === 'm.room.create' ? first.pos : first.pos - 1 });
}

const MAX_HEROES = 5;

/**
 * The room summary: joined and invited counts, and, for a room with neither a name nor a
 * canonical alias, up to five other members for clients to name it after: the first joined,
 * then invited, ones in the order they came (the spec's "ordered by stream ordering"), or
 * else those who left. Read from the membership column and the two naming events, not the whole
 * state: it is asked for each room of every sync.
 */
async function roomSummary(store: SyncStore, roomId: string, userId: string): Promise<JsonObject> {
  const named = (await store.currentStateOfTypes(roomId, ['m.room.name', 'm.room.canonical_alias'])).some((e) => {
    const c = contentOf(e);
    return e.type === 'm.room.name' ? typeof c['name'] === 'string' && c['name'] !== '' : typeof c['alias'] === 'string';
  });
  const { joined, invited, heroes } = await store.memberSummary(roomId, userId, named ? 0 : MAX_HEROES);
  const summary: JsonObject = { 'm.joined_member_count': joined, 'm.invited_member_count': invited };
  if (!named) summary['m.heroes'] = heroes;
  return summary;
}

/** One m.receipt event for a room: event ID -> receipt type -> user -> {ts, thread_id}. */
function receiptEvent(receipts: Receipt[]): JsonObject {
  const content: Record<string, Record<string, Record<string, JsonObject>>> = {};
  for (const r of receipts) {
    const byType = (content[r.eventId] ??= {});
    const byUser = (byType[r.receiptType] ??= {});
    byUser[r.userId] = r.threadId !== '' ? { ts: r.ts, thread_id: r.threadId } : { ts: r.ts };
  }
  return { type: 'm.receipt', content: content as unknown as JsonObject };
}
