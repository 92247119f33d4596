/**
 * Accounts, devices (with their access tokens) and profiles, one implementation for both
 * databases.
 */
import { sql, type Kysely } from 'kysely';
import { chunks, dbBool, fromDbBool } from '../../internal/sqlutil/index.js';
import type { UserapiDatabase } from './tables.js';

export interface AccountRow {
  localpart: string;
  passwordHash: string | null;
  createdTs: number;
  isGuest: boolean;
  isAdmin: boolean;
  deactivated: boolean;
}

export interface DeviceRow {
  localpart: string;
  deviceId: string;
  displayName: string | null;
  createdTs: number;
  lastSeenTs: number;
  lastSeenIp: string | null;
  /** The User-Agent of the device's last seen request, if it sent one. */
  lastSeenUserAgent?: string | null;
}

/** A device found by its access token, with what token checks need. */
export interface TokenDeviceRow extends DeviceRow {
  /** When the access token stops working (refreshable logins only). */
  accessTokenExpiresTs: number | null;
  /** The device still accepts the refresh token before its latest one. */
  hasPrevRefreshToken: boolean;
  isGuest: boolean;
  isAdmin: boolean;
}

export class UserStore {
  constructor(private readonly db: Kysely<UserapiDatabase>) {}

  /** The database, for the userapi's other stores. */
  get database(): Kysely<UserapiDatabase> {
    return this.db;
  }

  /** Creates the account and its empty profile; false when the localpart is taken. */
  async createAccount(localpart: string, passwordHash: string | null, kind: { isGuest: boolean; isAdmin: boolean }, now: number): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      const inserted = await tx
        .insertInto('userapi_accounts')
        .values({ localpart, password_hash: passwordHash, created_ts: now, is_guest: dbBool(kind.isGuest), is_admin: dbBool(kind.isAdmin) })
        .onConflict((oc) => oc.column('localpart').doNothing())
        .returning('localpart')
        .execute();
      if (inserted.length === 0) return false;
      await tx.insertInto('userapi_profiles').values({ localpart, display_name: localpart, avatar_url: null }).onConflict((oc) => oc.column('localpart').doNothing()).execute();
      return true;
    });
  }

  async account(localpart: string): Promise<AccountRow | undefined> {
    const r = await this.db.selectFrom('userapi_accounts').selectAll().where('localpart', '=', localpart).executeTakeFirst();
    return r && { localpart: r.localpart, passwordHash: r.password_hash, createdTs: r.created_ts, isGuest: fromDbBool(r.is_guest), isAdmin: fromDbBool(r.is_admin), deactivated: fromDbBool(r.deactivated) };
  }

  /** Creates or replaces a device (a login with an existing device ID replaces its token). */
  async upsertDevice(d: {
    localpart: string;
    deviceId: string;
    tokenHash: string;
    displayName: string | null;
    now: number;
    ip: string | null;
    userAgent: string | null;
    /** For refreshable logins: the refresh token's hash and when the access token expires. */
    refreshTokenHash?: string | null;
    accessTokenExpiresTs?: number | null;
  }): Promise<void> {
    const refresh = { refresh_token_hash: d.refreshTokenHash ?? null, access_token_expires_ts: d.accessTokenExpiresTs ?? null, prev_refresh_token_hash: null };
    await this.db
      .insertInto('userapi_devices')
      .values({
        localpart: d.localpart,
        device_id: d.deviceId,
        access_token_hash: d.tokenHash,
        display_name: d.displayName,
        created_ts: d.now,
        last_seen_ts: d.now,
        last_seen_ip: d.ip,
        user_agent: d.userAgent,
        ...refresh,
      })
      .onConflict((oc) =>
        oc.columns(['localpart', 'device_id']).doUpdateSet({
          access_token_hash: d.tokenHash,
          ...refresh,
          last_seen_ts: d.now,
          last_seen_ip: d.ip,
          ...(d.displayName !== null ? { display_name: d.displayName } : {}),
        }),
      )
      .execute();
  }

  async deviceByTokenHash(tokenHash: string): Promise<TokenDeviceRow | undefined> {
    const r = await this.db
      .selectFrom('userapi_devices')
      .innerJoin('userapi_accounts', 'userapi_accounts.localpart', 'userapi_devices.localpart')
      .selectAll('userapi_devices')
      .select(['userapi_accounts.is_guest', 'userapi_accounts.is_admin'])
      .where('access_token_hash', '=', tokenHash)
      .executeTakeFirst();
    return (
      r && {
        isGuest: fromDbBool(r.is_guest),
        isAdmin: fromDbBool(r.is_admin),
        localpart: r.localpart,
        deviceId: r.device_id,
        displayName: r.display_name,
        createdTs: r.created_ts,
        lastSeenTs: r.last_seen_ts,
        lastSeenIp: r.last_seen_ip,
        lastSeenUserAgent: r.user_agent,
        accessTokenExpiresTs: r.access_token_expires_ts === null ? null : Number(r.access_token_expires_ts),
        hasPrevRefreshToken: r.prev_refresh_token_hash !== null,
      }
    );
  }

  async touchDevice(localpart: string, deviceId: string, now: number, ip: string | null, userAgent: string | undefined): Promise<void> {
    await this.db
      .updateTable('userapi_devices')
      .set({ last_seen_ts: now, last_seen_ip: ip, ...(userAgent !== undefined ? { user_agent: userAgent } : {}) })
      .where('localpart', '=', localpart)
      .where('device_id', '=', deviceId)
      .execute();
  }

  async putLoginToken(tokenHash: string, localpart: string, expiresTs: number): Promise<void> {
    await this.db.insertInto('userapi_login_tokens').values({ token_hash: tokenHash, localpart, expires_ts: expiresTs }).execute();
  }

  /** Uses up a login token: the localpart it was issued for, unless unknown, used or expired. */
  async takeLoginToken(tokenHash: string, now: number): Promise<string | undefined> {
    await this.db.deleteFrom('userapi_login_tokens').where('expires_ts', '<=', now).execute();
    const rows = await this.db.deleteFrom('userapi_login_tokens').where('token_hash', '=', tokenHash).returning('localpart').execute();
    return rows[0]?.localpart;
  }

  /** The new tokens were used: the refresh token they replaced stops working. */
  async forgetPrevRefreshToken(localpart: string, deviceId: string): Promise<void> {
    await this.db.updateTable('userapi_devices').set({ prev_refresh_token_hash: null }).where('localpart', '=', localpart).where('device_id', '=', deviceId).execute();
  }

  /**
   * Swaps a refresh token for new tokens. The current refresh token becomes the previous one;
   * the previous one (a retry after a lost answer) may be used again until the new tokens are.
   * Returns the device, or undefined when the refresh token is unknown.
   */
  async refreshTokens(refreshHash: string, next: { accessHash: string; refreshHash: string; expiresTs: number }): Promise<DeviceRow | undefined> {
    return this.db.transaction().execute(async (tx) => {
      const set = { access_token_hash: next.accessHash, refresh_token_hash: next.refreshHash, access_token_expires_ts: next.expiresTs };
      let rows = await tx
        .updateTable('userapi_devices')
        .set({ ...set, prev_refresh_token_hash: refreshHash })
        .where('refresh_token_hash', '=', refreshHash)
        .returningAll()
        .execute();
      if (rows.length === 0) rows = await tx.updateTable('userapi_devices').set(set).where('prev_refresh_token_hash', '=', refreshHash).returningAll().execute();
      const r = rows[0];
      return r && { localpart: r.localpart, deviceId: r.device_id, displayName: r.display_name, createdTs: r.created_ts, lastSeenTs: r.last_seen_ts, lastSeenIp: r.last_seen_ip };
    });
  }

  async deleteDevice(localpart: string, deviceId: string): Promise<void> {
    await this.db.deleteFrom('userapi_devices').where('localpart', '=', localpart).where('device_id', '=', deviceId).execute();
  }

  async deleteAllDevices(localpart: string): Promise<number> {
    const r = await this.db.deleteFrom('userapi_devices').where('localpart', '=', localpart).executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  async devices(localpart: string): Promise<DeviceRow[]> {
    const rows = await this.db.selectFrom('userapi_devices').selectAll().where('localpart', '=', localpart).orderBy('device_id').execute();
    return rows.map((r) => ({ localpart: r.localpart, deviceId: r.device_id, displayName: r.display_name, createdTs: r.created_ts, lastSeenTs: r.last_seen_ts, lastSeenIp: r.last_seen_ip, lastSeenUserAgent: r.user_agent }));
  }

  async updateDeviceName(localpart: string, deviceId: string, displayName: string | null): Promise<boolean> {
    const r = await this.db.updateTable('userapi_devices').set({ display_name: displayName }).where('localpart', '=', localpart).where('device_id', '=', deviceId).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async profile(localpart: string): Promise<{ displayName: string | null; avatarUrl: string | null } | undefined> {
    const r = await this.db.selectFrom('userapi_profiles').selectAll().where('localpart', '=', localpart).executeTakeFirst();
    return r && { displayName: r.display_name, avatarUrl: r.avatar_url };
  }

  /**
   * Profiles of active accounts whose localpart or display name contains `term`, ignoring
   * case (ASCII), localparts that start with the term first. At most `limit` rows.
   */
  async searchProfiles(term: string, limit: number): Promise<Array<{ localpart: string; displayName: string | null; avatarUrl: string | null }>> {
    const escaped = term.toLowerCase().replace(/[\\%_]/g, (ch) => `\\${ch}`);
    const pattern = `%${escaped}%`;
    const rows = await this.db
      .selectFrom('userapi_profiles as p')
      .innerJoin('userapi_accounts as a', 'a.localpart', 'p.localpart')
      .select(['p.localpart', 'p.display_name', 'p.avatar_url'])
      .where('a.deactivated', '=', 0)
      .where((eb) =>
        eb.or([
          eb(sql`lower(p.localpart)`, 'like', sql`${pattern} escape '\\'`),
          eb(sql`lower(coalesce(p.display_name, ''))`, 'like', sql`${pattern} escape '\\'`),
        ]),
      )
      .orderBy(sql`case when lower(p.localpart) like ${`${escaped}%`} escape '\\' then 0 else 1 end`)
      .orderBy('p.localpart')
      .limit(limit)
      .execute();
    return rows.map((r) => ({ localpart: r.localpart, displayName: r.display_name, avatarUrl: r.avatar_url }));
  }

  /** Sets the given fields; false when there is no such profile. */
  async updateProfile(localpart: string, fields: { displayName?: string | null; avatarUrl?: string | null }): Promise<boolean> {
    const set: { display_name?: string | null; avatar_url?: string | null } = {};
    if (fields.displayName !== undefined) set.display_name = fields.displayName;
    if (fields.avatarUrl !== undefined) set.avatar_url = fields.avatarUrl;
    if (Object.keys(set).length === 0) return (await this.profile(localpart)) !== undefined;
    const r = await this.db.updateTable('userapi_profiles').set(set).where('localpart', '=', localpart).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async putFilter(localpart: string, filterJson: string): Promise<number> {
    const r = await this.db.insertInto('userapi_filters').values({ localpart, filter: filterJson }).returning('filter_id').executeTakeFirstOrThrow();
    return r.filter_id;
  }

  async filter(localpart: string, filterId: number): Promise<string | undefined> {
    const r = await this.db.selectFrom('userapi_filters').select('filter').where('localpart', '=', localpart).where('filter_id', '=', filterId).executeTakeFirst();
    return r?.filter;
  }

  /** The guest accounts among these localparts. */
  async guests(localparts: readonly string[]): Promise<string[]> {
    const out: string[] = [];
    for (const part of chunks(localparts)) {
      if (part.length === 0) continue;
      const rows = await this.db.selectFrom('userapi_accounts').select('localpart').where('localpart', 'in', part).where('is_guest', '=', dbBool(true)).execute();
      for (const r of rows) out.push(r.localpart);
    }
    return out;
  }

  /** Makes a guest account a full one; false when it is not a live guest account. */
  async upgradeGuest(localpart: string, passwordHash: string | null): Promise<boolean> {
    const r = await this.db
      .updateTable('userapi_accounts')
      .set({ is_guest: dbBool(false), password_hash: passwordHash })
      .where('localpart', '=', localpart)
      .where('is_guest', '=', dbBool(true))
      .where('deactivated', '=', dbBool(false))
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async setPasswordHash(localpart: string, passwordHash: string): Promise<boolean> {
    const r = await this.db.updateTable('userapi_accounts').set({ password_hash: passwordHash }).where('localpart', '=', localpart).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  /** Deletes every device of the user but one (or all when `keep` is undefined). */
  async deleteDevicesExcept(localpart: string, keep: string | undefined): Promise<number> {
    let q = this.db.deleteFrom('userapi_devices').where('localpart', '=', localpart);
    if (keep !== undefined) q = q.where('device_id', '!=', keep);
    return Number((await q.executeTakeFirst()).numDeletedRows);
  }

  /** Marks the account deactivated and removes its devices and password, in one transaction. */
  async deactivate(localpart: string): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      const r = await tx.updateTable('userapi_accounts').set({ deactivated: 1, password_hash: null }).where('localpart', '=', localpart).executeTakeFirst();
      await tx.deleteFrom('userapi_devices').where('localpart', '=', localpart).execute();
      return Number(r.numUpdatedRows) > 0;
    });
  }

  async putAccountData(localpart: string, roomId: string, type: string, contentJson: string): Promise<void> {
    await this.db
      .insertInto('userapi_account_data')
      .values({ localpart, room_id: roomId, type, content: contentJson })
      .onConflict((oc) => oc.columns(['localpart', 'room_id', 'type']).doUpdateSet({ content: contentJson }))
      .execute();
  }

  async accountData(localpart: string, roomId: string, type: string): Promise<string | undefined> {
    const r = await this.db.selectFrom('userapi_account_data').select('content').where('localpart', '=', localpart).where('room_id', '=', roomId).where('type', '=', type).executeTakeFirst();
    return r?.content;
  }

  async putOpenIDToken(tokenHash: string, localpart: string, expiresTs: number): Promise<void> {
    // Expired tokens are dropped as new ones are made, so the table stays small.
    await this.db.deleteFrom('userapi_openid_tokens').where('expires_ts', '<', Date.now()).execute();
    await this.db.insertInto('userapi_openid_tokens').values({ token_hash: tokenHash, localpart, expires_ts: expiresTs }).execute();
  }

  async openIDToken(tokenHash: string): Promise<{ localpart: string; expiresTs: number } | undefined> {
    const r = await this.db.selectFrom('userapi_openid_tokens').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
    return r && { localpart: r.localpart, expiresTs: r.expires_ts };
  }
}
