/**
 * mediaapi: upload, download and thumbnails (the content repository). No bus: its routes read
 * and write its own tables and files. See routing/routing.ts for the routes.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { PublicRouters } from '../internal/httputil/index.js';
import { runMigrations, type OpenedDatabase } from '../internal/sqlutil/index.js';
import type { Config } from '../setup/config/config.js';
import type { MediaInternalAPI } from './api/index.js';
import { MediaInternalAPIImpl } from './internal/api.js';
import { FileStore } from './internal/filestore.js';
import { Thumbnailer } from './internal/thumbnailer.js';
import { UploadWaiters } from './internal/uploadwaiters.js';
import { addMediaRoutes, type MediaUserAPI } from './routing/routing.js';
import { MediaStore } from './storage/mediastore.js';
import { mediaapiMigrations } from './storage/migrations.js';
import type { MediaapiDatabase } from './storage/tables.js';

export interface MediaapiDeps {
  /** Resolves access tokens for uploads and authenticated media. */
  userAPI: MediaUserAPI;
  log: Logger;
  /** Where mediaapi's routes go once the routers exist. */
  onRoutes: (install: (routers: PublicRouters) => void) => void;
}

export async function newInternalAPI(cfg: Config, db: OpenedDatabase<unknown>, deps?: MediaapiDeps): Promise<MediaInternalAPI> {
  await runMigrations(db.db, db.dialect, 'mediaapi', mediaapiMigrations);
  if (deps) {
    const m = cfg.mediaApi;
    const log = deps.log.child({ component: 'mediaapi' });
    const store = new MediaStore(db.db as unknown as Kysely<MediaapiDatabase>);
    const files = new FileStore(m.basePath);
    await files.init();
    const thumbnailer = new Thumbnailer({ files, store, maxGenerators: m.maxThumbnailGenerators, sizes: m.thumbnailSizes, dynamic: m.dynamicThumbnails, log });
    const waiters = new UploadWaiters();
    deps.onRoutes((routers) =>
      addMediaRoutes(routers, {
        serverName: cfg.global.serverName,
        maxFileSizeBytes: m.maxFileSizeBytes,
        store,
        files,
        thumbnailer,
        waiters,
        userAPI: deps.userAPI,
        log,
      }),
    );
  }
  return new MediaInternalAPIImpl(cfg.global.serverName);
}
