/** The roomserver's internal API: input through the pipeline, queries over the stores. */
import type { ComponentStatus, EmptyRequest } from '../../internal/componentapi.js';
import { powerLevelsOf, requiredEventLevel, userPowerLevel } from '../../internal/matrix/auth/index.js';
import { Event, roomVersion as lookupRoomVersion, type JsonObject, type PDUJson } from '../../internal/matrix/index.js';
import { PUBLIC_ROOM_STATE, listPublicRooms, publicRoomEntry } from './query/publicrooms.js';
import { RoomSummaries } from './query/roomsummary.js';
import { EventByTimestamp } from './query/timestamp.js';
import { EventTimestampStore } from '../storage/timestamps.js';
import type { QueryEventByTimestampRequest, QueryEventByTimestampResponse, QueryRoomSummaryRequest, QueryRoomSummaryResponse } from '../api/index.js';
import type {
  PublicRoomEntry,
  QueryPublicRoomsRequest,
  QueryPublicRoomsResponse,
  PerformStubMembershipRequest,
  PerformStubMembershipResponse,
  HeaderedEvent,
  InputRoomEventsRequest,
  InputRoomEventsResponse,
  PerformCreateRoomRequest,
  PerformCreateRoomResponse,
  PerformSendEventRequest,
  PerformSendEventResponse,
  PerformPublishRequest,
  PerformPublishResponse,
  PerformUpgradeDirectoryMoveRequest,
  PerformUpgradeDirectoryMoveResponse,
  PerformRemoveRoomAliasRequest,
  PerformRemoveRoomAliasResponse,
  PerformSetRoomAliasRequest,
  PerformSetRoomAliasResponse,
  QueryAliasesForRoomRequest,
  QueryAliasesForRoomResponse,
  QueryPublishedRoomsRequest,
  QueryPublishedRoomsResponse,
  QueryRoomIdForAliasRequest,
  QueryRoomIdForAliasResponse,
  QueryVisibleEventsRequest,
  QueryVisibleEventsResponse,
  PerformStateGarbageCollectionRequest,
  PerformForgetRequest,
  PerformAdminEvacuateRoomRequest,
  PerformAdminEvacuateRoomResponse,
  PerformAdminEvacuateUserRequest,
  PerformAdminEvacuateUserResponse,
  PerformAdminPurgeRoomRequest,
  PerformAdminPurgeRoomResponse,
  PerformForgetResponse,
  PerformInboundPeekRequest,
  PerformInboundPeekResponse,
  PerformPeekersGoneRequest,
  PerformPeekersGoneResponse,
  PerformPeekRequest,
  PerformPeekResponse,
  PerformUnpeekRequest,
  PerformUnpeekResponse,
  QueryMembershipForUserRequest,
  QueryMembershipForUserResponse,
  QueryMembershipsForRoomRequest,
  QueryMembershipsForRoomResponse,
  QueryRoomsForUserRequest,
  QueryRoomsForUserResponse,
  QueryServersInRoomRequest,
  QueryServersInRoomResponse,
  PerformStateGarbageCollectionResponse,
  QueryEventsByIdRequest,
  QueryEventsByIdResponse,
  QueryLatestEventsAndStateRequest,
  QueryLatestEventsAndStateResponse,
  QueryStateAfterEventsRequest,
  QueryStateAfterEventsResponse,
  QueryStateBeforeEventRequest,
  QueryStateBeforeEventResponse,
  RoomserverInternalAPI,
} from '../api/index.js';
import type { EventStore, RoomInfo } from '../storage/eventstore.js';
import type { StateSnapshotStore } from '../storage/statesnapshots.js';
import type { DirectoryStore } from '../storage/directory.js';
import type { EventLoader } from './eventloader.js';
import type { Inputer } from './input/inputer.js';
import { RoomState } from './input/roomstate.js';
import type { RoomCreator } from './perform/createroom.js';
import { EventSender } from './perform/sendevent.js';
import type { SigningIdentity } from '../../internal/signingidentity.js';
import { Visibility } from './visibility.js';
import { KnownUsers } from './query/knownusers.js';
import type { QueryKnownUsersRequest, QueryKnownUsersResponse } from '../api/index.js';
import { RoomAdmin, type RoomAdminDeps } from './perform/admin.js';
import { Peeker, type PeekerDeps } from './perform/peek.js';
import { RoomBackfiller, type BackfillFederationAPI } from './perform/backfill.js';
import type { PerformBackfillRequest, PerformBackfillResponse } from '../api/index.js';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { RoomserverDatabase } from '../storage/tables.js';

/** Memberships from which a room may be forgotten. */
const OUT_OF_ROOM = ['leave', 'ban'] as const;

export class RoomserverInternalAPIImpl implements RoomserverInternalAPI {
  private readonly startedAt = Date.now();
  private readonly state: RoomState;

  constructor(
    private readonly serverName: string,
    private readonly inputer: Inputer,
    private readonly events: EventStore,
    private readonly snapshots: StateSnapshotStore,
    private readonly loader: EventLoader,
    private readonly directory: DirectoryStore,
    private readonly creator?: RoomCreator,
    identity?: SigningIdentity,
    /** What the admin actions need besides the stores: absent in tests that build the API bare. */
    adminDeps?: { db: Kysely<RoomserverDatabase>; publish: RoomAdminDeps['publish']; log: Logger },
    /** What peeks (MSC2753, MSC2444) need besides the stores: absent in tests that build the API bare. */
    peekDeps?: Pick<PeekerDeps, 'federatedPeeks' | 'federation' | 'publish' | 'log'>,
    /** What backfill needs besides the stores (federationapi, once built): absent in tests that build the API bare. */
    backfillDeps?: { federation: () => BackfillFederationAPI | undefined; log: Logger },
  ) {
    this.backfiller = backfillDeps ? new RoomBackfiller({ serverName, events, snapshots, loader, ...backfillDeps }) : undefined;
    this.peeker = peekDeps
      ? new Peeker({ serverName, events, loader, query: this, exclusive: (roomId, fn) => inputer.enqueue(roomId, fn), ...peekDeps })
      : undefined;
    this.state = new RoomState(events, snapshots, loader);
    this.sender = identity ? new EventSender(identity, inputer, (r) => this.queryLatestEventsAndState(r), (r) => this.latestInQueue(r)) : undefined;
    this.visibility = new Visibility(events, snapshots, loader);
    this.knownUsers = new KnownUsers(serverName, events, snapshots, loader);
    this.summaries = new RoomSummaries(serverName, events, snapshots, loader);
    this.byTimestamp = new EventByTimestamp(events, new EventTimestampStore(events.db), loader, this.visibility);
    this.admin = adminDeps
      ? new RoomAdmin({
          serverName,
          db: adminDeps.db,
          events,
          send: (r) => this.performSendEvent(r),
          exclusive: (roomId, fn) =>
            inputer.enqueue(roomId, async () => {
              try {
                return await fn();
              } finally {
                inputer.forgetRoom(roomId);
              }
            }),
          publish: adminDeps.publish,
          log: adminDeps.log,
        })
      : undefined;
  }

  private readonly visibility: Visibility;
  private readonly knownUsers: KnownUsers;
  private readonly summaries: RoomSummaries;
  private readonly byTimestamp: EventByTimestamp;
  private readonly admin: RoomAdmin | undefined;
  private readonly peeker: Peeker | undefined;
  private readonly backfiller: RoomBackfiller | undefined;
  private readonly sender: EventSender | undefined;

  async queryComponentStatus(_req: EmptyRequest): Promise<ComponentStatus> {
    return { component: 'roomserver', serverName: this.serverName, pid: process.pid, startedAt: this.startedAt };
  }

  inputRoomEvents(req: InputRoomEventsRequest): Promise<InputRoomEventsResponse> {
    return this.inputer.input(req.events, { stopAtError: req.stop_at_error === true }).then((results) => ({ results }));
  }

  /** State events of a snapshot, all or those asked for. */
  private async stateEvents(room: RoomInfo, snapshotNid: number, wanted?: Array<{ type: string; state_key: string }>): Promise<HeaderedEvent[]> {
    let nids: number[];
    if (wanted === undefined) {
      nids = (await this.snapshots.load(snapshotNid)).map((e) => e.eventNid);
    } else {
      const types = await this.events.typeNids(wanted.map((w) => w.type));
      const keys = await this.events.stateKeyNids(wanted.map((w) => w.state_key));
      const found = await this.snapshots.lookup(
        snapshotNid,
        wanted.map((w) => ({ typeNid: types.get(w.type)!, stateKeyNid: keys.get(w.state_key)! })),
      );
      nids = [...found.values()];
    }
    const loaded = await this.loader.byNids(nids, room.roomVersion);
    return [...loaded.values()].map((l) => ({ room_version: room.roomVersion, pdu: l.event.json as PDUJson }));
  }

  async queryLatestEventsAndState(req: QueryLatestEventsAndStateRequest): Promise<QueryLatestEventsAndStateResponse> {
    const room = await this.heldRoom(req.room_id);
    if (!room) return { room_exists: false, latest_event_ids: [], depth: 0, state_events: [] };
    const latest = await this.events.eventsByNids(await this.events.forwardExtremities(room.roomNid));
    return {
      room_exists: true,
      room_version: room.roomVersion,
      latest_event_ids: latest.map((e) => e.eventId),
      depth: Math.max(0, ...latest.map((e) => e.depth)),
      state_events: await this.stateEvents(room, room.stateSnapshotNid, req.state_to_fetch),
    };
  }

  /**
   * queryLatestEventsAndState for a caller inside the room's input queue (building the next
   * event): the head comes from what the inputer committed last, without asking the database.
   */
  private async latestInQueue(req: QueryLatestEventsAndStateRequest): Promise<QueryLatestEventsAndStateResponse> {
    const head = this.inputer.head(req.room_id);
    if (!head) return this.queryLatestEventsAndState(req);
    return {
      room_exists: true,
      room_version: head.info.roomVersion,
      latest_event_ids: head.latestEventIds,
      depth: head.depth,
      state_events: await this.stateEvents(head.info, head.info.stateSnapshotNid, req.state_to_fetch),
    };
  }

  async queryStateAfterEvents(req: QueryStateAfterEventsRequest): Promise<QueryStateAfterEventsResponse> {
    const room = await this.heldRoom(req.room_id);
    if (!room) return { room_exists: false, prev_events_exist: false, state_events: [] };
    const prevs = await this.events.eventsByIds(req.prev_event_ids);
    if (prevs.length !== new Set(req.prev_event_ids).size || prevs.some((p) => p.stateSnapshotNid === null || p.roomNid !== room.roomNid)) {
      return { room_exists: true, prev_events_exist: false, state_events: [] };
    }
    const snapshot = await this.state.resolve(room, await Promise.all(prevs.map((p) => this.state.stateAfter(room, p))));
    return { room_exists: true, prev_events_exist: true, state_events: await this.stateEvents(room, snapshot, req.state_to_fetch) };
  }

  async queryStateBeforeEvent(req: QueryStateBeforeEventRequest): Promise<QueryStateBeforeEventResponse> {
    const room = await this.heldRoom(req.room_id);
    if (!room) return { room_exists: false, event_exists: false, state_events: [] };
    const [event] = await this.events.eventsByIds([req.event_id]);
    if (!event || event.stateSnapshotNid === null || event.roomNid !== room.roomNid) return { room_exists: true, event_exists: false, state_events: [] };
    return { room_exists: true, event_exists: true, state_events: await this.stateEvents(room, event.stateSnapshotNid, req.state_to_fetch) };
  }

  async queryMembershipForUser(req: QueryMembershipForUserRequest): Promise<QueryMembershipForUserResponse> {
    const room = await this.events.room(req.room_id);
    if (!room) return { room_exists: false, is_in_room: false };
    // A room known only through an invite (no state) does not exist here, but the invite does.
    const held = room.stateSnapshotNid !== 0;
    const m = await this.events.membership(room.roomNid, req.user_id);
    if (!m) return { room_exists: held, is_in_room: false };
    const [stored] = await this.events.eventsByNids([m.eventNid]);
    return {
      room_exists: held,
      membership: m.membership,
      ...(stored ? { event_id: stored.eventId } : {}),
      is_in_room: m.membership === 'join',
      ...(m.forgotten ? { forgotten: true } : {}),
    };
  }

  async queryMembershipsForRoom(req: QueryMembershipsForRoomRequest): Promise<QueryMembershipsForRoomResponse> {
    const room = await this.events.room(req.room_id);
    if (!room) return { room_exists: false, members: [] };
    const members = await this.events.members(room.roomNid, req.memberships);
    const loaded = await this.loader.byNids(
      members.map((m) => m.eventNid),
      room.roomVersion,
    );
    return {
      room_exists: true,
      members: members
        .filter((m) => loaded.has(m.eventNid))
        .map((m) => ({ user_id: m.userId, membership: m.membership, event: { room_version: room.roomVersion, pdu: loaded.get(m.eventNid)!.event.json as PDUJson } })),
    };
  }

  async queryRoomsForUser(req: QueryRoomsForUserRequest): Promise<QueryRoomsForUserResponse> {
    return { room_ids: await this.events.roomsOfUser(req.user_id, req.membership) };
  }

  async queryServersInRoom(req: QueryServersInRoomRequest): Promise<QueryServersInRoomResponse> {
    const room = await this.events.room(req.room_id);
    if (!room) return { servers: [] };
    const joined = await this.events.members(room.roomNid, ['join']);
    return { servers: [...new Set(joined.map((m) => m.userId.slice(m.userId.indexOf(':') + 1)))].sort() };
  }

  async performSetRoomAlias(req: PerformSetRoomAliasRequest): Promise<PerformSetRoomAliasResponse> {
    if (!(await this.events.room(req.room_id))) return { error: 'unknown_room' };
    return (await this.directory.setAlias(req.alias, req.room_id, req.user_id)) ? {} : { error: 'alias_exists' };
  }

  async queryRoomIdForAlias(req: QueryRoomIdForAliasRequest): Promise<QueryRoomIdForAliasResponse> {
    const a = await this.directory.alias(req.alias);
    return a ? { room_id: a.roomId } : {};
  }

  async queryAliasesForRoom(req: QueryAliasesForRoomRequest): Promise<QueryAliasesForRoomResponse> {
    return { aliases: await this.directory.aliasesOf(req.room_id) };
  }

  /** The alias's creator may remove it, and so may whoever may change the room's canonical alias. */
  async performRemoveRoomAlias(req: PerformRemoveRoomAliasRequest): Promise<PerformRemoveRoomAliasResponse> {
    const a = await this.directory.alias(req.alias);
    if (!a) return { error: 'not_found' };
    if (a.creatorId !== req.user_id) {
      const { state_events: state } = await this.queryLatestEventsAndState({
        room_id: a.roomId,
        state_to_fetch: [
          { type: 'm.room.create', state_key: '' },
          { type: 'm.room.power_levels', state_key: '' },
        ],
      });
      const rv = state[0]?.room_version;
      const byType = new Map(state.map((e) => [e.pdu.type, Event.fromStored(e.pdu, e.room_version, eventIdOf(e))]));
      const create = byType.get('m.room.create');
      const pl = powerLevelsOf(byType.get('m.room.power_levels'), create);
      if (rv === undefined || userPowerLevel(req.user_id, pl, create) < requiredEventLevel('m.room.canonical_alias', true, pl)) return { error: 'forbidden' };
    }
    await this.directory.removeAlias(req.alias);
    return {};
  }

  async performPublish(req: PerformPublishRequest): Promise<PerformPublishResponse> {
    if (!(await this.events.room(req.room_id))) return { error: 'unknown_room' };
    await this.directory.setPublished(req.room_id, req.visibility === 'public');
    return {};
  }

  async performUpgradeDirectoryMove(req: PerformUpgradeDirectoryMoveRequest): Promise<PerformUpgradeDirectoryMoveResponse> {
    if (!(await this.events.room(req.new_room_id))) return { error: 'unknown_room' };
    const { state_events: tombstones } = await this.queryLatestEventsAndState({ room_id: req.old_room_id, state_to_fetch: [{ type: 'm.room.tombstone', state_key: '' }] });
    // Anyone can make a room naming ours as its predecessor: only the old room's own tombstone counts.
    if (tombstones[0]?.pdu.content?.['replacement_room'] !== req.new_room_id) return { error: 'no_tombstone' };
    const moved: string[] = [];
    for (const alias of await this.directory.aliasesOf(req.old_room_id)) {
      const a = await this.directory.alias(alias);
      if (!a || !(await this.directory.removeAlias(alias))) continue;
      if (await this.directory.setAlias(alias, req.new_room_id, a.creatorId)) moved.push(alias);
    }
    const listed = await this.directory.isPublished(req.old_room_id);
    if (listed) {
      await this.directory.setPublished(req.new_room_id, true);
      await this.directory.setPublished(req.old_room_id, false);
    }
    return { moved_aliases: moved, moved_listing: listed };
  }

  async queryPublishedRooms(req: QueryPublishedRoomsRequest): Promise<QueryPublishedRoomsResponse> {
    if (req.room_id !== undefined) return { room_ids: (await this.directory.isPublished(req.room_id)) ? [req.room_id] : [] };
    return { room_ids: await this.directory.published() };
  }

  async queryPublicRooms(req: QueryPublicRoomsRequest): Promise<QueryPublicRoomsResponse> {
    const entries: PublicRoomEntry[] = [];
    for (const roomId of await this.directory.published()) {
      const room = await this.heldRoom(roomId);
      if (!room) continue;
      const state = await this.stateEvents(room, room.stateSnapshotNid, PUBLIC_ROOM_STATE);
      const joined = (await this.events.members(room.roomNid, ['join'])).length;
      entries.push(publicRoomEntry(roomId, (type) => state.find((e) => e.pdu.type === type)?.pdu.content as JsonObject | undefined, joined));
    }
    return listPublicRooms(entries, req);
  }

  queryRoomSummary(req: QueryRoomSummaryRequest): Promise<QueryRoomSummaryResponse> {
    return this.summaries.query(req);
  }

  queryEventByTimestamp(req: QueryEventByTimestampRequest): Promise<QueryEventByTimestampResponse> {
    return this.byTimestamp.query(req);
  }

  async queryVisibleEvents(req: QueryVisibleEventsRequest): Promise<QueryVisibleEventsResponse> {
    const asker = { ...(req.user_id !== undefined ? { userId: req.user_id } : {}), ...(req.server_name !== undefined ? { serverName: req.server_name } : {}) };
    return { visible_event_ids: await this.visibility.visibleTo(req.event_ids, asker) };
  }

  async performCreateRoom(req: PerformCreateRoomRequest): Promise<PerformCreateRoomResponse> {
    if (!this.creator) return { error: 'invalid', message: 'this roomserver has no signing identity' };
    return this.creator.create(req);
  }

  async performSendEvent(req: PerformSendEventRequest): Promise<PerformSendEventResponse> {
    if (!this.sender) return { error: 'failed', message: 'this roomserver has no signing identity' };
    return this.sender.send(req);
  }

  async performStubMembership(req: PerformStubMembershipRequest): Promise<PerformStubMembershipResponse> {
    const rv = lookupRoomVersion(req.event.room_version);
    if (!rv) return { error: `unsupported room version ${req.event.room_version}` };
    let event: Event;
    try {
      event = Event.fromPDU(req.event.pdu, rv);
    } catch (e) {
      return { error: e instanceof Error ? e.message : String(e) };
    }
    if (event.type !== 'm.room.member' || event.stateKey === undefined || !event.stateKey.endsWith(`:${this.serverName}`)) return { error: 'not a member event of a local user' };
    const res = await this.inputer.stubMembership(event.roomId, rv.id, event);
    return res.status === 'accepted' ? {} : { error: res.error ?? res.status };
  }

  /** A room this server holds (has state for); undefined for unknown rooms and those known only by an invite. */
  private async heldRoom(roomId: string): Promise<RoomInfo | undefined> {
    const room = await this.events.room(roomId);
    return room && room.stateSnapshotNid !== 0 ? room : undefined;
  }

  async performStateGarbageCollection(req: PerformStateGarbageCollectionRequest): Promise<PerformStateGarbageCollectionResponse> {
    return { deleted_nodes: await this.inputer.collectGarbage(req.room_id) };
  }

  async performAdminEvacuateRoom(req: PerformAdminEvacuateRoomRequest): Promise<PerformAdminEvacuateRoomResponse> {
    const affected = await this.requireAdmin().evacuateRoom(req.room_id);
    return affected ? { affected } : { error: 'unknown_room' };
  }

  async performAdminEvacuateUser(req: PerformAdminEvacuateUserRequest): Promise<PerformAdminEvacuateUserResponse> {
    return { affected: await this.requireAdmin().evacuateUser(req.user_id) };
  }

  async performAdminPurgeRoom(req: PerformAdminPurgeRoomRequest): Promise<PerformAdminPurgeRoomResponse> {
    return (await this.requireAdmin().purgeRoom(req.room_id)) ? {} : { error: 'unknown_room' };
  }

  async performPeek(req: PerformPeekRequest): Promise<PerformPeekResponse> {
    return this.requirePeeker().performPeek(req);
  }

  async performUnpeek(req: PerformUnpeekRequest): Promise<PerformUnpeekResponse> {
    return this.requirePeeker().performUnpeek(req);
  }

  async performInboundPeek(req: PerformInboundPeekRequest): Promise<PerformInboundPeekResponse> {
    return this.requirePeeker().performInboundPeek(req);
  }

  async performPeekersGone(req: PerformPeekersGoneRequest): Promise<PerformPeekersGoneResponse> {
    return this.requirePeeker().performPeekersGone(req);
  }

  async performBackfill(req: PerformBackfillRequest): Promise<PerformBackfillResponse> {
    if (!this.backfiller) return { event_ids: [], not_shown_event_ids: [], error: 'unreachable', message: 'this roomserver was built without backfill' };
    return this.backfiller.performBackfill(req);
  }

  private requirePeeker(): Peeker {
    if (!this.peeker) throw new Error('this roomserver was built without its peek dependencies');
    return this.peeker;
  }

  private requireAdmin(): RoomAdmin {
    if (!this.admin) throw new Error('this roomserver was built without its admin dependencies');
    return this.admin;
  }

  queryKnownUsers(req: QueryKnownUsersRequest): Promise<QueryKnownUsersResponse> {
    return this.knownUsers.query(req);
  }

  /** Only a user who is out of the room (left, kicked or banned) may forget it, as in Synapse. */
  async performForget(req: PerformForgetRequest): Promise<PerformForgetResponse> {
    const room = await this.events.room(req.room_id);
    if (!room) return { error: 'unknown_room' };
    if (await this.events.setForgotten(room.roomNid, req.user_id, OUT_OF_ROOM)) return {};
    const now = await this.events.membership(room.roomNid, req.user_id);
    return now ? { error: 'in_room', membership: now.membership } : { error: 'not_member' };
  }

  async queryEventsById(req: QueryEventsByIdRequest): Promise<QueryEventsByIdResponse> {
    const stored = await this.events.eventsByIds(req.event_ids);
    const out: QueryEventsByIdResponse['events'] = [];
    const byRoom = new Map<number, number[]>();
    for (const s of stored) byRoom.set(s.roomNid, [...(byRoom.get(s.roomNid) ?? []), s.eventNid]);
    for (const [roomNid, nids] of byRoom) {
      const room = await this.events.roomByNid(roomNid);
      if (!room) continue;
      for (const l of (await this.loader.byNids(nids, room.roomVersion)).values()) {
        out.push({ room_version: room.roomVersion, pdu: l.event.json as PDUJson, rejected: l.stored.isRejected, soft_failed: l.stored.isSoftFailed, outlier: l.stored.stateSnapshotNid === null });
      }
    }
    return { events: out };
  }
}

/** The ID of an event returned by a query: computed for room versions whose IDs are hashes. */
function eventIdOf(e: HeaderedEvent): string {
  return typeof e.pdu.event_id === 'string' ? e.pdu.event_id : Event.fromPDU(e.pdu, e.room_version).eventId;
}
