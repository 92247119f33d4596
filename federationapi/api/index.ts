/**
 * The internal API of the federationapi component: the only door other components may use.
 * In a monolith it is a direct call; in a polylith, NATS request/reply generated from
 * `federationapiInternalAPIMethods`. Every method takes one JSON request and returns JSON.
 */
import type { StatusAPI } from '../../internal/componentapi.js';
import type { JsonObject } from '../../internal/matrix/index.js';
import type { HeaderedEvent } from '../../roomserver/api/index.js';

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
export type PerformInviteResponse = { event: HeaderedEvent; error?: undefined } | { error: 'forbidden' | 'unreachable' | 'failed'; message: string; event?: undefined };

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

export interface FederationInternalAPI extends StatusAPI {
  /** Device and cross-signing keys of another server's users (POST /user/keys/query). */
  queryRemoteKeys(req: QueryRemoteKeysRequest): Promise<QueryRemoteKeysResponse>;
  /** One-time keys of another server's users' devices (POST /user/keys/claim). */
  claimRemoteKeys(req: ClaimRemoteKeysRequest): Promise<ClaimRemoteKeysResponse>;
  /** Another server's user's profile (GET /query/profile). */
  queryRemoteProfile(req: QueryRemoteProfileRequest): Promise<QueryRemoteProfileResponse>;
  /** Which room another server's alias names (GET /query/directory). */
  queryRemoteDirectory(req: QueryRemoteDirectoryRequest): Promise<QueryRemoteDirectoryResponse>;
  /** Joins a local user to a room held by other servers (make_join, send_join). */
  performJoin(req: PerformJoinRequest): Promise<PerformJoinResponse>;
  /** Sends an invite to the invitee's server (PUT /invite), which signs it too; returns that copy. */
  performInvite(req: PerformInviteRequest): Promise<PerformInviteResponse>;
  /** Rejects an invite into a room this server does not hold (make_leave, send_leave to the inviting server). */
  performLeave(req: PerformLeaveRequest): Promise<PerformLeaveResponse>;
}

export const federationapiInternalAPIMethods = ['queryComponentStatus', 'performJoin', 'performInvite', 'performLeave', 'queryRemoteProfile', 'queryRemoteDirectory', 'queryRemoteKeys', 'claimRemoteKeys'] as const satisfies ReadonlyArray<keyof FederationInternalAPI>;
