import type { Kysely } from 'kysely';
import { beforeAll, expect, it } from 'vitest';
import { isUniqueViolation, runMigrations } from '../../internal/sqlutil/index.js';
import { describeEachDatabase } from '../../internal/sqlutil/testing.js';
import { MediaStore, type StoredMedia, type ThumbnailMetadata } from './mediastore.js';
import { mediaapiMigrations } from './migrations.js';
import type { MediaapiDatabase } from './tables.js';

const HASH = 'a'.repeat(64);

describeEachDatabase<MediaapiDatabase>('mediaapi storage', (ctx) => {
  let store: MediaStore;
  beforeAll(async () => {
    await runMigrations(ctx.db() as unknown as Kysely<unknown>, ctx.dialect, 'mediaapi', mediaapiMigrations);
    store = new MediaStore(ctx.db());
  });

  it('records media once per ID and reads it back', async () => {
    const m: StoredMedia = {
      mediaId: 'abc',
      serverName: 'hs',
      contentType: 'image/png',
      sizeBytes: 5_000_000_000,
      uploadName: 'çat.png',
      userId: '@u:hs',
      createdTs: 1_700_000_000_000,
      hash: HASH,
      unusedExpiresTs: null,
    };
    await store.insertMedia(m);
    expect(await store.media('abc', 'hs')).toEqual(m);
    expect(await store.media('abc', 'other')).toBeUndefined();
    const dup = await store.insertMedia(m).catch((e: unknown) => e);
    expect(isUniqueViolation(dup)).toBe(true);
    // The same content under another ID is just another row.
    await store.insertMedia({ ...m, mediaId: 'def' });
    expect((await store.media('def', 'hs'))?.hash).toBe(HASH);
  });

  it('fills a pending upload exactly once and expires unused ones', async () => {
    await store.insertPending({ mediaId: 'p1', serverName: 'hs', userId: '@u:hs', createdTs: 1000, unusedExpiresTs: 5000 });
    await store.insertPending({ mediaId: 'p2', serverName: 'hs', userId: '@u:hs', createdTs: 1000, unusedExpiresTs: 2000 });
    expect(await store.countPending('@u:hs', 1500)).toBe(2);
    expect(await store.countPending('@u:hs', 3000)).toBe(1);
    expect(await store.media('p1', 'hs')).toMatchObject({ hash: null, contentType: null, sizeBytes: null, unusedExpiresTs: 5000 });
    const content = { contentType: 'text/plain', sizeBytes: 3, uploadName: null, hash: HASH };
    expect(await store.completePending('p1', 'hs', content)).toBe(true);
    expect(await store.completePending('p1', 'hs', content)).toBe(false);
    expect(await store.media('p1', 'hs')).toMatchObject({ ...content, unusedExpiresTs: null });
    expect(await store.countPending('@u:hs', 1500)).toBe(1);
    expect(await store.deleteExpiredPending(3000)).toBe(1);
    expect(await store.media('p2', 'hs')).toBeUndefined();
    expect(await store.media('p1', 'hs')).toBeDefined();
  });

  it('keys thumbnails by content hash, size, method and animation', async () => {
    const t: ThumbnailMetadata = {
      hash: HASH,
      width: 32,
      height: 32,
      method: 'crop',
      animated: false,
      contentType: 'image/png',
      sizeBytes: 100,
      actualWidth: 32,
      actualHeight: 32,
      createdTs: 1,
    };
    await store.insertThumbnail(t);
    await store.insertThumbnail({ ...t, sizeBytes: 999 });
    await store.insertThumbnail({ ...t, animated: true, contentType: 'image/webp' });
    await store.insertThumbnail({ ...t, method: 'scale', width: 640, height: 480, actualHeight: 427, actualWidth: 640 });
    expect(await store.thumbnail(t)).toEqual(t);
    expect((await store.thumbnail({ ...t, animated: true }))?.contentType).toBe('image/webp');
    expect(await store.thumbnail({ ...t, width: 33 })).toBeUndefined();
    expect((await store.thumbnails(HASH)).length).toBe(3);
  });

  it('caches URL previews per URL and hour, keeps the first, and forgets old ones', async () => {
    const url = 'https://example.org/a?b=c';
    expect(await store.urlPreview(url, 10)).toBeUndefined();
    await store.insertUrlPreview(url, 10, '{"og:title":"first"}', 1_000);
    await store.insertUrlPreview(url, 10, '{"og:title":"second"}', 2_000);
    await store.insertUrlPreview(url, 11, '{"og:title":"next hour"}', 5_000);
    expect(await store.urlPreview(url, 10)).toBe('{"og:title":"first"}');
    expect(await store.urlPreview(url, 11)).toBe('{"og:title":"next hour"}');
    expect(await store.urlPreview('https://example.org/a', 10)).toBeUndefined();
    expect(await store.deleteUrlPreviewsBefore(3_000)).toBe(1);
    expect(await store.urlPreview(url, 10)).toBeUndefined();
    expect(await store.urlPreview(url, 11)).toBeDefined();
  });
});
