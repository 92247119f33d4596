/** syncapi: /sync and the read side of rooms. */
import { runMigrations, type OpenedDatabase } from '../internal/sqlutil/index.js';
import type { Config } from '../setup/config/config.js';
import type { SyncInternalAPI } from './api/index.js';
import { SyncInternalAPIImpl } from './internal/api.js';
import { syncapiMigrations } from './storage/migrations.js';

export async function newInternalAPI(cfg: Config, db: OpenedDatabase<unknown>): Promise<SyncInternalAPI> {
  await runMigrations(db.db, db.dialect, 'syncapi', syncapiMigrations);
  return new SyncInternalAPIImpl(cfg.global.serverName);
}
