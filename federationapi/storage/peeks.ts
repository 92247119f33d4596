/**
 * Peeks over federation (MSC2444), tables federationapi_inbound_peeks and
 * federationapi_outbound_peeks: one row per (server, room, peek ID) with when it began, when it
 * was last renewed and how often it must be (ms).
 *
 * - Inbound: another server peeks one of our rooms; it is sent the room's new events while its
 *   peek is live, that is renewed within its interval plus a grace period.
 * - Outbound: we peek a room through another server; we renew it before its interval elapses.
 */
import { sql, type Kysely } from 'kysely';

interface PeekRow {
  server_name: string;
  room_id: string;
  peek_id: string;
  creation_ts: number;
  renewed_ts: number;
  renewal_interval: number;
}

export interface FederationapiPeeksDatabase {
  federationapi_inbound_peeks: PeekRow;
  federationapi_outbound_peeks: PeekRow;
}

export interface FederationPeek {
  serverName: string;
  roomId: string;
  peekId: string;
  creationTs: number;
  renewedTs: number;
  renewalIntervalMs: number;
}

type Direction = 'inbound' | 'outbound';
const tableOf = (d: Direction) => (d === 'inbound' ? 'federationapi_inbound_peeks' : 'federationapi_outbound_peeks');

const toPeek = (r: { server_name: string; room_id: string; peek_id: string; creation_ts: unknown; renewed_ts: unknown; renewal_interval: unknown }): FederationPeek => ({
  serverName: r.server_name,
  roomId: r.room_id,
  peekId: r.peek_id,
  // PostgreSQL gives bigint columns as strings.
  creationTs: Number(r.creation_ts),
  renewedTs: Number(r.renewed_ts),
  renewalIntervalMs: Number(r.renewal_interval),
});

export class FederationPeekStore {
  constructor(private readonly db: Kysely<FederationapiPeeksDatabase>) {}

  /** Starts a peek, or starts it afresh (a peek that had lapsed and was made again). */
  async add(direction: Direction, serverName: string, roomId: string, peekId: string, renewalIntervalMs: number, now = Date.now()): Promise<void> {
    const row = { server_name: serverName, room_id: roomId, peek_id: peekId, creation_ts: now, renewed_ts: now, renewal_interval: renewalIntervalMs };
    await this.db
      .insertInto(tableOf(direction))
      .values(row)
      .onConflict((oc) => oc.columns(['server_name', 'room_id', 'peek_id']).doUpdateSet({ creation_ts: now, renewed_ts: now, renewal_interval: renewalIntervalMs }))
      .execute();
  }

  /** Marks a peek renewed now; whether there was one. */
  async renew(direction: Direction, serverName: string, roomId: string, peekId: string, renewalIntervalMs: number, now = Date.now()): Promise<boolean> {
    const r = await this.db
      .updateTable(tableOf(direction))
      .set({ renewed_ts: now, renewal_interval: renewalIntervalMs })
      .where('server_name', '=', serverName)
      .where('room_id', '=', roomId)
      .where('peek_id', '=', peekId)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async get(direction: Direction, serverName: string, roomId: string, peekId: string): Promise<FederationPeek | undefined> {
    const r = await this.db.selectFrom(tableOf(direction)).selectAll().where('server_name', '=', serverName).where('room_id', '=', roomId).where('peek_id', '=', peekId).executeTakeFirst();
    return r ? toPeek(r) : undefined;
  }

  /** Ends a peek; whether there was one. */
  async remove(direction: Direction, serverName: string, roomId: string, peekId: string): Promise<boolean> {
    const r = await this.db.deleteFrom(tableOf(direction)).where('server_name', '=', serverName).where('room_id', '=', roomId).where('peek_id', '=', peekId).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  /** The peeks of a room. */
  async ofRoom(direction: Direction, roomId: string): Promise<FederationPeek[]> {
    return (await this.db.selectFrom(tableOf(direction)).selectAll().where('room_id', '=', roomId).execute()).map(toPeek);
  }

  async all(direction: Direction): Promise<FederationPeek[]> {
    return (await this.db.selectFrom(tableOf(direction)).selectAll().execute()).map(toPeek);
  }

  /** Ends every peek of a room; the peeks that were. */
  async removeRoom(direction: Direction, roomId: string): Promise<FederationPeek[]> {
    const peeks = await this.ofRoom(direction, roomId);
    if (peeks.length > 0) await this.db.deleteFrom(tableOf(direction)).where('room_id', '=', roomId).execute();
    return peeks;
  }

  /** How many peeks a server holds (in one direction). */
  async countOf(direction: Direction, serverName: string): Promise<number> {
    const r = await this.db.selectFrom(tableOf(direction)).select((eb) => eb.fn.countAll().as('n')).where('server_name', '=', serverName).executeTakeFirst();
    return Number(r?.n ?? 0);
  }

  /** Servers with a live inbound peek into the room: renewed within their interval plus `graceMs`. */
  async liveInboundServers(roomId: string, graceMs: number, now = Date.now()): Promise<string[]> {
    const rows = await this.db
      .selectFrom('federationapi_inbound_peeks')
      .select('server_name')
      .distinct()
      .where('room_id', '=', roomId)
      .where(sql<number>`renewed_ts + renewal_interval`, '>=', now - graceMs)
      .execute();
    return rows.map((r) => r.server_name);
  }

  /** Evicts inbound peeks not renewed within their interval plus `graceMs`; how many went. */
  async evictInbound(graceMs: number, now = Date.now()): Promise<number> {
    const r = await this.db
      .deleteFrom('federationapi_inbound_peeks')
      .where(sql<number>`renewed_ts + renewal_interval`, '<', now - graceMs)
      .executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}
