/**
 * 3PID bindings made through this server: which identity server each of a user's third-party
 * identifiers was bound on. The identity server holds the binding itself; this record is what
 * lets the server unbind it later (the spec's "the id_server the identifier was added through").
 * A 3PID may be bound on several identity servers, so one row per (user, 3PID, server).
 */
import type { Kysely } from 'kysely';
import type { UserapiDatabase } from './tables.js';

export interface ThreePidBindingRow {
  medium: string;
  address: string;
  idServer: string;
  boundTs: number;
}

export class ThreePidBindingStore {
  constructor(private readonly db: Kysely<UserapiDatabase>) {}

  /** Records a binding; binding the same 3PID on the same server again only renews its time. */
  async add(localpart: string, medium: string, address: string, idServer: string, now: number): Promise<void> {
    await this.db
      .insertInto('userapi_threepid_bindings')
      .values({ localpart, medium, address, id_server: idServer, bound_ts: now })
      .onConflict((oc) => oc.columns(['localpart', 'medium', 'address', 'id_server']).doUpdateSet({ bound_ts: now }))
      .execute();
  }

  /** A user's bindings, oldest first. */
  async list(localpart: string): Promise<ThreePidBindingRow[]> {
    const rows = await this.db
      .selectFrom('userapi_threepid_bindings')
      .select(['medium', 'address', 'id_server', 'bound_ts'])
      .where('localpart', '=', localpart)
      .orderBy('bound_ts')
      .orderBy('medium')
      .orderBy('address')
      .orderBy('id_server')
      .execute();
    return rows.map((r) => ({ medium: r.medium, address: r.address, idServer: r.id_server, boundTs: Number(r.bound_ts) }));
  }

  /** Forgets one binding (exact values); whether there was one. */
  async remove(localpart: string, medium: string, address: string, idServer: string): Promise<boolean> {
    const r = await this.db
      .deleteFrom('userapi_threepid_bindings')
      .where('localpart', '=', localpart)
      .where('medium', '=', medium)
      .where('address', '=', address)
      .where('id_server', '=', idServer)
      .executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }
}
