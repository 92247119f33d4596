/**
 * A fake identity server for tests, shaped like Sytest's (lib/SyTest/Identity/Server.pm): HTTPS
 * with a self-signed certificate, v2 hashed lookups, store-invite, pubkey/isvalid, and
 * `bind()`, which calls a homeserver's /3pid/onbind with the invites it keeps, signed.
 * Keys can be rotated (old signatures stop verifying, old keys become invalid) and the server
 * can be closed (unreachable).
 */
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
    if (url.pathname === '/_matrix/identity/v2/pubkey/isvalid') {
      send(200, { valid: this.publicKeys.includes(url.searchParams.get('public_key') ?? '') });
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
      default:
        send(404, { errcode: 'M_UNRECOGNIZED', error: 'Unrecognized request' });
    }
  }
}
