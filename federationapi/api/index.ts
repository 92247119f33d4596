/**
 * The internal API of the federationapi component: the only door other components may use.
 * In a monolith it is a direct call; in a polylith, NATS request/reply generated from
 * `federationapiInternalAPIMethods`. Every method takes one JSON request and returns JSON.
 */
import type { StatusAPI } from '../../internal/componentapi.js';
import type { JsonObject } from '../../internal/matrix/index.js';
import type { HeaderedEvent } from '../../roomserver/api/index.js';
import type { RoomSummary, SpaceChildEvent } from '../../roomserver/api/index.js';

export interface PerformJoinRequest {
  /** A room ID or a room alias (of another server). */
  room_id_or_alias: string;
  user_id: string;
  /** Servers to ask, besides those the room ID or alias names. */
  server_names: string[];
  /** Extra content of the join event (displayname, avatar_url, reason...). */
  content?: JsonObject;
}
export type PerformJoinResponse =
  | { room_id: string; error?: undefined }
  | {
      error: 'not_found' | 'forbidden' | 'unreachable' | 'incompatible_room_version' | 'remote' | 'failed';
      message: string;
      room_id?: undefined;
      /** For `remote`: the other server's refusal, passed on to the client. */
      status?: number;
      errcode?: string;
      /** For `incompatible_room_version`: the room's version. */
      room_version?: string;
    };

export interface PerformInviteRequest {
  /** The invite, built and signed by us, of another server's user. */
  event: HeaderedEvent;
  /** Stripped state of the room for the invitee. */
  invite_room_state: JsonObject[];
}
/** `bad_json`: the invitee's server sent back an event with numbers its room version forbids (400 M_BAD_JSON). */
export type PerformInviteResponse = { event: HeaderedEvent; error?: undefined } | { error: 'forbidden' | 'unreachable' | 'failed' | 'bad_json'; message: string; event?: undefined };

/**
 * Turns a third-party invite that an identity server has signed for a user (onbind, or a
 * client's /join with `third_party_signed`) into an m.room.member invite of that user. In a
 * room this server holds, the invite is built here (the identity server's key checked for
 * revocation); otherwise the room's servers are asked through /exchange_third_party_invite.
 */
export interface PerformThirdPartyInviteRequest {
  room_id: string;
  /** The inviter: the sender of the m.room.third_party_invite. */
  sender: string;
  /** The invited user; must be the signed object's mxid. */
  user_id: string;
  /** The identity server's signed object: mxid, token, signatures. */
  signed: JsonObject;
  /** The invitee's display name, when the identity server gave one (the room's invite has its own). */
  display_name?: string;
}
export type PerformThirdPartyInviteResponse = { error?: undefined } | { error: 'forbidden' | 'not_found' | 'unreachable' | 'failed'; message: string };

export interface PerformLeaveRequest {
  room_id: string;
  user_id: string;
}
export type PerformLeaveResponse = { error?: undefined } | { error: 'not_invited' | 'forbidden' | 'unreachable' | 'failed'; message: string };

export interface QueryRemoteProfileRequest {
  user_id: string;
  field?: 'displayname' | 'avatar_url';
}
export type QueryRemoteProfileResponse = { profile: JsonObject; error?: undefined } | { error: 'not_found' | 'unreachable'; message: string; profile?: undefined };

export interface QueryRemoteDirectoryRequest {
  alias: string;
}
export type QueryRemoteDirectoryResponse = { room_id: string; servers: string[]; error?: undefined } | { error: 'not_found' | 'unreachable'; message: string; room_id?: undefined };

export interface QueryRemoteKeysRequest {
  server_name: string;
  /** user → device IDs ([] for all). */
  device_keys: Record<string, string[]>;
  timeout_ms: number;
}
export type QueryRemoteKeysResponse =
  | { device_keys: Record<string, Record<string, JsonObject>>; master_keys: Record<string, JsonObject>; self_signing_keys: Record<string, JsonObject>; error?: undefined }
  | { error: string; status: number };

export interface ClaimRemoteKeysRequest {
  server_name: string;
  /** user → device → algorithm. */
  one_time_keys: Record<string, Record<string, string>>;
  timeout_ms: number;
}
export type ClaimRemoteKeysResponse = { one_time_keys: Record<string, Record<string, JsonObject>>; error?: undefined } | { error: string; status: number };

export interface QueryRemoteDeviceListRequest {
  /** A user of another server: their server is asked. */
  user_id: string;
  timeout_ms: number;
}
/** The answer of GET /user/devices/{userId} as the server gave it (the key server checks it); status 503 when there was no answer. */
export type QueryRemoteDeviceListResponse = { body: JsonObject; error?: undefined } | { error: string; status: number };

/**
 * Peeks a room held by other servers (MSC2444 PUT /peek), for the roomserver when a local
 * device peeks a room this server is not in: the room's state is checked and handed to the
 * roomserver, and the peek is renewed until performOutboundUnpeek. Nothing is asked when a
 * live peek of the room exists already.
 */
export interface PerformOutboundPeekRequest {
  room_id: string;
  /** Servers to peek through, in order of preference. */
  server_names: string[];
}
export type PerformOutboundPeekResponse =
  | { error?: undefined; /** The room's state was fetched (now, not by an earlier peek still live). */ fresh: boolean }
  | { error: 'not_found' | 'forbidden' | 'unreachable' | 'incompatible_room_version' | 'remote' | 'failed'; message: string; status?: number; errcode?: string };

/** Ends our peeks into a room (DELETE /peek on the servers peeked through); they are no longer renewed. */
export interface PerformOutboundUnpeekRequest {
  room_id: string;
}
export interface PerformOutboundUnpeekResponse {
  /** There was a peek to end. */
  ended: boolean;
}

/** A space as another server describes it (GET /hierarchy/{roomId}), checked and trimmed to the spec's fields. */
export interface QueryRemoteSpaceHierarchyRequest {
  room_id: string;
  /** The servers to ask, in turn: the `via` of the m.space.child event that names the room. */
  server_names: string[];
  suggested_only: boolean;
}
export type QueryRemoteSpaceHierarchyResponse =
  | {
      room: RoomSummary;
      /** The room's m.space.child events that name a child (only suggested ones when asked). */
      children_state: SpaceChildEvent[];
      /** Summaries of the children the answering server could give. */
      children: RoomSummary[];
      /** Children the answering server says we may not see: not to be asked about elsewhere. */
      inaccessible_children: string[];
      error?: undefined;
    }
  | { error: 'not_found' | 'unreachable'; message: string };

/**
 * GET /timestamp_to_event asked of other servers of a room, when this server's nearest event may
 * not be the room's: each answer is checked (the event fetched, verified, in the room and in
 * the right direction of ts) and, when it is closer than `nearest_local_ts`, backfilled into the
 * roomserver (with the state before it) so that clients can read around it.
 */
export interface PerformRemoteTimestampToEventRequest {
  room_id: string;
  ts: number;
  dir: 'f' | 'b';
  /** The servers to ask, in order of preference. */
  server_names: string[];
  /** The origin_server_ts of the nearest event held here, when there is one: only closer events are wanted. */
  nearest_local_ts?: number;
}
export type PerformRemoteTimestampToEventResponse = { event_id: string; origin_server_ts: number; error?: undefined } | { error: 'not_found' | 'unreachable'; message: string };

/**
 * History of a room asked of its other servers (GET /backfill), for the roomserver when syncapi
 * pages back into a gap. Servers are asked in turn (ours never; a few at most, within a time
 * bound) until one gives events not held here. Those are checked (format, signatures, hashes;
 * others of the room dropped), their missing auth events fetched, the state before each fetched
 * (GET /state_ids) where its prev events are not at hand, and they are input as `old` events
 * (the roomserver checks auth), oldest first.
 */
export interface PerformRemoteBackfillRequest {
  room_id: string;
  /** The events to walk back from (the `v` of GET /backfill): prev events this server lacks. */
  event_ids: string[];
  /** At most this many events are asked for and taken (at most 100). */
  limit: number;
  /** The servers to ask, in order of preference. */
  server_names: string[];
}
export type PerformRemoteBackfillResponse =
  | { /** The events the roomserver took in (accepted or held already), in input order. */ event_ids: string[]; /** The server that gave them. */ server?: string; error?: undefined }
  | { error: 'not_found' | 'unreachable'; message: string };

/** Another server's room directory (the client's `/publicRooms?server=`). */
export interface QueryRemotePublicRoomsRequest {
  server_name: string;
  limit?: number;
  since?: string;
  search_term?: string;
  include_all_networks?: boolean;
  third_party_instance_id?: string;
}
export type QueryRemotePublicRoomsResponse =
  | { chunk: JsonObject[]; next_batch?: string; prev_batch?: string; total_room_count_estimate?: number; error?: undefined }
  | { error: 'not_found' | 'unreachable'; message: string };

export interface FederationInternalAPI extends StatusAPI {
  /** A space's summary and children from another server (GET /hierarchy/{roomId}); answers are cached briefly. */
  queryRemoteSpaceHierarchy(req: QueryRemoteSpaceHierarchyRequest): Promise<QueryRemoteSpaceHierarchyResponse>;
  /** A closer event from other servers of the room (GET /timestamp_to_event), backfilled here. */
  performRemoteTimestampToEvent(req: PerformRemoteTimestampToEventRequest): Promise<PerformRemoteTimestampToEventResponse>;
  /** A room's history behind some events, from its other servers (GET /backfill), checked and input here. */
  performRemoteBackfill(req: PerformRemoteBackfillRequest): Promise<PerformRemoteBackfillResponse>;
  /** Device and cross-signing keys of another server's users (POST /user/keys/query). */
  queryRemoteKeys(req: QueryRemoteKeysRequest): Promise<QueryRemoteKeysResponse>;
  /** One-time keys of another server's users' devices (POST /user/keys/claim). */
  claimRemoteKeys(req: ClaimRemoteKeysRequest): Promise<ClaimRemoteKeysResponse>;
  /** A user's whole device list with its version and cross-signing keys (GET /user/devices/{userId}), to follow it. */
  queryRemoteDeviceList(req: QueryRemoteDeviceListRequest): Promise<QueryRemoteDeviceListResponse>;
  /** Another server's user's profile (GET /query/profile). */
  queryRemoteProfile(req: QueryRemoteProfileRequest): Promise<QueryRemoteProfileResponse>;
  /** Which room another server's alias names (GET /query/directory). */
  queryRemoteDirectory(req: QueryRemoteDirectoryRequest): Promise<QueryRemoteDirectoryResponse>;
  /** Another server's published rooms (POST /publicRooms). */
  queryRemotePublicRooms(req: QueryRemotePublicRoomsRequest): Promise<QueryRemotePublicRoomsResponse>;
  /** Joins a local user to a room held by other servers (make_join, send_join). */
  performJoin(req: PerformJoinRequest): Promise<PerformJoinResponse>;
  /** Sends an invite to the invitee's server (PUT /invite), which signs it too; returns that copy. */
  performInvite(req: PerformInviteRequest): Promise<PerformInviteResponse>;
  /** Rejects an invite into a room this server does not hold (make_leave, send_leave to the inviting server). */
  performLeave(req: PerformLeaveRequest): Promise<PerformLeaveResponse>;
  /** Makes a signed third-party invite an invite of the user it names (here or through the room's servers). */
  performThirdPartyInvite(req: PerformThirdPartyInviteRequest): Promise<PerformThirdPartyInviteResponse>;
  performOutboundPeek(req: PerformOutboundPeekRequest): Promise<PerformOutboundPeekResponse>;
  performOutboundUnpeek(req: PerformOutboundUnpeekRequest): Promise<PerformOutboundUnpeekResponse>;
}

export const federationapiInternalAPIMethods = ['queryComponentStatus', 'queryRemoteSpaceHierarchy', 'performRemoteTimestampToEvent', 'performRemoteBackfill', 'performJoin', 'performInvite', 'performLeave', 'performThirdPartyInvite', 'queryRemoteProfile', 'queryRemoteDirectory', 'queryRemotePublicRooms', 'queryRemoteKeys', 'claimRemoteKeys', 'queryRemoteDeviceList', 'performOutboundPeek', 'performOutboundUnpeek'] as const satisfies ReadonlyArray<keyof FederationInternalAPI>;
