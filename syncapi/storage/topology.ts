/**
 * The room DAG as syncapi sees it: each event's depth (its place in /messages' topological
 * order) and the gaps in a room's history here (backward extremities: events whose prev events
 * syncapi does not hold). A room joined over federation starts with a gap before the join;
 * /messages fills it by asking the roomserver to backfill (routing/messages.ts).
 */
import { sql, type Kysely } from 'kysely';
import { inChunks, type DialectName } from '../../internal/sqlutil/index.js';
import type { SyncapiDatabase } from './tables.js';

/** Where an event sits in a room's topological order: by depth, then by stream position. */
export interface TopoKey {
  depth: number;
  pos: number;
}

/** a < b: negative; a > b: positive. */
export function compareTopo(a: TopoKey, b: TopoKey): number {
  return a.depth !== b.depth ? a.depth - b.depth : a.pos - b.pos;
}

/**
 * The depth and prev event IDs of a PDU's JSON, without parsing it as an event: room versions
 * 1 and 2 list prev events as [id, hashes] pairs, later ones as IDs. Anything malformed reads
 * as depth 0 and no prev events (it then opens no gap).
 */
export function dagFieldsOf(pdu: unknown): { depth: number; prevEventIds: string[] } {
  const o = typeof pdu === 'object' && pdu !== null ? (pdu as Record<string, unknown>) : {};
  const depth = typeof o['depth'] === 'number' && Number.isSafeInteger(o['depth']) ? o['depth'] : 0;
  const prevs = Array.isArray(o['prev_events']) ? o['prev_events'] : [];
  const prevEventIds = prevs.flatMap((p): string[] => {
    if (typeof p === 'string') return [p];
    if (Array.isArray(p) && typeof p[0] === 'string') return [p[0]];
    return [];
  });
  return { depth, prevEventIds };
}

const BATCH = 1000;

/**
 * Migration 7's data step: the depth of every stored event (read from its JSON in SQL) and the
 * gaps among them.
 */
export async function backfillTopology(db: Kysely<SyncapiDatabase>, dialect: DialectName): Promise<void> {
  if (dialect === 'sqlite') {
    await sql`UPDATE syncapi_output_room_events SET depth = CASE WHEN json_valid(event_json) THEN COALESCE(CAST(json_extract(event_json, '$.depth') AS INTEGER), 0) ELSE 0 END`.execute(db);
  } else {
    await sql`UPDATE syncapi_output_room_events SET depth = CASE WHEN (event_json::json ->> 'depth') ~ '^[0-9]{1,15}$' THEN (event_json::json ->> 'depth')::bigint ELSE 0 END`.execute(db);
  }
  let after = Number.MIN_SAFE_INTEGER;
  for (;;) {
    const rows = await db.selectFrom('syncapi_output_room_events').select(['id', 'room_id', 'event_id', 'event_json']).where('id', '>', after).orderBy('id').limit(BATCH).execute();
    if (rows.length === 0) return;
    after = Number(rows[rows.length - 1]!.id);
    const wanted = rows.map((r) => {
      let pdu: unknown;
      try {
        pdu = JSON.parse(r.event_json);
      } catch {
        pdu = undefined;
      }
      return { roomId: r.room_id, eventId: r.event_id, prevs: dagFieldsOf(pdu).prevEventIds };
    });
    const prevIds = [...new Set(wanted.flatMap((w) => w.prevs))];
    const held = await inChunks(prevIds, (chunk) => db.selectFrom('syncapi_output_room_events').select(['event_id', 'room_id']).where('event_id', 'in', chunk).execute());
    const have = new Set(held.map((h) => `${h.room_id}\n${h.event_id}`));
    const gaps = wanted.flatMap((w) => w.prevs.filter((p) => !have.has(`${w.roomId}\n${p}`)).map((p) => ({ room_id: w.roomId, event_id: w.eventId, prev_event_id: p })));
    for (let i = 0; i < gaps.length; i += 500) {
      await db
        .insertInto('syncapi_backward_extremities')
        .values(gaps.slice(i, i + 500))
        .onConflict((oc) => oc.columns(['event_id', 'prev_event_id']).doNothing())
        .execute();
    }
  }
}
