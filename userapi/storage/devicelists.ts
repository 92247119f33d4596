/**
 * Our copy of other servers' users' device lists: the users we follow, the version of each
 * list (the stream_id of the last m.device_list_update applied), whether it may have missed an
 * update (stale), their devices' keys and their master and self-signing keys. Key JSON is
 * stored as received; the device list updater checks it before it gets here.
 */
import type { Kysely, Transaction } from 'kysely';
import { dbBool, fromDbBool, inChunks } from '../../internal/sqlutil/index.js';
import type { UserapiDatabase } from './tables.js';

export interface RemoteDeviceListState {
  streamId: number;
  stale: boolean;
  /** False until the list was first fetched: a followed user's empty list may just be unknown. */
  fetched: boolean;
}

export interface RemoteDevice {
  userId: string;
  deviceId: string;
  displayName: string | null;
  /** Null for a device without keys. */
  keyJson: string | null;
}

/** A device as an update or a full list carries it. */
export type RemoteDeviceEntry = Omit<RemoteDevice, 'userId'>;

/** Rows of four columns a statement: well under both databases' parameter caps. */
const INSERT_CHUNK = 500;

export class RemoteDeviceListStore {
  constructor(private readonly db: Kysely<UserapiDatabase>) {}

  /** The state of each followed user among `userIds`; users we do not follow are absent. */
  async lists(userIds: readonly string[]): Promise<Map<string, RemoteDeviceListState>> {
    const rows = await inChunks([...new Set(userIds)], (chunk) =>
      this.db.selectFrom('userapi_remote_device_lists').select(['user_id', 'stream_id', 'stale', 'updated_ts']).where('user_id', 'in', chunk).execute(),
    );
    return new Map(rows.map((r) => [r.user_id, { streamId: Number(r.stream_id), stale: fromDbBool(r.stale), fetched: Number(r.updated_ts) > 0 }]));
  }

  async devices(userIds: readonly string[]): Promise<RemoteDevice[]> {
    const rows = await inChunks([...new Set(userIds)], (chunk) =>
      this.db.selectFrom('userapi_remote_device_keys').select(['user_id', 'device_id', 'display_name', 'key_json']).where('user_id', 'in', chunk).execute(),
    );
    return rows.map((r) => ({ userId: r.user_id, deviceId: r.device_id, displayName: r.display_name, keyJson: r.key_json }));
  }

  /** key type ('master', 'self_signing') -> key JSON, for each user. */
  async crossSigningKeys(userIds: readonly string[]): Promise<Map<string, Map<string, string>>> {
    const rows = await inChunks([...new Set(userIds)], (chunk) =>
      this.db.selectFrom('userapi_remote_cross_signing_keys').select(['user_id', 'key_type', 'key_json']).where('user_id', 'in', chunk).execute(),
    );
    const out = new Map<string, Map<string, string>>();
    for (const r of rows) {
      let m = out.get(r.user_id);
      if (!m) out.set(r.user_id, (m = new Map()));
      m.set(r.key_type, r.key_json);
    }
    return out;
  }

  /** Starts following a user, with a stale (empty) list to fetch; true when they were not followed. */
  async track(userId: string, serverName: string): Promise<boolean> {
    const rows = await this.db
      .insertInto('userapi_remote_device_lists')
      // updated_ts 0: never fetched.
      .values({ user_id: userId, server_name: serverName, stream_id: 0, stale: dbBool(true), updated_ts: 0 })
      .onConflict((oc) => oc.column('user_id').doNothing())
      .returning('user_id')
      .execute();
    return rows.length > 0;
  }

  /** Marks a followed user's list stale (or fresh); false when the user is not followed. */
  async markStale(userId: string, stale: boolean): Promise<boolean> {
    const r = await this.db.updateTable('userapi_remote_device_lists').set({ stale: dbBool(stale) }).where('user_id', '=', userId).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  /** Followed users whose lists are stale, of one server or of all, in user ID order. */
  async staleUsers(serverName: string | undefined, limit: number): Promise<string[]> {
    const rows = await this.db
      .selectFrom('userapi_remote_device_lists')
      .select('user_id')
      .where('stale', '=', dbBool(true))
      .$if(serverName !== undefined, (q) => q.where('server_name', '=', serverName!))
      .orderBy('user_id')
      .limit(limit)
      .execute();
    return rows.map((r) => r.user_id);
  }

  /** The servers with at least one stale list. */
  async staleServers(): Promise<string[]> {
    const rows = await this.db.selectFrom('userapi_remote_device_lists').select('server_name').distinct().where('stale', '=', dbBool(true)).orderBy('server_name').execute();
    return rows.map((r) => r.server_name);
  }

  /** Followed users after `afterUserId` in user ID order, a page at a time. */
  async trackedUsers(afterUserId: string, limit: number): Promise<string[]> {
    const rows = await this.db.selectFrom('userapi_remote_device_lists').select('user_id').where('user_id', '>', afterUserId).orderBy('user_id').limit(limit).execute();
    return rows.map((r) => r.user_id);
  }

  /**
   * Replaces a user's whole list with a fetched one (GET /user/devices) and marks it fresh
   * (or stale, when it is known to be behind already): devices and cross-signing keys absent
   * from it are gone.
   */
  async replaceList(
    userId: string,
    serverName: string,
    streamId: number,
    devices: readonly RemoteDeviceEntry[],
    crossSigning: ReadonlyMap<string, string>,
    stale = false,
  ): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx
        .insertInto('userapi_remote_device_lists')
        .values({ user_id: userId, server_name: serverName, stream_id: streamId, stale: dbBool(stale), updated_ts: Date.now() })
        .onConflict((oc) => oc.column('user_id').doUpdateSet({ stream_id: streamId, stale: dbBool(stale), updated_ts: Date.now() }))
        .execute();
      await tx.deleteFrom('userapi_remote_device_keys').where('user_id', '=', userId).execute();
      await inChunks(
        devices,
        (chunk) =>
          tx
            .insertInto('userapi_remote_device_keys')
            .values(chunk.map((d) => ({ user_id: userId, device_id: d.deviceId, display_name: d.displayName, key_json: d.keyJson })))
            .onConflict((oc) => oc.columns(['user_id', 'device_id']).doNothing())
            .execute()
            .then(() => []),
        INSERT_CHUNK,
      );
      await tx.deleteFrom('userapi_remote_cross_signing_keys').where('user_id', '=', userId).execute();
      await this.insertCrossSigning(tx, userId, crossSigning);
    });
  }

  /**
   * Applies one m.device_list_update: the device is added or replaced (or removed when
   * `device` is a deletion), and the list's version becomes `streamId`.
   */
  async applyUpdate(userId: string, streamId: number, device: RemoteDeviceEntry | { deviceId: string; deleted: true }): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      if ('deleted' in device) {
        await tx.deleteFrom('userapi_remote_device_keys').where('user_id', '=', userId).where('device_id', '=', device.deviceId).execute();
      } else {
        await tx
          .insertInto('userapi_remote_device_keys')
          .values({ user_id: userId, device_id: device.deviceId, display_name: device.displayName, key_json: device.keyJson })
          .onConflict((oc) => oc.columns(['user_id', 'device_id']).doUpdateSet({ display_name: device.displayName, key_json: device.keyJson }))
          .execute();
      }
      await tx.updateTable('userapi_remote_device_lists').set({ stream_id: streamId, updated_ts: Date.now() }).where('user_id', '=', userId).execute();
    });
  }

  /** Replaces the given cross-signing keys of a user (m.signing_key_update). */
  async putCrossSigningKeys(userId: string, keys: ReadonlyMap<string, string>): Promise<void> {
    if (keys.size === 0) return;
    await this.db.transaction().execute(async (tx) => {
      await tx.deleteFrom('userapi_remote_cross_signing_keys').where('user_id', '=', userId).where('key_type', 'in', [...keys.keys()]).execute();
      await this.insertCrossSigning(tx, userId, keys);
    });
  }

  /** Stops following users: their lists and keys are dropped. */
  async untrack(userIds: readonly string[]): Promise<void> {
    if (userIds.length === 0) return;
    await this.db.transaction().execute(async (tx) => {
      for (const table of ['userapi_remote_device_keys', 'userapi_remote_cross_signing_keys', 'userapi_remote_device_lists'] as const) {
        await inChunks(userIds, (chunk) => tx.deleteFrom(table).where('user_id', 'in', chunk).execute().then(() => []));
      }
    });
  }

  private async insertCrossSigning(tx: Transaction<UserapiDatabase>, userId: string, keys: ReadonlyMap<string, string>): Promise<void> {
    if (keys.size === 0) return;
    await tx
      .insertInto('userapi_remote_cross_signing_keys')
      .values([...keys].map(([keyType, keyJson]) => ({ user_id: userId, key_type: keyType, key_json: keyJson })))
      .execute();
  }
}
