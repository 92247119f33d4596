/**
 * The internal API of the roomserver component: the only door other components may use.
 * In a monolith it is a direct call; in a polylith, NATS request/reply generated from
 * `roomserverInternalAPIMethods`. Every method takes one JSON request and returns JSON.
 *
 * Events cross this boundary as their PDU JSON with the room version, never as NIDs.
 */
import type { StatusAPI } from '../../internal/componentapi.js';
import type { JsonObject, PDUJson } from '../../internal/matrix/index.js';

/** An event with what is needed to read it: its room's version. */
export interface HeaderedEvent {
  room_version: string;
  pdu: PDUJson;
}

/**
 * How an event enters the room: `new` extends the DAG at its forward edge (what clients and
 * federation /send deliver), `old` is history behind it (backfill), `outlier` is an event known
 * only by itself (auth events, invites over federation) whose state we do not have.
 */
export type InputKind = 'new' | 'old' | 'outlier';

export interface InputRoomEvent {
  kind: InputKind;
  event: HeaderedEvent;
  /** The server the event came from (ours for local events). */
  origin?: string;
  /** The transaction of a local client send, echoed in the output for the sender's /sync. */
  transaction_id?: { device_id: string; transaction_id: string };
  /**
   * The state before a `new` event, when it does not come from its prev events (a join over
   * federation: the resident server's send_join answer). These events must be stored already
   * (as outliers); rejected ones are left out.
   */
  state_event_ids?: string[];
  /**
   * For a `new` event whose prev events this server holds only as outliers (or not at all): the
   * state after each such prev event (event IDs, stored already), as the server that sent the
   * event gave it (a gap it bridged with /state_ids). The state before the event is then
   * resolved from these and the state after its other prev events; the prev events themselves
   * stay outliers.
   */
  prev_states?: Record<string, string[]>;
}

export interface InputRoomEventsRequest {
  events: InputRoomEvent[];
  /**
   * Stop each room's events at its first error (an event not processed, nothing stored): its
   * later events in this request come back as errors, not processed. For a submitter that mends
   * the failure (fetches what was missing) and then goes on, in order (federation /send).
   * Rejected and soft-failed events are verdicts, not errors: they never stop anything.
   */
  stop_at_error?: boolean;
}

export type InputStatus = 'accepted' | 'duplicate' | 'rejected' | 'soft_failed' | 'error';

export interface InputResult {
  event_id: string;
  status: InputStatus;
  /** Why the event was rejected, soft-failed or not processed. */
  error?: string;
}

export interface InputRoomEventsResponse {
  results: InputResult[];
}

/** OutputRoomEvent payloads, as Dendrite names them. */
export type OutputRoomEvent =
  | { type: 'new_room_event'; new_room_event: OutputNewRoomEvent }
  | { type: 'old_room_event'; old_room_event: { event: HeaderedEvent } }
  | { type: 'redacted_event'; redacted_event: { redacted_event_id: string; redacted_because: HeaderedEvent } }
  | { type: 'new_invite_event'; new_invite_event: { event: HeaderedEvent } }
  | { type: 'retire_invite_event'; retire_invite_event: { event_id: string; target_user_id: string; membership: string; retired_by_event_id: string } }
  /** An admin purged the room: every component drops what it holds of it. */
  | { type: 'purge_room'; purge_room: { room_id: string } }
  /** A local device began peeking into the room (MSC2753): syncapi gives it the room. */
  | { type: 'new_peek'; new_peek: OutputNewPeek }
  /** A local device stopped peeking into the room. */
  | { type: 'retire_peek'; retire_peek: OutputRetirePeek }
  /** Another server began peeking into the room (MSC2444): federationapi sends it the room's events from here on. */
  | { type: 'new_inbound_peek'; new_inbound_peek: OutputNewInboundPeek };

export interface OutputNewPeek {
  room_id: string;
  user_id: string;
  device_id: string;
}
export type OutputRetirePeek = OutputNewPeek;
export interface OutputNewInboundPeek {
  room_id: string;
  peek_id: string;
  server_name: string;
  /** The latest event the peeking server was given the state at: what follows in the stream is news to it. */
  latest_event_id: string;
  renewal_interval: number;
}

export interface OutputNewRoomEvent {
  event: HeaderedEvent;
  /** State event IDs that the event's arrival adds to / removes from the room's current state. */
  adds_state_event_ids: string[];
  removes_state_event_ids: string[];
  /** The forward extremities after the event. */
  latest_event_ids: string[];
  transaction_id?: { device_id: string; transaction_id: string };
}

export interface QueryLatestEventsAndStateRequest {
  room_id: string;
  /** (type, state_key) pairs wanted from the current state; all of it when absent. */
  state_to_fetch?: Array<{ type: string; state_key: string }>;
}
export interface QueryLatestEventsAndStateResponse {
  room_exists: boolean;
  room_version?: string;
  latest_event_ids: string[];
  /** The greatest depth among the latest events (a new event's depth is this plus one). */
  depth: number;
  state_events: HeaderedEvent[];
}

export interface QueryEventsByIdRequest {
  event_ids: string[];
}
export interface QueryEventsByIdResponse {
  /** `outlier`: known by itself, without the state at it. */
  events: Array<HeaderedEvent & { rejected: boolean; soft_failed: boolean; outlier: boolean }>;
}

export interface QueryStateAfterEventsRequest {
  room_id: string;
  prev_event_ids: string[];
  state_to_fetch?: Array<{ type: string; state_key: string }>;
}
export interface QueryStateAfterEventsResponse {
  room_exists: boolean;
  /** False when a prev event is unknown or has no state (an outlier). */
  prev_events_exist: boolean;
  state_events: HeaderedEvent[];
}

/**
 * The state before an event, as this server keeps it for the event (its own snapshot: for an
 * event whose prev events are outliers, the state it was taken in with).
 */
export interface QueryStateBeforeEventRequest {
  room_id: string;
  event_id: string;
  state_to_fetch?: Array<{ type: string; state_key: string }>;
}
export interface QueryStateBeforeEventResponse {
  room_exists: boolean;
  /** False when the event is unknown, of another room, or has no state here (an outlier). */
  event_exists: boolean;
  state_events: HeaderedEvent[];
}

export interface QueryMembershipForUserRequest {
  room_id: string;
  user_id: string;
}
export interface QueryMembershipForUserResponse {
  room_exists: boolean;
  /** join, invite, leave, ban, knock; absent when the user never had one. */
  membership?: string;
  event_id?: string;
  is_in_room: boolean;
  /** The user forgot the room (POST /forget) after leaving it; cleared by their next membership event. */
  forgotten?: boolean;
}

export interface QueryMembershipsForRoomRequest {
  room_id: string;
  /** Only these memberships (e.g. ["join"]); all when absent. */
  memberships?: string[];
}
export interface QueryMembershipsForRoomResponse {
  room_exists: boolean;
  members: Array<{ user_id: string; membership: string; event: HeaderedEvent }>;
}

export interface QueryRoomsForUserRequest {
  user_id: string;
  membership: string;
}
export interface QueryRoomsForUserResponse {
  room_ids: string[];
}

export interface QueryServersInRoomRequest {
  room_id: string;
}
export interface QueryServersInRoomResponse {
  /** Servers with at least one joined member. */
  servers: string[];
}

export interface PerformSetRoomAliasRequest {
  alias: string;
  room_id: string;
  user_id: string;
}
export interface PerformSetRoomAliasResponse {
  /** alias_exists: the alias names a room already; unknown_room: no such room here. */
  error?: 'alias_exists' | 'unknown_room';
}
export interface QueryRoomIdForAliasRequest {
  alias: string;
}
export interface QueryRoomIdForAliasResponse {
  room_id?: string;
}
export interface QueryAliasesForRoomRequest {
  room_id: string;
}
export interface QueryAliasesForRoomResponse {
  aliases: string[];
}
export interface PerformRemoveRoomAliasRequest {
  alias: string;
  user_id: string;
}
export interface PerformRemoveRoomAliasResponse {
  /** not_found: no such alias; forbidden: the user neither made it nor may change the room's canonical alias. */
  error?: 'not_found' | 'forbidden';
}
export interface PerformPublishRequest {
  room_id: string;
  visibility: 'public' | 'private';
}
export interface PerformPublishResponse {
  error?: 'unknown_room';
}
/**
 * After a room upgrade this server did not make (the room lives on another server), moves this
 * server's directory entries of the old room to its successor, as Synapse does when a local
 * user first joins the new room: the aliases (their creators kept) and the public listing.
 * Only when the old room's current state has a tombstone naming the new room.
 */
export interface PerformUpgradeDirectoryMoveRequest {
  old_room_id: string;
  new_room_id: string;
}
export interface PerformUpgradeDirectoryMoveResponse {
  /** no_tombstone: the old room was not replaced by the new one (nothing moved). */
  error?: 'no_tombstone' | 'unknown_room';
  moved_aliases?: string[];
  /** Whether the listing moved (the old room was public here). */
  moved_listing?: boolean;
}
export interface QueryPublishedRoomsRequest {
  /** Only this room's visibility, when given. */
  room_id?: string;
}
export interface QueryPublishedRoomsResponse {
  room_ids: string[];
}

/** A room directory entry (the spec's PublishedRoomsChunk). */
export interface PublicRoomEntry {
  room_id: string;
  num_joined_members: number;
  world_readable: boolean;
  guest_can_join: boolean;
  name?: string;
  topic?: string;
  canonical_alias?: string;
  avatar_url?: string;
  join_rule?: string;
  room_type?: string;
}
export interface QueryPublicRoomsRequest {
  /** Case-insensitive, in name, topic or canonical alias. */
  search_term?: string;
  /** Room types wanted (null: rooms without a type); all when absent or empty. */
  room_types?: Array<string | null>;
  offset: number;
  /** 0: all from `offset`. */
  limit: number;
}
export interface QueryPublicRoomsResponse {
  chunk: PublicRoomEntry[];
  /** How many rooms match, over all pages. */
  total: number;
}

/**
 * A room as the space hierarchy describes it (the spec's RoomSummary): its directory entry,
 * and what a server or client needs to tell whether it may join.
 */
export interface RoomSummary extends PublicRoomEntry {
  room_version?: string;
  /** m.room.encryption's algorithm, when it is the spec's one. */
  encryption?: string;
  /** For a restricted (or knock_restricted) room: the rooms whose members may join it. */
  allowed_room_ids?: string[];
}
/** An m.space.child event as the hierarchy shows it: stripped state with its origin_server_ts. */
export interface SpaceChildEvent {
  type: string;
  state_key: string;
  content: JsonObject;
  sender: string;
  origin_server_ts: number;
}
export interface QueryRoomSummaryRequest {
  room_id: string;
  /** Who asks: a local user (client API) or a server (federation). */
  user_id?: string;
  server_name?: string;
  /** Only children marked suggested. */
  suggested_only?: boolean;
  /** Add a space's children (its m.space.child events that name a child, in the spec's order). */
  include_children?: boolean;
}
export interface QueryRoomSummaryResponse {
  /** This server is in the room: it has the room's current state and a joined user there. */
  room_exists: boolean;
  /**
   * The asker may see the room's summary: it is public, knockable or world_readable, or the
   * user is joined, invited or may join a restricted room, or the server has a user joined or
   * invited there or in a room the restricted room allows. True for a user's invite even when
   * the room does not exist here. When false, nothing else is told.
   */
  accessible: boolean;
  room?: RoomSummary;
  /** With include_children, for spaces (room_type m.space); empty for other rooms. */
  children_state?: SpaceChildEvent[];
}

/** GET /timestamp_to_event: the event nearest a time, in a direction. */
export interface QueryEventByTimestampRequest {
  room_id: string;
  /** Milliseconds since the epoch. */
  ts: number;
  /** f: the first event at or after ts; b: the last at or before it (by origin_server_ts). */
  dir: 'f' | 'b';
  /** Only events this user or server may see count (history visibility); neither: world_readable ones. */
  user_id?: string;
  server_name?: string;
}
export interface QueryEventByTimestampResponse {
  /** The room's history is held here. */
  room_exists: boolean;
  /** Absent when no event qualifies. */
  event_id?: string;
  origin_server_ts?: number;
  /**
   * History this server lacks may lie between ts and the event (its prev events are missing
   * for dir=f; the next event held after it misses its prev events for dir=b): other servers
   * of the room may know a closer one.
   */
  next_to_gap?: boolean;
}

export interface QueryVisibleEventsRequest {
  event_ids: string[];
  /** Who asks: a user (client APIs) or a server (federation); neither is anonymous (world_readable only). */
  user_id?: string;
  server_name?: string;
}
export interface QueryVisibleEventsResponse {
  /** The asked-for events the asker may see ("History visibility"), in the order asked. */
  visible_event_ids: string[];
}

export interface PerformCreateRoomRequest {
  user_id: string;
  room_version: string;
  /** Required before room version 12 (where the create event names the room). */
  room_id?: string;
  preset: 'private_chat' | 'public_chat' | 'trusted_private_chat';
  creation_content?: JsonObject;
  initial_state?: Array<{ type: string; state_key: string; content: JsonObject }>;
  name?: string;
  topic?: string;
  /**
   * Invitees (trusted_private_chat makes them admins). Only this server's users are invited
   * here; the caller invites other servers' users over federation once the room exists.
   */
  invite?: string[];
  is_direct?: boolean;
  power_level_content_override?: JsonObject;
  canonical_alias?: string;
  /** The creator's displayname / avatar_url for their join event. */
  creator_profile?: JsonObject;
}
export type PerformCreateRoomResponse = { room_id: string; error?: undefined } | { error: 'unsupported_room_version' | 'invalid' | 'refused'; message: string; room_id?: undefined };

export interface PerformSendEventRequest {
  user_id: string;
  room_id: string;
  type: string;
  /** Present for state events. */
  state_key?: string;
  content: JsonObject;
  redacts?: string;
  transaction_id?: { device_id: string; transaction_id: string };
  /**
   * Build and sign the event on the room's latest events, checked against the current state,
   * but do not send it: the caller has more to do first (an invite of another server's user
   * needs that server's signature).
   */
  build_only?: boolean;
}
export type PerformSendEventResponse =
  | { event_id: string; error?: undefined; event?: HeaderedEvent }
  | { error: 'forbidden' | 'failed' | 'too_large'; message: string; event_id?: undefined; event?: undefined };

/**
 * A user forgets a room they are out of (POST /rooms/{roomId}/forget). The flag is kept on the
 * membership and ends with the user's next membership event.
 */
export interface PerformForgetRequest {
  room_id: string;
  user_id: string;
}
export interface PerformForgetResponse {
  /**
   * unknown_room: the room is not known here; not_member: the user never had a membership
   * in it; in_room: the user is still joined, invited or knocking (they must leave first).
   */
  error?: 'unknown_room' | 'not_member' | 'in_room';
  /** The user's current membership, with in_room. */
  membership?: string;
}

export interface PerformStateGarbageCollectionRequest {
  room_id: string;
}
export interface PerformStateGarbageCollectionResponse {
  deleted_nodes: number;
}

export interface PerformStubMembershipRequest {
  /**
   * A member event of a local user in a room this server does not hold: an invite from another
   * server (signed by us too), or the leave that rejected it. Its `unsigned.invite_room_state`
   * (stripped state) is what the invitee sees of the room.
   */
  event: HeaderedEvent;
}
export interface PerformStubMembershipResponse {
  error?: string;
}

/** Dendrite's admin evacuation of a room: its local users leave. */
export interface PerformAdminEvacuateRoomRequest {
  room_id: string;
}
export type PerformAdminEvacuateRoomResponse = { affected: string[]; error?: undefined } | { error: 'unknown_room'; affected?: undefined };

/** Dendrite's admin evacuation of a user: they leave every room held here. */
export interface PerformAdminEvacuateUserRequest {
  user_id: string;
}
export interface PerformAdminEvacuateUserResponse {
  /** The rooms left. */
  affected: string[];
}

/** Dendrite's admin purge: every trace of the room goes from this server's databases. */
export interface PerformAdminPurgeRoomRequest {
  room_id: string;
}
export interface PerformAdminPurgeRoomResponse {
  error?: 'unknown_room';
}

/**
 * A local device peeks into a room (MSC2753): the room must be world_readable (and not
 * encrypted). A room this server does not take part in is peeked over federation first
 * (MSC2444: federationapi fetches its state through `server_names`, the room ID's server or
 * the alias's). Then `new_peek` goes out on OutputRoomEvent for syncapi.
 */
export interface PerformPeekRequest {
  room_id_or_alias: string;
  user_id: string;
  device_id: string;
  server_names?: string[];
  /**
   * syncapi asks again for a device whose room went quiet (its peekers stopped syncing, or this
   * server restarted): the remote peek is made again if it ended, and `new_peek` goes out only
   * when the room had to be fetched again (the device then gets it in full).
   */
  resume?: boolean;
}
export type PerformPeekResponse =
  | { room_id: string; error?: undefined }
  | { error: 'invalid' | 'not_found' | 'forbidden' | 'unreachable' | 'incompatible_room_version' | 'remote'; message: string; room_id?: undefined; status?: number; errcode?: string };

export interface PerformUnpeekRequest {
  room_id: string;
  user_id: string;
  device_id: string;
}
export type PerformUnpeekResponse = { error?: undefined } | { error: 'invalid'; message: string };

/**
 * Another server peeks into one of our rooms (MSC2444 PUT /peek): the room's current state,
 * its auth chain and the latest event, read in the room's input order together with the
 * `new_inbound_peek` output, so that the events after that state are exactly those federation
 * sends the peeking server.
 */
export interface PerformInboundPeekRequest {
  room_id: string;
  peek_id: string;
  server_name: string;
  renewal_interval: number;
}
export type PerformInboundPeekResponse =
  | { room_exists: false; error?: undefined }
  | { room_exists: true; error: 'forbidden'; message: string }
  | { room_exists: true; error?: undefined; room_version: string; state_events: HeaderedEvent[]; auth_chain_events: HeaderedEvent[]; latest_event: HeaderedEvent };

/**
 * syncapi: no local device counts as peeking into the room any more (the last one unpeeked or
 * joined, or none of them has synced for a while). A federated peek of the room ends.
 */
export interface PerformPeekersGoneRequest {
  room_id: string;
}
export interface PerformPeekersGoneResponse {
  /** A peek over federation was ended (so the next device to peek must peek again). */
  ended_remote_peek: boolean;
}

/**
 * syncapi, paging back through a room (/messages), reached a gap: events whose prev events it
 * lacks (backward extremities). The prev events and what lies behind them are fetched from other
 * servers of the room (federationapi: GET /backfill, checked, then input as `old` events), or
 * taken from what the roomserver holds already.
 */
export interface PerformBackfillRequest {
  room_id: string;
  /** The events whose prev events are missing (held here with their state). */
  event_ids: string[];
  /** How many events to ask other servers for (at most 100). */
  limit: number;
}
export interface PerformBackfillResponse {
  /**
   * Accepted events of the room's history behind `event_ids`, each held with its state, oldest
   * first; by ID (queryEventsById reads them), so that the answer stays small over NATS.
   */
  event_ids: string[];
  /**
   * Prev events of `event_ids` that the room's history will never show: held here but rejected
   * or soft-failed, or of another room. Not gaps to fill.
   */
  not_shown_event_ids: string[];
  /** unknown_room: no such room held here; unreachable: no other server gave anything. */
  error?: 'unknown_room' | 'unreachable';
  message?: string;
}

/** The user directory: users joined to a room the searcher is in, or to a public room, that match a term. */
export interface QueryKnownUsersRequest {
  user_id: string;
  /** Matched, ignoring case, against user IDs and display names; '' matches everyone. */
  search_term: string;
  limit: number;
}
export interface KnownUser {
  user_id: string;
  display_name?: string;
  avatar_url?: string;
}
export interface QueryKnownUsersResponse {
  /** Ordered by user ID. */
  users: KnownUser[];
}

export interface RoomserverInternalAPI extends StatusAPI {
  inputRoomEvents(req: InputRoomEventsRequest): Promise<InputRoomEventsResponse>;
  queryLatestEventsAndState(req: QueryLatestEventsAndStateRequest): Promise<QueryLatestEventsAndStateResponse>;
  queryStateAfterEvents(req: QueryStateAfterEventsRequest): Promise<QueryStateAfterEventsResponse>;
  queryStateBeforeEvent(req: QueryStateBeforeEventRequest): Promise<QueryStateBeforeEventResponse>;
  queryEventsById(req: QueryEventsByIdRequest): Promise<QueryEventsByIdResponse>;
  queryMembershipForUser(req: QueryMembershipForUserRequest): Promise<QueryMembershipForUserResponse>;
  queryMembershipsForRoom(req: QueryMembershipsForRoomRequest): Promise<QueryMembershipsForRoomResponse>;
  queryRoomsForUser(req: QueryRoomsForUserRequest): Promise<QueryRoomsForUserResponse>;
  queryServersInRoom(req: QueryServersInRoomRequest): Promise<QueryServersInRoomResponse>;
  performSetRoomAlias(req: PerformSetRoomAliasRequest): Promise<PerformSetRoomAliasResponse>;
  queryRoomIdForAlias(req: QueryRoomIdForAliasRequest): Promise<QueryRoomIdForAliasResponse>;
  queryAliasesForRoom(req: QueryAliasesForRoomRequest): Promise<QueryAliasesForRoomResponse>;
  performRemoveRoomAlias(req: PerformRemoveRoomAliasRequest): Promise<PerformRemoveRoomAliasResponse>;
  performPublish(req: PerformPublishRequest): Promise<PerformPublishResponse>;
  performUpgradeDirectoryMove(req: PerformUpgradeDirectoryMoveRequest): Promise<PerformUpgradeDirectoryMoveResponse>;
  queryPublishedRooms(req: QueryPublishedRoomsRequest): Promise<QueryPublishedRoomsResponse>;
  /** The room directory: published rooms described, filtered, ordered and paged. */
  queryPublicRooms(req: QueryPublicRoomsRequest): Promise<QueryPublicRoomsResponse>;
  /** One room of a space hierarchy, summarised for a user or a server, with its children. */
  queryRoomSummary(req: QueryRoomSummaryRequest): Promise<QueryRoomSummaryResponse>;
  /** The event nearest a timestamp that the asker may see (GET /timestamp_to_event). */
  queryEventByTimestamp(req: QueryEventByTimestampRequest): Promise<QueryEventByTimestampResponse>;
  queryVisibleEvents(req: QueryVisibleEventsRequest): Promise<QueryVisibleEventsResponse>;
  performCreateRoom(req: PerformCreateRoomRequest): Promise<PerformCreateRoomResponse>;
  performSendEvent(req: PerformSendEventRequest): Promise<PerformSendEventResponse>;
  performStateGarbageCollection(req: PerformStateGarbageCollectionRequest): Promise<PerformStateGarbageCollectionResponse>;
  performStubMembership(req: PerformStubMembershipRequest): Promise<PerformStubMembershipResponse>;
  performForget(req: PerformForgetRequest): Promise<PerformForgetResponse>;
  queryKnownUsers(req: QueryKnownUsersRequest): Promise<QueryKnownUsersResponse>;
  performAdminEvacuateRoom(req: PerformAdminEvacuateRoomRequest): Promise<PerformAdminEvacuateRoomResponse>;
  performAdminEvacuateUser(req: PerformAdminEvacuateUserRequest): Promise<PerformAdminEvacuateUserResponse>;
  performAdminPurgeRoom(req: PerformAdminPurgeRoomRequest): Promise<PerformAdminPurgeRoomResponse>;
  performPeek(req: PerformPeekRequest): Promise<PerformPeekResponse>;
  performUnpeek(req: PerformUnpeekRequest): Promise<PerformUnpeekResponse>;
  performInboundPeek(req: PerformInboundPeekRequest): Promise<PerformInboundPeekResponse>;
  performPeekersGone(req: PerformPeekersGoneRequest): Promise<PerformPeekersGoneResponse>;
  /** History behind a gap in a room, from other servers of the room when it is not held here (/messages). */
  performBackfill(req: PerformBackfillRequest): Promise<PerformBackfillResponse>;
}

export const roomserverInternalAPIMethods = [
  'queryComponentStatus',
  'inputRoomEvents',
  'queryLatestEventsAndState',
  'queryStateAfterEvents',
  'queryStateBeforeEvent',
  'queryEventsById',
  'queryMembershipForUser',
  'queryMembershipsForRoom',
  'queryRoomsForUser',
  'queryServersInRoom',
  'performSetRoomAlias',
  'queryRoomIdForAlias',
  'queryAliasesForRoom',
  'performRemoveRoomAlias',
  'performPublish',
  'performUpgradeDirectoryMove',
  'queryPublishedRooms',
  'queryPublicRooms',
  'queryRoomSummary',
  'queryEventByTimestamp',
  'queryVisibleEvents',
  'performCreateRoom',
  'performSendEvent',
  'performStateGarbageCollection',
  'performStubMembership',
  'performForget',
  'queryKnownUsers',
  'performAdminEvacuateRoom',
  'performAdminEvacuateUser',
  'performAdminPurgeRoom',
  'performPeek',
  'performUnpeek',
  'performInboundPeek',
  'performPeekersGone',
  'performBackfill',
] as const satisfies ReadonlyArray<keyof RoomserverInternalAPI>;
