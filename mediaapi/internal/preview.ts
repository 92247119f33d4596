/**
 * URL previews (GET /preview_url, `media_api.url_preview`): fetch the page, read its OpenGraph
 * tags, fetch the image they name and keep it as local media (clients get an mxc:// URI, never
 * the third-party URL), and cache the answer per URL and hour.
 *
 * Safety: the URLs are the users'. Every connection, redirects included, goes only to
 * addresses the preview network policy allows (urlfetch.ts); a page is read for at most
 * `maxPageBytes` and stops at </head>; an image is bounded by `max_file_size_bytes` and must
 * decode as one of the image types we thumbnail; each fetch has `timeoutMs`.
 *
 * The cache key is the URL without its fragment and the hour of `ts` (the event's time, which
 * clients send) or of now: everyone previewing one message shares one fetch, and a URL is
 * fetched again at most once an hour. Concurrent requests for one key share one fetch too.
 */
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import sharp, { type Metadata } from 'sharp';
import { TextDecoder } from 'node:util';
import { forbidden, invalidParam, MatrixError } from '../../internal/httputil/index.js';
import type { NetworkPolicy } from '../../internal/netpolicy/index.js';
import type { MediaStore, StoredMedia } from '../storage/mediastore.js';
import type { FileStore } from './filestore.js';
import { baseContentType } from './headers.js';
import { mxcUri, newMediaId } from './ids.js';
import { OpenGraphParser } from './opengraph.js';
import { MAX_INPUT_PIXELS, THUMBNAILABLE_TYPES, type Thumbnailer } from './thumbnailer.js';
import { fetchPublicUrl, parseFetchableUrl, UrlRefusedError, type FetchedUrl } from './urlfetch.js';

export const PREVIEW_BUCKET_MS = 60 * 60_000;
/** Cached previews older than this are deleted (swept at most once an hour). */
export const PREVIEW_KEEP_MS = 7 * 24 * 60 * 60_000;
const MAX_URL_LENGTH = 2048;

export type Preview = Record<string, string | number>;

export interface UrlPreviewerDeps {
  store: MediaStore;
  files: FileStore;
  thumbnailer: Thumbnailer;
  serverName: string;
  policy: NetworkPolicy;
  timeoutMs: number;
  maxPageBytes: number;
  /** Images: `max_file_size_bytes` (0: no limit). */
  maxImageBytes: number;
  /** Host name resolution; the system resolver by default. */
  resolve?: (host: string) => Promise<string[]>;
  /** false only in test setups (federation's disable_tls_validation): Sytest serves its page with a self-signed certificate. */
  rejectUnauthorized?: boolean;
  log: Logger;
}

const FORMAT_TYPES: Readonly<Record<string, string>> = { jpeg: 'image/jpeg', png: 'image/png', gif: 'image/gif', webp: 'image/webp' };

export class UrlPreviewer {
  private readonly inflight = new Map<string, Promise<Preview>>();
  private lastSweep = 0;

  constructor(private readonly d: UrlPreviewerDeps) {}

  async preview(rawUrl: string, ts: number | undefined, userId: string): Promise<Preview> {
    if (rawUrl.length > MAX_URL_LENGTH) throw invalidParam(`url is longer than ${MAX_URL_LENGTH} characters`);
    let url: URL;
    try {
      url = parseFetchableUrl(rawUrl);
    } catch (e) {
      if (e instanceof UrlRefusedError) throw invalidParam(`Invalid url: ${e.message}`);
      throw e;
    }
    url.hash = '';
    const now = Date.now();
    const bucket = Math.floor((ts ?? now) / PREVIEW_BUCKET_MS);
    const key = `${bucket} ${url.href}`;
    const pending = this.inflight.get(key);
    if (pending) return pending;
    const cached = await this.d.store.urlPreview(url.href, bucket);
    if (cached !== undefined) return JSON.parse(cached) as Preview;
    const started = this.inflight.get(key);
    if (started) return started;
    const p = this.make(url, userId)
      .then(async (og) => {
        await this.d.store.insertUrlPreview(url.href, bucket, JSON.stringify(og), Date.now());
        return og;
      })
      .finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    if (now - this.lastSweep > PREVIEW_BUCKET_MS) {
      this.lastSweep = now;
      this.d.store.deleteUrlPreviewsBefore(now - PREVIEW_KEEP_MS).catch((err: unknown) => this.d.log.warn({ err }, 'cannot sweep old URL previews'));
    }
    return p;
  }

  /** Runs `fn` with a fetch of `url` that is aborted after `timeoutMs`. */
  private async withFetch<T>(url: URL, fn: (res: FetchedUrl) => Promise<T>): Promise<T> {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(new Error(`no answer within ${this.d.timeoutMs} ms`)), this.d.timeoutMs);
    let res: FetchedUrl | undefined;
    try {
      res = await fetchPublicUrl(url, { policy: this.d.policy, signal: ac.signal, ...(this.d.resolve ? { resolve: this.d.resolve } : {}), ...(this.d.rejectUnauthorized === false ? { rejectUnauthorized: false } : {}) });
      return await fn(res);
    } catch (e) {
      if (ac.signal.aborted && !(e instanceof MatrixError)) throw new MatrixError(504, 'M_UNKNOWN', `Cannot preview the URL: ${(ac.signal.reason as Error).message}`);
      throw e;
    } finally {
      clearTimeout(timer);
      res?.body.destroy();
    }
  }

  private async make(url: URL, userId: string): Promise<Preview> {
    try {
      return await this.withFetch(url, async (res) => {
        if (res.status !== 200) throw new MatrixError(502, 'M_UNKNOWN', `Cannot preview the URL: it answered ${res.status}`);
        const contentType = header(res.body, 'content-type') ?? '';
        const type = baseContentType(contentType);
        if (type === 'text/html' || type === 'application/xhtml+xml') {
          const og = await this.readPage(res.body, charsetOf(contentType));
          return this.withImage(og, res.url, userId);
        }
        if (type.startsWith('image/')) {
          const image = await this.storeImage(res, userId);
          return image ?? {};
        }
        // Other documents (PDF, video...) have nothing we read; an empty preview, as cached.
        return {};
      });
    } catch (e) {
      throw asPreviewError(e);
    }
  }

  /** The page's OpenGraph tags, reading no further than the head or `maxPageBytes`. */
  private async readPage(body: IncomingMessage, charset: string): Promise<Preview> {
    let decoder: TextDecoder;
    try {
      decoder = new TextDecoder(charset);
    } catch {
      decoder = new TextDecoder('utf-8');
    }
    const parser = new OpenGraphParser();
    let size = 0;
    for await (const chunk of body) {
      const buf = chunk as Buffer;
      const room = this.d.maxPageBytes - size;
      size += buf.length;
      parser.write(decoder.decode(buf.length > room ? buf.subarray(0, room) : buf, { stream: true }));
      if (parser.done || size >= this.d.maxPageBytes) break;
    }
    return parser.end();
  }

  /** Replaces the page's og:image URL by our copy of the image, or drops it if that fails. */
  private async withImage(og: Preview, pageUrl: URL, userId: string): Promise<Preview> {
    const src = og['og:image'] ?? og['og:image:url'] ?? og['og:image:secure_url'];
    for (const k of Object.keys(og)) if (k === 'og:image' || k.startsWith('og:image:')) delete og[k];
    if (typeof src !== 'string' || src === '') return og;
    let imageUrl: URL;
    try {
      imageUrl = parseFetchableUrl(src, pageUrl);
    } catch {
      return og;
    }
    try {
      const image = await this.withFetch(imageUrl, (res) => (res.status === 200 ? this.storeImage(res, userId) : Promise.resolve(undefined)));
      return image ? { ...og, ...image } : og;
    } catch (e) {
      this.d.log.debug({ url: imageUrl.href, err: e instanceof Error ? e.message : String(e) }, 'preview image not fetched');
      return og;
    }
  }

  /** Stores a fetched image as local media; undefined when it is too big or not an image we take. */
  private async storeImage(res: FetchedUrl, userId: string): Promise<Preview | undefined> {
    const max = this.d.maxImageBytes;
    const declared = Number(header(res.body, 'content-length') ?? NaN);
    if (max > 0 && Number.isFinite(declared) && declared > max) return undefined;
    let file;
    try {
      file = await this.d.files.writeContent(res.body, max);
    } catch (e) {
      if (e instanceof MatrixError && e.status === 413) return undefined;
      throw e;
    }
    let meta: Metadata | undefined;
    try {
      meta = await sharp(this.d.files.contentPath(file.hash), { limitInputPixels: MAX_INPUT_PIXELS }).metadata();
    } catch {
      meta = undefined;
    }
    const contentType = meta?.format ? FORMAT_TYPES[meta.format] : undefined;
    if (!meta || !contentType || !THUMBNAILABLE_TYPES.has(contentType) || !meta.width || !meta.height) {
      await this.d.files.discardUnrecorded(file, (h) => this.d.store.hashInUse(h));
      return undefined;
    }
    const name = lastPathSegment(res.url);
    const media: StoredMedia = {
      mediaId: newMediaId(),
      serverName: this.d.serverName,
      contentType,
      sizeBytes: file.sizeBytes,
      uploadName: name,
      userId,
      createdTs: Date.now(),
      hash: file.hash,
      unusedExpiresTs: null,
    };
    await this.d.store.insertMedia(media);
    this.d.thumbnailer.pregenerate(media);
    return {
      'og:image': mxcUri(media.serverName, media.mediaId),
      'og:image:type': contentType,
      'og:image:width': meta.width,
      'og:image:height': meta.pageHeight ?? meta.height,
      'matrix:image:size': media.sizeBytes,
    };
  }
}

function header(res: IncomingMessage, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The file name a URL's path ends with (the stored image's upload name); null when none. */
function lastPathSegment(url: URL): string | null {
  const raw = url.pathname.split('/').pop() ?? '';
  let name: string;
  try {
    name = decodeURIComponent(raw);
  } catch {
    name = raw;
  }
  return name.replace(/[\u0000-\u001f\u007f]/g, '').slice(0, 200) || null;
}

function charsetOf(contentType: string): string {
  const m = /;\s*charset\s*=\s*"?([A-Za-z0-9_.:-]+)"?/i.exec(contentType);
  return m ? m[1]!.toLowerCase() : 'utf-8';
}

/** Fetch failures as client errors: a refused address is 403, anything else 502. */
function asPreviewError(e: unknown): MatrixError {
  if (e instanceof MatrixError) return e;
  if ((e as { code?: unknown } | undefined)?.code === 'EDENIED') return forbidden('URL previews may not fetch from this address');
  if (e instanceof UrlRefusedError) return new MatrixError(502, 'M_UNKNOWN', `Cannot preview the URL: it redirects to ${e.message}`);
  return new MatrixError(502, 'M_UNKNOWN', `Cannot preview the URL: ${e instanceof Error ? e.message : String(e)}`);
}
