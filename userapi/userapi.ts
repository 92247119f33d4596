/** userapi: accounts, devices, profiles, account data, push and the key server. */
import type { Kysely } from 'kysely';
import { runMigrations, type OpenedDatabase } from '../internal/sqlutil/index.js';
import type { Config } from '../setup/config/config.js';
import { subjectFor, type Bus } from '../setup/jetstream/index.js';
import type { FederationInternalAPI } from '../federationapi/api/index.js';
import type { OutputRoomEvent } from '../roomserver/api/index.js';
import type { FederationKeyClient } from './api/keys.js';
import { keyBackupAPIMethods, keyServerAPIMethods, pushAPIMethods, threePidAPIMethods, type PerformAccountDataUpdateRequest, type UserInternalAPI } from './api/index.js';
import pino, { type Logger } from 'pino';
import { startPushConsumers } from './consumers/push.js';
import { startGuestAccessConsumer, type GuestAccessRoomserverAPI } from './consumers/guestaccess.js';
import { PushService, type PushRoomserverAPI } from './internal/push.js';
import { PushGatewayClient } from './internal/pushgateway.js';
import { PushStore } from './storage/push.js';
import { KeyBackupAPIImpl } from './internal/keybackup.js';
import { KeyBackupStore } from './storage/keybackup.js';
import { UserInternalAPIImpl } from './internal/api.js';
import { KeyServerImpl } from './internal/keys.js';
import { DeviceListUpdater } from './internal/devicelist.js';
import { RemoteKeyCache } from './internal/devicelistquery.js';
import { SharedRooms, type DeviceListRoomserverAPI } from './internal/devicelistrooms.js';
import { RemoteDeviceListStore } from './storage/devicelists.js';
import { KeyStore } from './storage/keystore.js';
import { userapiMigrations } from './storage/migrations.js';
import type { UserapiDatabase } from './storage/tables.js';
import { UserStore } from './storage/userstore.js';
import { ThreePidAPIImpl } from './internal/threepid.js';
import { ThreePidBindingStore } from './storage/threepidbindings.js';

/**
 * `federation` is looked up when first needed: federationapi is built after userapi (it needs
 * userapi), and the key server asks it about other servers' users.
 */
export async function newInternalAPI(
  cfg: Config,
  db: OpenedDatabase<unknown>,
  bus: Bus,
  /**
   * `push`: evaluate push rules for room events and receipts (consumers need the roomserver);
   * its roomserver also tells which remote users share a room with ours (device list tracking).
   */
  opts: {
    federation?: () => FederationInternalAPI | undefined;
    push?: { rsAPI: PushRoomserverAPI & DeviceListRoomserverAPI & GuestAccessRoomserverAPI; log: Logger };
    /** Registers what to stop at a clean stop (background timers). */
    onShutdown?: (name: string, run: () => Promise<void> | void) => void;
  } = {},
): Promise<UserInternalAPI> {
  await runMigrations(db.db, db.dialect, 'userapi', userapiMigrations);
  const kysely = db.db as unknown as Kysely<UserapiDatabase>;
  const store = new UserStore(kysely);
  const serverName = cfg.global.serverName;
  const prefix = cfg.global.jetstream.topicPrefix;
  const encoder = new TextEncoder();
  const federation = opts.federation ? federationKeyClient(opts.federation) : undefined;
  // Other servers' users' device lists, followed when federation and the roomserver are here.
  let deviceLists: { updater: DeviceListUpdater; cache: RemoteKeyCache } | undefined;
  if (federation?.userDevices && opts.push && !cfg.global.disableFederation) {
    const remoteStore = new RemoteDeviceListStore(kysely);
    const rooms = new SharedRooms(opts.push.rsAPI, serverName, remoteStore);
    const sharesRoom = rooms.shares;
    const log = opts.push.log.child({ component: 'userapi.devicelists' });
    const fetchDevices = federation.userDevices.bind(federation);
    const updater = new DeviceListUpdater({
      serverName,
      store: remoteStore,
      fetchDevices,
      announce: (change) => keys.announceRemoteChange(change),
      sharesRoom,
      log,
    });
    deviceLists = { updater, cache: new RemoteKeyCache({ store: remoteStore, updater, sharesRoom }) };
    updater.start();
    // Its timers stop before the databases close (else a sweep could run against a closed one).
    opts.onShutdown?.('userapi device lists', () => updater.stop());
    // Leaving rooms ends following those no one of ours shares a room with any more.
    const decoder = new TextDecoder();
    await bus.consume({ stream: `${prefix}OutputRoomEvent`, durable: 'UserAPIDeviceListConsumer' }, async (msg) => {
      try {
        await rooms.onRoomEvent(JSON.parse(decoder.decode(msg.data)) as OutputRoomEvent);
      } catch (err) {
        if (msg.deliveryCount < 3) throw err;
        log.warn({ err }, 'device lists: a room event was not looked at');
      }
    });
  }
  const keys: KeyServerImpl = new KeyServerImpl({
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
    ...(federation ? { federation } : {}),
    ...(deviceLists ? { deviceLists } : {}),
  });
  const pushStore = new PushStore(kysely);
  const pushLog = (opts.push?.log ?? pino({ level: 'silent' })).child({ component: 'userapi.push' });
  const gateway = new PushGatewayClient({
    disableTlsValidation: cfg.userApi.pushGatewayDisableTlsValidation,
    log: pushLog,
    onRejected: async (userId, appId, pushkeys) => {
      for (const k of pushkeys) await pushStore.deletePusher(userId, appId, k);
    },
  });
  const push = new PushService({
    serverName,
    store: pushStore,
    rsAPI: opts.push?.rsAPI ?? { queryMembershipsForRoom: async () => ({ room_exists: false, members: [] }), queryLatestEventsAndState: async () => ({ room_exists: false, latest_event_ids: [], depth: 0, state_events: [] }), queryEventsById: async () => ({ events: [] }) },
    pushRulesContent: async (userId) => {
      const localpart = /^@([^:]+):/.exec(userId)?.[1];
      const text = localpart === undefined ? undefined : await store.accountData(localpart, '', 'm.push_rules');
      return text === undefined ? undefined : (JSON.parse(text) as unknown);
    },
    ignoredUsersContent: async (userId) => {
      const localpart = /^@([^:]+):/.exec(userId)?.[1];
      const text = localpart === undefined ? undefined : await store.accountData(localpart, '', 'm.ignored_user_list');
      return text === undefined ? undefined : (JSON.parse(text) as unknown);
    },
    publish: async (msg) => {
      await bus.publish(subjectFor(prefix, 'OutputNotificationData', msg.user_id), encoder.encode(JSON.stringify(msg)));
    },
    gateway,
    log: pushLog,
  });
  if (opts.push) await startPushConsumers({ bus, prefix, push, log: pushLog });
  if (opts.push) {
    await startGuestAccessConsumer({
      bus,
      prefix,
      serverName,
      rsAPI: opts.push.rsAPI,
      guestsAmong: async (userIds) => {
        const byLocalpart = new Map(userIds.map((u) => [/^@([^:]+):/.exec(u)?.[1] ?? '', u]));
        return (await store.guests([...byLocalpart.keys()].filter((l) => l !== ''))).map((l) => byLocalpart.get(l)!);
      },
      log: (opts.push.log ?? pino({ level: 'silent' })).child({ component: 'userapi.guestaccess' }),
    });
  }
  const users = new UserInternalAPIImpl(
    serverName,
    store,
    cfg.userApi.bcryptCost,
    async (msg) => {
      await bus.publish(subjectFor(prefix, 'OutputClientData', msg.user_id), encoder.encode(JSON.stringify(msg)));
    },
    cfg.userApi.openidTokenLifetimeMs,
    {
      devicesRemoved: async (userId, remaining, removed) => {
        await keys.removeKeysOfDeletedDevices(userId, remaining, removed);
        await push.devicesRemoved(userId, remaining);
      },
      deviceRenamed: (userId, deviceId, name) => keys.deviceRenamed(userId, deviceId, name),
      deviceCreated: (userId, deviceId, name) => keys.deviceCreated(userId, deviceId, name),
    },
    cfg.userApi.refreshableAccessTokenLifetimeMs,
  );
  // One API object: the account methods from `users`, the key server's from `keys`, key backup's from `backup`.
  const composed = Object.create(users) as Record<string, unknown>;
  for (const m of keyServerAPIMethods) composed[m] = (keys[m] as (req: never) => Promise<unknown>).bind(keys);
  const backup = new KeyBackupAPIImpl(new KeyBackupStore(kysely));
  for (const m of keyBackupAPIMethods) composed[m] = (backup[m] as (req: never) => Promise<unknown>).bind(backup);
  for (const m of pushAPIMethods) composed[m] = (push[m] as (req: never) => Promise<unknown>).bind(push);
  const threePids = new ThreePidAPIImpl(serverName, new ThreePidBindingStore(kysely));
  for (const m of threePidAPIMethods) composed[m] = (threePids[m] as (req: never) => Promise<unknown>).bind(threePids);
  // Compiled push rules are kept per user until the user changes them.
  composed['performAccountDataUpdate'] = async (req: PerformAccountDataUpdateRequest) => {
    const res = await users.performAccountDataUpdate(req);
    if (req.type === 'm.push_rules' && (req.roomId ?? '') === '') push.invalidateRules(req.userId);
    if (req.type === 'm.ignored_user_list' && (req.roomId ?? '') === '') push.invalidateIgnored(req.userId);
    return res;
  };
  return composed as unknown as UserInternalAPI;
}

/** The key server's view of federationapi: key queries and claims of other servers' users. */
function federationKeyClient(fedAPI: () => FederationInternalAPI | undefined): FederationKeyClient {
  const api = (): FederationInternalAPI => {
    const f = fedAPI();
    if (!f) throw new Error('federation is not available');
    return f;
  };
  return {
    queryKeys: async (serverName, userToDevices, timeoutMs) => {
      const res = await api().queryRemoteKeys({ server_name: serverName, device_keys: userToDevices, timeout_ms: timeoutMs });
      if (res.error !== undefined) throw new Error(res.error);
      return { deviceKeys: res.device_keys, masterKeys: res.master_keys, selfSigningKeys: res.self_signing_keys };
    },
    claimKeys: async (serverName, oneTimeKeys, timeoutMs) => {
      const res = await api().claimRemoteKeys({ server_name: serverName, one_time_keys: oneTimeKeys, timeout_ms: timeoutMs });
      if (res.error !== undefined) throw new Error(res.error);
      return res.one_time_keys;
    },
    userDevices: async (userId, timeoutMs) => {
      const f = fedAPI();
      if (!f) return { error: 'federation is not available', unreachable: true };
      const res = await f.queryRemoteDeviceList({ user_id: userId, timeout_ms: timeoutMs });
      if (res.error !== undefined) return { error: res.error, unreachable: res.status >= 500 || res.status === 429 };
      return { body: res.body };
    },
  };
}
