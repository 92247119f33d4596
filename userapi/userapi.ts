/** userapi: accounts, devices, profiles, account data, push and the key server. */
import type { Kysely } from 'kysely';
import { runMigrations, type OpenedDatabase } from '../internal/sqlutil/index.js';
import type { Config } from '../setup/config/config.js';
import type { UserInternalAPI } from './api/index.js';
import { UserInternalAPIImpl } from './internal/api.js';
import { userapiMigrations } from './storage/migrations.js';
import type { UserapiDatabase } from './storage/tables.js';
import { UserStore } from './storage/userstore.js';

export async function newInternalAPI(cfg: Config, db: OpenedDatabase<unknown>): Promise<UserInternalAPI> {
  await runMigrations(db.db, db.dialect, 'userapi', userapiMigrations);
  const store = new UserStore(db.db as unknown as Kysely<UserapiDatabase>);
  return new UserInternalAPIImpl(cfg.global.serverName, store, cfg.userApi.bcryptCost);
}
