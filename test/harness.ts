/**
 * Integration-test helpers: a real server in this process on free ports, configured like a
 * home install (embedded SQLite in a temp folder, in-memory bus), and HTTP calls to it.
 */
import { createHmac } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { parseConfig, type Config } from '../setup/config/config.js';
import { generateConfigDocument } from '../setup/config/generate.js';
import { startServer, type RunningServer } from '../setup/server.js';
import { formatMatrixKeyPem, generateSigningKey } from '../internal/matrix/index.js';
import type { ComponentName } from '../internal/componentapi.js';
import { createTestDatabase } from '../internal/sqlutil/testing.js';

export interface TestServer {
  server: RunningServer;
  cfg: Config;
  dir: string;
  /** http://127.0.0.1:<port> */
  baseUrl: string;
  stop(): Promise<void>;
}

/** A -ci configuration in a temp folder; `db` (a postgres:// URL) replaces the embedded SQLite databases. */
export function testConfig(overrides: (doc: Record<string, Record<string, unknown>>) => void = () => {}, db?: string): { cfg: Config; dir: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'dendrite-test-'));
  const doc = generateConfigDocument({ ci: true, dir, serverName: 'localhost:8008', ...(db !== undefined ? { db } : {}) }) as Record<string, Record<string, unknown>>;
  doc.logging = [{ type: 'std', level: 'error' }] as unknown as Record<string, unknown>;
  overrides(doc);
  const { keyId, seed } = generateSigningKey();
  writeFileSync(path.join(dir, 'matrix_key.pem'), formatMatrixKeyPem(keyId, seed));
  return { cfg: parseConfig(doc, dir), dir };
}

export async function startTestServer(
  opts: { cfg?: Config; dir?: string; components?: ComponentName[]; tls?: { certFile: string; keyFile: string }; httpsPort?: number } = {},
): Promise<TestServer> {
  const made = opts.cfg ? { cfg: opts.cfg, dir: opts.dir ?? '' } : testConfig();
  const server = await startServer({
    cfg: made.cfg,
    logger: pino({ level: 'silent' }),
    httpBind: { host: '127.0.0.1', port: 0 },
    ...(opts.components ? { components: opts.components } : {}),
    ...(opts.tls ? { tls: opts.tls, httpsBind: { host: '127.0.0.1', port: opts.httpsPort ?? 0 } } : {}),
  });
  return {
    server,
    cfg: made.cfg,
    dir: made.dir,
    baseUrl: `http://127.0.0.1:${server.http?.address.port}`,
    stop: () => server.shutdown('test done'),
  };
}

/** The databases the HTTP tests run on: the embedded SQLite default, and PostgreSQL. */
export const TEST_DIALECTS = ['sqlite', 'postgres'] as const;

/**
 * A test server on `dialect`'s database: SQLite in its temp folder, or a fresh PostgreSQL
 * database that stop() drops after the server. `overrides` as for testConfig.
 */
export async function startTestServerOn(dialect: (typeof TEST_DIALECTS)[number], overrides?: Parameters<typeof testConfig>[0]): Promise<TestServer> {
  if (dialect === 'sqlite') return startTestServer(testConfig(overrides));
  const pg = await createTestDatabase('postgres');
  let t: TestServer;
  try {
    t = await startTestServer(testConfig(overrides, pg.connectionString));
  } catch (e) {
    await pg.drop();
    throw e;
  }
  return {
    ...t,
    stop: async () => {
      try {
        await t.stop();
      } finally {
        await pg.drop();
      }
    },
  };
}

export async function getJson(url: string, init?: RequestInit): Promise<{ status: number; headers: Headers; body: Record<string, unknown> }> {
  const res = await fetch(url, init);
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

export type ClientRequest = (method: string, path: string, token: string, body?: unknown) => ReturnType<typeof getJson>;

/**
 * A Client-Server API caller for a test server (looked up per call: tests start it in
 * beforeAll): `req(method, '/path under /_matrix/client/v3', token, body?)`. An empty token
 * sends no Authorization header.
 */
export function clientRequester(server: () => TestServer): ClientRequest {
  return (method, path, token, body) =>
    getJson(`${server().baseUrl}/_matrix/client/v3${path}`, {
      method,
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    });
}

/** Registers `username` (password `pw`) through the dummy flow; its access token. */
export async function registerUser(req: ClientRequest, username: string): Promise<string> {
  return (await req('POST', '/register', '', { auth: { type: 'm.login.dummy' }, username, password: 'pw' })).body.access_token as string;
}

/**
 * Registers a server admin through shared-secret registration (the -ci secret, `complement`),
 * as Sytest and Complement do; its access token.
 */
export async function registerAdmin(server: TestServer, username: string): Promise<string> {
  const url = `${server.baseUrl}/_synapse/admin/v1/register`;
  const { nonce } = (await getJson(url)).body as { nonce: string };
  const mac = createHmac('sha1', 'complement').update([nonce, username, 'pw', 'admin'].join('\0')).digest('hex');
  return (await getJson(url, { method: 'POST', body: JSON.stringify({ nonce, username, password: 'pw', admin: true, mac }) })).body.access_token as string;
}

/** Polls `fn` every `stepMs` until it gives a value (not undefined), for at most `ms`; that value. */
export async function waitFor<T>(fn: () => Promise<T | undefined>, ms = 15_000, stepMs = 50): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
