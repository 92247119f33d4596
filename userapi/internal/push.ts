/**
 * Push in userapi: for each new room event, the push rules of every local member it concerns
 * (joined members but the sender; the invitee of an invite), notifications stored with their
 * unread counts, pushes to the members' pushers; read receipts reset the counts. Count changes
 * go out on OutputNotificationData for syncapi. Also the PushAPI methods (pushers,
 * GET /notifications, unread counts for /sync).
 *
 * What a room contributes to evaluation (its joined members and their display names, power
 * levels, create event, name) is read from the roomserver once, then kept up to date from the
 * room's own events: the consumer sees each of them in order, so a member event or a new
 * name changes the cached room in place, and only state it cannot follow (several events at
 * once, as a join over federation or state resolution brings) makes it read the room again.
 * An event in a big room costs one pass over cached compiled rules, and a join no re-read.
 *
 * The consumer hands events over in batches (onRoomEvents): the notifications of a batch are
 * stored in one transaction, and each changed (user, room) count is published once. Events
 * that notify a user with a pusher are stored one at a time, so that each push carries the
 * badge count as of its event.
 */
import type { Logger } from 'pino';
import { Event } from '../../internal/matrix/index.js';
import { rulesetFromAccountData, RulesetCache, senderMayNotify, type EvaluationContext, type PushOutcome } from '../../internal/pushrules/index.js';
import type { HeaderedEvent, OutputRoomEvent, RoomserverInternalAPI } from '../../roomserver/api/index.js';
import type { OutputReceiptEvent } from '../../syncapi/api/index.js';
import type {
  OutputNotificationData,
  PerformPusherDeletionRequest,
  PerformPusherSetRequest,
  PushAPI,
  PushEmptyResponse,
  QueryNotificationsRequest,
  QueryNotificationsResponse,
  QueryPushersRequest,
  QueryPushersResponse,
  QueryUnreadCountsRequest,
  QueryUnreadCountsResponse,
  UnreadCounts,
} from '../api/push.js';
import type { NewNotification, PushStore, StoredPusher } from '../storage/push.js';
import type { GatewayNotification, PushGatewayClient } from './pushgateway.js';

/** What push needs of the roomserver. */
export type PushRoomserverAPI = Pick<RoomserverInternalAPI, 'queryMembershipsForRoom' | 'queryLatestEventsAndState' | 'queryEventsById'>;

export interface PushServiceDeps {
  serverName: string;
  store: PushStore;
  rsAPI: PushRoomserverAPI;
  /** The user's stored m.push_rules content (undefined when never changed). */
  pushRulesContent: (userId: string) => Promise<unknown>;
  /** The user's stored m.ignored_user_list content (undefined when never set). */
  ignoredUsersContent?: (userId: string) => Promise<unknown>;
  publish: (msg: OutputNotificationData) => Promise<void>;
  gateway: PushGatewayClient;
  log: Logger;
}

interface RoomInfo {
  exists: boolean;
  /** Joined members and their display names. */
  joined: Map<string, string | null>;
  local: string[];
  powerLevels: Event | undefined;
  create: Event | undefined;
  name: string | undefined;
  alias: string | undefined;
}

/** What a push says of the room and the sender: as they were at the event. */
interface RoomView {
  senderName: string | null | undefined;
  name: string | undefined;
  alias: string | undefined;
}

/** An event evaluated for push: whom it notifies, and the notifications to store. */
interface Evaluated {
  /** Its place in the batch. */
  index: number;
  event: Event;
  /** Taken at evaluation: later events of the batch may change the cached room before the push. */
  view: RoomView;
  notified: Array<{ userId: string; outcome: PushOutcome }>;
  rows: NewNotification[];
}

const MAX_ROOMS_CACHED = 2_000;
/** Users whose ignore lists are kept in memory (most recently used). */
const MAX_IGNORE_LISTS_CACHED = 10_000;
const MAX_NOTIFICATIONS_PAGE = 100;

function clientEvent(e: Event): Record<string, unknown> {
  const out: Record<string, unknown> = { content: e.content, event_id: e.eventId, origin_server_ts: e.originServerTs, room_id: e.roomId, sender: e.sender, type: e.type };
  if (e.stateKey !== undefined) out['state_key'] = e.stateKey;
  const unsigned = (e.json as { unsigned?: unknown }).unsigned;
  if (typeof unsigned === 'object' && unsigned !== null) out['unsigned'] = unsigned;
  return out;
}

/** The thread an event is in: its m.thread relation's root; '' for the main timeline. */
function threadOf(e: Event): string {
  const rel = e.content['m.relates_to'];
  if (typeof rel !== 'object' || rel === null || Array.isArray(rel)) return '';
  const r = rel as Record<string, unknown>;
  return r['rel_type'] === 'm.thread' && typeof r['event_id'] === 'string' ? r['event_id'] : '';
}

function displayNameOf(member: HeaderedEvent): string | null {
  const d = (member.pdu.content as Record<string, unknown> | undefined)?.['displayname'];
  return typeof d === 'string' ? d : null;
}

export class PushService implements PushAPI {
  readonly rules: RulesetCache;
  private readonly rooms = new Map<string, Promise<RoomInfo>>();

  constructor(private readonly d: PushServiceDeps) {
    this.rules = new RulesetCache(async (userId) => rulesetFromAccountData(await d.pushRulesContent(userId), userId));
  }

  private isLocal(userId: string): boolean {
    return userId.slice(userId.indexOf(':') + 1) === this.d.serverName;
  }

  /** The user's push rules changed. */
  invalidateRules(userId: string): void {
    this.rules.invalidate(userId);
  }

  private readonly ignoreLists = new Map<string, Promise<Set<string>>>();

  /** The user's m.ignored_user_list changed. */
  invalidateIgnored(userId: string): void {
    this.ignoreLists.delete(userId);
  }

  /** Whom the user ignores: events of theirs notify nobody who ignores them (the spec's rule). */
  private ignoredBy(userId: string): Promise<Set<string>> {
    let p = this.ignoreLists.get(userId);
    if (p) {
      this.ignoreLists.delete(userId);
      this.ignoreLists.set(userId, p);
      return p;
    }
    const read = this.d.ignoredUsersContent;
    p = (read ? read(userId) : Promise.resolve(undefined)).then((content) => {
      const list = (content as { ignored_users?: unknown } | undefined)?.ignored_users;
      return new Set(typeof list === 'object' && list !== null && !Array.isArray(list) ? Object.keys(list) : []);
    });
    p.catch(() => this.ignoreLists.delete(userId));
    this.ignoreLists.set(userId, p);
    if (this.ignoreLists.size > MAX_IGNORE_LISTS_CACHED) this.ignoreLists.delete(this.ignoreLists.keys().next().value!);
    return p;
  }

  private room(roomId: string): Promise<RoomInfo> {
    let p = this.rooms.get(roomId);
    if (p) {
      this.rooms.delete(roomId);
      this.rooms.set(roomId, p);
      return p;
    }
    p = this.loadRoom(roomId);
    p.catch(() => this.rooms.delete(roomId));
    this.rooms.set(roomId, p);
    if (this.rooms.size > MAX_ROOMS_CACHED) this.rooms.delete(this.rooms.keys().next().value!);
    return p;
  }

  private async loadRoom(roomId: string): Promise<RoomInfo> {
    const [members, state] = await Promise.all([
      this.d.rsAPI.queryMembershipsForRoom({ room_id: roomId, memberships: ['join'] }),
      this.d.rsAPI.queryLatestEventsAndState({
        room_id: roomId,
        state_to_fetch: ['m.room.power_levels', 'm.room.create', 'm.room.name', 'm.room.canonical_alias'].map((type) => ({ type, state_key: '' })),
      }),
    ]);
    const joined = new Map<string, string | null>();
    for (const m of members.members) if (m.membership === 'join') joined.set(m.user_id, displayNameOf(m.event));
    const byType = new Map<string, Event>();
    for (const h of state.state_events) {
      try {
        const e = Event.fromPDU(h.pdu, h.room_version);
        byType.set(e.type, e);
      } catch {
        // A malformed state event reads as absent.
      }
    }
    const name = byType.get('m.room.name')?.content['name'];
    const alias = byType.get('m.room.canonical_alias')?.content['alias'];
    return {
      // A room known only through an invite from another server has members but no state: it is not held here.
      exists: members.room_exists && state.room_exists,
      joined,
      local: [...joined.keys()].filter((u) => this.isLocal(u)),
      powerLevels: byType.get('m.room.power_levels'),
      create: byType.get('m.room.create'),
      name: typeof name === 'string' && name !== '' ? name : undefined,
      alias: typeof alias === 'string' && alias !== '' ? alias : undefined,
    };
  }

  private context(info: RoomInfo, sender: string, userId: string): EvaluationContext {
    let may: Map<string, boolean> | undefined;
    return {
      memberCount: () => info.joined.size,
      displayName: () => info.joined.get(userId) ?? null,
      senderMayNotify: (key) => {
        may ??= new Map();
        let v = may.get(key);
        if (v === undefined) may.set(key, (v = senderMayNotify(sender, key, info.powerLevels, info.create)));
        return v;
      },
    };
  }

  /** OutputRoomEvent. */
  async onRoomEvent(out: OutputRoomEvent): Promise<void> {
    await this.onRoomEvents([out]);
  }

  /**
   * OutputRoomEvents in stream order (a consumer's batch): evaluated in order, their
   * notifications stored together (see the file's comment), pushes sent in order. Returns how
   * many of the leading events are done: all, or, when a failure came after some were stored
   * (and pushed) for good, those, so that only the rest come again. Throws when none are.
   */
  async onRoomEvents(outs: readonly OutputRoomEvent[]): Promise<number> {
    let pending: Evaluated[] = [];
    let done = 0;
    /** Rooms whose cached state this batch moved on. */
    const changed = new Set<string>();
    try {
      for (const [index, out] of outs.entries()) {
        if (out.type === 'new_room_event') {
          const ev = out.new_room_event;
          const event = Event.fromPDU(ev.event.pdu, ev.event.room_version);
          if (ev.adds_state_event_ids.length > 0 || ev.removes_state_event_ids.length > 0) {
            changed.add(event.roomId);
            await this.stateChanged(event, ev.adds_state_event_ids, ev.removes_state_event_ids);
          }
          const info = await this.room(event.roomId);
          pending.push(await this.evaluate(index, event, info, info.local.filter((u) => u !== event.sender)));
        } else if (out.type === 'purge_room') {
          // What came before the purge is stored first, so that the purge removes it.
          await this.store(pending, (n) => (done = n));
          pending = [];
          done = index;
          this.rooms.delete(out.purge_room.room_id);
          await this.d.store.purgeRoom(out.purge_room.room_id);
          done = index + 1;
        } else if (out.type === 'new_invite_event') {
          const event = Event.fromPDU(out.new_invite_event.event.pdu, out.new_invite_event.event.room_version);
          const target = event.stateKey ?? '';
          if (!this.isLocal(target) || target === event.sender) continue;
          let info = await this.room(event.roomId).catch(() => undefined);
          if (!info || !info.exists) info = this.strippedRoom(event);
          pending.push(await this.evaluate(index, event, info, [target]));
        }
      }
      await this.store(pending, (n) => (done = n));
      return outs.length;
    } catch (err) {
      // The cached rooms may be ahead of the events that come again: read them afresh.
      for (const roomId of changed) this.rooms.delete(roomId);
      if (done === 0) throw err;
      this.d.log.warn({ err, done, of: outs.length }, 'push: a batch failed part way; the rest comes again');
      return done;
    }
  }

  /**
   * A change of the room's current state: followed in the cached room when it is this event
   * alone taking its place (a member event, a new name or power levels), else the room is read
   * again on its next event. A room not cached yet is read as it is then.
   */
  private async stateChanged(event: Event, adds: readonly string[], removes: readonly string[]): Promise<void> {
    const cached = this.rooms.get(event.roomId);
    if (!cached) return;
    const info = await cached.catch(() => undefined);
    const alone = adds.length === 1 && adds[0] === event.eventId && removes.length <= 1 && event.stateKey !== undefined;
    if (!info || !info.exists || !alone || this.rooms.get(event.roomId) !== cached) {
      this.rooms.delete(event.roomId);
      return;
    }
    const content = event.content;
    switch (event.type) {
      case 'm.room.member': {
        const userId = event.stateKey!;
        if (content['membership'] === 'join') {
          const d = content['displayname'];
          if (!info.joined.has(userId) && this.isLocal(userId)) info.local.push(userId);
          info.joined.set(userId, typeof d === 'string' ? d : null);
        } else if (info.joined.delete(userId)) {
          const i = info.local.indexOf(userId);
          if (i >= 0) info.local.splice(i, 1);
        }
        break;
      }
      case 'm.room.power_levels':
        if (event.stateKey === '') info.powerLevels = event;
        break;
      case 'm.room.create':
        if (event.stateKey === '') info.create = event;
        break;
      case 'm.room.name': {
        const name = content['name'];
        if (event.stateKey === '') info.name = typeof name === 'string' && name !== '' ? name : undefined;
        break;
      }
      case 'm.room.canonical_alias': {
        const alias = content['alias'];
        if (event.stateKey === '') info.alias = typeof alias === 'string' && alias !== '' ? alias : undefined;
        break;
      }
      default:
        break;
    }
  }

  /** A room we do not hold, as an invite's stripped state shows it. */
  private strippedRoom(invite: Event): RoomInfo {
    const stripped = (invite.json as { unsigned?: { invite_room_state?: unknown } }).unsigned?.invite_room_state;
    let name: string | undefined;
    let alias: string | undefined;
    if (Array.isArray(stripped)) {
      for (const s of stripped as Array<{ type?: unknown; content?: Record<string, unknown> }>) {
        if (s.type === 'm.room.name' && typeof s.content?.['name'] === 'string') name = s.content['name'];
        if (s.type === 'm.room.canonical_alias' && typeof s.content?.['alias'] === 'string') alias = s.content['alias'];
      }
    }
    return { exists: false, joined: new Map(), local: [], powerLevels: undefined, create: undefined, name, alias };
  }

  /** The users the event (the `index`th of its batch) notifies, and their notifications. */
  private async evaluate(index: number, event: Event, info: RoomInfo, users: readonly string[]): Promise<Evaluated> {
    const notified: Array<{ userId: string; outcome: PushOutcome }> = [];
    const rows: NewNotification[] = [];
    const view: RoomView = { senderName: info.joined.get(event.sender), name: info.name, alias: info.alias };
    if (users.length === 0) return { index, event, view, notified, rows };
    const json = event.json as Record<string, unknown>;
    let client: Record<string, unknown> | undefined;
    let threadId: string | undefined;
    for (const userId of users) {
      if ((await this.ignoredBy(userId)).has(event.sender)) continue;
      const rules = await this.rules.get(userId);
      const outcome = rules.evaluate(json, this.context(info, event.sender, userId));
      if (!outcome?.notify) continue;
      notified.push({ userId, outcome });
      client ??= clientEvent(event);
      threadId ??= threadOf(event);
      rows.push({ userId, roomId: event.roomId, eventId: event.eventId, threadId, depth: event.depth, ts: Date.now(), highlight: outcome.highlight, actions: outcome.actions, event: client });
    }
    return { index, event, view, notified, rows };
  }

  /**
   * Stores evaluated events' notifications and publishes the changed counts. Without pushers
   * among the notified users, all in one transaction and one publish per changed (user,
   * room); else event by event, each push following its own event's store, as its badge says.
   */
  private async store(evaluated: readonly Evaluated[], progress: (done: number) => void): Promise<void> {
    const notifying = evaluated.filter((e) => e.rows.length > 0);
    if (notifying.length === 0) return;
    const pushers = await this.d.store.pushersOf([...new Set(notifying.flatMap((e) => e.notified.map((n) => n.userId)))]);
    if (pushers.size === 0) {
      await this.storeAndPublish(notifying.flatMap((e) => e.rows));
      return;
    }
    for (const e of notifying) {
      progress(e.index);
      await this.storeAndPublish(e.rows);
      await this.pushEvent(e.event, e.view, e.notified, pushers);
      progress(e.index + 1);
    }
  }

  private async storeAndPublish(rows: readonly NewNotification[]): Promise<void> {
    for (const c of await this.d.store.addNotificationsOfEvents(rows)) {
      await this.d.publish({ user_id: c.userId, room_id: c.roomId, notification_count: c.notification_count, highlight_count: c.highlight_count });
    }
  }

  private async pushEvent(event: Event, view: RoomView, notified: ReadonlyArray<{ userId: string; outcome: PushOutcome }>, pushers: ReadonlyMap<string, StoredPusher[]>): Promise<void> {
    for (const { userId, outcome } of notified) {
      const mine = pushers.get(userId);
      if (!mine) continue;
      const unread = await this.d.store.totalUnread(userId);
      const tweaks: Record<string, unknown> = { ...outcome.tweaks };
      if (outcome.highlight) tweaks['highlight'] = true;
      for (const p of mine) {
        const url = p.data['url'];
        if (p.kind !== 'http' || typeof url !== 'string') continue;
        const device = this.device(p, tweaks);
        let n: GatewayNotification;
        if (p.data['format'] === 'event_id_only') {
          n = { event_id: event.eventId, room_id: event.roomId, counts: { unread }, devices: [device], prio: 'high' };
        } else {
          n = {
            event_id: event.eventId,
            // The pre-spec name of event_id, which older gateways (and Sytest) still read.
            id: event.eventId,
            room_id: event.roomId,
            type: event.type,
            sender: event.sender,
            content: event.content,
            counts: { unread },
            devices: [device],
            prio: 'high',
          };
          if (view.senderName) n['sender_display_name'] = view.senderName;
          const roomName = view.name ?? view.alias;
          if (roomName !== undefined) n['room_name'] = roomName;
          if (view.alias !== undefined) n['room_alias'] = view.alias;
          if (event.type === 'm.room.member') {
            n['membership'] = event.content['membership'];
            n['user_is_target'] = event.stateKey === userId;
          }
        }
        this.d.gateway.send(url, userId, n);
      }
    }
  }

  private device(p: StoredPusher, tweaks: Record<string, unknown>): GatewayNotification['devices'][number] {
    const { url: _url, ...data } = p.data;
    return { app_id: p.app_id, pushkey: p.pushkey, pushkey_ts: Math.floor(p.pushkeyTs / 1000), data, tweaks };
  }

  /** OutputReceiptEvent: a read receipt of a local user reads what it reaches. */
  async onReceipt(e: OutputReceiptEvent): Promise<void> {
    if (e.receipt_type !== 'm.read' && e.receipt_type !== 'm.read.private') return;
    if (!this.isLocal(e.user_id)) return;
    const { events } = await this.d.rsAPI.queryEventsById({ event_ids: [e.event_id] });
    const found = events[0];
    if (!found || found.pdu.room_id !== e.room_id) return;
    const depth = typeof found.pdu.depth === 'number' ? found.pdu.depth : 0;
    const { counts, changed } = await this.d.store.markRead(e.user_id, e.room_id, depth, e.thread_id);
    if (!changed) return;
    await this.d.publish({ user_id: e.user_id, room_id: e.room_id, ...counts });
    // The new badge for the user's devices.
    const pushers = (await this.d.store.pushersOf([e.user_id])).get(e.user_id) ?? [];
    if (pushers.length === 0) return;
    const unread = await this.d.store.totalUnread(e.user_id);
    for (const p of pushers) {
      const url = p.data['url'];
      if (p.kind !== 'http' || typeof url !== 'string') continue;
      this.d.gateway.send(url, e.user_id, { counts: { unread }, devices: [this.device(p, {})], prio: 'high' });
    }
  }

  // ------------------------------------------------------------------------------------------
  // PushAPI

  async performPusherSet(req: PerformPusherSetRequest): Promise<PushEmptyResponse> {
    await this.d.store.setPusher({ ...req.pusher, userId: req.userId, deviceId: req.deviceId, pushkeyTs: Date.now() }, req.append);
    return { ok: true };
  }

  async performPusherDeletion(req: PerformPusherDeletionRequest): Promise<PushEmptyResponse> {
    return { ok: await this.d.store.deletePusher(req.userId, req.appId, req.pushkey) };
  }

  async queryPushers(req: QueryPushersRequest): Promise<QueryPushersResponse> {
    const rows = await this.d.store.pushers(req.userId);
    return {
      pushers: rows.map((p) => ({
        pushkey: p.pushkey,
        kind: p.kind,
        app_id: p.app_id,
        app_display_name: p.app_display_name,
        device_display_name: p.device_display_name,
        profile_tag: p.profile_tag ?? '',
        lang: p.lang,
        data: p.data,
      })),
    };
  }

  async queryNotifications(req: QueryNotificationsRequest): Promise<QueryNotificationsResponse> {
    const limit = Math.max(1, Math.min(req.limit, MAX_NOTIFICATIONS_PAGE));
    const from = req.from !== undefined && /^\d{1,15}$/.test(req.from) ? Number(req.from) : undefined;
    const rows = await this.d.store.notifications(req.userId, from, limit + 1, req.onlyHighlight ?? false);
    const page = rows.slice(0, limit);
    const res: QueryNotificationsResponse = { notifications: page.map(({ id: _id, ...n }) => ({ ...n, profile_tag: null })) };
    if (rows.length > limit) res.nextToken = String(page[page.length - 1]!.id);
    return res;
  }

  async queryUnreadCounts(req: QueryUnreadCountsRequest): Promise<QueryUnreadCountsResponse> {
    if (req.byThread !== true) return { counts: Object.fromEntries(await this.d.store.counts(req.userId, req.roomIds)) };
    const counts: Record<string, UnreadCounts> = {};
    const threadCounts: Record<string, Record<string, UnreadCounts>> = {};
    for (const [roomId, threads] of await this.d.store.countsByThread(req.userId, req.roomIds)) {
      for (const [threadId, c] of threads) {
        if (threadId === '') counts[roomId] = c;
        else (threadCounts[roomId] ??= {})[threadId] = c;
      }
    }
    return { counts, thread_counts: threadCounts };
  }

  /** Pushers of devices that went (logout, deletion). */
  async devicesRemoved(userId: string, remaining: readonly string[]): Promise<void> {
    await this.d.store.deletePushersOfDevicesExcept(userId, remaining);
  }
}
