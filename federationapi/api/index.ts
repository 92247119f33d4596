/**
 * The internal API of the federationapi component: the only door other components may use.
 * In a monolith it is a direct call; in a polylith, NATS request/reply generated from
 * `federationapiInternalAPIMethods`. Every method takes one JSON request and returns JSON.
 */
import type { StatusAPI } from '../../internal/componentapi.js';
import type { JsonObject } from '../../internal/matrix/index.js';

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

export interface FederationInternalAPI extends StatusAPI {
  /** Joins a local user to a room held by other servers (make_join, send_join). */
  performJoin(req: PerformJoinRequest): Promise<PerformJoinResponse>;
}

export const federationapiInternalAPIMethods = ['queryComponentStatus', 'performJoin'] as const satisfies ReadonlyArray<keyof FederationInternalAPI>;
