/** Key backup versions and the session keys in them. */
import { sql, type Kysely } from 'kysely';
import { dbBool, fromDbBool } from '../../internal/sqlutil/index.js';
import type { KeyBackupSession } from '../api/keybackup.js';
import type { UserapiDatabase } from './tables.js';

export interface BackupVersionRow {
  version: number;
  algorithm: string;
  authData: string;
  etag: number;
  deleted: boolean;
}

export interface BackupKeyRow {
  roomId: string;
  sessionId: string;
  key: KeyBackupSession;
}

export class KeyBackupStore {
  constructor(private readonly db: Kysely<UserapiDatabase>) {}

  async createVersion(userId: string, algorithm: string, authData: string): Promise<number> {
    const r = await this.db.insertInto('userapi_key_backup_versions').values({ user_id: userId, algorithm, auth_data: authData }).returning('version').executeTakeFirstOrThrow();
    return Number(r.version);
  }

  /** A version of the user's (deleted or not), or their latest version that is not deleted. */
  async version(userId: string, version?: number): Promise<BackupVersionRow | undefined> {
    let q = this.db.selectFrom('userapi_key_backup_versions').selectAll().where('user_id', '=', userId);
    q = version === undefined ? q.where('deleted', '=', dbBool(false)).orderBy('version', 'desc').limit(1) : q.where('version', '=', version);
    const r = await q.executeTakeFirst();
    return r && { version: Number(r.version), algorithm: r.algorithm, authData: r.auth_data, etag: Number(r.etag), deleted: fromDbBool(r.deleted) };
  }

  async updateVersion(userId: string, version: number, authData: string): Promise<void> {
    await this.db.updateTable('userapi_key_backup_versions').set({ auth_data: authData }).where('user_id', '=', userId).where('version', '=', version).execute();
  }

  /** Marks a version deleted and drops its keys. */
  async deleteVersion(userId: string, version: number): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      const r = await tx
        .updateTable('userapi_key_backup_versions')
        .set({ deleted: dbBool(true) })
        .where('user_id', '=', userId)
        .where('version', '=', version)
        .where('deleted', '=', dbBool(false))
        .executeTakeFirst();
      await tx.deleteFrom('userapi_key_backups').where('user_id', '=', userId).where('version', '=', version).execute();
      return Number(r.numUpdatedRows) > 0;
    });
  }

  async keys(userId: string, version: number, roomId?: string, sessionId?: string): Promise<BackupKeyRow[]> {
    let q = this.db.selectFrom('userapi_key_backups').selectAll().where('user_id', '=', userId).where('version', '=', version);
    if (roomId !== undefined) q = q.where('room_id', '=', roomId);
    if (sessionId !== undefined) q = q.where('session_id', '=', sessionId);
    const rows = await q.orderBy('room_id').orderBy('session_id').execute();
    return rows.map((r) => ({
      roomId: r.room_id,
      sessionId: r.session_id,
      key: {
        first_message_index: Number(r.first_message_index),
        forwarded_count: Number(r.forwarded_count),
        is_verified: fromDbBool(r.is_verified),
        session_data: JSON.parse(r.session_data) as unknown,
      },
    }));
  }

  /** Writes keys (the caller chose which win) and bumps the version's etag when any changed. */
  async putKeys(userId: string, version: number, keys: readonly BackupKeyRow[]): Promise<void> {
    if (keys.length === 0) return;
    await this.db.transaction().execute(async (tx) => {
      for (const k of keys) {
        const values = {
          first_message_index: k.key.first_message_index,
          forwarded_count: k.key.forwarded_count,
          is_verified: dbBool(k.key.is_verified),
          session_data: JSON.stringify(k.key.session_data),
        };
        await tx
          .insertInto('userapi_key_backups')
          .values({ user_id: userId, version, room_id: k.roomId, session_id: k.sessionId, ...values })
          .onConflict((oc) => oc.columns(['user_id', 'version', 'room_id', 'session_id']).doUpdateSet(values))
          .execute();
      }
      await this.bumpEtag(tx, userId, version);
    });
  }

  async deleteKeys(userId: string, version: number, roomId?: string, sessionId?: string): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      let q = tx.deleteFrom('userapi_key_backups').where('user_id', '=', userId).where('version', '=', version);
      if (roomId !== undefined) q = q.where('room_id', '=', roomId);
      if (sessionId !== undefined) q = q.where('session_id', '=', sessionId);
      const r = await q.executeTakeFirst();
      if (Number(r.numDeletedRows) > 0) await this.bumpEtag(tx, userId, version);
    });
  }

  async count(userId: string, version: number): Promise<number> {
    const r = await this.db
      .selectFrom('userapi_key_backups')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where('user_id', '=', userId)
      .where('version', '=', version)
      .executeTakeFirst();
    return Number(r?.n ?? 0);
  }

  private async bumpEtag(tx: Kysely<UserapiDatabase>, userId: string, version: number): Promise<void> {
    await tx
      .updateTable('userapi_key_backup_versions')
      .set({ etag: sql`etag + 1` })
      .where('user_id', '=', userId)
      .where('version', '=', version)
      .execute();
  }
}
