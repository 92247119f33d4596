/**
 * Media metadata in the database: one implementation for PostgreSQL and SQLite.
 * File bytes are not here: see internal/filestore.ts.
 */
import type { Kysely } from 'kysely';
import { dbBool, fromDbBool } from '../../internal/sqlutil/index.js';
import type { MediaapiDatabase } from './tables.js';

export interface MediaMetadata {
  mediaId: string;
  serverName: string;
  /** Null while an asynchronous upload (`POST /v1/create`) is pending. */
  contentType: string | null;
  sizeBytes: number | null;
  uploadName: string | null;
  userId: string;
  createdTs: number;
  /** Hex SHA-256 of the content; null while pending. */
  hash: string | null;
  /** Pending uploads: when the reservation lapses. */
  unusedExpiresTs: number | null;
}

/** Metadata of media whose content has arrived. */
export type StoredMedia = MediaMetadata & { contentType: string; sizeBytes: number; hash: string };

export const hasContent = (m: MediaMetadata): m is StoredMedia => m.hash !== null;

export type ThumbnailMethod = 'crop' | 'scale';

export interface ThumbnailKey {
  hash: string;
  width: number;
  height: number;
  method: ThumbnailMethod;
  animated: boolean;
}

export interface ThumbnailMetadata extends ThumbnailKey {
  contentType: string;
  sizeBytes: number;
  actualWidth: number;
  actualHeight: number;
  createdTs: number;
}

type MediaRow = MediaapiDatabase['mediaapi_media_repository'];
type ThumbRow = MediaapiDatabase['mediaapi_thumbnails'];

const fromMediaRow = (r: MediaRow): MediaMetadata => ({
  mediaId: r.media_id,
  serverName: r.server_name,
  contentType: r.content_type,
  sizeBytes: r.file_size_bytes === null ? null : Number(r.file_size_bytes),
  uploadName: r.upload_name,
  userId: r.user_id,
  createdTs: Number(r.created_ts),
  hash: r.hash,
  unusedExpiresTs: r.unused_expires_ts === null ? null : Number(r.unused_expires_ts),
});

const fromThumbRow = (r: ThumbRow): ThumbnailMetadata => ({
  hash: r.hash,
  width: r.width,
  height: r.height,
  method: r.method as ThumbnailMethod,
  animated: fromDbBool(r.animated),
  contentType: r.content_type,
  sizeBytes: Number(r.file_size_bytes),
  actualWidth: r.actual_width,
  actualHeight: r.actual_height,
  createdTs: Number(r.created_ts),
});

export class MediaStore {
  constructor(private readonly db: Kysely<MediaapiDatabase>) {}

  /** Records media whose content is stored. Throws a unique violation if the ID exists. */
  async insertMedia(m: StoredMedia): Promise<void> {
    await this.db
      .insertInto('mediaapi_media_repository')
      .values({
        media_id: m.mediaId,
        server_name: m.serverName,
        content_type: m.contentType,
        file_size_bytes: m.sizeBytes,
        upload_name: m.uploadName,
        user_id: m.userId,
        created_ts: m.createdTs,
        hash: m.hash,
        unused_expires_ts: null,
      })
      .execute();
  }

  /** Reserves a media ID for an asynchronous upload by `userId`. */
  async insertPending(p: { mediaId: string; serverName: string; userId: string; createdTs: number; unusedExpiresTs: number }): Promise<void> {
    await this.db
      .insertInto('mediaapi_media_repository')
      .values({
        media_id: p.mediaId,
        server_name: p.serverName,
        content_type: null,
        file_size_bytes: null,
        upload_name: null,
        user_id: p.userId,
        created_ts: p.createdTs,
        hash: null,
        unused_expires_ts: p.unusedExpiresTs,
      })
      .execute();
  }

  /** How many reservations of `userId` are still open (not uploaded, not expired) at `now`. */
  async countPending(userId: string, now: number): Promise<number> {
    const r = await this.db
      .selectFrom('mediaapi_media_repository')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where('user_id', '=', userId)
      .where('hash', 'is', null)
      .where('unused_expires_ts', '>', now)
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  /**
   * Fills a pending reservation with its content. False if it already has content (the
   * update is conditional, so of two racing uploads exactly one wins).
   */
  async completePending(mediaId: string, serverName: string, c: { contentType: string; sizeBytes: number; uploadName: string | null; hash: string }): Promise<boolean> {
    const r = await this.db
      .updateTable('mediaapi_media_repository')
      .set({ content_type: c.contentType, file_size_bytes: c.sizeBytes, upload_name: c.uploadName, hash: c.hash, unused_expires_ts: null })
      .where('media_id', '=', mediaId)
      .where('server_name', '=', serverName)
      .where('hash', 'is', null)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async media(mediaId: string, serverName: string): Promise<MediaMetadata | undefined> {
    const r = await this.db
      .selectFrom('mediaapi_media_repository')
      .selectAll()
      .where('media_id', '=', mediaId)
      .where('server_name', '=', serverName)
      .executeTakeFirst();
    return r ? fromMediaRow(r) : undefined;
  }

  /** Whether any media row has content with this hash. */
  async hashInUse(hash: string): Promise<boolean> {
    const r = await this.db.selectFrom('mediaapi_media_repository').select('media_id').where('hash', '=', hash).limit(1).executeTakeFirst();
    return r !== undefined;
  }

  /** Deletes reservations that expired unused before `now`; returns how many. */
  async deleteExpiredPending(now: number): Promise<number> {
    const r = await this.db
      .deleteFrom('mediaapi_media_repository')
      .where('hash', 'is', null)
      .where('unused_expires_ts', '<=', now)
      .executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  /** Records a thumbnail; a second record of the same key keeps the first. */
  async insertThumbnail(t: ThumbnailMetadata): Promise<void> {
    await this.db
      .insertInto('mediaapi_thumbnails')
      .values({
        hash: t.hash,
        width: t.width,
        height: t.height,
        method: t.method,
        animated: dbBool(t.animated),
        content_type: t.contentType,
        file_size_bytes: t.sizeBytes,
        actual_width: t.actualWidth,
        actual_height: t.actualHeight,
        created_ts: t.createdTs,
      })
      .onConflict((oc) => oc.columns(['hash', 'width', 'height', 'method', 'animated']).doNothing())
      .execute();
  }

  async thumbnail(k: ThumbnailKey): Promise<ThumbnailMetadata | undefined> {
    const r = await this.db
      .selectFrom('mediaapi_thumbnails')
      .selectAll()
      .where('hash', '=', k.hash)
      .where('width', '=', k.width)
      .where('height', '=', k.height)
      .where('method', '=', k.method)
      .where('animated', '=', dbBool(k.animated))
      .executeTakeFirst();
    return r ? fromThumbRow(r) : undefined;
  }

  /** Every thumbnail made of the content with this hash. */
  async thumbnails(hash: string): Promise<ThumbnailMetadata[]> {
    const rows = await this.db.selectFrom('mediaapi_thumbnails').selectAll().where('hash', '=', hash).execute();
    return rows.map(fromThumbRow);
  }

  /** A cached URL preview (its JSON text) for this URL and hour. */
  async urlPreview(url: string, tsBucket: number): Promise<string | undefined> {
    const r = await this.db
      .selectFrom('mediaapi_url_previews')
      .select('preview')
      .where('url', '=', url)
      .where('ts_bucket', '=', tsBucket)
      .executeTakeFirst();
    return r?.preview;
  }

  /** Caches a URL preview; a second one for the same URL and hour keeps the first. */
  async insertUrlPreview(url: string, tsBucket: number, preview: string, createdTs: number): Promise<void> {
    await this.db
      .insertInto('mediaapi_url_previews')
      .values({ url, ts_bucket: tsBucket, preview, created_ts: createdTs })
      .onConflict((oc) => oc.columns(['url', 'ts_bucket']).doNothing())
      .execute();
  }

  /** Forgets previews made before `before`; returns how many. */
  async deleteUrlPreviewsBefore(before: number): Promise<number> {
    const r = await this.db.deleteFrom('mediaapi_url_previews').where('created_ts', '<', before).executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}
