/**
 * The media HTTP routes:
 *
 *   /_matrix/media/{r0,v1,v3}/upload                      POST   upload (authenticated)
 *   /_matrix/media/v1/create                              POST   reserve an ID for async upload
 *   /_matrix/media/v3/upload/{serverName}/{mediaId}       PUT    async upload into a reservation
 *   /_matrix/media/{r0,v1,v3}/download/{s}/{m}[/{name}]   GET    legacy, unauthenticated (`allow_remote`)
 *   /_matrix/media/{r0,v1,v3}/thumbnail/{s}/{m}           GET    legacy, unauthenticated (`allow_remote`)
 *   /_matrix/media/{r0,v1,v3}/config, preview_url         GET
 *   /_matrix/client/v1/media/download|thumbnail|config|preview_url   authenticated media (v1.11)
 *   /_matrix/federation/v1/media/download|thumbnail/{m}   GET    our media for other servers (X-Matrix, multipart)
 *
 * The legacy download and thumbnail routes stay open (Sytest and older clients use them); a
 * server may freeze them (spec v1.11), which would be a config switch here. Media of other
 * servers is fetched over federation once and cached (internal/remote.ts); URL previews are
 * off unless `media_api.url_preview.enabled` (internal/preview.ts).
 */
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { Context, Hono } from 'hono';
import type { Logger } from 'pino';
import {
  authenticate,
  jsonResponse,
  MatrixError,
  forbidden,
  invalidParam,
  missingParam,
  notFound,
  unrecognized,
  type PublicRouters,
  type TokenResolver,
} from '../../internal/httputil/index.js';
import type { AuthenticatedDevice } from '../../userapi/api/index.js';
import type { FederationRequestVerifier } from '../api/index.js';
import type { FileStore } from '../internal/filestore.js';
import { uploadContentType } from '../internal/headers.js';
import { checkMediaPath, mxcUri, newMediaId } from '../internal/ids.js';
import type { UrlPreviewer } from '../internal/preview.js';
import type { RemoteMedia } from '../internal/remote.js';
import type { Thumbnailer } from '../internal/thumbnailer.js';
import type { UploadWaiters } from '../internal/uploadwaiters.js';
import { hasContent, type MediaStore, type StoredMedia } from '../storage/mediastore.js';
import { MediaReaders } from './download.js';

export type MediaUserAPI = TokenResolver<AuthenticatedDevice>;

export interface MediaRouteDeps {
  serverName: string;
  /** 0: no limit. */
  maxFileSizeBytes: number;
  store: MediaStore;
  files: FileStore;
  thumbnailer: Thumbnailer;
  waiters: UploadWaiters;
  userAPI: MediaUserAPI;
  /** Media of other servers; absent when federation is off. */
  remote?: RemoteMedia;
  /** Checks inbound federation requests; absent when federation is off. */
  verifier?: FederationRequestVerifier;
  /** URL previews; absent when they are off. */
  previewer?: UrlPreviewer;
  log: Logger;
}

/** How long a `POST /v1/create` reservation waits for its upload (Synapse's default). */
export const UNUSED_EXPIRY_MS = 24 * 60 * 60 * 1000;
/** Open reservations per user; more is 429 M_LIMIT_EXCEEDED until some are used or expire. */
export const MAX_PENDING_UPLOADS = 50;
const MAX_UPLOAD_NAME_BYTES = 255;

const LEGACY_VERSIONS = ['r0', 'v1', 'v3'] as const;

export function addMediaRoutes(routers: PublicRouters, deps: MediaRouteDeps): void {
  const h = new Handlers(deps);
  const r = new MediaReaders(deps);
  const media = routers.media;
  for (const v of LEGACY_VERSIONS) {
    media.post(`/${v}/upload`, (c) => h.upload(c));
    addReadRoutes(media, `/${v}`, h, r, false);
  }
  media.post('/v1/create', (c) => h.create(c));
  media.put('/v3/upload/:serverName/:mediaId', (c) => h.uploadInto(c));
  addReadRoutes(routers.client, '/v1/media', h, r, true);
  if (deps.verifier) {
    routers.federation.get('/v1/media/download/:mediaId', (c) => r.federationDownload(c));
    routers.federation.get('/v1/media/thumbnail/:mediaId', (c) => r.federationThumbnail(c));
  }
}

function addReadRoutes(app: Hono, prefix: string, h: Handlers, r: MediaReaders, authenticated: boolean): void {
  app.get(`${prefix}/download/:serverName/:mediaId`, (c) => r.download(c, authenticated));
  app.get(`${prefix}/download/:serverName/:mediaId/:fileName`, (c) => r.download(c, authenticated));
  app.get(`${prefix}/thumbnail/:serverName/:mediaId`, (c) => r.thumbnail(c, authenticated));
  app.get(`${prefix}/config`, (c) => h.config(c, authenticated));
  app.get(`${prefix}/preview_url`, (c) => h.previewUrl(c, authenticated));
}

class Handlers {
  private lastExpirySweep = 0;

  constructor(private readonly d: MediaRouteDeps) {}

  private async device(c: Context, allowGuests = false): Promise<AuthenticatedDevice> {
    return authenticate(c, this.d.userAPI, { allowGuests });
  }

  /** Refuses early when the client declares a body over the limit; the stream is checked too. */
  private checkDeclaredSize(c: Context): void {
    const declared = Number(c.req.header('content-length') ?? NaN);
    if (this.d.maxFileSizeBytes > 0 && Number.isFinite(declared) && declared > this.d.maxFileSizeBytes) {
      throw tooLargeUpload(this.d.maxFileSizeBytes);
    }
  }

  private uploadName(c: Context): string | null {
    const name = c.req.query('filename');
    if (name === undefined || name === '') return null;
    if (Buffer.byteLength(name, 'utf8') > MAX_UPLOAD_NAME_BYTES) throw invalidParam(`filename is longer than ${MAX_UPLOAD_NAME_BYTES} bytes`);
    if (/[\u0000-\u001f\u007f]/.test(name)) throw invalidParam('filename contains control characters');
    return name;
  }

  /** Streams the request body into the file store (413 past the limit). */
  private async receive(c: Context): Promise<{ hash: string; sizeBytes: number }> {
    // On @hono/node-server, read the Node request itself when nothing has read it yet: plain
    // stream backpressure, no web-stream wrapping per chunk. Elsewhere, the web body.
    const incoming = (c.env as { incoming?: unknown } | undefined)?.incoming;
    if (incoming instanceof Readable && !incoming.readableDidRead) return this.d.files.writeContent(incoming, this.d.maxFileSizeBytes);
    return this.d.files.writeContent((c.req.raw.body as unknown as WebReadableStream<Uint8Array> | null) ?? null, this.d.maxFileSizeBytes);
  }

  async upload(c: Context): Promise<Response> {
    return closeOn413(async () => {
      const device = await this.device(c);
      this.checkDeclaredSize(c);
      const uploadName = this.uploadName(c);
      const contentType = uploadContentType(c.req.header('content-type'));
      const file = await this.receive(c);
      const media: StoredMedia = {
        mediaId: newMediaId(),
        serverName: this.d.serverName,
        contentType,
        sizeBytes: file.sizeBytes,
        uploadName,
        userId: device.userId,
        createdTs: Date.now(),
        hash: file.hash,
        unusedExpiresTs: null,
      };
      await this.d.store.insertMedia(media);
      this.d.thumbnailer.pregenerate(media);
      this.d.log.debug({ mediaId: media.mediaId, size: media.sizeBytes, contentType }, 'media uploaded');
      return jsonResponse({ content_uri: mxcUri(media.serverName, media.mediaId) });
    });
  }

  async create(c: Context): Promise<Response> {
    const device = await this.device(c);
    const now = Date.now();
    if (now - this.lastExpirySweep > 10 * 60_000) {
      this.lastExpirySweep = now;
      await this.d.store.deleteExpiredPending(now);
    }
    if ((await this.d.store.countPending(device.userId, now)) >= MAX_PENDING_UPLOADS) {
      throw new MatrixError(429, 'M_LIMIT_EXCEEDED', `Too many pending uploads: at most ${MAX_PENDING_UPLOADS} may wait for their content`, { retry_after_ms: 60_000 });
    }
    const mediaId = newMediaId();
    const unusedExpiresTs = now + UNUSED_EXPIRY_MS;
    await this.d.store.insertPending({ mediaId, serverName: this.d.serverName, userId: device.userId, createdTs: now, unusedExpiresTs });
    return jsonResponse({ content_uri: mxcUri(this.d.serverName, mediaId), unused_expires_at: unusedExpiresTs });
  }

  async uploadInto(c: Context): Promise<Response> {
    return closeOn413(async () => {
      const device = await this.device(c);
      const serverName = c.req.param('serverName')!;
      const mediaId = c.req.param('mediaId')!;
      checkMediaPath(serverName, mediaId);
      if (serverName !== this.d.serverName) throw notFound('Media IDs of other servers cannot be uploaded to here');
      const pending = await this.d.store.media(mediaId, serverName);
      if (!pending || (!hasContent(pending) && pending.unusedExpiresTs !== null && pending.unusedExpiresTs <= Date.now())) {
        throw notFound('No pending upload with this media ID (it may have expired)');
      }
      if (pending.userId !== device.userId) throw forbidden('This media ID was reserved by another user');
      if (hasContent(pending)) throw cannotOverwrite();
      this.checkDeclaredSize(c);
      const uploadName = this.uploadName(c);
      const contentType = uploadContentType(c.req.header('content-type'));
      const file = await this.receive(c);
      const ok = await this.d.store.completePending(mediaId, serverName, { contentType, sizeBytes: file.sizeBytes, uploadName, hash: file.hash });
      // Another upload to the same ID won the race. Its file stays: content files are shared by hash.
      if (!ok) throw cannotOverwrite();
      this.d.waiters.notify(mediaId);
      this.d.thumbnailer.pregenerate({ ...pending, contentType, sizeBytes: file.sizeBytes, uploadName, hash: file.hash, unusedExpiresTs: null });
      return jsonResponse({});
    });
  }

  async config(c: Context, authenticated: boolean): Promise<Response> {
    if (authenticated) await this.device(c, true);
    return jsonResponse(this.d.maxFileSizeBytes > 0 ? { 'm.upload.size': this.d.maxFileSizeBytes } : {});
  }

  /** GET preview_url: `url`, and `ts` (ms; the time the preview is for, by the hour). */
  async previewUrl(c: Context, authenticated: boolean): Promise<Response> {
    if (authenticated || this.d.previewer) {
      const device = await this.device(c, true);
      if (!this.d.previewer) throw unrecognized('URL previews are disabled on this server');
      const url = c.req.query('url');
      if (url === undefined || url === '') throw missingParam('Missing url');
      const rawTs = c.req.query('ts');
      if (rawTs !== undefined && !/^\d{1,15}$/.test(rawTs)) throw invalidParam('ts must be a timestamp in milliseconds');
      return jsonResponse(await this.d.previewer.preview(url, rawTs === undefined ? undefined : Number(rawTs), device.userId));
    }
    throw unrecognized('URL previews are disabled on this server');
  }
}

function tooLargeUpload(max: number): MatrixError {
  return new MatrixError(413, 'M_TOO_LARGE', `The file is larger than the limit of ${max} bytes`);
}

const cannotOverwrite = (): MatrixError => new MatrixError(409, 'M_CANNOT_OVERWRITE_MEDIA', 'Media already uploaded to this media ID');

/**
 * 413 closes the connection: the rest of the body is then not read and discarded, which for
 * an over-size upload could be gigabytes.
 */
async function closeOn413(fn: () => Promise<Response>): Promise<Response> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof MatrixError && err.status === 413) return jsonResponse(err.toJSON(), 413, { Connection: 'close' });
    throw err;
  }
}
