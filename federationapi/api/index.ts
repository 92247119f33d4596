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
  | { error: 'not_found' | 'forbidden' | 'unreachable' | 'incompatible_room_version' | 'failed'; message: string; room_id?: undefined };

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

export interface FederationInternalAPI extends StatusAPI {
  /** Joins a local user to a room held by other servers (make_join, send_join). */
  performJoin(req: PerformJoinRequest): Promise<PerformJoinResponse>;
  /** Sends an invite to the invitee's server (PUT /invite), which signs it too; returns that copy. */
  performInvite(req: PerformInviteRequest): Promise<PerformInviteResponse>;
  /** Rejects an invite into a room this server does not hold (make_leave, send_leave to the inviting server). */
  performLeave(req: PerformLeaveRequest): Promise<PerformLeaveResponse>;
}

export const federationapiInternalAPIMethods = ['queryComponentStatus', 'performJoin', 'performInvite', 'performLeave'] as const satisfies ReadonlyArray<keyof FederationInternalAPI>;
