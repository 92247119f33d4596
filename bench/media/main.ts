/**
 * bench/media: the content repository over HTTP on a real monolith (embedded SQLite, files in
 * a temp folder, dynamic thumbnails on, 10 thumbnail generators):
 *  - upload MB/s: 8 uploads of 32 MB each (distinct content), one after another;
 *  - download MB/s: the same 8 files, each read to the end;
 *  - thumbnails/s: 64 distinct dynamic sizes of one 1920x1080 JPEG, 8 requests at a time
 *    (each one decodes and resizes); then the same 64 again, now served from the store.
 *  - remote media: two servers federating over HTTPS on loopback (TLS validation off,
 *    deny_networks empty). A's user uploads 4 files of 32 MB; B's client downloads each of
 *    them from B, which fetches it from A over /_matrix/federation/v1/media/download (signed,
 *    multipart), writes it to its store and then serves it: MB/s of these first downloads, then
 *    of the same files from B's cache; and req/s of a 64 KB remote file served from B's cache
 *    (400 requests, 8 at a time).
 * The clients and both servers run in this process too, so figures include all their work.
 * Run: npm run build && node dist/bench/media/main.js
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { type ConfigDocument, withBenchServer } from '../common.js';
import pino from 'pino';
import sharp from 'sharp';
import { formatMatrixKeyPem, generateSigningKey } from '../../internal/matrix/index.js';
import { parseConfig } from '../../setup/config/config.js';
import { generateConfigDocument } from '../../setup/config/generate.js';
import { startServer, type RunningServer } from '../../setup/server.js';
import { generateTlsMaterial } from '../../setup/tlscert.js';

const FILES = 8;
const FILE_MB = 32;
const THUMBS = 64;
const CONCURRENCY = 8;

function withServer<T>(fn: (base: string) => Promise<T>): Promise<T> {
  const configure = (doc: ConfigDocument): void => {
    doc.media_api = { ...doc.media_api, max_file_size_bytes: 64 * 1024 * 1024, dynamic_thumbnails: true, max_thumbnail_generators: 10 };
  };
  return withBenchServer('media', { configure }, fn);
}

async function register(base: string): Promise<string> {
  const r = await fetch(`${base}/_matrix/client/v3/register`, {
    method: 'POST',
    body: JSON.stringify({ auth: { type: 'm.login.dummy' }, username: 'bench', password: 'bench-password' }),
  });
  if (r.status !== 200) throw new Error(`register: ${r.status} ${await r.text()}`);
  return ((await r.json()) as { access_token: string }).access_token;
}

async function upload(base: string, token: string, body: Buffer, contentType: string): Promise<string> {
  const r = await fetch(`${base}/_matrix/media/v3/upload`, { method: 'POST', body, headers: { Authorization: `Bearer ${token}`, 'Content-Type': contentType } });
  if (r.status !== 200) throw new Error(`upload: ${r.status} ${await r.text()}`);
  return ((await r.json()) as { content_uri: string }).content_uri.slice('mxc://'.length);
}

async function drain(r: Response): Promise<number> {
  if (r.status !== 200) throw new Error(`${r.url}: ${r.status} ${await r.text()}`);
  let n = 0;
  for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) n += chunk.length;
  return n;
}

async function inParallel<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

const round = (x: number, digits = 1): number => Number(x.toFixed(digits));

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A server named 127.0.0.1:<https port> that federates over loopback. */
async function startFederating(): Promise<{ server: RunningServer; dir: string; name: string; base: string }> {
  const port = await freePort();
  const name = `127.0.0.1:${port}`;
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-media-fed-'));
  const doc = generateConfigDocument({ ci: true, dir, serverName: name }) as Record<string, Record<string, unknown>>;
  doc.logging = [{ type: 'std', level: 'error' }] as unknown as Record<string, unknown>;
  doc.media_api = { ...doc.media_api, max_file_size_bytes: 64 * 1024 * 1024 };
  doc.federation_api = { ...doc.federation_api, disable_tls_validation: true, deny_networks: [] };
  const { keyId, seed } = generateSigningKey();
  writeFileSync(path.join(dir, 'matrix_key.pem'), formatMatrixKeyPem(keyId, seed));
  const tls = await generateTlsMaterial({ hosts: ['127.0.0.1', 'localhost'], keySize: 2048 });
  writeFileSync(path.join(dir, 'tls.crt'), tls.certPem);
  writeFileSync(path.join(dir, 'tls.key'), tls.keyPem);
  const server = await startServer({
    cfg: parseConfig(doc, dir),
    logger: pino({ level: 'error' }),
    httpBind: { host: '127.0.0.1', port: 0 },
    tls: { certFile: path.join(dir, 'tls.crt'), keyFile: path.join(dir, 'tls.key') },
    httpsBind: { host: '127.0.0.1', port },
  });
  return { server, dir, name, base: `http://127.0.0.1:${server.http!.address.port}` };
}

async function remoteBenches(out: Record<string, number>): Promise<void> {
  const a = await startFederating();
  const b = await startFederating();
  try {
    const token = await register(a.base);
    const remoteFiles = 4;
    const ids: string[] = [];
    for (let i = 0; i < remoteFiles; i++) {
      const f = Buffer.alloc(FILE_MB * 1024 * 1024, 100 + i);
      f.writeUInt32BE(i, 0);
      ids.push((await upload(a.base, token, f, 'application/octet-stream')).split('/')[1]!);
    }
    const fetchAll = async (): Promise<number> => {
      const t0 = performance.now();
      let bytes = 0;
      for (const id of ids) bytes += await drain(await fetch(`${b.base}/_matrix/media/v3/download/${a.name}/${id}`));
      if (bytes !== remoteFiles * FILE_MB * 1024 * 1024) throw new Error(`downloaded ${bytes} bytes`);
      return round((remoteFiles * FILE_MB) / ((performance.now() - t0) / 1000));
    };
    out['remote first download MB/s (4 x 32 MB fetched over federation, sequential)'] = await fetchAll();
    out['remote cached download MB/s (the same 4 x 32 MB from the cache)'] = await fetchAll();

    const small = (await upload(a.base, token, Buffer.alloc(64 * 1024, 7), 'application/octet-stream')).split('/')[1]!;
    const url = `${b.base}/_matrix/media/v3/download/${a.name}/${small}`;
    await drain(await fetch(url));
    const requests = Array.from({ length: 400 }, (_, i) => i);
    const t0 = performance.now();
    await inParallel(requests, CONCURRENCY, async () => void (await drain(await fetch(url))));
    out['remote cached downloads req/s (64 KB, 8 concurrent)'] = round(requests.length / ((performance.now() - t0) / 1000));
  } finally {
    await b.server.shutdown('bench done');
    await a.server.shutdown('bench done');
    rmSync(a.dir, { recursive: true, force: true });
    rmSync(b.dir, { recursive: true, force: true });
  }
}

export async function mediaBenches(): Promise<Record<string, number>> {
  return withServer(async (base) => {
    const out: Record<string, number> = {};
    const token = await register(base);

    const files = Array.from({ length: FILES }, (_, i) => {
      const b = Buffer.alloc(FILE_MB * 1024 * 1024, i);
      b.writeUInt32BE(i, 0);
      return b;
    });
    let t0 = performance.now();
    const ids: string[] = [];
    for (const f of files) ids.push(await upload(base, token, f, 'application/octet-stream'));
    out['upload MB/s (8 x 32 MB, sequential)'] = round((FILES * FILE_MB) / ((performance.now() - t0) / 1000));

    t0 = performance.now();
    let bytes = 0;
    for (const id of ids) bytes += await drain(await fetch(`${base}/_matrix/media/v3/download/${id}`));
    if (bytes !== FILES * FILE_MB * 1024 * 1024) throw new Error(`downloaded ${bytes} bytes`);
    out['download MB/s (8 x 32 MB, sequential)'] = round((FILES * FILE_MB) / ((performance.now() - t0) / 1000));

    const photo = await sharp({ create: { width: 1920, height: 1080, channels: 3, background: '#808080', noise: { type: 'gaussian', mean: 128, sigma: 40 } } }).jpeg({ quality: 85 }).toBuffer();
    const photoId = await upload(base, token, photo, 'image/jpeg');
    const sizes = Array.from({ length: THUMBS }, (_, i) => ({ w: 100 + i * 7, h: 80 + i * 5, method: i % 2 ? 'crop' : 'scale' }));
    const get = async (s: { w: number; h: number; method: string }) =>
      void (await drain(await fetch(`${base}/_matrix/media/v3/thumbnail/${photoId}?width=${s.w}&height=${s.h}&method=${s.method}`)));
    t0 = performance.now();
    await inParallel(sizes, CONCURRENCY, get);
    out['thumbnails/s generated (1920x1080 JPEG, dynamic sizes, 8 concurrent)'] = round(THUMBS / ((performance.now() - t0) / 1000));
    t0 = performance.now();
    await inParallel(sizes, CONCURRENCY, get);
    out['thumbnails/s served from the store (8 concurrent)'] = round(THUMBS / ((performance.now() - t0) / 1000));
    return out;
  }).then(async (out) => {
    await remoteBenches(out);
    return out;
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const [k, v] of Object.entries(await mediaBenches())) console.log(`${k}: ${v}`);
}
