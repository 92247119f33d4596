/**
 * The outbound federation client: signed (X-Matrix) JSON requests to other homeservers, found
 * by server discovery (resolve.ts), over HTTPS with the SNI/Host/certificate name the spec
 * asks for, refusing denied networks before connecting, with a deadline and a response size
 * limit. `request` is the core; the typed helpers below wrap the endpoints components use and
 * throw FederationHttpError for non-2xx answers.
 */
import { serverSoftware } from '../../internal/version.js';
import { parseJsonValue } from '../../internal/matrix/canonicaljson.js';
import { signRequest, type FederationRequest } from '../../internal/matrix/xmatrix.js';
import type { PrivateKeyInput } from '../../internal/matrix/signing.js';
import type { JsonObject, JsonValue } from '../../internal/matrix/types.js';
import { FederationClientError, FederationHttpError } from './errors.js';
import { DEFAULT_ALLOW_NETWORKS, DEFAULT_DENY_NETWORKS, NetworkPolicy } from './networks.js';
import { createWellKnownFetcher, ServerResolver, type DnsClient } from './resolve.js';
import { newAgent, sendToEndpoints, type TransportOptions } from './transport.js';

export const DEFAULT_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024;

export interface FederationClientOptions {
  /** Our server name: the X-Matrix origin. */
  serverName: string;
  /** `ed25519:...` */
  keyId: string;
  /**
   * The private key to sign requests with: the SigningKey (or its privateKeyObject) loaded by
   * setup/signingkey.ts. SigningIdentity exposes only signJson, so setup hands this over.
   */
  signingKey?: PrivateKeyInput;
  /** Signs a request (the X-Matrix header value) without handing over the key; used when `signingKey` is absent. */
  sign?: (req: FederationRequest) => string;
  /** federation_api.disable_tls_validation: accept any certificate. */
  disableTlsValidation: boolean;
  /** Default: Dendrite's private ranges. Tests on 127.0.0.1 pass []. */
  denyNetworks?: readonly string[];
  /** Default: 0.0.0.0/0 and ::/0. */
  allowNetworks?: readonly string[];
  /** federation_api.disable_http_keepalives */
  disableHttpKeepalives?: boolean;
  /** Extra trusted CA certificates (PEM), replacing the system roots when given. */
  trustedCa?: string | Buffer | Array<string | Buffer>;
  /** Default deadline of a request, resolution included: 30 s. */
  timeoutMs?: number;
  /** Default response body limit: 10 MiB. */
  maxResponseBytes?: number;
  /** Per-address connection attempt limit before trying the next address: 5 s. */
  connectTimeoutMs?: number;
  /** Server discovery; by default a ServerResolver over `dns` using this client's transport. */
  resolver?: ServerResolver;
  /** DNS for the default resolver (node:dns/promises by default). */
  dns?: DnsClient;
}

export type QueryParams = Record<string, string | string[] | number | boolean | undefined>;

export interface RequestOptions {
  query?: QueryParams;
  body?: JsonValue;
  timeoutMs?: number;
  maxBytes?: number;
  /** Send X-Matrix authentication (default true; key endpoints need none). */
  auth?: boolean;
}

export interface FederationResponse {
  status: number;
  /** The parsed JSON body; undefined when a non-2xx answer had no JSON body. */
  body: unknown;
}

/** RFC 3986 percent-encoding of one path segment (also `!'()*`, which encodeURIComponent keeps). */
export function encodePathSegment(segment: string): string {
  return encodeURIComponent(segment).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** `path` with an encoded query string; arrays repeat their key, undefined values are left out. */
export function withQuery(path: string, query?: QueryParams): string {
  if (!query) return path;
  const parts: string[] = [];
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) parts.push(`${encodePathSegment(key)}=${encodePathSegment(String(v))}`);
  }
  return parts.length > 0 ? `${path}${path.includes('?') ? '&' : '?'}${parts.join('&')}` : path;
}

/** Tagged template for paths: interpolated values are encoded as path segments. */
function p(strings: TemplateStringsArray, ...values: string[]): string {
  let out = strings[0] ?? '';
  values.forEach((v, i) => (out += encodePathSegment(v) + (strings[i + 1] ?? '')));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Response shapes (top level only; callers check events and signatures themselves)

export interface ServerKeysResponse extends JsonObject {
  server_name: string;
  valid_until_ts: number;
  verify_keys: { [keyId: string]: { key: string } };
}
export interface QueryKeysResponse extends JsonObject {
  server_keys: JsonObject[];
}
export interface MakeMembershipResponse {
  /** The event template to fill in and sign. */
  event: JsonObject;
  /** Absent from old servers (then version "1" or "2"). */
  room_version?: string;
  [key: string]: unknown;
}
export interface SendJoinResponse extends JsonObject {
  origin: string;
  state: JsonObject[];
  auth_chain: JsonObject[];
}
export interface InviteResponse extends JsonObject {
  event: JsonObject;
}
export interface Transaction extends JsonObject {
  origin: string;
  origin_server_ts: number;
  pdus: JsonObject[];
}
export interface OutgoingTransaction {
  origin: string;
  origin_server_ts: number;
  pdus: JsonValue[];
  edus?: JsonValue[];
}
export interface SendTransactionResponse extends JsonObject {
  pdus: { [eventId: string]: JsonObject };
}
export interface MissingEventsRequest {
  earliest_events: string[];
  latest_events: string[];
  limit?: number;
  min_depth?: number;
}
export interface MissingEventsResponse extends JsonObject {
  events: JsonObject[];
}
export interface StateIdsResponse extends JsonObject {
  pdu_ids: string[];
  auth_chain_ids: string[];
}
export interface StateResponse extends JsonObject {
  pdus: JsonObject[];
  auth_chain: JsonObject[];
}
export interface DirectoryResponse extends JsonObject {
  room_id: string;
  servers: string[];
}
export interface UserDevicesResponse extends JsonObject {
  user_id: string;
  stream_id: number;
  devices: JsonObject[];
}
export interface ClaimKeysResponse extends JsonObject {
  one_time_keys: JsonObject;
}
export interface QueryUserKeysResponse extends JsonObject {
  device_keys: JsonObject;
}

/** Checks that a 2xx body is an object holding `fields` of the given JSON kinds. */
function expectObject<T>(destination: string, body: unknown, fields: Record<string, 'string' | 'number' | 'object' | 'array'>): T {
  const bad = (why: string) => new FederationClientError('bad_response', `${destination} answered ${why}`, destination);
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad('with a body that is not a JSON object');
  const obj = body as Record<string, unknown>;
  for (const [name, kind] of Object.entries(fields)) {
    const v = obj[name];
    const ok =
      kind === 'array' ? Array.isArray(v) : kind === 'object' ? typeof v === 'object' && v !== null && !Array.isArray(v) : typeof v === kind;
    if (!ok) throw bad(`without a valid ${JSON.stringify(name)}`);
  }
  return body as T;
}

export class FederationClient {
  readonly serverName: string;
  readonly resolver: ServerResolver;
  private readonly keyId: string;
  private readonly sign: (req: FederationRequest) => string;
  private readonly transport: TransportOptions;
  private readonly timeoutMs: number;
  private readonly maxResponseBytes: number;

  constructor(opts: FederationClientOptions) {
    this.serverName = opts.serverName;
    this.keyId = opts.keyId;
    const key = opts.signingKey;
    if (opts.sign) this.sign = opts.sign;
    else if (key !== undefined) this.sign = (req) => signRequest(req, this.keyId, key);
    else throw new Error('FederationClient needs signingKey or sign');
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxResponseBytes = opts.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    const policy = new NetworkPolicy({
      allowNetworks: opts.allowNetworks ?? DEFAULT_ALLOW_NETWORKS,
      denyNetworks: opts.denyNetworks ?? DEFAULT_DENY_NETWORKS,
    });
    // The resolver's DNS serves the transport's A/AAAA lookups too (late-bound: the resolver
    // may be built below from this very transport).
    const transport: TransportOptions = {
      agent: newAgent({ keepAlive: !opts.disableHttpKeepalives }),
      policy,
      lookup: (host) => this.resolver.lookup(host),
      rejectUnauthorized: !opts.disableTlsValidation,
      connectTimeoutMs: opts.connectTimeoutMs ?? 5_000,
      userAgent: `${serverSoftware.name}/${serverSoftware.version}`,
      ...(opts.trustedCa !== undefined ? { ca: opts.trustedCa } : {}),
    };
    this.transport = transport;
    this.resolver =
      opts.resolver ??
      new ServerResolver({ ...(opts.dns ? { dns: opts.dns } : {}), fetchWellKnown: createWellKnownFetcher(transport) });
  }

  /** Closes pooled connections. */
  close(): void {
    this.transport.agent.destroy();
  }

  /**
   * Sends a request to `destination` and resolves with the status and parsed JSON body of any
   * HTTP answer (non-2xx included; a non-JSON non-2xx body reads as undefined). Throws
   * FederationClientError when there is no usable answer: `unreachable`, `timeout`, `denied`,
   * `too_large`, or `bad_response` (a 2xx body that is not JSON).
   */
  async request(destination: string, method: string, path: string, opts: RequestOptions = {}): Promise<FederationResponse> {
    if (!path.startsWith('/_matrix/')) throw new Error(`federation paths start with /_matrix/, not ${path}`);
    const uri = withQuery(path, opts.query);
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    const signal = AbortSignal.timeout(timeoutMs);
    const headers: Record<string, string> = { Accept: 'application/json' };
    let body: Buffer | undefined;
    if (opts.body !== undefined) {
      body = Buffer.from(JSON.stringify(opts.body), 'utf8');
      headers['Content-Type'] = 'application/json';
    }
    if (opts.auth !== false) {
      headers['Authorization'] = this.sign({ method, uri, origin: this.serverName, destination, ...(opts.body !== undefined ? { content: opts.body } : {}) });
    }
    const timeout = () => new FederationClientError('timeout', `request to ${destination} timed out after ${timeoutMs} ms`, destination);
    if (signal.aborted) throw timeout();
    let endpoints;
    let onAbort: (() => void) | undefined;
    try {
      endpoints = await Promise.race([
        this.resolver.resolve(destination),
        new Promise<never>((_, reject) => {
          onAbort = () => reject(timeout());
          signal.addEventListener('abort', onAbort, { once: true });
        }),
      ]);
    } catch (e) {
      if (e instanceof FederationClientError) throw e;
      throw new FederationClientError('unreachable', `cannot resolve ${destination}: ${e instanceof Error ? e.message : String(e)}`, destination, { cause: e });
    } finally {
      if (onAbort) signal.removeEventListener('abort', onAbort);
    }
    const res = await sendToEndpoints(
      endpoints,
      { method, path: uri, headers, ...(body ? { body } : {}), maxBytes: opts.maxBytes ?? this.maxResponseBytes, signal, destination },
      this.transport,
    );
    const ok = res.status >= 200 && res.status < 300;
    let parsed: unknown;
    try {
      parsed = res.body.length === 0 ? undefined : parseJsonValue(res.body, { strict: false });
    } catch {
      parsed = undefined;
    }
    if (ok && parsed === undefined) {
      throw new FederationClientError('bad_response', `${destination} answered ${res.status} without a JSON body`, destination);
    }
    return { status: res.status, body: parsed };
  }

  /** request(), throwing FederationHttpError unless 2xx, and checking the body's top level. */
  /**
   * The v2 form of an endpoint, or its v1 form for servers that do not know v2 (they answer
   * 404 or 400 M_UNRECOGNIZED); v1 wraps its answer as [200, body].
   */
  private async callV2OrV1<T>(destination: string, method: string, v2: string, v1: string, opts: RequestOptions, fields: Record<string, 'string' | 'number' | 'object' | 'array'>): Promise<T> {
    const res = await this.request(destination, method, v2, opts);
    const unknownEndpoint = res.status === 404 || (res.status === 400 && (res.body as { errcode?: unknown } | undefined)?.errcode === 'M_UNRECOGNIZED');
    if (!unknownEndpoint) {
      if (res.status < 200 || res.status >= 300) throw new FederationHttpError(destination, res.status, res.body);
      return expectObject<T>(destination, res.body, fields);
    }
    const old = await this.request(destination, method, v1, opts);
    if (old.status < 200 || old.status >= 300) throw new FederationHttpError(destination, old.status, old.body);
    const body = Array.isArray(old.body) && old.body.length === 2 ? old.body[1] : old.body;
    return expectObject<T>(destination, body, fields);
  }

  private async call<T>(
    destination: string,
    method: string,
    path: string,
    opts: RequestOptions,
    fields: Record<string, 'string' | 'number' | 'object' | 'array'> = {},
  ): Promise<T> {
    const res = await this.request(destination, method, path, opts);
    if (res.status < 200 || res.status >= 300) throw new FederationHttpError(destination, res.status, res.body);
    return expectObject<T>(destination, res.body, fields);
  }

  // -- keys (no request authentication) --------------------------------------------------------

  /** GET /_matrix/key/v2/server: the server's own keys (verify them before use). */
  getServerKeys(server: string, opts?: Pick<RequestOptions, 'timeoutMs'>): Promise<ServerKeysResponse> {
    return this.call(server, 'GET', '/_matrix/key/v2/server', { ...opts, auth: false }, { server_name: 'string', verify_keys: 'object' });
  }

  /** POST /_matrix/key/v2/query to a notary. */
  queryKeys(notary: string, body: { server_keys: Record<string, Record<string, { minimum_valid_until_ts?: number }>> }, opts?: Pick<RequestOptions, 'timeoutMs'>): Promise<QueryKeysResponse> {
    return this.call(notary, 'POST', '/_matrix/key/v2/query', { ...opts, auth: false, body: body as JsonObject }, { server_keys: 'array' });
  }

  // -- membership ------------------------------------------------------------------------------

  getVersion(destination: string): Promise<JsonObject> {
    return this.call(destination, 'GET', '/_matrix/federation/v1/version', {});
  }

  makeJoin(destination: string, roomId: string, userId: string, roomVersions: readonly string[]): Promise<MakeMembershipResponse> {
    return this.call(destination, 'GET', p`/_matrix/federation/v1/make_join/${roomId}/${userId}`, { query: { ver: [...roomVersions] } }, { event: 'object' });
  }

  /** PUT /_matrix/federation/v2/send_join; `maxBytes` defaults to 100 MiB (big rooms' state). */
  sendJoin(
    destination: string,
    roomId: string,
    eventId: string,
    event: JsonObject,
    opts: { omitMembers?: boolean; timeoutMs?: number; maxBytes?: number } = {},
  ): Promise<SendJoinResponse> {
    return this.callV2OrV1(
      destination,
      'PUT',
      p`/_matrix/federation/v2/send_join/${roomId}/${eventId}`,
      p`/_matrix/federation/v1/send_join/${roomId}/${eventId}`,
      {
        body: event,
        ...(opts.omitMembers ? { query: { omit_members: 'true' } } : {}),
        timeoutMs: opts.timeoutMs ?? Math.max(this.timeoutMs, 120_000),
        maxBytes: opts.maxBytes ?? Math.max(this.maxResponseBytes, 100 * 1024 * 1024),
      },
      { state: 'array', auth_chain: 'array' },
    );
  }

  makeLeave(destination: string, roomId: string, userId: string): Promise<MakeMembershipResponse> {
    return this.call(destination, 'GET', p`/_matrix/federation/v1/make_leave/${roomId}/${userId}`, {}, { event: 'object' });
  }

  /** PUT /_matrix/federation/v2/send_leave (answers `{}`). */
  sendLeave(destination: string, roomId: string, eventId: string, event: JsonObject): Promise<JsonObject> {
    return this.callV2OrV1(destination, 'PUT', p`/_matrix/federation/v2/send_leave/${roomId}/${eventId}`, p`/_matrix/federation/v1/send_leave/${roomId}/${eventId}`, { body: event }, {});
  }

  /** PUT /_matrix/federation/v2/invite: the invitee's server signs and returns the event. */
  invite(
    destination: string,
    roomId: string,
    eventId: string,
    body: { room_version: string; event: JsonObject; invite_room_state?: JsonValue[] },
  ): Promise<InviteResponse> {
    const payload: JsonObject = { room_version: body.room_version, event: body.event, invite_room_state: body.invite_room_state ?? [] };
    const v2 = p`/_matrix/federation/v2/invite/${roomId}/${eventId}`;
    const v1 = p`/_matrix/federation/v1/invite/${roomId}/${eventId}`;
    // v1 takes the event itself, with the stripped state in its unsigned section.
    const v1Body: JsonObject = { ...body.event, unsigned: { ...((body.event['unsigned'] as JsonObject | undefined) ?? {}), invite_room_state: body.invite_room_state ?? [] } };
    return this.request(destination, 'PUT', v2, { body: payload }).then(async (res) => {
      const unknownEndpoint = res.status === 404 || (res.status === 400 && (res.body as { errcode?: unknown } | undefined)?.errcode === 'M_UNRECOGNIZED');
      if (!unknownEndpoint) {
        if (res.status < 200 || res.status >= 300) throw new FederationHttpError(destination, res.status, res.body);
        return expectObject<InviteResponse>(destination, res.body, { event: 'object' });
      }
      const old = await this.request(destination, 'PUT', v1, { body: v1Body });
      if (old.status < 200 || old.status >= 300) throw new FederationHttpError(destination, old.status, old.body);
      return expectObject<InviteResponse>(destination, Array.isArray(old.body) && old.body.length === 2 ? old.body[1] : old.body, { event: 'object' });
    });
  }

  // -- transactions and events -----------------------------------------------------------------

  sendTransaction(destination: string, txnId: string, txn: OutgoingTransaction): Promise<SendTransactionResponse> {
    const body: JsonObject = { origin: txn.origin, origin_server_ts: txn.origin_server_ts, pdus: txn.pdus, edus: txn.edus ?? [] };
    // Any 2xx acknowledges the transaction; some servers leave out the per-PDU results.
    return this.call(destination, 'PUT', p`/_matrix/federation/v1/send/${txnId}`, { body }, {});
  }

  /** GET /_matrix/federation/v1/event/{eventId}: a transaction holding the one PDU. */
  getEvent(destination: string, eventId: string): Promise<Transaction> {
    return this.call(destination, 'GET', p`/_matrix/federation/v1/event/${eventId}`, {}, { pdus: 'array' });
  }

  getMissingEvents(destination: string, roomId: string, req: MissingEventsRequest): Promise<MissingEventsResponse> {
    const body: JsonObject = { earliest_events: req.earliest_events, latest_events: req.latest_events, limit: req.limit ?? 10, min_depth: req.min_depth ?? 0 };
    return this.call(destination, 'POST', p`/_matrix/federation/v1/get_missing_events/${roomId}`, { body }, { events: 'array' });
  }

  stateIds(destination: string, roomId: string, eventId: string): Promise<StateIdsResponse> {
    return this.call(destination, 'GET', p`/_matrix/federation/v1/state_ids/${roomId}`, { query: { event_id: eventId } }, { pdu_ids: 'array', auth_chain_ids: 'array' });
  }

  state(destination: string, roomId: string, eventId: string, opts: { maxBytes?: number } = {}): Promise<StateResponse> {
    return this.call(
      destination,
      'GET',
      p`/_matrix/federation/v1/state/${roomId}`,
      { query: { event_id: eventId }, maxBytes: opts.maxBytes ?? Math.max(this.maxResponseBytes, 100 * 1024 * 1024) },
      { pdus: 'array', auth_chain: 'array' },
    );
  }

  backfill(destination: string, roomId: string, fromEventIds: readonly string[], limit: number): Promise<Transaction> {
    return this.call(destination, 'GET', p`/_matrix/federation/v1/backfill/${roomId}`, { query: { v: [...fromEventIds], limit } }, { pdus: 'array' });
  }

  // -- queries, devices and keys ---------------------------------------------------------------

  queryProfile(destination: string, userId: string, field?: string): Promise<JsonObject> {
    return this.call(destination, 'GET', '/_matrix/federation/v1/query/profile', { query: { user_id: userId, field } });
  }

  queryDirectory(destination: string, roomAlias: string): Promise<DirectoryResponse> {
    return this.call(destination, 'GET', '/_matrix/federation/v1/query/directory', { query: { room_alias: roomAlias } }, { room_id: 'string', servers: 'array' });
  }

  /** POST /publicRooms (the filtered form; servers that lack it answer GET, asked by the caller). */
  publicRooms(destination: string, body: JsonObject): Promise<JsonObject> {
    return this.call(destination, 'POST', '/_matrix/federation/v1/publicRooms', { body }, { chunk: 'array' });
  }

  userDevices(destination: string, userId: string): Promise<UserDevicesResponse> {
    return this.call(destination, 'GET', p`/_matrix/federation/v1/user/devices/${userId}`, {}, { user_id: 'string', devices: 'array' });
  }

  /** POST /user/keys/claim: `oneTimeKeys` maps user → device → algorithm. */
  claimKeys(destination: string, oneTimeKeys: Record<string, Record<string, string>>): Promise<ClaimKeysResponse> {
    return this.call(destination, 'POST', '/_matrix/federation/v1/user/keys/claim', { body: { one_time_keys: oneTimeKeys } }, { one_time_keys: 'object' });
  }

  /** POST /user/keys/query: `deviceKeys` maps user → device IDs ([] for all). */
  queryUserKeys(destination: string, deviceKeys: Record<string, string[]>): Promise<QueryUserKeysResponse> {
    return this.call(destination, 'POST', '/_matrix/federation/v1/user/keys/query', { body: { device_keys: deviceKeys } }, { device_keys: 'object' });
  }
}
