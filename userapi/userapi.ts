/** userapi: accounts, devices, profiles, account data, push and the key server. */
import type { Kysely } from 'kysely';
import { runMigrations, type OpenedDatabase } from '../internal/sqlutil/index.js';
import type { Config } from '../setup/config/config.js';
import { subjectFor, type Bus } from '../setup/jetstream/index.js';
import { keyBackupAPIMethods, keyServerAPIMethods, type UserInternalAPI } from './api/index.js';
import { KeyBackupAPIImpl } from './internal/keybackup.js';
import { KeyBackupStore } from './storage/keybackup.js';
import { UserInternalAPIImpl } from './internal/api.js';
import { KeyServerImpl } from './internal/keys.js';
import { KeyStore } from './storage/keystore.js';
import { userapiMigrations } from './storage/migrations.js';
import type { UserapiDatabase } from './storage/tables.js';
import { UserStore } from './storage/userstore.js';

export async function newInternalAPI(cfg: Config, db: OpenedDatabase<unknown>, bus: Bus): Promise<UserInternalAPI> {
  await runMigrations(db.db, db.dialect, 'userapi', userapiMigrations);
  const kysely = db.db as unknown as Kysely<UserapiDatabase>;
  const store = new UserStore(kysely);
  const serverName = cfg.global.serverName;
  const prefix = cfg.global.jetstream.topicPrefix;
  const encoder = new TextEncoder();
  const keys = new KeyServerImpl({
    serverName,
    store: new KeyStore(kysely),
    deviceNames: async (userId) => {
      const localpart = /^@([^:]+):/.exec(userId)?.[1];
      if (localpart === undefined) return new Map();
      return new Map((await store.devices(localpart)).map((d) => [d.deviceId, d.displayName]));
    },
    publish: async (event) => {
      await bus.publish(subjectFor(prefix, 'OutputKeyChangeEvent', event.user_id), encoder.encode(JSON.stringify(event)));
    },
  });
  const users = new UserInternalAPIImpl(
    serverName,
    store,
    cfg.userApi.bcryptCost,
    async (msg) => {
      await bus.publish(subjectFor(prefix, 'OutputClientData', msg.user_id), encoder.encode(JSON.stringify(msg)));
    },
    cfg.userApi.openidTokenLifetimeMs,
    {
      devicesRemoved: (userId, remaining) => keys.removeKeysOfDeletedDevices(userId, remaining),
      deviceRenamed: (userId, deviceId, name) => keys.deviceRenamed(userId, deviceId, name),
    },
    cfg.userApi.refreshableAccessTokenLifetimeMs,
  );
  // One API object: the account methods from `users`, the key server's from `keys`, key backup's from `backup`.
  const composed = Object.create(users) as Record<string, unknown>;
  for (const m of keyServerAPIMethods) composed[m] = (keys[m] as (req: never) => Promise<unknown>).bind(keys);
  const backup = new KeyBackupAPIImpl(new KeyBackupStore(kysely));
  for (const m of keyBackupAPIMethods) composed[m] = (backup[m] as (req: never) => Promise<unknown>).bind(backup);
  return composed as unknown as UserInternalAPI;
}
