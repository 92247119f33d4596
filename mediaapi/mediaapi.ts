/**
 * mediaapi: upload, download and thumbnails (the content repository), media of other servers
 * (fetched over federation once, then cached) and URL previews. No bus: its routes read and
 * write its own tables and files. See routing/routing.ts for the routes.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { PublicRouters } from '../internal/httputil/index.js';
import { runMigrations, type OpenedDatabase } from '../internal/sqlutil/index.js';
import type { Config } from '../setup/config/config.js';
import { NetworkPolicy } from '../internal/netpolicy/index.js';
import type { MediaFederation, MediaInternalAPI } from './api/index.js';
import { MediaInternalAPIImpl } from './internal/api.js';
import { FileStore } from './internal/filestore.js';
import { UrlPreviewer } from './internal/preview.js';
import { RemoteMedia } from './internal/remote.js';
import { Thumbnailer } from './internal/thumbnailer.js';
import { UploadWaiters } from './internal/uploadwaiters.js';
import { fetchPublicUrl } from './internal/urlfetch.js';
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
  /**
   * Talking to other servers (federationapi's `newMediaFederation`); absent when federation is
   * off: then media of other servers is 404 and the federation media routes are not served.
   */
  federation?: MediaFederation;
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
    const fed = deps.federation;
    // A `Location` in a federation answer is fetched under federation's network policy.
    const fedPolicy = new NetworkPolicy({ denyNetworks: cfg.federationApi.denyNetworks, allowNetworks: cfg.federationApi.allowNetworks });
    const remote = fed
      ? new RemoteMedia({
          client: fed.client,
          fetchUrl: (url, signal) => fetchPublicUrl(url, { policy: fedPolicy, signal, rejectUnauthorized: !cfg.federationApi.disableTlsValidation }),
          files,
          store,
          thumbnailer,
          maxFileSizeBytes: m.maxFileSizeBytes,
          log,
        })
      : undefined;
    const p = m.urlPreview;
    const previewer = p.enabled
      ? new UrlPreviewer({
          store,
          files,
          thumbnailer,
          serverName: cfg.global.serverName,
          policy: new NetworkPolicy({ denyNetworks: p.denyNetworks, allowNetworks: p.allowNetworks }),
          timeoutMs: p.timeoutMs,
          maxPageBytes: p.maxPageSizeBytes,
          maxImageBytes: m.maxFileSizeBytes,
          rejectUnauthorized: !cfg.federationApi.disableTlsValidation,
          log,
        })
      : undefined;
    deps.onRoutes((routers) =>
      addMediaRoutes(routers, {
        serverName: cfg.global.serverName,
        maxFileSizeBytes: m.maxFileSizeBytes,
        store,
        files,
        thumbnailer,
        waiters,
        userAPI: deps.userAPI,
        ...(remote ? { remote } : {}),
        ...(fed ? { verifier: fed.verifier } : {}),
        ...(previewer ? { previewer } : {}),
        log,
      }),
    );
  }
  return new MediaInternalAPIImpl(cfg.global.serverName);
}
