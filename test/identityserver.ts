/**
 * A fake identity server for tests, shaped like Sytest's (lib/SyTest/Identity/Server.pm): HTTPS
 * with a self-signed certificate, v2 hashed lookups, store-invite, pubkey/isvalid, and
 * `bind()`, which calls a homeserver's /3pid/onbind with the invites it keeps, signed.
 * Keys can be rotated (old signatures stop verifying, old keys become invalid) and the server
 * can be closed (unreachable).
 *
 * Bindings made by homeservers: validateSession() stands for the validation a client does at
 * the identity server; POST /3pid/bind then binds that session's 3PID. POST /3pid/unbind needs
 * the homeserver's X-Matrix signature (over {method, uri, origin, destination_is, content}, as
 * Sydent checks it), verified with @noble/ed25519 against the key the homeserver publishes at
 * /_matrix/key/v2/server (its base URL given in `homeservers`).
 */
import * as ed from '@noble/ed25519';
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { canonicalJson, type JsonObject } from '../internal/matrix/index.js';
import { generateTlsMaterial } from '../setup/tlscert.js';

export const ID_ACCESS_TOKEN = 'swordfish';
const PEPPER = 'matrixrocks';

interface KeyPair {
  publicKey: string;
  privateKey: KeyObject;
}
function newKeyPair(): KeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'jwk' }).x as string;
  return { publicKey: Buffer.from(raw, 'base64url').toString('base64').replace(/=+$/, ''), privateKey };
}

export interface StoredInvite {
  medium: string;
  address: string;
  room_id: string;
  sender: string;
  token: string;
}

export class FakeIdentityServer {
  /** host:port, what clients give as id_server. */
  name = '';
  readonly requests: Array<{ method: string; path: string; authorization: string | undefined; body: JsonObject | undefined }> = [];
  readonly invites: StoredInvite[] = [];
  private main = newKeyPair();
  private ephemeral = newKeyPair();
  /** Homeserver name -> base URL where its keys are published. */
  readonly homeservers = new Map<string, string>();
  /** Forced answers by path (an identity server that refuses or is broken). */
  readonly overrides = new Map<string, { status: number; body?: unknown }>();
  /** Unbinds whose signature verified. */
  readonly unbinds: Array<{ origin: string; mxid: string; medium: string; address: string }> = [];
  private readonly sessions = new Map<string, { medium: string; address: string; clientSecret: string }>();
  private nextSid = 0;
  private readonly bindings = new Map<string, string>();
  private readonly hashes = new Map<string, string>();
  private nextToken = 0;
  private server: Server | undefined;

  static async start(): Promise<FakeIdentityServer> {
    const is = new FakeIdentityServer();
    const tls = await generateTlsMaterial({ hosts: ['127.0.0.1', 'localhost'], keySize: 2048 });
    is.server = createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => void is.handle(req, res));
    await new Promise<void>((resolve) => is.server!.listen(0, '127.0.0.1', resolve));
    is.name = `127.0.0.1:${(is.server.address() as { port: number }).port}`;
    return is;
  }

  /** Stops listening and drops open connections: the server becomes unreachable. */
  async close(): Promise<void> {
    if (!this.server) return;
    const s = this.server;
    this.server = undefined;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  /** New keys: what was signed before no longer verifies with them, and the old ones are invalid. */
  rotateKeys(): void {
    this.main = newKeyPair();
    this.ephemeral = newKeyPair();
  }

  get publicKeys(): string[] {
    return [this.main.publicKey, this.ephemeral.publicKey];
  }

  /** Signs `obj` in place-free fashion (returns a signed copy), with the main or the ephemeral key. */
  sign<T extends JsonObject>(obj: T, opts: { ephemeral?: boolean } = {}): T {
    const { signatures: _s, unsigned: _u, ...rest } = obj;
    const sig = sign(null, Buffer.from(canonicalJson(rest), 'utf8'), (opts.ephemeral ? this.ephemeral : this.main).privateKey).toString('base64').replace(/=+$/, '');
    return { ...obj, signatures: { [this.name]: { 'ed25519:0': sig } } };
  }

  /**
   * Binds a 3PID to a user; with a homeserver's base URL, calls its /3pid/onbind with the
   * invites kept for the 3PID. `beforeCall` runs after signing and before the call (Sytest
   * rotates keys or closes the server there).
   */
  async bind(medium: string, address: string, mxid: string, hsBaseUrl?: string, beforeCall?: () => void | Promise<void>): Promise<number | undefined> {
    this.bindings.set(`${medium}\0${address}`, mxid);
    this.hashes.set(createHash('sha256').update(`${address} ${medium} ${PEPPER}`).digest('base64url'), mxid);
    if (hsBaseUrl === undefined) return undefined;
    const invites = this.invites
      .filter((i) => i.medium === medium && i.address === address)
      .map((i) => ({ ...i, mxid, signed: this.sign({ mxid, token: i.token }) }));
    const body = this.sign({ medium, address, mxid, invites } as unknown as JsonObject);
    await beforeCall?.();
    const res = await fetch(`${hsBaseUrl}/_matrix/federation/v1/3pid/onbind`, { method: 'POST', body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } });
    await res.text();
    return res.status;
  }

  /** A session in which the 3PID was validated (what a client does at the identity server itself); its sid. */
  validateSession(medium: string, address: string, clientSecret: string): string {
    const sid = `session_${this.nextSid++}`;
    this.sessions.set(sid, { medium, address, clientSecret });
    return sid;
  }

  /** Who the 3PID is bound to here. */
  boundTo(medium: string, address: string): string | undefined {
    return this.bindings.get(`${medium}\0${address}`);
  }

  private unbind(medium: string, address: string): void {
    this.bindings.delete(`${medium}\0${address}`);
    this.hashes.delete(createHash('sha256').update(`${address} ${medium} ${PEPPER}`).digest('base64url'));
  }

  /** Checks a homeserver's X-Matrix header the way Sydent does; the origin when it verifies. */
  private async verifyHomeserver(req: IncomingMessage, content: JsonObject | undefined): Promise<string | undefined> {
    const header = req.headers.authorization ?? '';
    const m = /^X-Matrix\s+(.*)$/.exec(header);
    if (!m) return undefined;
    const params = new Map<string, string>();
    for (const part of m[1]!.split(',')) {
      const i = part.indexOf('=');
      if (i < 0) return undefined;
      params.set(part.slice(0, i).trim(), part.slice(i + 1).trim().replace(/^"(.*)"$/, '$1'));
    }
    const origin = params.get('origin');
    const keyId = params.get('key');
    const sig = params.get('sig');
    const base = origin === undefined ? undefined : this.homeservers.get(origin);
    if (!origin || !keyId || !sig || base === undefined) return undefined;
    const keys = (await (await fetch(`${base}/_matrix/key/v2/server`)).json()) as { server_name?: string; verify_keys?: Record<string, { key: string }> };
    const key = keys.verify_keys?.[keyId]?.key;
    if (keys.server_name !== origin || key === undefined) return undefined;
    const signed: JsonObject = { method: req.method ?? '', uri: req.url ?? '', origin, destination_is: this.name };
    if (content !== undefined) signed['content'] = content;
    const ok = await ed.verifyAsync(Buffer.from(sig, 'base64'), Buffer.from(canonicalJson(signed), 'utf8'), Buffer.from(key, 'base64'));
    return ok ? origin : undefined;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const body = text ? (JSON.parse(text) as JsonObject) : undefined;
    const url = new URL(req.url ?? '/', 'https://x');
    this.requests.push({ method: req.method ?? '', path: url.pathname, authorization: req.headers.authorization, body });
    const send = (status: number, out: unknown): void => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(out));
    };
    const forced = this.overrides.get(url.pathname);
    if (forced) {
      res.writeHead(forced.status, forced.body === undefined ? {} : { 'Content-Type': 'application/json' });
      res.end(forced.body === undefined ? '' : JSON.stringify(forced.body));
      return;
    }
    if (url.pathname === '/_matrix/identity/v2/pubkey/isvalid') {
      send(200, { valid: this.publicKeys.includes(url.searchParams.get('public_key') ?? '') });
      return;
    }
    if (url.pathname === '/_matrix/identity/v2/3pid/unbind') {
      // Authenticated by the homeserver that controls the user ID, not by an access token.
      const origin = await this.verifyHomeserver(req, body);
      const mxid = body?.['mxid'];
      const threepid = body?.['threepid'] as { medium?: unknown; address?: unknown } | undefined;
      if (origin === undefined || typeof mxid !== 'string' || !mxid.endsWith(`:${origin}`)) {
        send(403, { errcode: 'M_FORBIDDEN', error: 'Invalid homeserver signature' });
        return;
      }
      const medium = String(threepid?.medium);
      const address = String(threepid?.address);
      if (this.boundTo(medium, address) !== mxid) {
        // As Sytest's: not bound to that user here, an answer without a Matrix error.
        res.writeHead(404, { 'Content-Length': '0' });
        res.end();
        return;
      }
      this.unbind(medium, address);
      this.unbinds.push({ origin, mxid, medium, address });
      send(200, {});
      return;
    }
    if (req.headers.authorization !== `Bearer ${ID_ACCESS_TOKEN}`) {
      send(401, { errcode: 'M_UNAUTHORIZED', error: 'Unrecognised access token' });
      return;
    }
    switch (url.pathname) {
      case '/_matrix/identity/v2/hash_details':
        send(200, { lookup_pepper: PEPPER, algorithms: ['none', 'sha256'] });
        return;
      case '/_matrix/identity/v2/lookup': {
        const addresses = (body?.['addresses'] ?? []) as string[];
        if (body?.['algorithm'] !== 'sha256' || body['pepper'] !== PEPPER) {
          send(400, { errcode: 'M_INVALID_PEPPER', error: 'wrong pepper' });
          return;
        }
        send(200, { mappings: Object.fromEntries(addresses.filter((a) => this.hashes.has(a)).map((a) => [a, this.hashes.get(a)])) });
        return;
      }
      case '/_matrix/identity/v2/store-invite': {
        const b = body ?? {};
        const invite = { medium: String(b['medium']), address: String(b['address']), room_id: String(b['room_id']), sender: String(b['sender']), token: `tok${this.nextToken++}` };
        this.invites.push(invite);
        const url = `https://${this.name}/_matrix/identity/v2/pubkey/isvalid`;
        send(200, {
          token: invite.token,
          display_name: 'Bob',
          public_key: this.main.publicKey,
          public_keys: [
            { public_key: this.main.publicKey, key_validity_url: url },
            { public_key: this.ephemeral.publicKey, key_validity_url: url },
          ],
        });
        return;
      }
      case '/_matrix/identity/v2/3pid/bind': {
        const session = this.sessions.get(String(body?.['sid']));
        if (!session || session.clientSecret !== body?.['client_secret']) {
          send(404, { errcode: 'M_NO_VALID_SESSION', error: 'No valid session was found matching that sid and client secret' });
          return;
        }
        const mxid = String(body?.['mxid']);
        await this.bind(session.medium, session.address, mxid);
        send(200, this.sign({ medium: session.medium, address: session.address, mxid, not_before: 0, not_after: 4582425849161, ts: Date.now() }));
        return;
      }
      default:
        send(404, { errcode: 'M_UNRECOGNIZED', error: 'Unrecognized request' });
    }
  }
}
