/**
 * Media of other servers: fetched from the origin once, kept like an upload (content-hash file,
 * a metadata row under the origin's server name), then served from here.
 *
 * - One fetch per media at a time in this process: concurrent requests for the same media wait
 *   for the same fetch (and a second process racing us stores the same row, which the unique
 *   key settles).
 * - Spec v1.11 first: GET /_matrix/federation/v1/media/download/{mediaId}, a multipart answer
 *   whose second part holds the bytes or a `Location` to fetch them from. An origin that does
 *   not know that endpoint (404 or 400 M_UNRECOGNIZED, or a bare 404/405/501) is asked the
 *   legacy GET /_matrix/media/v3/download/{serverName}/{mediaId}?allow_remote=false.
 * - Limits: `max_file_size_bytes` on the declared length and again while streaming (past it the
 *   transfer is cut, the temp file deleted, nothing recorded: 502 M_TOO_LARGE as the spec's
 *   federation answer says); the origin has `timeout_ms` (spec, default 20 s) to start
 *   answering, then must keep sending (IDLE_TIMEOUT_MS), and the whole transfer is capped at
 *   TRANSFER_TIMEOUT_MS. Bytes go straight to disk through the file store (no buffering).
 * - Thumbnails of remote media are made here from the cached original, as Dendrite and Synapse
 *   do: one fetch then serves downloads and every thumbnail size, and decoding stays under our
 *   own limits (MAX_INPUT_PIXELS). The federation thumbnail endpoint is not used.
 */
import type { Readable } from 'node:stream';
import { Transform } from 'node:stream';
import type { Logger } from 'pino';
import { MatrixError, notFound } from '../../internal/httputil/index.js';
import { isUniqueViolation } from '../../internal/sqlutil/index.js';
import type { FederationMediaClient, RemoteMediaResponse } from '../api/index.js';
import { hasContent, type MediaStore, type StoredMedia } from '../storage/mediastore.js';
import type { FileStore } from './filestore.js';
import { dispositionFileName, uploadContentType } from './headers.js';
import { multipartBoundary, MultipartError, readMultipartMedia } from './multipart.js';
import type { Thumbnailer } from './thumbnailer.js';

/** Once the answer started, the origin may pause this long between chunks. */
export const IDLE_TIMEOUT_MS = 30_000;
/** A whole transfer, however large, is given up after this long. */
export const TRANSFER_TIMEOUT_MS = 15 * 60_000;
/** Besides the `timeout_ms` the origin is given, time to connect and for its own answer. */
const HEADER_GRACE_MS = 5_000;
const MAX_ERROR_BODY = 64 * 1024;

export interface RemoteMediaDeps {
  client: FederationMediaClient;
  /** Fetches a `Location` given in a federation answer (under federation's network policy). */
  fetchUrl: (url: string, signal: AbortSignal) => Promise<RemoteMediaResponse>;
  files: FileStore;
  store: MediaStore;
  thumbnailer: Thumbnailer;
  /** 0: no limit. */
  maxFileSizeBytes: number;
  log: Logger;
}

const remoteError = (msg: string): MatrixError => new MatrixError(502, 'M_UNKNOWN', msg);
const tooLargeRemote = (max: number): MatrixError => new MatrixError(502, 'M_TOO_LARGE', `The remote file is larger than the limit of ${max} bytes`);

export class RemoteMedia {
  private readonly inflight = new Map<string, Promise<StoredMedia>>();
  /** Fetches started from origins (tests and benchmarks read it). */
  fetches = 0;

  constructor(private readonly d: RemoteMediaDeps) {}

  /**
   * The cached copy of `mxc://serverName/mediaId`, fetched from the origin first when there is
   * none. `timeoutMs`: how long the origin may take to start answering (the spec's timeout_ms).
   */
  async get(serverName: string, mediaId: string, timeoutMs: number): Promise<StoredMedia> {
    const key = `${serverName}/${mediaId}`;
    const pending = this.inflight.get(key);
    if (pending) return pending;
    const cached = await this.d.store.media(mediaId, serverName);
    if (cached && hasContent(cached)) return cached;
    // Checked again: another request may have started the fetch while we read the database.
    const started = this.inflight.get(key);
    if (started) return started;
    const p = this.fetchAndStore(serverName, mediaId, timeoutMs).finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  private async fetchAndStore(serverName: string, mediaId: string, timeoutMs: number): Promise<StoredMedia> {
    this.fetches++;
    const ac = new AbortController();
    const abort = (why: string) => ac.abort(new Error(why));
    let timer = setTimeout(() => abort(`${serverName} did not answer within ${timeoutMs + HEADER_GRACE_MS} ms`), timeoutMs + HEADER_GRACE_MS);
    const total = setTimeout(() => abort(`the transfer from ${serverName} took longer than ${TRANSFER_TIMEOUT_MS} ms`), TRANSFER_TIMEOUT_MS);
    const bodies: Readable[] = [];
    try {
      const { content, contentType, disposition, declaredLength } = await this.download(serverName, mediaId, timeoutMs, ac.signal, bodies);
      clearTimeout(timer);
      const max = this.d.maxFileSizeBytes;
      if (max > 0 && declaredLength !== undefined && declaredLength > max) throw tooLargeRemote(max);
      // From here the origin must keep sending.
      const idle = new Transform({
        transform(chunk: Buffer, _enc, done) {
          clearTimeout(timer);
          timer = setTimeout(() => abort(`${serverName} stopped sending for ${IDLE_TIMEOUT_MS} ms`), IDLE_TIMEOUT_MS);
          done(null, chunk);
        },
      });
      timer = setTimeout(() => abort(`${serverName} stopped sending for ${IDLE_TIMEOUT_MS} ms`), IDLE_TIMEOUT_MS);
      content.once('error', (e) => idle.destroy(e));
      let file;
      try {
        file = await this.d.files.writeContent(content.pipe(idle), max);
      } catch (e) {
        if (e instanceof MatrixError && e.status === 413) throw tooLargeRemote(max);
        throw e;
      }
      if (declaredLength !== undefined && declaredLength !== file.sizeBytes) {
        await this.d.files.discardUnrecorded(file, (h) => this.d.store.hashInUse(h));
        throw remoteError(`${serverName} sent ${file.sizeBytes} bytes where it announced ${declaredLength}`);
      }
      const media: StoredMedia = {
        mediaId,
        serverName,
        contentType: uploadContentType(contentType),
        sizeBytes: file.sizeBytes,
        uploadName: dispositionFileName(disposition),
        userId: '',
        createdTs: Date.now(),
        hash: file.hash,
        unusedExpiresTs: null,
      };
      try {
        await this.d.store.insertMedia(media);
      } catch (e) {
        // Another process fetched it too: its row stands (the file is the same by hash, or its own).
        if (!isUniqueViolation(e)) throw e;
        const theirs = await this.d.store.media(mediaId, serverName);
        if (theirs && hasContent(theirs)) return theirs;
        throw e;
      }
      this.d.thumbnailer.pregenerate(media);
      this.d.log.debug({ serverName, mediaId, size: media.sizeBytes }, 'remote media cached');
      return media;
    } catch (e) {
      if (e instanceof MatrixError) throw e;
      const why = ac.signal.aborted ? (ac.signal.reason as Error).message : e instanceof Error ? e.message : String(e);
      this.d.log.info({ serverName, mediaId, err: why }, 'cannot fetch remote media');
      throw remoteError(`Cannot fetch the media from ${serverName}: ${why}`);
    } finally {
      clearTimeout(timer);
      clearTimeout(total);
      for (const b of bodies) b.destroy();
    }
  }

  /** The origin's answer, down to the media bytes (multipart, Location or legacy). */
  private async download(
    serverName: string,
    mediaId: string,
    timeoutMs: number,
    signal: AbortSignal,
    bodies: Readable[],
  ): Promise<{ content: Readable; contentType: string | undefined; disposition: string | undefined; declaredLength: number | undefined }> {
    const id = encodeURIComponent(mediaId);
    let res = await this.d.client.get(serverName, `/_matrix/federation/v1/media/download/${id}?timeout_ms=${timeoutMs}`, signal);
    bodies.push(res.body);
    let legacy = false;
    if (res.status !== 200) {
      const err = await errorBody(res);
      if (!isUnknownEndpoint(res.status, err)) throw originError(serverName, res.status, err);
      // The server name as is (it was checked to be one); only IPv6 brackets need escaping.
      const server = serverName.replace(/[[\]]/g, (ch) => encodeURIComponent(ch));
      res = await this.d.client.get(serverName, `/_matrix/media/v3/download/${server}/${id}?allow_remote=false&timeout_ms=${timeoutMs}`, signal);
      bodies.push(res.body);
      legacy = true;
      if (res.status !== 200) throw originError(serverName, res.status, await errorBody(res));
    }
    if (legacy) return { content: res.body, contentType: header(res, 'content-type'), disposition: header(res, 'content-disposition'), declaredLength: lengthOf(res) };

    const boundary = multipartBoundary(header(res, 'content-type'));
    if (!boundary) throw remoteError(`${serverName} answered without a multipart/mixed body`);
    let part;
    try {
      part = await readMultipartMedia(res.body, boundary);
    } catch (e) {
      if (e instanceof MultipartError) throw remoteError(`${serverName} answered a malformed multipart body: ${e.message}`);
      throw e;
    }
    bodies.push(part.content);
    const location = part.headers['location'];
    if (location === undefined) {
      const declared = part.headers['content-length'];
      return {
        content: part.content,
        contentType: part.headers['content-type'],
        disposition: part.headers['content-disposition'],
        declaredLength: declared !== undefined && /^\d+$/.test(declared) ? Number(declared) : undefined,
      };
    }
    part.content.destroy();
    const moved = await this.d.fetchUrl(location, signal);
    bodies.push(moved.body);
    if (moved.status !== 200) throw remoteError(`${serverName} redirected to a URL that answered ${moved.status}`);
    return {
      content: moved.body,
      contentType: header(moved, 'content-type') ?? part.headers['content-type'],
      disposition: header(moved, 'content-disposition') ?? part.headers['content-disposition'],
      declaredLength: lengthOf(moved),
    };
  }
}

function header(res: RemoteMediaResponse, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function lengthOf(res: RemoteMediaResponse): number | undefined {
  const v = header(res, 'content-length');
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
}

/** The Matrix error of a non-200 answer (bounded read); undefined when it has none. */
async function errorBody(res: RemoteMediaResponse): Promise<{ errcode?: unknown; error?: unknown } | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (size > MAX_ERROR_BODY) break;
      chunks.push(chunk as Buffer);
    }
  } catch {
    return undefined;
  } finally {
    res.body.destroy();
  }
  try {
    const v: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** The origin does not know the federation media endpoint (it predates spec v1.11). */
function isUnknownEndpoint(status: number, err: { errcode?: unknown } | undefined): boolean {
  if ((status === 404 || status === 400) && err?.errcode === 'M_UNRECOGNIZED') return true;
  return (status === 404 || status === 405 || status === 501) && typeof err?.errcode !== 'string';
}

function originError(serverName: string, status: number, err: { errcode?: unknown; error?: unknown } | undefined): MatrixError {
  const errcode = typeof err?.errcode === 'string' ? err.errcode : undefined;
  if (status === 404) return notFound('Media not found');
  if (status === 504 && errcode === 'M_NOT_YET_UPLOADED') return new MatrixError(504, 'M_NOT_YET_UPLOADED', 'The media has not been uploaded yet');
  if (errcode === 'M_TOO_LARGE') return new MatrixError(502, 'M_TOO_LARGE', `${serverName} says the media is too large to serve`);
  return remoteError(`${serverName} answered ${status}${errcode ? ` ${errcode}` : ''}`);
}
