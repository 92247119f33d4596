import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import type { MediaStore, StoredMedia, ThumbnailKey, ThumbnailMetadata } from '../storage/mediastore.js';
import { FileStore } from './filestore.js';
import { Semaphore } from './semaphore.js';
import { chooseConfiguredSize, MAX_DYNAMIC_SIDE, Thumbnailer, type ThumbnailSize } from './thumbnailer.js';

const SIZES: ThumbnailSize[] = [
  { width: 32, height: 32, method: 'crop' },
  { width: 96, height: 96, method: 'crop' },
  { width: 320, height: 240, method: 'scale' },
  { width: 640, height: 480, method: 'scale' },
];

/** The store in memory: enough for the thumbnailer. */
class MemoryStore {
  rows = new Map<string, ThumbnailMetadata>();
  key = (k: ThumbnailKey) => `${k.hash}/${k.width}/${k.height}/${k.method}/${k.animated}`;
  async thumbnail(k: ThumbnailKey) {
    return this.rows.get(this.key(k));
  }
  async insertThumbnail(t: ThumbnailMetadata) {
    this.rows.set(this.key(t), t);
  }
}

describe('thumbnail sizes', () => {
  it('picks the smallest configured size big enough, else the biggest', () => {
    expect(chooseConfiguredSize(SIZES, { width: 20, height: 20, method: 'crop' })).toEqual(SIZES[0]);
    expect(chooseConfiguredSize(SIZES, { width: 50, height: 20, method: 'crop' })).toEqual(SIZES[1]);
    expect(chooseConfiguredSize(SIZES, { width: 2000, height: 2000, method: 'crop' })).toEqual(SIZES[1]);
    expect(chooseConfiguredSize(SIZES, { width: 300, height: 300, method: 'scale' })).toEqual(SIZES[3]);
    expect(chooseConfiguredSize(SIZES.slice(0, 2), { width: 300, height: 300, method: 'scale' })).toEqual(SIZES[1]);
    expect(chooseConfiguredSize([], { width: 1, height: 1, method: 'scale' })).toBeUndefined();
  });

  it('makes the requested size when dynamic, bounded', () => {
    const files = new FileStore(mkdtempSync(path.join(tmpdir(), 'thumbs-')));
    const th = new Thumbnailer({ files, store: new MemoryStore() as unknown as MediaStore, maxGenerators: 1, sizes: SIZES, dynamic: true, log: pino({ level: 'silent' }) });
    expect(th.targetSize({ width: 50, height: 70, method: 'crop' })).toEqual({ width: 50, height: 70, method: 'crop' });
    expect(th.targetSize({ width: 99999, height: 70, method: 'scale' })).toEqual({ width: MAX_DYNAMIC_SIDE, height: 70, method: 'scale' });
  });
});

describe('thumbnail generation', () => {
  it('runs at most max_thumbnail_generators at once and shares identical requests', async () => {
    const files = new FileStore(mkdtempSync(path.join(tmpdir(), 'thumbs-')));
    await files.init();
    const png = await sharp({ create: { width: 1200, height: 900, channels: 3, background: '#336699' } }).png().toBuffer();
    const stored = await files.writeContent(new Blob([png]).stream() as never, 0);
    const media: StoredMedia = { mediaId: 'm', serverName: 'hs', contentType: 'image/png', sizeBytes: stored.sizeBytes, uploadName: null, userId: '@u:hs', createdTs: 0, hash: stored.hash, unusedExpiresTs: null };
    const th = new Thumbnailer({ files, store: new MemoryStore() as unknown as MediaStore, maxGenerators: 2, sizes: SIZES, dynamic: true, log: pino({ level: 'silent' }) });
    const limiter = (th as unknown as { limiter: Semaphore }).limiter;
    let peak = 0;
    const timer = setInterval(() => (peak = Math.max(peak, limiter.running)), 1);
    const sizes = Array.from({ length: 8 }, (_, i) => ({ width: 40 + i * 10, height: 40, method: 'scale' as const }));
    const results = await Promise.all([...sizes, ...sizes].map((s) => th.thumbnail(media, s, false)));
    clearInterval(timer);
    expect(th.generated).toBe(8);
    expect(peak).toBeLessThanOrEqual(2);
    expect(results[0]).toMatchObject({ actualWidth: 40, actualHeight: 30, contentType: 'image/png' });
  });

  it('bounds a semaphore', async () => {
    const s = new Semaphore(3);
    let active = 0;
    let peak = 0;
    await Promise.all(
      Array.from({ length: 20 }, () =>
        s.run(async () => {
          peak = Math.max(peak, ++active);
          await new Promise((r) => setTimeout(r, 2));
          active--;
        }),
      ),
    );
    expect(peak).toBe(3);
    expect(s.running).toBe(0);
  });
});
