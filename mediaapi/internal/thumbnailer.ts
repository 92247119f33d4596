/**
 * Thumbnails with sharp (libvips): pre-generated for `media_api.thumbnail_sizes` after each
 * image upload, and on demand — at the requested size when `dynamic_thumbnails`, otherwise at
 * the configured size that fits the request best. At most `max_thumbnail_generators` images
 * are decoded at once; concurrent requests for the same thumbnail share one generation.
 *
 * Output: JPEG for JPEG originals, PNG for the other still images (keeps transparency),
 * animated WebP when an animated thumbnail is asked of a GIF or WebP. EXIF orientation is
 * applied and metadata stripped. Decoding is capped at MAX_INPUT_PIXELS, so a small file that
 * claims huge dimensions (a decompression bomb) is refused rather than decoded.
 */
import type { Logger } from 'pino';
import sharp, { type OutputInfo } from 'sharp';
import { MatrixError } from '../../internal/httputil/index.js';
import type { MediaStore, StoredMedia, ThumbnailKey, ThumbnailMetadata, ThumbnailMethod } from '../storage/mediastore.js';
import type { FileStore } from './filestore.js';
import { baseContentType } from './headers.js';
import { Semaphore } from './semaphore.js';

/** Still images we decode; others (SVG: script; TIFF, HEIC: rarely sent) get no thumbnail. */
export const THUMBNAILABLE_TYPES: ReadonlySet<string> = new Set(['image/jpeg', 'image/png', 'image/gif', 'image/webp']);
const ANIMATABLE_TYPES: ReadonlySet<string> = new Set(['image/gif', 'image/webp']);

/** 50 megapixels: well past any photo a client sends, well short of a decompression bomb. */
export const MAX_INPUT_PIXELS = 50_000_000;
/** Largest side of a dynamic thumbnail: a thumbnail, not a re-encode of the original. */
export const MAX_DYNAMIC_SIDE = 1600;

export interface ThumbnailSize {
  width: number;
  height: number;
  method: ThumbnailMethod;
}

export const canThumbnail = (contentType: string): boolean => THUMBNAILABLE_TYPES.has(baseContentType(contentType));

/** The image could not be decoded: its content does not match its type, or it is too big. */
export class BrokenImageError extends MatrixError {
  constructor(detail: string) {
    super(400, 'M_UNKNOWN', `Cannot generate a thumbnail: the image could not be decoded (${detail})`);
  }
}

/**
 * Among configured sizes, the one to serve for a request (Synapse's rule, simplified): of the
 * sizes with the requested method (any, if none has it), the smallest that is at least as big
 * as asked in both dimensions; failing that, the biggest.
 */
export function chooseConfiguredSize(sizes: readonly ThumbnailSize[], want: ThumbnailSize): ThumbnailSize | undefined {
  const sameMethod = sizes.filter((s) => s.method === want.method);
  const pool = sameMethod.length ? sameMethod : [...sizes];
  if (!pool.length) return undefined;
  const area = (s: ThumbnailSize): number => s.width * s.height;
  const bigEnough = pool.filter((s) => s.width >= want.width && s.height >= want.height).sort((a, b) => area(a) - area(b));
  if (bigEnough.length) return bigEnough[0];
  return [...pool].sort((a, b) => area(b) - area(a))[0];
}

export class Thumbnailer {
  private readonly limiter: Semaphore;
  private readonly inflight = new Map<string, Promise<ThumbnailMetadata>>();
  generated = 0;

  constructor(
    private readonly opts: {
      files: FileStore;
      store: MediaStore;
      maxGenerators: number;
      sizes: readonly ThumbnailSize[];
      dynamic: boolean;
      log: Logger;
    },
  ) {
    this.limiter = new Semaphore(opts.maxGenerators);
  }

  /** The size to make for a request: as asked (bounded) when dynamic, else the best configured one. */
  targetSize(want: ThumbnailSize): ThumbnailSize | undefined {
    if (this.opts.dynamic) {
      return { width: Math.min(want.width, MAX_DYNAMIC_SIDE), height: Math.min(want.height, MAX_DYNAMIC_SIDE), method: want.method };
    }
    return chooseConfiguredSize(this.opts.sizes, want);
  }

  /** Whether an animated thumbnail can be made of this content type. */
  static animatable(contentType: string): boolean {
    return ANIMATABLE_TYPES.has(baseContentType(contentType));
  }

  /** Makes the configured sizes of a new image in the background; failures are logged only. */
  pregenerate(media: StoredMedia): void {
    if (!canThumbnail(media.contentType)) return;
    for (const size of this.opts.sizes) {
      this.thumbnail(media, size, false).catch((err: unknown) => {
        this.opts.log.warn({ err: err instanceof Error ? err.message : String(err), mediaId: media.mediaId, size }, 'cannot pre-generate thumbnail');
      });
    }
  }

  /** The stored thumbnail of this size, made now if it does not exist yet. */
  async thumbnail(media: StoredMedia, size: ThumbnailSize, animated: boolean): Promise<ThumbnailMetadata> {
    const key: ThumbnailKey = { hash: media.hash, ...size, animated: animated && Thumbnailer.animatable(media.contentType) };
    const existing = await this.opts.store.thumbnail(key);
    if (existing && (await this.opts.files.has(this.opts.files.thumbnailPath(key)))) return existing;
    const id = `${key.hash}/${key.width}x${key.height}/${key.method}/${key.animated}`;
    let p = this.inflight.get(id);
    if (!p) {
      p = this.limiter.run(() => this.generate(media, key)).finally(() => this.inflight.delete(id));
      this.inflight.set(id, p);
    }
    return p;
  }

  private async generate(media: StoredMedia, key: ThumbnailKey): Promise<ThumbnailMetadata> {
    const source = this.opts.files.contentPath(media.hash);
    let out: { data: Buffer; info: OutputInfo };
    let contentType: string;
    try {
      let img = sharp(source, { animated: key.animated, limitInputPixels: MAX_INPUT_PIXELS })
        .rotate()
        .resize({ width: key.width, height: key.height, fit: key.method === 'crop' ? 'cover' : 'inside', withoutEnlargement: true });
      if (key.animated) {
        img = img.webp({ quality: 75 });
        contentType = 'image/webp';
      } else if (baseContentType(media.contentType) === 'image/jpeg') {
        img = img.jpeg({ quality: 80 });
        contentType = 'image/jpeg';
      } else {
        img = img.png();
        contentType = 'image/png';
      }
      out = await img.toBuffer({ resolveWithObject: true });
    } catch (err) {
      throw new BrokenImageError(err instanceof Error ? err.message : String(err));
    }
    await this.opts.files.writeThumbnail(key, out.data);
    const meta: ThumbnailMetadata = {
      ...key,
      contentType,
      sizeBytes: out.data.length,
      actualWidth: out.info.width,
      actualHeight: out.info.pageHeight ?? out.info.height,
      createdTs: Date.now(),
    };
    await this.opts.store.insertThumbnail(meta);
    this.generated++;
    return meta;
  }
}

// File inputs are read once per thumbnail; libvips' operation cache would only hold memory.
sharp.cache(false);
