/**
 * The key server's tables: device keys, one-time and fallback keys, cross-signing keys and the
 * signatures made on them, and the key change stream. Key JSON is stored as uploaded text; the
 * internal API checks it before it gets here.
 */
import type { Kysely } from 'kysely';
import { dbBool, dialectOf, fromDbBool, inChunks } from '../../internal/sqlutil/index.js';
import type { UserapiDatabase } from './tables.js';

export interface StoredOneTimeKey {
  keyId: string;
  keyJson: string;
}

export interface StoredSignature {
  originUserId: string;
  originKeyId: string;
  targetUserId: string;
  targetKeyId: string;
  signature: string;
}

export class KeyStore {
  constructor(private readonly db: Kysely<UserapiDatabase>) {}

  async deviceKeys(userId: string): Promise<Map<string, string>> {
    const rows = await this.db.selectFrom('userapi_device_keys').select(['device_id', 'key_json']).where('user_id', '=', userId).execute();
    return new Map(rows.map((r) => [r.device_id, r.key_json]));
  }

  async deviceKeysOf(userIds: readonly string[]): Promise<Array<{ userId: string; deviceId: string; keyJson: string }>> {
    const rows = await inChunks(userIds, (chunk) =>
      this.db.selectFrom('userapi_device_keys').select(['user_id', 'device_id', 'key_json']).where('user_id', 'in', chunk).execute(),
    );
    return rows.map((r) => ({ userId: r.user_id, deviceId: r.device_id, keyJson: r.key_json }));
  }

  async putDeviceKeys(userId: string, deviceId: string, keyJson: string): Promise<void> {
    await this.db
      .insertInto('userapi_device_keys')
      .values({ user_id: userId, device_id: deviceId, key_json: keyJson })
      .onConflict((oc) => oc.columns(['user_id', 'device_id']).doUpdateSet({ key_json: keyJson }))
      .execute();
  }

  /** Removes every key of the devices; returns the IDs of those that had device keys. */
  async deleteDeviceKeys(userId: string, deviceIds: readonly string[]): Promise<string[]> {
    if (deviceIds.length === 0) return [];
    return this.db.transaction().execute(async (tx) => {
      const deleted = await inChunks(deviceIds, (chunk) =>
        tx.deleteFrom('userapi_device_keys').where('user_id', '=', userId).where('device_id', 'in', chunk).returning('device_id').execute(),
      );
      await inChunks(deviceIds, (chunk) => tx.deleteFrom('userapi_one_time_keys').where('user_id', '=', userId).where('device_id', 'in', chunk).execute());
      await inChunks(deviceIds, (chunk) => tx.deleteFrom('userapi_fallback_keys').where('user_id', '=', userId).where('device_id', 'in', chunk).execute());
      await inChunks(deviceIds, (chunk) =>
        tx.deleteFrom('userapi_cross_signing_sigs').where('target_user_id', '=', userId).where('target_key_id', 'in', chunk).execute(),
      );
      return deleted.map((r) => r.device_id);
    });
  }

  async oneTimeKeys(userId: string, deviceId: string, keyIds: readonly string[]): Promise<Map<string, string>> {
    const rows = await inChunks(keyIds, (chunk) =>
      this.db
        .selectFrom('userapi_one_time_keys')
        .select(['key_id', 'key_json'])
        .where('user_id', '=', userId)
        .where('device_id', '=', deviceId)
        .where('key_id', 'in', chunk)
        .execute(),
    );
    return new Map(rows.map((r) => [r.key_id, r.key_json]));
  }

  async insertOneTimeKeys(userId: string, deviceId: string, keys: ReadonlyArray<{ keyId: string; algorithm: string; keyJson: string }>): Promise<void> {
    if (keys.length === 0) return;
    await inChunks(keys, (chunk) =>
      this.db
        .insertInto('userapi_one_time_keys')
        .values(chunk.map((k) => ({ user_id: userId, device_id: deviceId, key_id: k.keyId, algorithm: k.algorithm, key_json: k.keyJson })))
        .onConflict((oc) => oc.columns(['user_id', 'device_id', 'key_id']).doNothing())
        .execute()
        .then(() => []),
      // Five columns a row: keep each statement under PostgreSQL's and SQLite's parameter caps.
      500,
    );
  }

  async oneTimeKeyCounts(userId: string, deviceId: string): Promise<Record<string, number>> {
    const rows = await this.db
      .selectFrom('userapi_one_time_keys')
      .select((eb) => ['algorithm', eb.fn.countAll<number | string>().as('n')])
      .where('user_id', '=', userId)
      .where('device_id', '=', deviceId)
      .groupBy('algorithm')
      .execute();
    return Object.fromEntries(rows.map((r) => [r.algorithm, Number(r.n)]));
  }

  /**
   * Takes one unclaimed one-time key of the algorithm off the device, or undefined when none
   * is left. One statement picks and deletes the key, so concurrent claims never share one:
   * on PostgreSQL a claim skips rows another claim has locked, on SQLite statements run one
   * at a time.
   */
  async claimOneTimeKey(userId: string, deviceId: string, algorithm: string): Promise<StoredOneTimeKey | undefined> {
    const postgres = dialectOf(this.db) === 'postgres';
    const rows = await this.db
      .deleteFrom('userapi_one_time_keys')
      .where('user_id', '=', userId)
      .where('device_id', '=', deviceId)
      .where('key_id', '=', (eb) =>
        eb
          .selectFrom('userapi_one_time_keys')
          .select('key_id')
          .where('user_id', '=', userId)
          .where('device_id', '=', deviceId)
          .where('algorithm', '=', algorithm)
          .orderBy('key_id')
          .limit(1)
          .$if(postgres, (q) => q.forUpdate().skipLocked()),
      )
      .returning(['key_id', 'key_json'])
      .execute();
    const row = rows[0];
    return row && { keyId: row.key_id, keyJson: row.key_json };
  }

  async putFallbackKey(userId: string, deviceId: string, algorithm: string, keyId: string, keyJson: string): Promise<void> {
    await this.db
      .insertInto('userapi_fallback_keys')
      .values({ user_id: userId, device_id: deviceId, algorithm, key_id: keyId, key_json: keyJson, used: dbBool(false) })
      .onConflict((oc) => oc.columns(['user_id', 'device_id', 'algorithm']).doUpdateSet({ key_id: keyId, key_json: keyJson, used: dbBool(false) }))
      .execute();
  }

  /** The device's fallback key of the algorithm, marked used (it stays: a fallback key is reused until replaced). */
  async useFallbackKey(userId: string, deviceId: string, algorithm: string): Promise<StoredOneTimeKey | undefined> {
    const rows = await this.db
      .updateTable('userapi_fallback_keys')
      .set({ used: dbBool(true) })
      .where('user_id', '=', userId)
      .where('device_id', '=', deviceId)
      .where('algorithm', '=', algorithm)
      .returning(['key_id', 'key_json'])
      .execute();
    const row = rows[0];
    return row && { keyId: row.key_id, keyJson: row.key_json };
  }

  async unusedFallbackKeyTypes(userId: string, deviceId: string): Promise<string[]> {
    const rows = await this.db
      .selectFrom('userapi_fallback_keys')
      .select(['algorithm', 'used'])
      .where('user_id', '=', userId)
      .where('device_id', '=', deviceId)
      .orderBy('algorithm')
      .execute();
    return rows.filter((r) => !fromDbBool(r.used)).map((r) => r.algorithm);
  }

  async fallbackKey(userId: string, deviceId: string, algorithm: string): Promise<string | undefined> {
    const r = await this.db
      .selectFrom('userapi_fallback_keys')
      .select('key_json')
      .where('user_id', '=', userId)
      .where('device_id', '=', deviceId)
      .where('algorithm', '=', algorithm)
      .executeTakeFirst();
    return r?.key_json;
  }

  /** key type ('master', 'self_signing', 'user_signing') -> key JSON, for each user. */
  async crossSigningKeys(userIds: readonly string[]): Promise<Map<string, Map<string, string>>> {
    const rows = await inChunks(userIds, (chunk) =>
      this.db.selectFrom('userapi_cross_signing_keys').select(['user_id', 'key_type', 'key_json']).where('user_id', 'in', chunk).execute(),
    );
    const out = new Map<string, Map<string, string>>();
    for (const r of rows) {
      let m = out.get(r.user_id);
      if (!m) out.set(r.user_id, (m = new Map()));
      m.set(r.key_type, r.key_json);
    }
    return out;
  }

  /** Replaces the given cross-signing keys; a new master key drops every signature made with or on the old keys. */
  async putCrossSigningKeys(userId: string, keys: ReadonlyMap<string, string>, newMaster: boolean): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      if (newMaster) {
        await tx.deleteFrom('userapi_cross_signing_keys').where('user_id', '=', userId).execute();
        await tx.deleteFrom('userapi_cross_signing_sigs').where('origin_user_id', '=', userId).execute();
      }
      for (const [keyType, keyJson] of keys) {
        await tx
          .insertInto('userapi_cross_signing_keys')
          .values({ user_id: userId, key_type: keyType, key_json: keyJson })
          .onConflict((oc) => oc.columns(['user_id', 'key_type']).doUpdateSet({ key_json: keyJson }))
          .execute();
      }
    });
  }

  async putSignature(s: StoredSignature): Promise<void> {
    await this.db
      .insertInto('userapi_cross_signing_sigs')
      .values({ origin_user_id: s.originUserId, origin_key_id: s.originKeyId, target_user_id: s.targetUserId, target_key_id: s.targetKeyId, signature: s.signature })
      .onConflict((oc) => oc.columns(['origin_user_id', 'origin_key_id', 'target_user_id', 'target_key_id']).doUpdateSet({ signature: s.signature }))
      .execute();
  }

  /** Signatures on the keys of these users, made by anyone. */
  async signaturesOn(targetUserIds: readonly string[]): Promise<StoredSignature[]> {
    const rows = await inChunks(targetUserIds, (chunk) =>
      this.db.selectFrom('userapi_cross_signing_sigs').selectAll().where('target_user_id', 'in', chunk).execute(),
    );
    return rows.map((r) => ({ originUserId: r.origin_user_id, originKeyId: r.origin_key_id, targetUserId: r.target_user_id, targetKeyId: r.target_key_id, signature: r.signature }));
  }

  /**
   * Records a change of the user's keys: returns its position in the key change stream, the
   * user's device list version after it (m.device_list_update's stream_id) and before it.
   * Only a change of the device list (`deviceListChanged`) moves the version, by one, so that
   * each m.device_list_update can name the one before it (prev_id). A change `visibleTo` one
   * user only (a user-signing key, a signature made with it) is told to that user alone. A user
   * keeps one row per audience: a newer change replaces older ones told to the same users.
   */
  async recordKeyChange(userId: string, deviceListChanged = true, visibleTo: string | null = null): Promise<{ offset: number; streamId: number; prevStreamId: number }> {
    return this.db.transaction().execute(async (tx) => {
      const prev = await tx
        .selectFrom('userapi_key_changes')
        .select((eb) => eb.fn.max('device_stream_id').as('s'))
        .where('user_id', '=', userId)
        .executeTakeFirst();
      const prevStreamId = Number(prev?.s ?? 0);
      const streamId = deviceListChanged ? prevStreamId + 1 : prevStreamId;
      const row = await tx
        .insertInto('userapi_key_changes')
        .values({ user_id: userId, device_stream_id: streamId, visible_to: visibleTo })
        .returning('change_id')
        .executeTakeFirstOrThrow();
      const offset = Number(row.change_id);
      await tx
        .deleteFrom('userapi_key_changes')
        .where('user_id', '=', userId)
        .where('change_id', '<', offset)
        .where((eb) => (visibleTo === null ? eb('visible_to', 'is', null) : eb('visible_to', '=', visibleTo)))
        .execute();
      return { offset, streamId, prevStreamId };
    });
  }

  /**
   * The users whose keys changed after `from` up to and including `to`, and the latest
   * position; `privateChanges` are changes only `visibleTo` may learn of.
   */
  async keyChanges(from: number, to: number | undefined): Promise<{ userIds: string[]; privateChanges: Array<{ userId: string; visibleTo: string }>; offset: number }> {
    const latest = await this.db.selectFrom('userapi_key_changes').select((eb) => eb.fn.max('change_id').as('m')).executeTakeFirst();
    const offset = Math.min(to ?? Number.MAX_SAFE_INTEGER, Number(latest?.m ?? 0));
    const rows = await this.db
      .selectFrom('userapi_key_changes')
      .select(['user_id', 'visible_to'])
      .where('change_id', '>', from)
      .where('change_id', '<=', offset)
      .orderBy('change_id')
      .execute();
    const userIds = [...new Set(rows.filter((r) => r.visible_to === null).map((r) => r.user_id))];
    const privateChanges = rows.filter((r) => r.visible_to !== null).map((r) => ({ userId: r.user_id, visibleTo: r.visible_to! }));
    return { userIds, privateChanges, offset };
  }

  async deviceStreamId(userId: string): Promise<number> {
    const r = await this.db.selectFrom('userapi_key_changes').select((eb) => eb.fn.max('device_stream_id').as('s')).where('user_id', '=', userId).executeTakeFirst();
    return Number(r?.s ?? 0);
  }
}
