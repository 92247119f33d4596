/** mediaapi: upload, download and thumbnails. */
import { runMigrations, type OpenedDatabase } from '../internal/sqlutil/index.js';
import type { Config } from '../setup/config/config.js';
import type { MediaInternalAPI } from './api/index.js';
import { MediaInternalAPIImpl } from './internal/api.js';
import { mediaapiMigrations } from './storage/migrations.js';

export async function newInternalAPI(cfg: Config, db: OpenedDatabase<unknown>): Promise<MediaInternalAPI> {
  await runMigrations(db.db, db.dialect, 'mediaapi', mediaapiMigrations);
  return new MediaInternalAPIImpl(cfg.global.serverName);
}
