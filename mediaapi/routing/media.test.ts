/** The media routes over HTTP on a real monolith (embedded SQLite, files in a temp folder). */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, startTestServer, testConfig, type TestServer } from '../../test/harness.js';

let t: TestServer;
let alice: string;
let bob: string;
const SERVER = 'localhost:8008';
const MAX = 1024 * 1024;

const register = async (username: string): Promise<string> => {
  const r = await getJson(`${t.baseUrl}/_matrix/client/v3/register`, {
    method: 'POST',
    body: JSON.stringify({ auth: { type: 'm.login.dummy' }, username, password: 'pw' }),
  });
  return r.body.access_token as string;
};

const upload = async (body: Buffer | string, contentType: string | undefined, opts: { token?: string; filename?: string; version?: string } = {}) => {
  const q = opts.filename !== undefined ? `?filename=${encodeURIComponent(opts.filename)}` : '';
  const headers: Record<string, string> = { Authorization: `Bearer ${opts.token ?? alice}` };
  if (contentType) headers['Content-Type'] = contentType;
  return getJson(`${t.baseUrl}/_matrix/media/${opts.version ?? 'v3'}/upload${q}`, { method: 'POST', body, headers });
};
const mediaId = (uri: unknown): string => {
  const m = /^mxc:\/\/localhost:8008\/([A-Za-z0-9_-]+)$/.exec(String(uri));
  if (!m) throw new Error(`not a local mxc URI: ${String(uri)}`);
  return m[1]!;
};
const get = (p: string, token?: string) => fetch(`${t.baseUrl}${p}`, token ? { headers: { Authorization: `Bearer ${token}` } } : {});
const json = async (r: Response) => (await r.json()) as Record<string, unknown>;

const filesUnder = (dir: string): string[] => {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
};

let png: Buffer;
let jpeg: Buffer;

beforeAll(async () => {
  const { cfg, dir } = testConfig((doc) => {
    (doc.media_api as Record<string, unknown>).max_file_size_bytes = MAX;
    // Test configurations turn previews on (Sytest); this server keeps the default, off.
    (doc.media_api as Record<string, unknown>).url_preview = { enabled: false };
  });
  t = await startTestServer({ cfg, dir });
  alice = await register('alice');
  bob = await register('bob');
  png = await sharp({ create: { width: 800, height: 600, channels: 4, background: { r: 200, g: 50, b: 50, alpha: 0.5 } } }).png().toBuffer();
  jpeg = await sharp({ create: { width: 400, height: 1000, channels: 3, background: { r: 0, g: 100, b: 200 } } }).jpeg().toBuffer();
});
afterAll(async () => {
  await t.stop();
});

describe('upload and download', () => {
  it('stores an upload and serves it back with its type, name and safety headers', async () => {
    const up = await upload('hello media', 'text/plain', { filename: 'hello.txt' });
    expect(up.status).toBe(200);
    const id = mediaId(up.body.content_uri);
    for (const p of [`/_matrix/media/v3/download/${SERVER}/${id}`, `/_matrix/media/r0/download/${SERVER}/${id}`]) {
      const r = await get(p);
      expect(r.status).toBe(200);
      expect(await r.text()).toBe('hello media');
      expect(r.headers.get('content-type')).toBe('text/plain; charset=UTF-8');
      expect(r.headers.get('content-disposition')).toBe('inline; filename=hello.txt');
      expect(r.headers.get('content-length')).toBe('11');
      expect(r.headers.get('cache-control')).toMatch(/max-age=86400/);
      expect(r.headers.get('content-security-policy')).toMatch(/^sandbox; default-src 'none'; script-src 'none';/);
      expect(r.headers.get('cross-origin-resource-policy')).toBe('cross-origin');
      expect(r.headers.get('x-content-type-options')).toBe('nosniff');
    }
    // A file name in the path overrides the uploaded one; non-token names use RFC 5987.
    const named = await get(`/_matrix/media/v3/download/${SERVER}/${id}/other.txt`);
    expect(named.headers.get('content-disposition')).toBe('inline; filename=other.txt');
    const unicode = await get(`/_matrix/media/v3/download/${SERVER}/${id}/${encodeURIComponent('☕ a"b.txt')}`);
    expect(unicode.headers.get('content-disposition')).toBe("inline; filename*=utf-8''%E2%98%95%20a%22b.txt");
  });

  it('answers on r0 and v1 too, and keeps a unicode upload name', async () => {
    const up = await upload(png, 'image/png', { filename: 'çat.png', version: 'r0' });
    expect(up.status).toBe(200);
    const r = await get(`/_matrix/media/v1/download/${SERVER}/${mediaId(up.body.content_uri)}`);
    expect(r.status).toBe(200);
    expect(Buffer.from(await r.arrayBuffer()).equals(png)).toBe(true);
    expect(r.headers.get('content-type')).toBe('image/png');
    expect(r.headers.get('content-disposition')).toBe("inline; filename*=utf-8''%C3%A7at.png");
  });

  it('sends unsafe types as attachments and defaults a missing type to octet-stream', async () => {
    const html = await upload('<script>alert(1)</script>', 'text/html', { filename: 'x.html' });
    const r = await get(`/_matrix/media/v3/download/${SERVER}/${mediaId(html.body.content_uri)}`);
    expect(r.headers.get('content-disposition')).toBe('attachment; filename=x.html');
    expect(r.headers.get('content-type')).toBe('text/html; charset=UTF-8');
    const svg = await upload('<svg/>', 'image/svg+xml');
    const s = await get(`/_matrix/media/v3/download/${SERVER}/${mediaId(svg.body.content_uri)}`);
    expect(s.headers.get('content-disposition')).toBe('attachment');
    const bare = await upload(Buffer.from([1, 2, 3]), undefined);
    const b = await get(`/_matrix/media/v3/download/${SERVER}/${mediaId(bare.body.content_uri)}`);
    expect(b.headers.get('content-type')).toBe('application/octet-stream');
    expect(b.headers.get('content-disposition')).toBe('attachment');
  });

  it('stores identical content once', async () => {
    const content = `dedup ${Date.now()}`;
    const a = await upload(content, 'text/plain');
    const b = await upload(content, 'text/plain', { token: bob, filename: 'b.txt' });
    expect(mediaId(a.body.content_uri)).not.toBe(mediaId(b.body.content_uri));
    const files = filesUnder(path.join(t.cfg.mediaApi.basePath, 'content'));
    const sizes = files.filter((f) => statSync(f).size === content.length);
    expect(sizes).toHaveLength(1);
    // Nothing of these uploads is left half-written (thumbnails of earlier images may be passing through tmp/ meanwhile).
    const tmp = path.join(t.cfg.mediaApi.basePath, 'tmp');
    const sizeOf = (f: string): number => {
      try {
        return statSync(path.join(tmp, f)).size;
      } catch {
        return -1; // renamed into place meanwhile
      }
    };
    expect(readdirSync(tmp).filter((f) => sizeOf(f) === content.length)).toEqual([]);
  });

  it('refuses uploads without a valid token', async () => {
    const r = await getJson(`${t.baseUrl}/_matrix/media/v3/upload`, { method: 'POST', body: 'x' });
    expect(r.status).toBe(401);
    expect(r.body.errcode).toBe('M_MISSING_TOKEN');
    expect((await upload('x', 'text/plain', { token: 'nope' })).body.errcode).toBe('M_UNKNOWN_TOKEN');
  });

  it('refuses an over-size upload with 413 M_TOO_LARGE and stores nothing', async () => {
    const before = filesUnder(path.join(t.cfg.mediaApi.basePath, 'content')).length;
    const declared = await upload(Buffer.alloc(MAX + 1, 7), 'application/octet-stream');
    expect(declared.status).toBe(413);
    expect(declared.body.errcode).toBe('M_TOO_LARGE');
    // Without a Content-Length (chunked), the limit is checked while streaming.
    const chunk = Buffer.alloc(64 * 1024, 9);
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(ctrl) {
        if (sent > MAX + chunk.length) return ctrl.close();
        sent += chunk.length;
        ctrl.enqueue(chunk);
      },
    });
    const streamed = await fetch(`${t.baseUrl}/_matrix/media/v3/upload`, {
      method: 'POST',
      body: stream,
      duplex: 'half',
      headers: { Authorization: `Bearer ${alice}`, 'Content-Type': 'application/octet-stream' },
    } as RequestInit);
    expect(streamed.status).toBe(413);
    expect((await json(streamed)).errcode).toBe('M_TOO_LARGE');
    expect(filesUnder(path.join(t.cfg.mediaApi.basePath, 'content')).length).toBe(before);
    expect(readdirSync(path.join(t.cfg.mediaApi.basePath, 'tmp'))).toEqual([]);
    // An upload of exactly the limit is fine.
    expect((await upload(Buffer.alloc(MAX, 3), 'application/octet-stream')).status).toBe(200);
  });

  it('answers unknown, malformed and remote media IDs', async () => {
    const unknown = await getJson(`${t.baseUrl}/_matrix/media/v3/download/${SERVER}/doesNotExist`);
    expect(unknown.status).toBe(404);
    expect(unknown.body.errcode).toBe('M_NOT_FOUND');
    const malformed = await getJson(`${t.baseUrl}/_matrix/media/v3/download/${SERVER}/${encodeURIComponent('bad$id')}`);
    expect(malformed.status).toBe(400);
    const badServer = await getJson(`${t.baseUrl}/_matrix/media/v3/download/${encodeURIComponent('not a server')}/abc`);
    expect(badServer.status).toBe(400);
    // Remote media not in the cache, with allow_remote=false: not found (federation.test.ts fetches it).
    const remote = await getJson(`${t.baseUrl}/_matrix/media/v3/download/example.org/abc?allow_remote=false`);
    expect(remote.status).toBe(404);
    expect(remote.body.errcode).toBe('M_NOT_FOUND');
  });

  it('serves the config and keeps URL previews off', async () => {
    const cfg = await getJson(`${t.baseUrl}/_matrix/media/v3/config`, { headers: { Authorization: `Bearer ${alice}` } });
    expect(cfg.body).toEqual({ 'm.upload.size': MAX });
    const preview = await getJson(`${t.baseUrl}/_matrix/media/v3/preview_url?url=${encodeURIComponent('https://example.org')}`, { headers: { Authorization: `Bearer ${alice}` } });
    expect(preview.status).toBe(404);
    expect(preview.body.errcode).toBe('M_UNRECOGNIZED');
  });
});

describe('authenticated media (v1.11)', () => {
  it('needs an access token for download, thumbnail, config and preview_url', async () => {
    const id = mediaId((await upload(png, 'image/png', { filename: 'a.png' })).body.content_uri);
    const base = '/_matrix/client/v1/media';
    for (const p of [`/download/${SERVER}/${id}`, `/download/${SERVER}/${id}/x.png`, `/thumbnail/${SERVER}/${id}?width=32&height=32`, '/config', '/preview_url?url=x']) {
      const r = await get(`${base}${p}`);
      expect(r.status, p).toBe(401);
      expect((await json(r)).errcode).toBe('M_MISSING_TOKEN');
    }
    const d = await get(`${base}/download/${SERVER}/${id}`, bob);
    expect(d.status).toBe(200);
    expect(Buffer.from(await d.arrayBuffer()).equals(png)).toBe(true);
    expect(d.headers.get('content-disposition')).toBe('inline; filename=a.png');
    const th = await get(`${base}/thumbnail/${SERVER}/${id}?width=32&height=32&method=crop`, bob);
    expect(th.status).toBe(200);
    expect(th.headers.get('content-type')).toBe('image/png');
    expect(await json(await get(`${base}/config`, bob))).toEqual({ 'm.upload.size': MAX });
    expect((await get(`${base}/preview_url?url=x`, bob)).status).toBe(404);
  });
});

describe('asynchronous upload', () => {
  const create = (token: string) => getJson(`${t.baseUrl}/_matrix/media/v1/create`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
  const put = (id: string, token: string, body: string, filename?: string) =>
    getJson(`${t.baseUrl}/_matrix/media/v3/upload/${SERVER}/${id}${filename ? `?filename=${filename}` : ''}`, {
      method: 'PUT',
      body,
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'text/plain' },
    });

  it('reserves an ID, waits for its content, and refuses a second upload', async () => {
    const c = await create(alice);
    expect(c.status).toBe(200);
    expect(c.body.unused_expires_at).toBeGreaterThan(Date.now());
    const id = mediaId(c.body.content_uri);
    const notYet = await getJson(`${t.baseUrl}/_matrix/media/v3/download/${SERVER}/${id}?timeout_ms=0`);
    expect(notYet.status).toBe(504);
    expect(notYet.body.errcode).toBe('M_NOT_YET_UPLOADED');
    // A download waiting for the upload gets the content as soon as it arrives.
    const waiting = get(`/_matrix/media/v3/download/${SERVER}/${id}?timeout_ms=10000`);
    await new Promise((r) => setTimeout(r, 100));
    expect((await put(id, bob, 'not yours')).status).toBe(403);
    const first = await put(id, alice, 'async content', 'a.txt');
    expect(first.status).toBe(200);
    expect(first.body).toEqual({});
    const w = await waiting;
    expect(w.status).toBe(200);
    expect(await w.text()).toBe('async content');
    expect(w.headers.get('content-disposition')).toBe('inline; filename=a.txt');
    const second = await put(id, alice, 'again');
    expect(second.status).toBe(409);
    expect(second.body.errcode).toBe('M_CANNOT_OVERWRITE_MEDIA');
    expect((await put('unknownId', alice, 'x')).status).toBe(404);
  });
});

describe('thumbnails', () => {
  const thumb = (id: string, q: string) => get(`/_matrix/media/v3/thumbnail/${SERVER}/${id}?${q}`);

  it('serves configured sizes: crop fills the box, scale fits inside it', async () => {
    const id = mediaId((await upload(png, 'image/png')).body.content_uri);
    const crop = await thumb(id, 'width=32&height=32&method=crop');
    expect(crop.status).toBe(200);
    expect(crop.headers.get('content-type')).toBe('image/png');
    expect(crop.headers.get('content-disposition')).toBe('inline; filename=thumbnail.png');
    expect(await sharp(Buffer.from(await crop.arrayBuffer())).metadata()).toMatchObject({ width: 32, height: 32 });
    // 50x50 is not configured: the smallest configured crop at least that big (96x96) answers.
    const crop50 = await thumb(id, 'width=50&height=50&method=crop');
    expect(await sharp(Buffer.from(await crop50.arrayBuffer())).metadata()).toMatchObject({ width: 96, height: 96 });
    const scale = await thumb(id, 'width=640&height=480&method=scale');
    expect(await sharp(Buffer.from(await scale.arrayBuffer())).metadata()).toMatchObject({ width: 640, height: 480 });
    // JPEG stays JPEG; scale keeps the aspect ratio.
    const jid = mediaId((await upload(jpeg, 'image/jpeg')).body.content_uri);
    const js = await thumb(jid, 'width=640&height=480');
    expect(js.headers.get('content-type')).toBe('image/jpeg');
    expect(await sharp(Buffer.from(await js.arrayBuffer())).metadata()).toMatchObject({ width: 192, height: 480 });
  });

  it('pre-generates the configured sizes after upload', async () => {
    const img = await sharp({ create: { width: 300, height: 200, channels: 3, background: { r: 1, g: 2, b: 3 } } }).png().toBuffer();
    const hash = createHash('sha256').update(img).digest('hex');
    await upload(img, 'image/png');
    const dir = path.join(t.cfg.mediaApi.basePath, 'thumbnails', hash.slice(0, 2), hash.slice(2, 4), hash);
    const want = ['32x32-crop', '640x480-scale', '96x96-crop'];
    const end = Date.now() + 5000;
    const made = () => (existsSync(dir) ? readdirSync(dir).filter((n) => want.includes(n)).sort() : []);
    while (made().length < want.length && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    expect(made()).toEqual(want);
  });

  it('makes animated thumbnails of animated GIFs when asked', async () => {
    const frames = await Promise.all(
      [0, 1, 2].map((i) => sharp({ create: { width: 200, height: 200, channels: 3, background: { r: i * 80, g: 0, b: 0 } } }).raw().toBuffer()),
    );
    const anim = await sharp(Buffer.concat(frames), { raw: { width: 200, height: 600, channels: 3, pageHeight: 200 } }).gif().toBuffer();
    const pages = (await sharp(anim, { animated: true }).metadata()).pages;
    const id = mediaId((await upload(anim, 'image/gif')).body.content_uri);
    const a = await thumb(id, 'width=96&height=96&method=crop&animated=true');
    expect(a.status).toBe(200);
    expect(a.headers.get('content-type')).toBe('image/webp');
    const meta = await sharp(Buffer.from(await a.arrayBuffer()), { animated: true }).metadata();
    expect(pages).toBe(3);
    expect(meta.pages).toBe(3);
    const still = await thumb(id, 'width=96&height=96&method=crop');
    expect(still.headers.get('content-type')).toBe('image/png');
  });

  it('refuses bad parameters, non-images and broken images with clear errors', async () => {
    const id = mediaId((await upload(png, 'image/png')).body.content_uri);
    const missing = await thumb(id, 'height=32');
    expect(missing.status).toBe(400);
    expect((await json(missing)).errcode).toBe('M_MISSING_PARAM');
    for (const q of ['width=0&height=32', 'width=-1&height=32', 'width=1.5&height=32', 'width=32&height=32&method=zoom']) {
      const r = await thumb(id, q);
      expect(r.status, q).toBe(400);
      expect((await json(r)).errcode, q).toBe('M_INVALID_PARAM');
    }
    const text = mediaId((await upload('plain', 'text/plain')).body.content_uri);
    const t1 = await thumb(text, 'width=32&height=32');
    expect(t1.status).toBe(400);
    expect((await json(t1)).error).toMatch(/type text\/plain/);
    const broken = mediaId((await upload(Buffer.from('this is not a png at all'), 'image/png')).body.content_uri);
    const b = await thumb(broken, 'width=32&height=32&method=crop');
    expect(b.status).toBe(400);
    expect((await json(b)).error).toMatch(/could not be decoded/);
    // The broken file is still downloadable as uploaded.
    expect((await get(`/_matrix/media/v3/download/${SERVER}/${broken}`)).status).toBe(200);
    expect((await thumb('nope', 'width=32&height=32')).status).toBe(404);
  });
});
