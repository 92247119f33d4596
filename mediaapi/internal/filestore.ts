/**
 * Media bytes on disk under `media_api.base_path`, named by content (SHA-256, lower-case hex):
 *
 *   content/ab/cd/abcd…          an upload's bytes; identical uploads share one file
 *   thumbnails/ab/cd/abcd…/WxH-method[-animated]
 *   tmp/                         files being written
 *
 * Every file is written under tmp/, flushed to disk, then renamed into place: a crash or an
 * aborted upload leaves at worst a stray file in tmp/ (emptied at start-up), never a
 * half-written file under a content name. Bodies stream through a hash and a size counter
 * straight to disk, so memory stays flat whatever the size.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { tooLarge } from '../../internal/httputil/index.js';
import type { ThumbnailKey } from '../storage/mediastore.js';

export interface StoredFile {
  hash: string;
  sizeBytes: number;
  /** False when a file with these bytes was already stored (deduplicated). */
  isNew?: boolean;
}

const HASH_RE = /^[0-9a-f]{64}$/;

export class FileStore {
  private readonly tmpDir: string;

  constructor(readonly basePath: string) {
    this.tmpDir = path.join(basePath, 'tmp');
  }

  /** Creates the folders and empties tmp/ of what an earlier process left half-written. */
  async init(): Promise<void> {
    await mkdir(path.join(this.basePath, 'content'), { recursive: true });
    await mkdir(path.join(this.basePath, 'thumbnails'), { recursive: true });
    await mkdir(this.tmpDir, { recursive: true });
    for (const name of await readdir(this.tmpDir)) await rm(path.join(this.tmpDir, name), { force: true, recursive: true });
  }

  contentPath(hash: string): string {
    if (!HASH_RE.test(hash)) throw new Error(`not a SHA-256 hex digest: ${hash}`);
    return path.join(this.basePath, 'content', hash.slice(0, 2), hash.slice(2, 4), hash);
  }

  thumbnailPath(k: ThumbnailKey): string {
    if (!HASH_RE.test(k.hash)) throw new Error(`not a SHA-256 hex digest: ${k.hash}`);
    const name = `${k.width}x${k.height}-${k.method}${k.animated ? '-animated' : ''}`;
    return path.join(this.basePath, 'thumbnails', k.hash.slice(0, 2), k.hash.slice(2, 4), k.hash, name);
  }

  private tmpPath(): string {
    return path.join(this.tmpDir, `${Date.now()}-${randomBytes(8).toString('hex')}`);
  }

  /**
   * Streams a body to disk and stores it under its hash. Past `maxBytes` (0: no limit) it
   * stops reading, deletes what it wrote and throws 413 M_TOO_LARGE.
   */
  async writeContent(body: WebReadableStream<Uint8Array> | Readable | null, maxBytes: number): Promise<StoredFile> {
    const tmp = this.tmpPath();
    const hasher = createHash('sha256');
    let size = 0;
    let over = false;
    const meter = new Transform({
      transform(chunk: Buffer, _enc, done) {
        size += chunk.length;
        if (maxBytes > 0 && size > maxBytes) {
          over = true;
          done(tooLarge(`The file is larger than the limit of ${maxBytes} bytes`));
          return;
        }
        hasher.update(chunk);
        done(null, chunk);
      },
    });
    const source = body === null ? Readable.from([]) : body instanceof Readable ? body : Readable.fromWeb(body);
    try {
      await pipeline(source, meter, createWriteStream(tmp, { flags: 'wx', flush: true }));
    } catch (err) {
      await rm(tmp, { force: true });
      if (over) throw tooLarge(`The file is larger than the limit of ${maxBytes} bytes`);
      throw err;
    }
    const hash = hasher.digest('hex');
    const isNew = await this.moveIntoPlace(tmp, this.contentPath(hash));
    return { hash, sizeBytes: size, isNew };
  }

  /**
   * Deletes a content file that this process just wrote and then decided not to record (a
   * preview "image" that does not decode, a remote answer that failed a check), unless a
   * media row uses its hash after all: otherwise such files would pile up unreferenced.
   */
  async discardUnrecorded(file: StoredFile, inUse: (hash: string) => Promise<boolean>): Promise<void> {
    if (!file.isNew || (await inUse(file.hash))) return;
    await rm(this.contentPath(file.hash), { force: true });
  }

  /** Stores a small buffer (a thumbnail) at `dest`, atomically. */
  async writeThumbnail(k: ThumbnailKey, data: Buffer): Promise<void> {
    const tmp = this.tmpPath();
    try {
      await writeFile(tmp, data, { flag: 'wx', flush: true });
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    await this.moveIntoPlace(tmp, this.thumbnailPath(k), true);
  }

  /**
   * Renames a finished temp file to its final name. Content files are named by their hash, so
   * if one is there already it holds the same bytes: keep it and drop ours (deduplication).
   */
  private async moveIntoPlace(tmp: string, dest: string, replace = false): Promise<boolean> {
    try {
      await mkdir(path.dirname(dest), { recursive: true });
      if (!replace && (await exists(dest))) {
        await unlink(tmp);
        return false;
      }
      await rename(tmp, dest);
      return true;
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  /** Opens a stored file for reading; undefined when it is not on disk. */
  async open(file: string): Promise<{ handle: FileHandle; sizeBytes: number } | undefined> {
    let handle: FileHandle;
    try {
      handle = await open(file, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    try {
      return { handle, sizeBytes: (await handle.stat()).size };
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  async has(file: string): Promise<boolean> {
    return exists(file);
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/**
 * A web stream of an open file that reads one 256 KiB chunk each time the consumer pulls (so at
 * most about one chunk is buffered ahead, whatever the file size), and closes the file at the
 * end, on error or when the consumer cancels (client gone).
 */
export function fileStream(handle: FileHandle, chunkSize = 256 * 1024): ReadableStream<Uint8Array> {
  let position = 0;
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await handle.close();
  };
  return new ReadableStream<Uint8Array>(
    {
      async pull(ctrl) {
        try {
          const buf = Buffer.allocUnsafe(chunkSize);
          const { bytesRead } = await handle.read(buf, 0, chunkSize, position);
          if (bytesRead === 0) {
            await close();
            ctrl.close();
            return;
          }
          position += bytesRead;
          ctrl.enqueue(bytesRead === chunkSize ? buf : buf.subarray(0, bytesRead));
        } catch (err) {
          await close().catch(() => {});
          ctrl.error(err);
        }
      },
      async cancel() {
        await close();
      },
    },
    { highWaterMark: 1 },
  );
}
