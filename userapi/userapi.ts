/** userapi: accounts, devices, profiles, account data, push and the key server. */
import type { Kysely } from 'kysely';
import { runMigrations, type OpenedDatabase } from '../internal/sqlutil/index.js';
import type { Config } from '../setup/config/config.js';
import { subjectFor, type Bus } from '../setup/jetstream/index.js';
import type { UserInternalAPI } from './api/index.js';
import { UserInternalAPIImpl } from './internal/api.js';
import { userapiMigrations } from './storage/migrations.js';
import type { UserapiDatabase } from './storage/tables.js';
import { UserStore } from './storage/userstore.js';

export async function newInternalAPI(cfg: Config, db: OpenedDatabase<unknown>, bus: Bus): Promise<UserInternalAPI> {
  await runMigrations(db.db, db.dialect, 'userapi', userapiMigrations);
  const store = new UserStore(db.db as unknown as Kysely<UserapiDatabase>);
  const prefix = cfg.global.jetstream.topicPrefix;
  const encoder = new TextEncoder();
  return new UserInternalAPIImpl(cfg.global.serverName, store, cfg.userApi.bcryptCost, async (msg) => {
    await bus.publish(subjectFor(prefix, 'OutputClientData', msg.user_id), encoder.encode(JSON.stringify(msg)));
  }, cfg.userApi.openidTokenLifetimeMs);
}
