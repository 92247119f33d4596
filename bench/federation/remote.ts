/**
 * A fake remote homeserver for the federation benchmarks: an HTTPS server on loopback named
 * `127.0.0.1:<port>` that publishes its signing key (GET /_matrix/key/v2/server, self-signed)
 * and hands every other request to the benchmark; a signed-request client to talk to our
 * server; and a builder of the remote's own signed events of one room.
 */
import { Agent, createServer, request as httpsRequest, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildEvent, generateSigningKey, signJson, signRequest, type Event, type JsonObject, type SigningKey } from '../../internal/matrix/index.js';
import { generateTlsMaterial } from '../../setup/tlscert.js';

export interface RemoteRequest {
  method: string;
  /** The path without the query string. */
  path: string;
  url: string;
  body: unknown;
}

export interface RemoteAnswer {
  status: number;
  /** A JSON value, or an already serialised body. */
  body: unknown;
}

export type RemoteHandler = (req: RemoteRequest) => Promise<RemoteAnswer | undefined> | RemoteAnswer | undefined;

export interface Destination {
  /** The server name (X-Matrix destination). */
  name: string;
  port: number;
}

export class FakeRemote {
  readonly key: SigningKey = generateSigningKey();
  /** Requests the handler did not answer (method and path), for the report. */
  readonly unhandled: string[] = [];
  private readonly agent = new Agent({ rejectUnauthorized: false, keepAlive: true, maxSockets: 8 });
  private server!: Server;
  serverName = '';
  port = 0;

  private constructor(private readonly handler: RemoteHandler) {}

  static async start(handler: RemoteHandler): Promise<FakeRemote> {
    const r = new FakeRemote(handler);
    const tls = await generateTlsMaterial({ hosts: ['127.0.0.1', 'localhost'], keySize: 2048 });
    r.server = createServer({ key: tls.keyPem, cert: tls.certPem }, (req, res) => {
      r.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ errcode: 'M_UNKNOWN', error: String(err) }));
      });
    });
    await new Promise<void>((resolve) => r.server.listen(0, '127.0.0.1', resolve));
    r.port = (r.server.address() as AddressInfo).port;
    r.serverName = `127.0.0.1:${r.port}`;
    return r;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const url = req.url ?? '/';
    const path = url.split('?')[0] ?? '/';
    const send = (status: number, body: unknown) => {
      const text = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
      res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
      res.end(text);
    };
    if (req.method === 'GET' && (path === '/_matrix/key/v2/server' || path.startsWith('/_matrix/key/v2/server/'))) {
      const doc = {
        server_name: this.serverName,
        valid_until_ts: Date.now() + 24 * 3600 * 1000,
        verify_keys: { [this.key.keyId]: { key: this.key.publicKeyBase64 } },
        old_verify_keys: {},
      };
      send(200, signJson(doc, this.serverName, this.key.keyId, this.key));
      return;
    }
    const answer = await this.handler({ method: req.method ?? 'GET', path, url, body: raw ? (JSON.parse(raw) as unknown) : undefined });
    if (answer) {
      send(answer.status, answer.body);
      return;
    }
    this.unhandled.push(`${req.method} ${path}`);
    send(404, { errcode: 'M_UNRECOGNIZED', error: 'not served by the benchmark remote' });
  }

  /** The Authorization header of a request from this server to `dest`. */
  authorization(dest: Destination, method: string, uri: string, body?: JsonObject): string {
    return signRequest({ method, uri, origin: this.serverName, destination: dest.name, ...(body !== undefined ? { content: body } : {}) }, this.key.keyId, this.key);
  }

  /** Sends a request whose body is already serialised and signed. */
  raw(dest: Destination, method: string, uri: string, authorization: string, body?: string): Promise<{ status: number; body: unknown }> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = { Authorization: authorization };
      if (body !== undefined) {
        headers['Content-Type'] = 'application/json';
        headers['Content-Length'] = Buffer.byteLength(body);
      }
      const r = httpsRequest({ host: '127.0.0.1', port: dest.port, method, path: uri, agent: this.agent, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            // not JSON: keep the text
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
        res.on('error', reject);
      });
      r.on('error', reject);
      r.end(body);
    });
  }

  /** A signed federation request to `dest`; the parsed answer. */
  request(dest: Destination, method: string, uri: string, body?: JsonObject): Promise<{ status: number; body: unknown }> {
    return this.raw(dest, method, uri, this.authorization(dest, method, uri, body), body === undefined ? undefined : JSON.stringify(body));
  }

  async close(): Promise<void> {
    this.agent.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Builds the remote's own signed events of one room (room version `version`). */
export function remoteEvent(
  remote: FakeRemote,
  version: string,
  fields: { type: string; state_key?: string; sender: string; room_id?: string; content: JsonObject; prev_events: string[]; auth_events: string[]; depth: number },
): Event {
  return buildEvent(fields, version, remote.serverName, remote.key.keyId, remote.key);
}
