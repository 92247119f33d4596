/** userapi: accounts, devices, profiles, account data, push and the key server. */
import { runMigrations, type OpenedDatabase } from '../internal/sqlutil/index.js';
import type { Config } from '../setup/config/config.js';
import type { UserInternalAPI } from './api/index.js';
import { UserInternalAPIImpl } from './internal/api.js';
import { userapiMigrations } from './storage/migrations.js';

export async function newInternalAPI(cfg: Config, db: OpenedDatabase<unknown>): Promise<UserInternalAPI> {
  await runMigrations(db.db, db.dialect, 'userapi', userapiMigrations);
  return new UserInternalAPIImpl(cfg.global.serverName);
}
