/**
 * The read side of the content repository: downloads and thumbnails for clients (legacy and
 * authenticated routes), and the federation media routes through which other servers fetch our
 * users' media (multipart/mixed answers, X-Matrix authenticated).
 */
import type { Context } from 'hono';
import type { Logger } from 'pino';
import { authenticate, invalidParam, MatrixError, missingParam, notFound } from '../../internal/httputil/index.js';
import type { AuthenticatedDevice } from '../../userapi/api/index.js';
import type { FederationRequestVerifier } from '../api/index.js';
import { fileStream, type FileStore } from '../internal/filestore.js';
import { contentDisposition, MEDIA_SECURITY_HEADERS, servedContentType } from '../internal/headers.js';
import { checkMediaPath } from '../internal/ids.js';
import { multipartResponseBody } from '../internal/multipart.js';
import type { RemoteMedia } from '../internal/remote.js';
import { canThumbnail, type Thumbnailer, type ThumbnailSize } from '../internal/thumbnailer.js';
import type { UploadWaiters } from '../internal/uploadwaiters.js';
import { hasContent, type MediaStore, type StoredMedia } from '../storage/mediastore.js';
import type { MediaUserAPI } from './routing.js';

export interface MediaReadDeps {
  serverName: string;
  store: MediaStore;
  files: FileStore;
  thumbnailer: Thumbnailer;
  waiters: UploadWaiters;
  userAPI: MediaUserAPI;
  /** Media of other servers; absent when federation is off (then it is 404). */
  remote?: RemoteMedia;
  /** Checks inbound federation requests; absent when federation is off. */
  verifier?: FederationRequestVerifier;
  log: Logger;
}

/** Downloads of a pending upload wait this long by default (spec: `timeout_ms`, 20 s)... */
export const DEFAULT_WAIT_MS = 20_000;
/** ... and at most this long, whatever the client asks. */
export const MAX_WAIT_MS = 120_000;
/** Re-check a pending upload at least this often (an upload in another process does not wake us). */
const WAIT_POLL_MS = 1_000;

/** Where a request for media comes from, which decides what it may see. */
type Requester = { kind: 'client'; authenticated: boolean } | { kind: 'federation' };

export class MediaReaders {
  constructor(private readonly d: MediaReadDeps) {}

  private async authenticate(c: Context, who: Requester): Promise<void> {
    if (who.kind === 'federation') {
      if (!this.d.verifier) throw new MatrixError(404, 'M_UNRECOGNIZED', 'Federation is disabled on this server');
      await this.d.verifier.verify({ method: c.req.method, uri: requestTarget(c.req.url), authorization: c.req.header('Authorization') });
    } else if (who.authenticated) {
      await authenticate<AuthenticatedDevice>(c, this.d.userAPI, { allowGuests: true });
    }
  }

  /**
   * Media with content: ours (waiting for a pending upload up to `timeout_ms`), or another
   * server's from the cache or its origin. The legacy routes' `allow_remote=false` keeps to the
   * cache; federation requests see only our own media.
   */
  private async findMedia(c: Context, serverName: string, mediaId: string, who: Requester): Promise<StoredMedia> {
    checkMediaPath(serverName, mediaId);
    const timeoutMs = waitMs(c);
    if (serverName !== this.d.serverName) {
      if (who.kind === 'federation') throw notFound('Media not found');
      const allowRemote = who.authenticated || c.req.query('allow_remote') !== 'false';
      if (!allowRemote || !this.d.remote) {
        const cached = await this.d.store.media(mediaId, serverName);
        if (cached && hasContent(cached)) return cached;
        throw notFound(this.d.remote ? 'Media not found (remote media not asked for: allow_remote=false)' : 'Media not found');
      }
      return this.d.remote.get(serverName, mediaId, timeoutMs);
    }
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = await this.d.store.media(mediaId, serverName);
      if (!m) throw notFound('Media not found');
      if (hasContent(m)) return m;
      if (m.unusedExpiresTs !== null && m.unusedExpiresTs <= Date.now()) throw notFound('Media not found');
      const left = deadline - Date.now();
      if (left <= 0) throw new MatrixError(504, 'M_NOT_YET_UPLOADED', 'The media has not been uploaded yet');
      await this.d.waiters.wait(mediaId, Math.min(left, WAIT_POLL_MS));
    }
  }

  async download(c: Context, authenticated: boolean): Promise<Response> {
    const who: Requester = { kind: 'client', authenticated };
    await this.authenticate(c, who);
    const media = await this.findMedia(c, c.req.param('serverName')!, c.req.param('mediaId')!, who);
    const fileName = c.req.param('fileName') || media.uploadName;
    return this.serveFile(c, this.d.files.contentPath(media.hash), media.contentType, fileName, media);
  }

  async thumbnail(c: Context, authenticated: boolean): Promise<Response> {
    const who: Requester = { kind: 'client', authenticated };
    await this.authenticate(c, who);
    const want = thumbnailParams(c);
    const media = await this.findMedia(c, c.req.param('serverName')!, c.req.param('mediaId')!, who);
    const thumb = await this.makeThumbnail(c, media, want);
    return this.serveFile(c, thumb.file, thumb.contentType, thumb.fileName, media);
  }

  /** GET /_matrix/federation/v1/media/download/{mediaId}: our media, as multipart/mixed. */
  async federationDownload(c: Context): Promise<Response> {
    const who: Requester = { kind: 'federation' };
    await this.authenticate(c, who);
    const media = await this.findMedia(c, this.d.serverName, c.req.param('mediaId')!, who);
    return this.serveMultipart(this.d.files.contentPath(media.hash), media.contentType, media.uploadName, media);
  }

  /** GET /_matrix/federation/v1/media/thumbnail/{mediaId}: a thumbnail of our media, as multipart/mixed. */
  async federationThumbnail(c: Context): Promise<Response> {
    const who: Requester = { kind: 'federation' };
    await this.authenticate(c, who);
    const want = thumbnailParams(c);
    const media = await this.findMedia(c, this.d.serverName, c.req.param('mediaId')!, who);
    const thumb = await this.makeThumbnail(c, media, want);
    return this.serveMultipart(thumb.file, thumb.contentType, thumb.fileName, media);
  }

  private async makeThumbnail(c: Context, media: StoredMedia, want: ThumbnailSize): Promise<{ file: string; contentType: string; fileName: string }> {
    if (!canThumbnail(media.contentType)) {
      throw new MatrixError(400, 'M_UNKNOWN', `Cannot generate a thumbnail of content of type ${media.contentType}`);
    }
    const animated = c.req.query('animated') === 'true';
    // With no configured size to choose from, make the requested one (bounded) rather than refuse.
    const size = this.d.thumbnailer.targetSize(want) ?? { ...want, width: Math.min(want.width, 1600), height: Math.min(want.height, 1600) };
    const thumb = await this.d.thumbnailer.thumbnail(media, size, animated);
    const ext = thumb.contentType.split('/')[1] ?? 'bin';
    return { file: this.d.files.thumbnailPath(thumb), contentType: thumb.contentType, fileName: `thumbnail.${ext}` };
  }

  private async open(file: string, media: StoredMedia): Promise<NonNullable<Awaited<ReturnType<FileStore['open']>>>> {
    const opened = await this.d.files.open(file);
    if (!opened) {
      this.d.log.error({ mediaId: media.mediaId, serverName: media.serverName, file }, 'media file missing from the store');
      throw notFound('Media not found');
    }
    return opened;
  }

  private async serveFile(c: Context, file: string, contentType: string, fileName: string | null, media: StoredMedia): Promise<Response> {
    const opened = await this.open(file, media);
    const headers = {
      ...MEDIA_SECURITY_HEADERS,
      'Content-Type': servedContentType(contentType),
      'Content-Disposition': contentDisposition(contentType, fileName),
      'Content-Length': String(opened.sizeBytes),
    };
    if (c.req.method === 'HEAD') {
      await opened.handle.close();
      return new Response(null, { status: 200, headers });
    }
    return new Response(fileStream(opened.handle), { status: 200, headers });
  }

  private async serveMultipart(file: string, contentType: string, fileName: string | null, media: StoredMedia): Promise<Response> {
    const opened = await this.open(file, media);
    const body = multipartResponseBody(
      { stream: fileStream(opened.handle), sizeBytes: opened.sizeBytes },
      { contentType: servedContentType(contentType), contentDisposition: contentDisposition(contentType, fileName) },
    );
    return new Response(body.body, { status: 200, headers: { 'Content-Type': body.contentType, 'Content-Length': String(body.contentLength) } });
  }
}

/** The path and query exactly as the client sent them (what an X-Matrix origin signed). */
function requestTarget(url: string): string {
  const afterScheme = url.indexOf('//');
  const pathStart = url.indexOf('/', afterScheme + 2);
  return pathStart === -1 ? '/' : url.slice(pathStart);
}

export function waitMs(c: Context): number {
  const raw = c.req.query('timeout_ms');
  if (raw === undefined) return DEFAULT_WAIT_MS;
  if (!/^\d+$/.test(raw)) throw invalidParam('timeout_ms must be a non-negative integer');
  return Math.min(Number(raw), MAX_WAIT_MS);
}

function positiveInt(c: Context, name: string): number {
  const raw = c.req.query(name);
  if (raw === undefined || raw === '') throw missingParam(`Missing ${name}`);
  if (!/^\d{1,9}$/.test(raw) || Number(raw) < 1) throw invalidParam(`${name} must be a positive integer`);
  return Number(raw);
}

function thumbnailParams(c: Context): ThumbnailSize {
  const width = positiveInt(c, 'width');
  const height = positiveInt(c, 'height');
  const method = c.req.query('method') ?? 'scale';
  if (method !== 'crop' && method !== 'scale') throw invalidParam('method must be "crop" or "scale"');
  return { width, height, method };
}
