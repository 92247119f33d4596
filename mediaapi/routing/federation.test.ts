/**
 * Media across servers: two of our servers federating over HTTPS on loopback (each database),
 * and a scripted origin for what our own servers never send (Location redirects, origins
 * without the v1.11 endpoints, broken or endless answers).
 */
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../internal/sqlutil/index.js';
import { createTestDatabase, type TestDatabase } from '../../internal/sqlutil/testing.js';
import { componentDatabaseKeys, databaseFor } from '../../setup/config/config.js';
import { generateTlsMaterial } from '../../setup/tlscert.js';
import { clientRequester, getJson, registerUser } from '../../test/harness.js';
import { freePort, startFederatingNode, type FederatingNode } from '../../test/federation.js';
import { multipartBoundary, readMultipartMedia } from '../internal/multipart.js';

type Doc = Record<string, Record<string, unknown>>;
const B_MAX = 1024 * 1024;
const SHORT = `fewer bytes than announced ${Math.random()}`;

const usePostgres = (conn: string) => (doc: Doc) => {
  doc.global!.database = { connection_string: conn, max_open_conns: 10 };
  for (const [section, key] of Object.values(componentDatabaseKeys)) delete doc[section]?.[key];
};

const filesUnder = (dir: string): string[] => {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
};

async function uploadTo(node: FederatingNode, token: string, body: Buffer | string, contentType: string, filename?: string): Promise<string> {
  const q = filename ? `?filename=${encodeURIComponent(filename)}` : '';
  const r = await getJson(`${node.t.baseUrl}/_matrix/media/v3/upload${q}`, { method: 'POST', body, headers: { Authorization: `Bearer ${token}`, 'Content-Type': contentType } });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return String(r.body.content_uri).split('/').pop()!;
}

/** Rows B keeps for another server's media ID. */
async function cachedRows(node: FederatingNode, serverName: string, mediaId: string): Promise<Array<{ user_id: string; file_size_bytes: number | string | null }>> {
  const db = openDatabase<{ mediaapi_media_repository: { media_id: string; server_name: string; user_id: string; file_size_bytes: number | null } }>(
    databaseFor(node.t.cfg, 'mediaapi').connectionString,
    { baseDir: node.t.cfg.baseDir },
  );
  try {
    return await db.db.selectFrom('mediaapi_media_repository').select(['user_id', 'file_size_bytes']).where('media_id', '=', mediaId).where('server_name', '=', serverName).execute();
  } finally {
    await db.close();
  }
}

for (const dialect of ['sqlite', 'postgres'] as const) {
  describe(`media of another server [${dialect}]`, () => {
    let a: FederatingNode;
    let b: FederatingNode;
    let alice: string;
    let bob: string;
    let aStopped = false;
    const pgs: TestDatabase[] = [];
    /** Media of A fetched by B during these tests: served again at the end with A gone. */
    const fetchedByB: Array<{ id: string; bytes: Buffer }> = [];
    let png: Buffer;

    const overrides = async (extra: (doc: Doc) => void = () => {}): Promise<(doc: Doc) => void> => {
      if (dialect === 'sqlite') return extra;
      const pg = await createTestDatabase('postgres');
      pgs.push(pg);
      return (doc) => {
        usePostgres(pg.connectionString)(doc);
        extra(doc);
      };
    };

    beforeAll(async () => {
      a = await startFederatingNode(await overrides());
      b = await startFederatingNode(await overrides((doc) => void ((doc.media_api as Doc[string]).max_file_size_bytes = B_MAX)));
      alice = await registerUser(clientRequester(() => a.t), 'alice');
      bob = await registerUser(clientRequester(() => b.t), 'bob');
      png = await sharp({ create: { width: 800, height: 600, channels: 3, background: { r: 10, g: 200, b: 90 } } }).png().toBuffer();
    }, 120_000);
    afterAll(async () => {
      await b?.t.stop();
      if (!aStopped) await a?.t.stop();
      for (const pg of pgs) await pg.drop();
    });

    const fromB = (p: string, token?: string) => fetch(`${b.t.baseUrl}${p}`, token ? { headers: { Authorization: `Bearer ${token}` } } : {});

    it('serves A\'s media to B\'s users on the legacy and the v1 routes, fetched once', async () => {
      const body = `hello from A ${dialect}`;
      const id = await uploadTo(a, alice, body, 'text/plain', 'hello.txt');
      // Concurrent first requests share one fetch: one row, the same bytes for all.
      const first = await Promise.all(Array.from({ length: 4 }, () => fromB(`/_matrix/media/v3/download/${a.name}/${id}`)));
      for (const r of first) {
        expect(r.status).toBe(200);
        expect(await r.text()).toBe(body);
        expect(r.headers.get('content-type')).toBe('text/plain; charset=UTF-8');
        expect(r.headers.get('content-disposition')).toBe('inline; filename=hello.txt');
      }
      const rows = await cachedRows(b, a.name, id);
      expect(rows).toHaveLength(1);
      expect(rows[0]!.user_id).toBe('');
      expect(Number(rows[0]!.file_size_bytes)).toBe(body.length);

      const v1 = await fromB(`/_matrix/client/v1/media/download/${a.name}/${id}/renamed.txt`, bob);
      expect(v1.status).toBe(200);
      expect(await v1.text()).toBe(body);
      expect(v1.headers.get('content-disposition')).toBe('inline; filename=renamed.txt');
      expect((await fromB(`/_matrix/client/v1/media/download/${a.name}/${id}`)).status).toBe(401);
      const r0 = await fromB(`/_matrix/media/r0/download/${a.name}/${id}`);
      expect(await r0.text()).toBe(body);
      fetchedByB.push({ id, bytes: Buffer.from(body) });
    });

    it('makes thumbnails of remote media from the cached original', async () => {
      const id = await uploadTo(a, alice, png, 'image/png', 'green.png');
      const r = await fromB(`/_matrix/client/v1/media/thumbnail/${a.name}/${id}?width=64&height=64&method=crop`, bob);
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toBe('image/png');
      const meta = await sharp(Buffer.from(await r.arrayBuffer())).metadata();
      // Configured sizes (dynamic thumbnails off): the 96x96 crop is the best fit for 64x64.
      expect([meta.width, meta.height]).toEqual([96, 96]);
      const legacy = await fromB(`/_matrix/media/v3/thumbnail/${a.name}/${id}?width=600&height=400&method=scale`);
      expect(legacy.status).toBe(200);
      expect((await sharp(Buffer.from(await legacy.arrayBuffer())).metadata()).width).toBe(640);
      fetchedByB.push({ id, bytes: png });
    });

    it('answers 404 M_NOT_FOUND for media the origin does not have', async () => {
      for (const p of [`/_matrix/media/v3/download/${a.name}/noSuchMedia`, `/_matrix/media/v3/thumbnail/${a.name}/noSuchMedia?width=32&height=32`]) {
        const r = await getJson(`${b.t.baseUrl}${p}`);
        expect(r.status, p).toBe(404);
        expect(r.body.errcode).toBe('M_NOT_FOUND');
      }
      const v1 = await getJson(`${b.t.baseUrl}/_matrix/client/v1/media/download/${a.name}/noSuchMedia`, { headers: { Authorization: `Bearer ${bob}` } });
      expect(v1.status).toBe(404);
      expect(v1.body.errcode).toBe('M_NOT_FOUND');
    });

    it('keeps to the cache with allow_remote=false', async () => {
      const id = await uploadTo(a, alice, 'only when allowed', 'text/plain');
      const refused = await getJson(`${b.t.baseUrl}/_matrix/media/v3/download/${a.name}/${id}?allow_remote=false`);
      expect(refused.status).toBe(404);
      expect(refused.body.errcode).toBe('M_NOT_FOUND');
      expect(await cachedRows(b, a.name, id)).toHaveLength(0);
      expect((await fromB(`/_matrix/media/v3/download/${a.name}/${id}`)).status).toBe(200);
      const cached = await fromB(`/_matrix/media/v3/download/${a.name}/${id}?allow_remote=false`);
      expect(cached.status).toBe(200);
      expect(await cached.text()).toBe('only when allowed');
    });

    it('refuses remote media over max_file_size_bytes and stores none of it', async () => {
      const big = Buffer.alloc(B_MAX + 4096, 5);
      const id = await uploadTo(a, alice, big, 'application/octet-stream');
      const contentDir = path.join(b.t.cfg.mediaApi.basePath, 'content');
      for (let i = 0; i < 2; i++) {
        const r = await getJson(`${b.t.baseUrl}/_matrix/media/v3/download/${a.name}/${id}`);
        expect(r.status).toBe(502);
        expect(r.body.errcode).toBe('M_TOO_LARGE');
      }
      expect(await cachedRows(b, a.name, id)).toHaveLength(0);
      expect(filesUnder(contentDir).filter((f) => statSync(f).size === big.length)).toEqual([]);
      expect(readdirSync(path.join(b.t.cfg.mediaApi.basePath, 'tmp'))).toEqual([]);
    });

    it('serves the federation media routes only to signed requests, as multipart/mixed', async () => {
      const id = await uploadTo(a, alice, png, 'image/png', 'fed.png');
      const uri = `/_matrix/federation/v1/media/download/${id}`;
      const unsigned = await getJson(`${a.t.baseUrl}${uri}`);
      expect(unsigned.status).toBe(401);
      expect(unsigned.body.errcode).toBe('M_UNAUTHORIZED');
      const sign = (u: string, destination = a.name) => b.t.server.identity.signRequest({ method: 'GET', uri: u, origin: b.name, destination });
      const elsewhere = await getJson(`${a.t.baseUrl}${uri}`, { headers: { Authorization: sign(uri, 'other.example') } });
      expect(elsewhere.status).toBe(401);
      // A signature over another path does not authenticate this one.
      const replayed = await getJson(`${a.t.baseUrl}${uri}`, { headers: { Authorization: sign(`${uri}?x=1`) } });
      expect(replayed.status).toBe(401);

      const read = async (u: string) => {
        const r = await fetch(`${a.t.baseUrl}${u}`, { headers: { Authorization: sign(u) } });
        expect(r.status, u).toBe(200);
        expect(Number(r.headers.get('content-length'))).toBeGreaterThan(0);
        const part = await readMultipartMedia(Readable.fromWeb(r.body as never), multipartBoundary(r.headers.get('content-type') ?? '')!);
        const chunks: Buffer[] = [];
        for await (const c of part.content) chunks.push(c as Buffer);
        return { part, bytes: Buffer.concat(chunks) };
      };
      const dl = await read(uri);
      expect(dl.part.metadata).toEqual({});
      expect(dl.part.headers['content-type']).toBe('image/png');
      expect(dl.part.headers['content-disposition']).toBe('inline; filename=fed.png');
      expect(dl.bytes.equals(png)).toBe(true);
      const th = await read(`/_matrix/federation/v1/media/thumbnail/${id}?width=32&height=32&method=crop`);
      expect(th.part.headers['content-type']).toBe('image/png');
      expect((await sharp(th.bytes).metadata()).width).toBe(32);
      // Only our own media: B's copy of A's media is not served to others by B.
      const cachedAtB = fetchedByB[0]!.id;
      const u = `/_matrix/federation/v1/media/download/${cachedAtB}`;
      const notOurs = await getJson(`${b.t.baseUrl}${u}`, { headers: { Authorization: a.t.server.identity.signRequest({ method: 'GET', uri: u, origin: a.name, destination: b.name }) } });
      expect(notOurs.status).toBe(404);
      expect(notOurs.body.errcode).toBe('M_NOT_FOUND');
    });

    it('serves fetched media from its cache once the origin is gone', async () => {
      expect(fetchedByB.length).toBeGreaterThan(1);
      await a.t.stop();
      aStopped = true;
      for (const { id, bytes } of fetchedByB) {
        const r = await fromB(`/_matrix/client/v1/media/download/${a.name}/${id}`, bob);
        expect(r.status).toBe(200);
        expect(Buffer.from(await r.arrayBuffer()).equals(bytes)).toBe(true);
      }
      const thumb = await fromB(`/_matrix/media/v3/thumbnail/${a.name}/${fetchedByB[1]!.id}?width=32&height=32&method=crop`);
      expect(thumb.status).toBe(200);
    });
  });
}

/** An origin server of our making: HTTPS on loopback, answers scripted per path, requests counted. */
class ScriptedOrigin {
  readonly hits = new Map<string, number>();
  readonly urls: string[] = [];
  routes = new Map<string, (req: IncomingMessage, res: ServerResponse) => void>();
  name = '';
  private server?: HttpsServer;

  async start(): Promise<void> {
    const tls = await generateTlsMaterial({ hosts: ['127.0.0.1'], keySize: 2048 });
    const port = await freePort();
    this.name = `127.0.0.1:${port}`;
    this.server = createHttpsServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
      const p = (req.url ?? '').split('?')[0]!;
      this.hits.set(p, (this.hits.get(p) ?? 0) + 1);
      this.urls.push(req.url ?? '');
      const route = this.routes.get(p);
      if (route) route(req, res);
      else {
        res.writeHead(404, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ errcode: 'M_NOT_FOUND', error: 'no such media' }));
      }
    });
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }
}

const multipart = (boundary: string, headers: string, content: Buffer | string, close = true): Buffer =>
  Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Type: application/json\r\n\r\n{}\r\n--${boundary}\r\n${headers}\r\n\r\n`),
    Buffer.from(content),
    Buffer.from(close ? `\r\n--${boundary}--\r\n` : ''),
  ]);

describe('fetching from origins of every kind', () => {
  let b: FederatingNode;
  let bob: string;
  const origin = new ScriptedOrigin();
  let plain: HttpServer;
  let plainUrl = '';

  beforeAll(async () => {
    await origin.start();
    plain = createHttpServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Disposition': 'attachment; filename=cdn.txt' });
      res.end('bytes from the CDN');
    });
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    plainUrl = `http://127.0.0.1:${(plain.address() as { port: number }).port}`;
    b = await startFederatingNode((doc) => void ((doc.media_api as Doc[string]).max_file_size_bytes = B_MAX));
    bob = await registerUser(clientRequester(() => b.t), 'bob');
  }, 60_000);
  afterAll(async () => {
    await b?.t.stop();
    await origin.stop();
    plain?.closeAllConnections();
    await new Promise<void>((resolve) => plain?.close(() => resolve()));
  });

  const download = (id: string, query = '') => fetch(`${b.t.baseUrl}/_matrix/client/v1/media/download/${origin.name}/${id}${query}`, { headers: { Authorization: `Bearer ${bob}` } });

  it('asks the origin once for many concurrent requests', async () => {
    origin.routes.set('/_matrix/federation/v1/media/download/slow', (req, res) => {
      expect(req.headers.authorization).toMatch(/^X-Matrix origin="?127\.0\.0\.1:/);
      setTimeout(() => {
        res.writeHead(200, { 'Content-Type': 'multipart/mixed; boundary=xyz' });
        res.end(multipart('xyz', 'Content-Type: text/plain\r\nContent-Disposition: inline; filename="slow one.txt"', 'worth the wait'));
      }, 300);
    });
    const all = await Promise.all(Array.from({ length: 6 }, () => download('slow')));
    for (const r of all) {
      expect(r.status).toBe(200);
      expect(await r.text()).toBe('worth the wait');
      expect(r.headers.get('content-disposition')).toBe("inline; filename*=utf-8''slow%20one.txt");
    }
    expect((await download('slow')).status).toBe(200);
    expect(origin.hits.get('/_matrix/federation/v1/media/download/slow')).toBe(1);
    expect(origin.urls.find((u) => u.includes('/slow'))).toMatch(/timeout_ms=20000/);
  });

  it('follows a Location given in the multipart answer', async () => {
    origin.routes.set('/_matrix/federation/v1/media/download/moved', (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'multipart/mixed; boundary=b0' });
      res.end(multipart('b0', `Location: ${plainUrl}/blob`, ''));
    });
    const r = await download('moved');
    expect(r.status).toBe(200);
    expect(await r.text()).toBe('bytes from the CDN');
    expect(r.headers.get('content-disposition')).toBe('inline; filename=cdn.txt');
  });

  it('falls back to the legacy download of origins without the federation media endpoints', async () => {
    origin.routes.set('/_matrix/federation/v1/media/download/old', (_req, res) => {
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ errcode: 'M_UNRECOGNIZED', error: 'Unrecognized request' }));
    });
    origin.routes.set(`/_matrix/media/v3/download/${origin.name}/old`, (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'image/png', 'Content-Length': '4' });
      res.end(Buffer.from('\x89PNG', 'latin1'));
    });
    const r = await download('old');
    expect(r.status).toBe(200);
    expect(Buffer.from(await r.arrayBuffer()).toString('latin1')).toBe('\x89PNG');
    expect(origin.urls.find((u) => u.startsWith('/_matrix/media/v3/download/'))).toMatch(/allow_remote=false/);
  });

  it('stores nothing of a truncated or over-size answer', async () => {
    origin.routes.set('/_matrix/federation/v1/media/download/cut', (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'multipart/mixed; boundary=c' });
      res.end(multipart('c', 'Content-Type: text/plain', 'the start of something', false));
    });
    // No Content-Length anywhere: the limit is found while streaming.
    origin.routes.set('/_matrix/federation/v1/media/download/endless', (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'multipart/mixed; boundary=e' });
      res.write(Buffer.from('--e\r\n\r\n{}\r\n--e\r\nContent-Type: application/octet-stream\r\n\r\n'));
      const chunk = Buffer.alloc(64 * 1024, 1);
      let sent = 0;
      const pump = (): void => {
        while (sent < 4 * B_MAX) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
    // The part announces more than it holds.
    origin.routes.set('/_matrix/federation/v1/media/download/short', (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'multipart/mixed; boundary=s' });
      res.end(multipart('s', 'Content-Type: text/plain\r\nContent-Length: 999', SHORT));
    });
    const short = await getJson(`${b.t.baseUrl}/_matrix/media/v3/download/${origin.name}/short`);
    expect(short.status).toBe(502);
    const hash = createHash('sha256').update(SHORT).digest('hex');
    expect(existsSync(path.join(b.t.cfg.mediaApi.basePath, 'content', hash.slice(0, 2), hash.slice(2, 4), hash))).toBe(false);
    const cut = await getJson(`${b.t.baseUrl}/_matrix/media/v3/download/${origin.name}/cut`);
    expect(cut.status).toBe(502);
    const endless = await getJson(`${b.t.baseUrl}/_matrix/media/v3/download/${origin.name}/endless`);
    expect(endless.status).toBe(502);
    expect(endless.body.errcode).toBe('M_TOO_LARGE');
    expect(await cachedRows(b, origin.name, 'cut')).toHaveLength(0);
    expect(await cachedRows(b, origin.name, 'endless')).toHaveLength(0);
    expect(readdirSync(path.join(b.t.cfg.mediaApi.basePath, 'tmp'))).toEqual([]);
  });

  it('gives up on an origin that does not answer within timeout_ms', async () => {
    origin.routes.set('/_matrix/federation/v1/media/download/silent', () => {});
    const t0 = Date.now();
    const r = await getJson(`${b.t.baseUrl}/_matrix/media/v3/download/${origin.name}/silent?timeout_ms=200`);
    expect(r.status).toBe(502);
    expect(String(r.body.error)).toMatch(/did not answer/);
    expect(Date.now() - t0).toBeLessThan(15_000);
  }, 20_000);
});
