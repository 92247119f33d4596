/**
 * GET /preview_url against pages served on loopback: OpenGraph data, the page's image kept as
 * local media, the cache, and refusals of addresses the preview networks deny (127.0.0.2 stands
 * for a private network here; a server with the default lists refuses loopback itself).
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientRequester, getJson, registerUser, startTestServer, testConfig, type TestServer, startTestServerOn, TEST_DIALECTS } from '../../test/harness.js';

type Doc = Record<string, Record<string, unknown>>;

/** A small web site on `host`, counting requests per path. */
class Site {
  readonly hits = new Map<string, number>();
  base = '';
  private server?: Server;

  constructor(private readonly pages: Record<string, (base: string) => { status?: number; type?: string; body?: Buffer | string; location?: string }>) {}

  async start(host: string): Promise<void> {
    this.server = createServer((req, res) => {
      const p = (req.url ?? '').split('?')[0]!;
      this.hits.set(p, (this.hits.get(p) ?? 0) + 1);
      const page = this.pages[p]?.(this.base);
      if (!page) {
        res.writeHead(404).end('not here');
        return;
      }
      res.writeHead(page.status ?? 200, { ...(page.type ? { 'Content-Type': page.type } : {}), ...(page.location ? { Location: page.location } : {}) });
      res.end(page.body ?? '');
    });
    await new Promise<void>((resolve) => this.server!.listen(0, host, resolve));
    this.base = `http://${host}:${(this.server.address() as { port: number }).port}`;
  }

  hitsOf(p: string): number {
    return this.hits.get(p) ?? 0;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }
}

const page = (imageSrc: string) => `<html prefix="og: http://ogp.me/ns#"><head>
<title>The Rock (1996)</title>
<meta property="og:title" content="The Rock" />
<meta property="og:type" content="video.movie" />
<meta property="og:url" content="http://www.imdb.com/title/tt0117500/" />
<meta property="og:image" content="${imageSrc}" />
<meta property="og:image:width" content="9999" />
</head><body></body></html>`;

let png: Buffer;
const FAKE_PNG = Buffer.from(`not an image at all ${Math.random()}`);
/** The "private" network: 127.0.0.2, denied in the tests' lists. */
const hidden = new Site({ '/page.html': () => ({ type: 'text/html', body: page('img.png') }) });
const site = new Site({
  '/page.html': () => ({ type: 'text/html; charset=utf-8', body: page('img.png') }),
  '/other.html': () => ({ type: 'text/html', body: page('/img.png') }),
  '/img.png': () => ({ type: 'image/png', body: png }),
  '/latin1.html': () => ({ type: 'text/html; charset=iso-8859-1', body: Buffer.from('<head><title>caf\xe9</title></head>', 'latin1') }),
  '/hidden-image.html': () => ({ type: 'text/html', body: page(`${hidden.base}/img.png`) }),
  '/to-hidden': () => ({ status: 302, location: `${hidden.base}/page.html` }),
  '/doc.pdf': () => ({ type: 'application/pdf', body: '%PDF-1.4' }),
  '/fake.png': () => ({ type: 'image/png', body: FAKE_PNG }),
  '/gone': () => ({ status: 410, type: 'text/html', body: 'gone' }),
});

beforeAll(async () => {
  png = await sharp({ create: { width: 279, height: 129, channels: 3, background: { r: 0, g: 0, b: 255 } } }).png().toBuffer();
  await site.start('127.0.0.1');
  await hidden.start('127.0.0.2');
});
afterAll(async () => {
  await site.stop();
  await hidden.stop();
});

for (const dialect of TEST_DIALECTS) {
  describe(`preview_url, enabled [${dialect}]`, () => {
    let t: TestServer;
    let token: string;

    beforeAll(async () => {
      t = await startTestServerOn(dialect, (doc: Doc) => {
        (doc.media_api as Doc[string]).url_preview = { enabled: true, deny_networks: ['127.0.0.2/32'], allow_networks: ['0.0.0.0/0', '::/0'] };
      });
      token = await registerUser(clientRequester(() => t), 'alice');
    }, 60_000);
    afterAll(() => t?.stop());

    const preview = (url: string, opts: { ts?: number; v1?: boolean; token?: string | null } = {}) => {
      const q = `url=${encodeURIComponent(url)}${opts.ts !== undefined ? `&ts=${opts.ts}` : ''}`;
      const base = opts.v1 ? '/_matrix/client/v1/media' : '/_matrix/media/v3';
      const tok = opts.token === undefined ? token : opts.token;
      return getJson(`${t.baseUrl}${base}/preview_url?${q}`, tok ? { headers: { Authorization: `Bearer ${tok}` } } : {});
    };

    it('answers the OpenGraph data of a page, its image stored here as local media', async () => {
      const r = await preview(`${site.base}/page.html`);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body).toMatchObject({
        'og:title': 'The Rock',
        'og:type': 'video.movie',
        'og:url': 'http://www.imdb.com/title/tt0117500/',
        'og:image:type': 'image/png',
        'og:image:width': 279,
        'og:image:height': 129,
        'matrix:image:size': png.length,
      });
      const mxc = /^mxc:\/\/([^/]+)\/([A-Za-z0-9_-]+)$/.exec(String(r.body['og:image']));
      expect(mxc?.[1]).toBe(t.cfg.global.serverName);
      const img = await fetch(`${t.baseUrl}/_matrix/media/v3/download/${mxc![1]}/${mxc![2]}`);
      expect(Buffer.from(await img.arrayBuffer()).equals(png)).toBe(true);
    });

    it('caches per URL and hour, and shares one fetch among concurrent requests', async () => {
      const url = `${site.base}/other.html`;
      const ts = Date.UTC(2024, 0, 1, 10, 5);
      const before = site.hitsOf('/other.html');
      const first = await Promise.all([1, 2, 3].map(() => preview(url, { ts })));
      for (const r of first) expect(r.body['og:title']).toBe('The Rock');
      expect(site.hitsOf('/other.html') - before).toBe(1);
      // Same hour: from the cache, on either route.
      const again = await preview(url, { ts: ts + 20 * 60_000, v1: true });
      expect(again.body).toEqual(first[0]!.body);
      expect(site.hitsOf('/other.html') - before).toBe(1);
      // Another hour: fetched again.
      await preview(url, { ts: ts + 3 * 60 * 60_000 });
      expect(site.hitsOf('/other.html') - before).toBe(2);
    });

    it('needs an access token on both routes', async () => {
      for (const v1 of [false, true]) {
        const r = await preview(`${site.base}/page.html`, { v1, token: null });
        expect(r.status).toBe(401);
        expect(r.body.errcode).toBe('M_MISSING_TOKEN');
      }
    });

    it('refuses denied addresses, redirects to them included, without connecting', async () => {
      for (const url of [`${hidden.base}/page.html`, `${site.base}/to-hidden`]) {
        const r = await preview(url);
        expect(r.status, url).toBe(403);
        expect(r.body.errcode).toBe('M_FORBIDDEN');
      }
      expect(hidden.hitsOf('/page.html')).toBe(0);
      // An image on a denied address is left out; the rest of the preview stands.
      const r = await preview(`${site.base}/hidden-image.html`);
      expect(r.status).toBe(200);
      expect(r.body['og:title']).toBe('The Rock');
      expect(r.body['og:image']).toBeUndefined();
      expect(r.body['og:image:width']).toBeUndefined();
    });

    it('refuses bad input with 400', async () => {
      const bad = await preview('not a url');
      expect(bad.status).toBe(400);
      expect(bad.body.errcode).toBe('M_INVALID_PARAM');
      expect((await preview('ftp://example.org/x')).status).toBe(400);
      expect((await preview(`http://user:pw@${site.base.slice(7)}/page.html`)).status).toBe(400);
      const missing = await getJson(`${t.baseUrl}/_matrix/media/v3/preview_url`, { headers: { Authorization: `Bearer ${token}` } });
      expect(missing.status).toBe(400);
      expect(missing.body.errcode).toBe('M_MISSING_PARAM');
      const badTs = await getJson(`${t.baseUrl}/_matrix/media/v3/preview_url?url=${encodeURIComponent(`${site.base}/page.html`)}&ts=yesterday`, { headers: { Authorization: `Bearer ${token}` } });
      expect(badTs.status).toBe(400);
    });

    it('previews images and other documents, decodes charsets, and reports failing pages', async () => {
      const img = await preview(`${site.base}/img.png`);
      expect(img.body).toMatchObject({ 'og:image:width': 279, 'og:image:height': 129, 'matrix:image:size': png.length });
      expect((await preview(`${site.base}/doc.pdf`)).body).toEqual({});
      expect((await preview(`${site.base}/latin1.html`)).body).toEqual({ 'og:title': 'café' });
      const gone = await preview(`${site.base}/gone`);
      expect(gone.status).toBe(502);
    });

    it('keeps nothing of an "image" that does not decode', async () => {
      const r = await preview(`${site.base}/fake.png`);
      expect(r.status).toBe(200);
      expect(r.body).toEqual({});
      const hash = createHash('sha256').update(FAKE_PNG).digest('hex');
      expect(existsSync(path.join(t.cfg.mediaApi.basePath, 'content', hash.slice(0, 2), hash.slice(2, 4), hash))).toBe(false);
    });
  });
}

describe('preview_url with the default networks', () => {
  let t: TestServer;
  let token: string;
  beforeAll(async () => {
    const { cfg, dir } = testConfig((doc: Doc) => void ((doc.media_api as Doc[string]).url_preview = { enabled: true }));
    t = await startTestServer({ cfg, dir });
    token = await registerUser(clientRequester(() => t), 'alice');
  }, 60_000);
  afterAll(async () => {
    await t?.stop();
  });

  it('refuses loopback, by address and by a name that resolves to it', async () => {
    const before = site.hitsOf('/page.html');
    const port = site.base.split(':').pop();
    for (const url of [`${site.base}/page.html`, `http://localhost:${port}/page.html`, `http://[::1]:${port}/page.html`, `http://0.0.0.0:${port}/page.html`]) {
      const r = await getJson(`${t.baseUrl}/_matrix/client/v1/media/preview_url?url=${encodeURIComponent(url)}`, { headers: { Authorization: `Bearer ${token}` } });
      expect(r.status, url).toBe(403);
      expect(r.body.errcode).toBe('M_FORBIDDEN');
    }
    expect(site.hitsOf('/page.html')).toBe(before);
  });
});
