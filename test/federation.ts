/**
 * Integration-test helpers for federation: servers of ours that federate with each other over
 * HTTPS on loopback. Each is named `127.0.0.1:<its HTTPS port>`, trusts any certificate and may
 * connect to private addresses (both off in real configurations).
 */
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { generateTlsMaterial } from '../setup/tlscert.js';
import { getJson, startTestServer, testConfig, type TestServer } from './harness.js';

export interface FederatingNode {
  t: TestServer;
  /** The server name: `127.0.0.1:<port>`. */
  name: string;
  /** https://127.0.0.1:<port> */
  https: string;
}

/** A TCP port nothing listens on now (taken by the caller right after). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** `overrides` may change the configuration document further (databases, limits). */
export async function startFederatingNode(overrides: (doc: Record<string, Record<string, unknown>>) => void = () => {}): Promise<FederatingNode> {
  const port = await freePort();
  const name = `127.0.0.1:${port}`;
  const { cfg, dir } = testConfig((doc) => {
    doc.global!.server_name = name;
    doc.federation_api!.disable_tls_validation = true;
    doc.federation_api!.deny_networks = [];
    overrides(doc);
  });
  const tls = await generateTlsMaterial({ hosts: ['127.0.0.1', 'localhost'], keySize: 2048 });
  writeFileSync(path.join(dir, 'tls.crt'), tls.certPem);
  writeFileSync(path.join(dir, 'tls.key'), tls.keyPem);
  const t = await startTestServer({ cfg, dir, tls: { certFile: path.join(dir, 'tls.crt'), keyFile: path.join(dir, 'tls.key') }, httpsPort: port });
  return { t, name, https: `https://127.0.0.1:${port}` };
}

/**
 * A request to `to`'s federation API over HTTPS, as `from`'s federation client sends it: signed
 * by `from` unless `authorization` says otherwise (a header of the caller's, or null for none).
 * `path` starts at /_matrix. `raw` sends a body as it is (malformed JSON).
 */
export async function federationRequest(
  from: FederatingNode,
  to: FederatingNode,
  method: string,
  path: string,
  opts: { body?: unknown; raw?: string; authorization?: string | null } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const { request, Agent } = await import('node:https');
  const authorization =
    opts.authorization === undefined
      ? from.t.server.identity.signRequest({ method, uri: path, origin: from.name, destination: to.name, ...(opts.body !== undefined ? { content: opts.body as never } : {}) })
      : opts.authorization;
  const payload = opts.raw ?? (opts.body !== undefined ? JSON.stringify(opts.body) : undefined);
  const headers: Record<string, string> = {};
  if (authorization !== null) headers['Authorization'] = authorization;
  if (payload !== undefined) Object.assign(headers, { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(payload)) });
  return new Promise((resolve, reject) => {
    const r = request(`${to.https}${path}`, { method, agent: new Agent({ rejectUnauthorized: false }), headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} });
      });
      res.on('error', reject);
    });
    r.on('error', reject);
    r.end(payload);
  });
}

/**
 * Starts `node` again after `node.t.stop()`: the same configuration, databases, signing key,
 * TLS files and HTTPS port (so the same server name), as a restarted process would have.
 */
export async function restartFederatingNode(node: FederatingNode): Promise<FederatingNode> {
  const port = Number(node.name.slice(node.name.lastIndexOf(':') + 1));
  const dir = node.t.dir;
  const t = await startTestServer({ cfg: node.t.cfg, dir, tls: { certFile: path.join(dir, 'tls.crt'), keyFile: path.join(dir, 'tls.key') }, httpsPort: port });
  return { t, name: node.name, https: node.https };
}

/** A Client-Server API call to node `n` (`p` under /_matrix/client/v3); an empty token sends no Authorization. */
export function nodeRequest(n: FederatingNode, method: string, p: string, token: string, body?: unknown): ReturnType<typeof getJson> {
  return getJson(`${n.t.baseUrl}/_matrix/client/v3${p}`, {
    method,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
  });
}

/** Registers `user` (password `pw`) on node `n` through the dummy flow; its access token. */
export async function registerOn(n: FederatingNode, user: string): Promise<string> {
  return (await nodeRequest(n, 'POST', '/register', '', { auth: { type: 'm.login.dummy' }, username: user, password: 'pw' })).body.access_token as string;
}
