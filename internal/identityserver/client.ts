/**
 * Calls to identity servers (Identity Service API v2): looking a 3PID up, storing an invite for
 * an unbound 3PID, asking whether a public key is still valid, and binding and unbinding a
 * user's 3PID (/3pid/bind with the client's identity server access token, /3pid/unbind signed
 * by this homeserver).
 *
 * The identity server is named by a client (`id_server`) or by an event
 * (`key_validity_url`), so we treat it like any other address someone else chose: every
 * connection is checked against a NetworkPolicy (IP literals before connecting, host names in
 * the DNS lookup itself), answers are capped in size and each exchange has a short deadline.
 * Identity servers speak HTTPS (the spec's `id_server` is a host with an optional port).
 */
import { createHash } from 'node:crypto';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { formatXMatrixHeader, isValidServerName, type JsonObject } from '../matrix/index.js';
import { checkLiteral, policyLookup, type NetworkPolicy } from '../netpolicy/index.js';
import { serverSoftware } from '../version.js';

const DEFAULT_TIMEOUT_MS = 10_000;
const MAX_RESPONSE_BYTES = 64 * 1024;

/**
 * Why a call failed: `unreachable` (no connection, a timeout, an address the policy refuses),
 * `refused` (an HTTP error answer: `status` and, when given, the server's `errcode`) or
 * `bad_response` (a 2xx answer that is not the JSON the API promises).
 */
export type IdentityServerFailure = 'unreachable' | 'refused' | 'bad_response';

export class IdentityServerError extends Error {
  override readonly name = 'IdentityServerError';
  constructor(
    readonly kind: IdentityServerFailure,
    message: string,
    readonly status?: number,
    readonly errcode?: string,
  ) {
    super(message);
  }
}

export interface IdentityServerClientOptions {
  policy: NetworkPolicy;
  /** Check the identity server's certificate (off only for test set-ups with self-signed ones). */
  rejectUnauthorized: boolean;
  /** Deadline of each exchange, connect to last byte. */
  timeoutMs?: number;
  /** Host name resolution (the system resolver by default). */
  resolve?: (host: string) => Promise<string[]>;
}

/** A public key the identity server signs invites with, and where to ask whether it is still valid. */
export interface InvitePublicKey {
  public_key: string;
  key_validity_url?: string;
}

/** The answer of POST /store-invite. */
export interface StoredInvite {
  token: string;
  /** The obfuscated name to show for the invitee. */
  display_name: string;
  public_keys: InvitePublicKey[];
  /** The older single-key form, when the server gives it. */
  public_key?: string;
}

/** The fields of POST /store-invite (all strings; the optional ones only when known). */
export interface StoreInviteRequest {
  medium: string;
  address: string;
  room_id: string;
  sender: string;
  room_alias?: string;
  room_avatar_url?: string;
  room_join_rules?: string;
  room_name?: string;
  room_type?: string;
  sender_display_name?: string;
  sender_avatar_url?: string;
}

/** What /3pid/bind answers: the 3PID the session validated, now bound to `mxid`. */
export interface BoundThreePid {
  medium: string;
  address: string;
  mxid: string;
}

/**
 * How a /3pid/unbind ended without an error: `unbound`, or `not_supported` (the identity server
 * answered 400, 404 or 501 without a Matrix error, or M_UNRECOGNIZED: it has no such endpoint).
 * Any other refusal is an IdentityServerError whose errcode the client should be shown.
 */
export type UnbindOutcome = 'unbound' | 'not_supported';

/** This homeserver's signing, as /3pid/unbind needs it (a SigningIdentity fits). */
export interface HomeserverSigner {
  serverName: string;
  keyId: string;
  /** A copy of `obj` with this server's signature in `signatures`. */
  signJson<T extends JsonObject>(obj: T): T;
}

/**
 * The Authorization header of a request this homeserver makes to an identity server: X-Matrix,
 * signed over {method, uri, origin, destination_is, content}. The identity server's name goes
 * in `destination_is` rather than the federation API's `destination`: that is the object
 * identity servers (Sydent) rebuild to check the signature, and what Synapse signs.
 */
export function identityServerAuthorization(signer: HomeserverSigner, method: string, uri: string, idServer: string, content?: JsonObject): string {
  const request: JsonObject = { method, uri, origin: signer.serverName, destination_is: idServer };
  if (content !== undefined) request['content'] = content;
  const signed = signer.signJson(request);
  const sigs = (signed['signatures'] as Record<string, Record<string, string>> | undefined)?.[signer.serverName];
  const sig = sigs?.[signer.keyId];
  if (typeof sig !== 'string') throw new Error(`signJson gave no ${signer.keyId} signature of ${signer.serverName}`);
  return formatXMatrixHeader({ origin: signer.serverName, key: signer.keyId, sig });
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Whether `name` can name an identity server: a host with an optional port, as server names are. */
export function isIdentityServerName(name: string): boolean {
  return isValidServerName(name);
}

const bearer = (accessToken: string): string => `Bearer ${accessToken}`;

export class IdentityServerClient {
  private readonly timeoutMs: number;

  constructor(private readonly opts: IdentityServerClientOptions) {
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** The Matrix user a 3PID is bound to, or undefined when it is bound to no one. */
  async lookup(idServer: string, accessToken: string, medium: string, address: string): Promise<string | undefined> {
    const details = await this.call(this.url(idServer, '/_matrix/identity/v2/hash_details'), 'GET', { authorization: bearer(accessToken) });
    const algorithms = Array.isArray(details['algorithms']) ? details['algorithms'] : [];
    const pepper = details['lookup_pepper'];
    let query: string;
    let algorithm: string;
    // Hashed lookups keep the address from the identity server's logs; plain ones are the fallback it may offer.
    if (algorithms.includes('sha256') && typeof pepper === 'string') {
      algorithm = 'sha256';
      query = createHash('sha256').update(`${address} ${medium} ${pepper}`, 'utf8').digest('base64url');
    } else if (algorithms.includes('none')) {
      algorithm = 'none';
      query = `${address} ${medium}`;
    } else {
      throw new IdentityServerError('bad_response', `${idServer} offers no lookup algorithm this server knows (sha256, none)`);
    }
    const found = await this.call(this.url(idServer, '/_matrix/identity/v2/lookup'), 'POST', {
      authorization: bearer(accessToken),
      body: { addresses: [query], algorithm, pepper: typeof pepper === 'string' ? pepper : '' },
    });
    const mappings = found['mappings'];
    if (!isObject(mappings)) throw new IdentityServerError('bad_response', `${idServer} answered a lookup without mappings`);
    const mxid = mappings[query];
    return typeof mxid === 'string' ? mxid : undefined;
  }

  /** Has the identity server keep an invite for the 3PID until someone binds it. */
  async storeInvite(idServer: string, accessToken: string, req: StoreInviteRequest): Promise<StoredInvite> {
    const res = await this.call(this.url(idServer, '/_matrix/identity/v2/store-invite'), 'POST', { authorization: bearer(accessToken), body: req as unknown as Json });
    const token = res['token'];
    if (typeof token !== 'string' || token === '') throw new IdentityServerError('bad_response', `${idServer} stored the invite but gave no token`);
    const keys: InvitePublicKey[] = [];
    if (Array.isArray(res['public_keys'])) {
      for (const k of res['public_keys']) {
        if (!isObject(k) || typeof k['public_key'] !== 'string') continue;
        keys.push({ public_key: k['public_key'], ...(typeof k['key_validity_url'] === 'string' ? { key_validity_url: k['key_validity_url'] } : {}) });
      }
    }
    const single = typeof res['public_key'] === 'string' ? res['public_key'] : undefined;
    if (keys.length === 0 && single === undefined) throw new IdentityServerError('bad_response', `${idServer} stored the invite but gave no public key`);
    return {
      token,
      display_name: typeof res['display_name'] === 'string' ? res['display_name'] : '',
      public_keys: keys,
      ...(single !== undefined ? { public_key: single } : {}),
    };
  }

  /**
   * POST /3pid/bind: the identity server publishes the association of the 3PID that session
   * `sid` validated with `mxid`. Returns the 3PID it bound (the homeserver learns it only here).
   */
  async bind(idServer: string, accessToken: string, req: { sid: string; client_secret: string; mxid: string }): Promise<BoundThreePid> {
    const res = await this.call(this.url(idServer, '/_matrix/identity/v2/3pid/bind'), 'POST', { authorization: bearer(accessToken), body: req });
    const { medium, address, mxid } = res;
    if (typeof medium !== 'string' || medium === '' || typeof address !== 'string' || address === '') {
      throw new IdentityServerError('bad_response', `${idServer} answered /3pid/bind without the medium and address it bound`);
    }
    // An identity server that bound the 3PID to someone else has not done what was asked.
    if (mxid !== undefined && mxid !== req.mxid) throw new IdentityServerError('bad_response', `${idServer} bound the 3PID to ${String(mxid)}, not ${req.mxid}`);
    return { medium, address, mxid: req.mxid };
  }

  /** POST /3pid/unbind, authenticated by this homeserver's signature (the user's server controls the mxid). */
  async unbind(idServer: string, signer: HomeserverSigner, mxid: string, threepid: { medium: string; address: string }): Promise<UnbindOutcome> {
    const path = '/_matrix/identity/v2/3pid/unbind';
    const body: JsonObject = { mxid, threepid: { medium: threepid.medium, address: threepid.address } };
    try {
      // The answer is {} by the spec; any 2xx means unbound, whatever its body.
      await this.call(this.url(idServer, path), 'POST', { authorization: identityServerAuthorization(signer, 'POST', path, idServer, body), body, anyBody: true });
      return 'unbound';
    } catch (e) {
      const unsupportedStatus = e instanceof IdentityServerError && e.kind === 'refused' && (e.status === 400 || e.status === 404 || e.status === 501);
      if (unsupportedStatus && (e.errcode === undefined || e.errcode === 'M_UNRECOGNIZED')) return 'not_supported';
      throw e;
    }
  }

  /** GET key_validity_url?public_key=...: whether the identity server still vouches for the key. */
  async isKeyValid(keyValidityUrl: string, publicKey: string): Promise<boolean> {
    let url: URL;
    try {
      url = new URL(keyValidityUrl);
    } catch {
      throw new IdentityServerError('bad_response', `key_validity_url ${JSON.stringify(keyValidityUrl)} is not a URL`);
    }
    if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.username || url.password) {
      throw new IdentityServerError('bad_response', `key_validity_url ${JSON.stringify(keyValidityUrl)} is not an http(s) URL`);
    }
    url.searchParams.set('public_key', publicKey);
    const res = await this.call(url, 'GET', {});
    if (typeof res['valid'] !== 'boolean') throw new IdentityServerError('bad_response', `${url.host} answered without "valid"`);
    return res['valid'];
  }

  /** The base URL of an identity server named by a client: https://<id_server>. */
  baseUrl(idServer: string): string {
    if (!isIdentityServerName(idServer)) throw new IdentityServerError('bad_response', `${JSON.stringify(idServer)} is not an identity server name`);
    return `https://${idServer}`;
  }

  private url(idServer: string, path: string): URL {
    return new URL(`${this.baseUrl(idServer)}${path}`);
  }

  /**
   * One JSON exchange; a 2xx JSON object, or IdentityServerError. With `anyBody`, a 2xx answer
   * that is not a JSON object counts as {}.
   */
  private async call(url: URL, method: 'GET' | 'POST', opts: { authorization?: string; body?: Json; anyBody?: boolean }): Promise<Json> {
    const { body } = opts;
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body), 'utf8');
    const headers: Record<string, string> = { Accept: 'application/json', 'User-Agent': `${serverSoftware.name}/${serverSoftware.version}` };
    if (opts.authorization !== undefined) headers['Authorization'] = opts.authorization;
    if (payload) Object.assign(headers, { 'Content-Type': 'application/json', 'Content-Length': String(payload.length) });
    let status: number;
    let raw: Buffer;
    try {
      checkLiteral(this.opts.policy, url.hostname);
      ({ status, raw } = await this.send(url, method, headers, payload));
    } catch (e) {
      if (e instanceof IdentityServerError) throw e;
      throw new IdentityServerError('unreachable', `identity server ${url.host} could not be reached: ${e instanceof Error ? e.message : String(e)}`);
    }
    let parsed: unknown;
    try {
      parsed = raw.length === 0 ? undefined : JSON.parse(raw.toString('utf8'));
    } catch {
      parsed = undefined;
    }
    if (status < 200 || status >= 300) {
      const errcode = isObject(parsed) && typeof parsed['errcode'] === 'string' ? parsed['errcode'] : undefined;
      const error = isObject(parsed) && typeof parsed['error'] === 'string' ? `: ${parsed['error']}` : '';
      throw new IdentityServerError('refused', `identity server ${url.host} answered ${status}${errcode ? ` ${errcode}` : ''}${error}`, status, errcode);
    }
    if (!isObject(parsed)) {
      if (opts.anyBody) return {};
      throw new IdentityServerError('bad_response', `identity server ${url.host} answered ${status} without a JSON object`);
    }
    return parsed;
  }

  private send(url: URL, method: string, headers: Record<string, string>, payload: Buffer | undefined): Promise<{ status: number; raw: Buffer }> {
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const signal = AbortSignal.timeout(this.timeoutMs);
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        {
          method,
          headers,
          signal,
          lookup: policyLookup(this.opts.policy, this.opts.resolve),
          // Identity servers are few and rarely called: nothing worth pooling.
          agent: false,
          ...(url.protocol === 'https:' ? { rejectUnauthorized: this.opts.rejectUnauthorized } : {}),
        },
        (res: IncomingMessage) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (d: Buffer) => {
            size += d.length;
            if (size > MAX_RESPONSE_BYTES) {
              res.destroy(new Error(`the answer is larger than ${MAX_RESPONSE_BYTES} bytes`));
              return;
            }
            chunks.push(d);
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, raw: Buffer.concat(chunks) }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }
}
