/** syncapi: /sync and the read side of rooms. */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { PublicRouters } from '../internal/httputil/index.js';
import { runMigrations, type OpenedDatabase } from '../internal/sqlutil/index.js';
import type { RoomserverInternalAPI } from '../roomserver/api/index.js';
import type { Config } from '../setup/config/config.js';
import { subjectFor, type Bus } from '../setup/jetstream/index.js';
import type { SyncInternalAPI } from './api/index.js';
import { startConsumers } from './consumers/consumers.js';
import { joinedMembers, startEphemeralConsumers } from './consumers/ephemeral.js';
import { PresenceService } from './internal/presence.js';
import { TypingCache } from './internal/typing.js';
import { addPresenceRoutes } from './routing/presence.js';
import { addKeyChangesRoute } from './routing/keychanges.js';
import { EphemeralStore } from './storage/ephemeral.js';
import { SyncInternalAPIImpl } from './internal/api.js';
import { Notifier } from './internal/notifier.js';
import { ZERO } from './internal/token.js';
import { addMessagesRoutes } from './routing/messages.js';
import { HistoryFiller } from './internal/backfill.js';
import { addRelationsRoutes } from './routing/relations.js';
import { Aggregations } from './internal/aggregations.js';
import { RelationsStore } from './storage/relations.js';
import { addSearchAdminRoutes, addSearchRoutes } from './routing/search.js';
import { addSyncRoute, type SyncUserAPI } from './routing/sync.js';
import { syncapiMigrations } from './storage/migrations.js';
import { newSearchIndex } from './storage/search.js';
import { SyncStore } from './storage/syncstore.js';
import { PeekStore } from './storage/peeks.js';
import { PeekActivity } from './internal/peekactivity.js';
import type { SyncapiDatabase } from './storage/tables.js';

export interface SyncapiDeps {
  bus: Bus;
  rsAPI: RoomserverInternalAPI;
  userAPI: SyncUserAPI;
  log: Logger;
  /** Where syncapi's client routes go once the routers exist. */
  onRoutes: (install: (routers: PublicRouters) => void) => void;
  /** Registers what to stop at shutdown (timers). */
  onShutdown?: (name: string, run: () => void | Promise<void>) => void;
}

export async function newInternalAPI(cfg: Config, db: OpenedDatabase<unknown>, deps?: SyncapiDeps): Promise<SyncInternalAPI> {
  await runMigrations(db.db, db.dialect, 'syncapi', syncapiMigrations);
  if (deps) {
    const store = new SyncStore(db.db as unknown as Kysely<SyncapiDatabase>);
    const ephemeral = new EphemeralStore(db.db as unknown as Kysely<SyncapiDatabase>);
    const prefix = cfg.global.jetstream.topicPrefix;
    const log = deps.log.child({ component: 'syncapi' });
    const { offset } = await deps.userAPI.queryKeyChanges({ fromOffset: 0 });
    const notifier = new Notifier({
      ...ZERO,
      pdu: await store.maxEventPos(),
      invite: await store.maxInvitePos(),
      accountData: await store.maxAccountDataPos(),
      deviceList: offset,
      receipt: await ephemeral.maxReceiptPos(),
      toDevice: await ephemeral.maxToDevicePos(),
      presence: await ephemeral.maxPresencePos(),
    });
    const typing = new TypingCache((roomId, pos) => {
      joinedMembers(store, roomId).then(
        (users) => notifier.advance('typing', pos, users),
        (err: unknown) => log.error({ err, roomId }, 'typing: cannot read the room members to wake'),
      );
    });
    const encoder = new TextEncoder();
    const presence = new PresenceService({
      enabled: cfg.global.presence.enableOutbound,
      store,
      ephemeral,
      notifier,
      publish: async (e) => void (await deps.bus.publish(subjectFor(prefix, 'OutputPresenceEvent', e.user_id), encoder.encode(JSON.stringify(e)))),
    });
    // Full-text search on this database's own index (FTS5 / tsvector); nothing is indexed while disabled.
    const search = cfg.syncApi.search.enabled ? newSearchIndex(store.db, db.dialect, cfg.syncApi.search.language) : undefined;
    const peeks = new PeekStore(db.db as unknown as Kysely<SyncapiDatabase>);
    // Who still peeks (MSC2753): rooms whose peekers all went away are reported to the roomserver.
    const peekActivity = new PeekActivity({ peeks, rsAPI: deps.rsAPI, log });
    const stopPeekSweep = peekActivity.start();
    deps.onShutdown?.('syncapi peek sweep', stopPeekSweep);
    const relations = new RelationsStore(db.db as unknown as Kysely<SyncapiDatabase>);
    const aggregations = new Aggregations(relations, deps.rsAPI, deps.userAPI);
    await startConsumers({ bus: deps.bus, prefix, store, notifier, rsAPI: deps.rsAPI, log, peeks, peekActivity, relations, ...(search ? { search } : {}) });
    await startEphemeralConsumers({ bus: deps.bus, serverName: cfg.global.serverName, prefix, store, ephemeral, typing, notifier, log });
    deps.onRoutes((routers) => {
      addSyncRoute(routers.client, { store, ephemeral, typing, presence, notifier, userAPI: deps.userAPI, rsAPI: deps.rsAPI, peeks, peekActivity, aggregations });
      addMessagesRoutes(routers.client, store, deps.userAPI, deps.rsAPI, aggregations, new HistoryFiller({ store, rsAPI: deps.rsAPI, log }));
      addRelationsRoutes(routers.client, { store, relations, aggregations, userAPI: deps.userAPI, rsAPI: deps.rsAPI });
      addPresenceRoutes(routers.client, presence, deps.userAPI);
      addKeyChangesRoute(routers.client, store, deps.userAPI);
      addSearchRoutes(routers.client, { store, index: search, userAPI: deps.userAPI, rsAPI: deps.rsAPI, aggregations });
      addSearchAdminRoutes(routers.dendriteAdmin, { store, index: search, userAPI: deps.userAPI });
    });
    return new SyncInternalAPIImpl(cfg.global.serverName, { relations, events: store });
  }
  return new SyncInternalAPIImpl(cfg.global.serverName);
}
