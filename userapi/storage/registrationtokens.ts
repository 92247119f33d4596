/**
 * Registration tokens (m.login.registration_token): who may sign up when the server requires
 * a token. A use is counted when a registration passes the token stage.
 */
import { sql, type Kysely } from 'kysely';
import type { UserapiDatabase } from './tables.js';

export interface RegistrationTokenRow {
  token: string;
  usesAllowed: number | null;
  pending: number;
  completed: number;
  expiryTime: number | null;
}

type Row = { token: string; uses_allowed: number | string | null; pending: number | string; completed: number | string; expiry_time: number | string | null };
const toRow = (r: Row): RegistrationTokenRow => ({
  token: r.token,
  usesAllowed: r.uses_allowed === null ? null : Number(r.uses_allowed),
  pending: Number(r.pending),
  completed: Number(r.completed),
  expiryTime: r.expiry_time === null ? null : Number(r.expiry_time),
});

export class RegistrationTokenStore {
  constructor(private readonly db: Kysely<UserapiDatabase>) {}

  /** False when the token exists already. */
  async create(token: string, usesAllowed: number | null, expiryTime: number | null): Promise<boolean> {
    const rows = await this.db
      .insertInto('userapi_registration_tokens')
      .values({ token, uses_allowed: usesAllowed, expiry_time: expiryTime })
      .onConflict((oc) => oc.column('token').doNothing())
      .returning('token')
      .execute();
    return rows.length === 1;
  }

  async get(token: string): Promise<RegistrationTokenRow | undefined> {
    const r = await this.db.selectFrom('userapi_registration_tokens').selectAll().where('token', '=', token).executeTakeFirst();
    return r && toRow(r);
  }

  /** All tokens, or only those still usable (`valid`) or only the used-up and expired ones. */
  async list(valid: boolean | undefined, now: number): Promise<RegistrationTokenRow[]> {
    const rows = await this.db.selectFrom('userapi_registration_tokens').selectAll().orderBy('token').execute();
    const out = rows.map(toRow);
    if (valid === undefined) return out;
    return out.filter((t) => isUsable(t, now) === valid);
  }

  async update(token: string, fields: { usesAllowed?: number | null; expiryTime?: number | null }): Promise<RegistrationTokenRow | undefined> {
    const set: { uses_allowed?: number | null; expiry_time?: number | null } = {};
    if (fields.usesAllowed !== undefined) set.uses_allowed = fields.usesAllowed;
    if (fields.expiryTime !== undefined) set.expiry_time = fields.expiryTime;
    if (Object.keys(set).length > 0) await this.db.updateTable('userapi_registration_tokens').set(set).where('token', '=', token).execute();
    return this.get(token);
  }

  async delete(token: string): Promise<boolean> {
    const r = await this.db.deleteFrom('userapi_registration_tokens').where('token', '=', token).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  /** Counts one use if the token is usable; one statement, so two registrations cannot share the last use. */
  async use(token: string, now: number): Promise<boolean> {
    const rows = await this.db
      .updateTable('userapi_registration_tokens')
      .set({ completed: sql`completed + 1` })
      .where('token', '=', token)
      .where((eb) => eb.or([eb('uses_allowed', 'is', null), eb('completed', '<', eb.ref('uses_allowed'))]))
      .where((eb) => eb.or([eb('expiry_time', 'is', null), eb('expiry_time', '>', now)]))
      .returning('token')
      .execute();
    return rows.length === 1;
  }
}

export function isUsable(t: RegistrationTokenRow, now: number): boolean {
  return (t.usesAllowed === null || t.completed < t.usesAllowed) && (t.expiryTime === null || t.expiryTime > now);
}
