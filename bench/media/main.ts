/**
 * bench/media: the content repository over HTTP on a real monolith (embedded SQLite, files in
 * a temp folder, dynamic thumbnails on, 10 thumbnail generators):
 *  - upload MB/s: 8 uploads of 32 MB each (distinct content), one after another;
 *  - download MB/s: the same 8 files, each read to the end;
 *  - thumbnails/s: 64 distinct dynamic sizes of one 1920x1080 JPEG, 8 requests at a time
 *    (each one decodes and resizes); then the same 64 again, now served from the store.
 * The client runs in this process too, so figures include its side of the work.
 * Run: npm run build && node dist/bench/media/main.js
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pino from 'pino';
import sharp from 'sharp';
import { formatMatrixKeyPem, generateSigningKey } from '../../internal/matrix/index.js';
import { parseConfig } from '../../setup/config/config.js';
import { generateConfigDocument } from '../../setup/config/generate.js';
import { startServer } from '../../setup/server.js';

const FILES = 8;
const FILE_MB = 32;
const THUMBS = 64;
const CONCURRENCY = 8;

async function withServer<T>(fn: (base: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-media-'));
  const doc = generateConfigDocument({ ci: true, dir }) as Record<string, Record<string, unknown>>;
  doc.logging = [{ type: 'std', level: 'error' }] as unknown as Record<string, unknown>;
  doc.media_api = { ...doc.media_api, max_file_size_bytes: 64 * 1024 * 1024, dynamic_thumbnails: true, max_thumbnail_generators: 10 };
  const { keyId, seed } = generateSigningKey();
  writeFileSync(path.join(dir, 'matrix_key.pem'), formatMatrixKeyPem(keyId, seed));
  const server = await startServer({ cfg: parseConfig(doc, dir), logger: pino({ level: 'error' }), httpBind: { host: '127.0.0.1', port: 0 } });
  try {
    return await fn(`http://127.0.0.1:${server.http!.address.port}`);
  } finally {
    await server.shutdown('bench done');
    rmSync(dir, { recursive: true, force: true });
  }
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
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const [k, v] of Object.entries(await mediaBenches())) console.log(`${k}: ${v}`);
}
