/**
 * The internal API of the mediaapi component: the only door other components may use.
 * In a monolith it is a direct call; in a polylith, NATS request/reply generated from
 * `mediaapiInternalAPIMethods`. Every method takes one JSON request and returns JSON.
 *
 * Also here: what mediaapi needs of federation (FederationMediaClient, FederationRequestVerifier).
 * federationapi implements them (federationapi.ts `newMediaFederation`) and setup hands them to
 * mediaapi, so neither component reaches into the other.
 */
import type { Readable } from 'node:stream';
import type { StatusAPI } from '../../internal/componentapi.js';

export type MediaInternalAPI = StatusAPI;

export const mediaapiInternalAPIMethods = ['queryComponentStatus'] as const satisfies ReadonlyArray<keyof MediaInternalAPI>;

/** Another server's answer, its body still streaming. */
export interface RemoteMediaResponse {
  status: number;
  /** Lower-case names, as node:http gives them. */
  headers: Readonly<Record<string, string | string[] | undefined>>;
  /** Read it to the end or destroy it. */
  body: Readable;
}

/** Signed, streaming GETs to other servers (server discovery, X-Matrix, network policy). */
export interface FederationMediaClient {
  /**
   * GET `path` (an encoded path under /_matrix/, with its query) on `serverName`. Resolves as soon
   * as the status and headers are in, whatever the status; rejects when there is no answer
   * (unreachable, refused by deny_networks, or `signal` aborted). Aborting `signal` later
   * destroys the body.
   */
  get(serverName: string, path: string, signal: AbortSignal): Promise<RemoteMediaResponse>;
}

/** The X-Matrix check of inbound federation requests. */
export interface FederationRequestVerifier {
  /**
   * Verifies the request's X-Matrix signature (a request without body: the media routes are
   * GETs) and resolves with the origin server name. Rejects with a MatrixError (401
   * M_UNAUTHORIZED, or 400 for an origin that is not a server name) otherwise.
   */
  verify(req: { method: string; uri: string; authorization: string | undefined }): Promise<string>;
}

/** What mediaapi is given when federation is on. */
export interface MediaFederation {
  client: FederationMediaClient;
  verifier: FederationRequestVerifier;
}
