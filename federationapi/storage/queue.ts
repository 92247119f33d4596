/**
 * The outbound queue (table federationapi_queue): PDUs and EDUs per destination server, kept
 * until a transaction carrying them is acknowledged, so that a restart loses nothing.
 */
import type { Generated, Kysely } from 'kysely';
import { inChunks } from '../../internal/sqlutil/index.js';

export interface FederationapiQueueDatabase {
  federationapi_queue: { id: Generated<number>; destination: string; kind: string; json: string };
}

export interface QueuedItem {
  id: number;
  kind: 'pdu' | 'edu';
  json: string;
}

export class OutboundQueueStore {
  constructor(private readonly db: Kysely<FederationapiQueueDatabase>) {}

  async add(destinations: readonly string[], kind: 'pdu' | 'edu', json: string): Promise<void> {
    if (destinations.length === 0) return;
    await this.db
      .insertInto('federationapi_queue')
      .values(destinations.map((destination) => ({ destination, kind, json })))
      .execute();
  }

  /** The oldest items for a destination: up to `pdus` PDUs and `edus` EDUs, in queue order. */
  async next(destination: string, pdus: number, edus: number): Promise<QueuedItem[]> {
    const read = (kind: 'pdu' | 'edu', limit: number) =>
      this.db.selectFrom('federationapi_queue').select(['id', 'kind', 'json']).where('destination', '=', destination).where('kind', '=', kind).orderBy('id').limit(limit).execute();
    const rows = [...(await read('pdu', pdus)), ...(await read('edu', edus))];
    return rows.map((r) => ({ id: Number(r.id), kind: r.kind as 'pdu' | 'edu', json: r.json })).sort((a, b) => a.id - b.id);
  }

  async remove(ids: readonly number[]): Promise<void> {
    await inChunks([...ids], (chunk) => this.db.deleteFrom('federationapi_queue').where('id', 'in', chunk).execute().then(() => []));
  }

  /** Destinations with something waiting (to resume after a restart). */
  async destinations(): Promise<string[]> {
    return (await this.db.selectFrom('federationapi_queue').select('destination').distinct().execute()).map((r) => r.destination);
  }

  async count(destination: string): Promise<number> {
    const r = await this.db.selectFrom('federationapi_queue').select((eb) => eb.fn.countAll().as('n')).where('destination', '=', destination).executeTakeFirst();
    return Number(r?.n ?? 0);
  }
}
