/** roomserver: the room DAG: event input, auth, state, queries. */
import { runMigrations, type OpenedDatabase } from '../internal/sqlutil/index.js';
import type { Config } from '../setup/config/config.js';
import type { RoomserverInternalAPI } from './api/index.js';
import { RoomserverInternalAPIImpl } from './internal/api.js';
import { roomserverMigrations } from './storage/migrations.js';

export async function newInternalAPI(cfg: Config, db: OpenedDatabase<unknown>): Promise<RoomserverInternalAPI> {
  await runMigrations(db.db, db.dialect, 'roomserver', roomserverMigrations);
  return new RoomserverInternalAPIImpl(cfg.global.serverName);
}
