/** syncapi: /sync and the read side of rooms. */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { PublicRouters } from '../internal/httputil/index.js';
import { runMigrations, type OpenedDatabase } from '../internal/sqlutil/index.js';
import type { RoomserverInternalAPI } from '../roomserver/api/index.js';
import type { Config } from '../setup/config/config.js';
import type { Bus } from '../setup/jetstream/index.js';
import type { SyncInternalAPI } from './api/index.js';
import { startConsumers } from './consumers/consumers.js';
import { SyncInternalAPIImpl } from './internal/api.js';
import { Notifier } from './internal/notifier.js';
import { ZERO } from './internal/token.js';
import { addMessagesRoutes } from './routing/messages.js';
import { addSyncRoute, type SyncUserAPI } from './routing/sync.js';
import { syncapiMigrations } from './storage/migrations.js';
import { SyncStore } from './storage/syncstore.js';
import type { SyncapiDatabase } from './storage/tables.js';

export interface SyncapiDeps {
  bus: Bus;
  rsAPI: RoomserverInternalAPI;
  userAPI: SyncUserAPI;
  log: Logger;
  /** Where syncapi's client routes go once the routers exist. */
  onRoutes: (install: (routers: PublicRouters) => void) => void;
}

export async function newInternalAPI(cfg: Config, db: OpenedDatabase<unknown>, deps?: SyncapiDeps): Promise<SyncInternalAPI> {
  await runMigrations(db.db, db.dialect, 'syncapi', syncapiMigrations);
  if (deps) {
    const store = new SyncStore(db.db as unknown as Kysely<SyncapiDatabase>);
    const { offset } = await deps.userAPI.queryKeyChanges({ fromOffset: 0 });
    const notifier = new Notifier({
      ...ZERO,
      pdu: await store.maxEventPos(),
      invite: await store.maxInvitePos(),
      accountData: await store.maxAccountDataPos(),
      deviceList: offset,
    });
    await startConsumers({ bus: deps.bus, prefix: cfg.global.jetstream.topicPrefix, store, notifier, rsAPI: deps.rsAPI, log: deps.log.child({ component: 'syncapi' }) });
    deps.onRoutes((routers) => {
      addSyncRoute(routers.client, store, notifier, deps.userAPI, deps.rsAPI);
      addMessagesRoutes(routers.client, store, deps.userAPI, deps.rsAPI);
    });
  }
  return new SyncInternalAPIImpl(cfg.global.serverName);
}
