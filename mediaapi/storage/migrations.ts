/**
 * The mediaapi schema, versioned. Tables are prefixed `mediaapi_`; the history of applied
 * versions lives in `mediaapi_migrations`.
 *
 * - `mediaapi_media_repository`: one row per media ID (local uploads now, remote copies later).
 *   The bytes live on disk under `media_api.base_path`, named by their SHA-256, so two IDs with
 *   the same content share one file. A row made by `POST /v1/create` has no content yet
 *   (`hash` NULL) until its `PUT /upload/...` arrives; `unused_expires_ts` bounds that wait.
 * - `mediaapi_thumbnails`: thumbnails keyed by the content hash of their original (so
 *   duplicates share thumbnails too) and by the size and method they were made for.
 * - `mediaapi_url_previews` (v2): URL previews as served (the OpenGraph JSON), per URL and
 *   hour: clients ask with the event's timestamp (`ts`), so everyone previewing one message
 *   shares one fetch.
 *
 * Remote media are rows of `mediaapi_media_repository` whose `server_name` is another server's
 * (they never have a pending state, and `user_id` is empty): that is what marks them remote.
 */
import type { ComponentMigration } from '../../internal/sqlutil/index.js';
import { bigintType, boolType } from '../../internal/sqlutil/index.js';

export const mediaapiMigrations: readonly ComponentMigration[] = [
  {
    version: 1,
    name: 'media_repository_thumbnails',
    up: async (db) => {
      await db.schema
        .createTable('mediaapi_media_repository')
        .addColumn('media_id', 'text', (c) => c.notNull())
        .addColumn('server_name', 'text', (c) => c.notNull())
        // NULL while an asynchronous upload is pending.
        .addColumn('content_type', 'text')
        .addColumn('file_size_bytes', bigintType)
        .addColumn('upload_name', 'text')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('created_ts', bigintType, (c) => c.notNull())
        // Lower-case hex SHA-256 of the content; NULL while pending.
        .addColumn('hash', 'text')
        // Pending uploads only: when the reserved ID lapses if nothing was uploaded.
        .addColumn('unused_expires_ts', bigintType)
        .addPrimaryKeyConstraint('mediaapi_media_repository_pk', ['media_id', 'server_name'])
        .execute();
      await db.schema.createIndex('mediaapi_media_repository_hash').on('mediaapi_media_repository').column('hash').execute();
      await db.schema
        .createIndex('mediaapi_media_repository_pending')
        .on('mediaapi_media_repository')
        .columns(['user_id', 'unused_expires_ts'])
        .execute();

      await db.schema
        .createTable('mediaapi_thumbnails')
        .addColumn('hash', 'text', (c) => c.notNull())
        // The size and method asked of the generator (the key) ...
        .addColumn('width', 'integer', (c) => c.notNull())
        .addColumn('height', 'integer', (c) => c.notNull())
        .addColumn('method', 'text', (c) => c.notNull())
        .addColumn('animated', boolType, (c) => c.notNull())
        // ... and what it made.
        .addColumn('content_type', 'text', (c) => c.notNull())
        .addColumn('file_size_bytes', bigintType, (c) => c.notNull())
        .addColumn('actual_width', 'integer', (c) => c.notNull())
        .addColumn('actual_height', 'integer', (c) => c.notNull())
        .addColumn('created_ts', bigintType, (c) => c.notNull())
        .addPrimaryKeyConstraint('mediaapi_thumbnails_pk', ['hash', 'width', 'height', 'method', 'animated'])
        .execute();
    },
  },
  {
    version: 2,
    name: 'url_previews',
    up: async (db) => {
      await db.schema
        .createTable('mediaapi_url_previews')
        .addColumn('url', 'text', (c) => c.notNull())
        // floor(ts / 1 hour): the hour the preview stands for.
        .addColumn('ts_bucket', bigintType, (c) => c.notNull())
        // The JSON answer of /preview_url.
        .addColumn('preview', 'text', (c) => c.notNull())
        .addColumn('created_ts', bigintType, (c) => c.notNull())
        .addPrimaryKeyConstraint('mediaapi_url_previews_pk', ['url', 'ts_bucket'])
        .execute();
      await db.schema.createIndex('mediaapi_url_previews_created').on('mediaapi_url_previews').column('created_ts').execute();
    },
  },
];
