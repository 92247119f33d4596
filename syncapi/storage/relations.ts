/**
 * Event relationships ("Forming relationships between events"): one row per child event whose
 * content has `m.relates_to` with a `rel_type` and an `event_id`, keyed by the child (an event
 * has one parent). Rows carry the child's stream position, which orders /relations pages and
 * /threads the way /messages orders history, so tokens from /sync and /messages work here too.
 *
 * A redacted child loses its relation (the row goes); a redacted parent keeps its children but
 * is recorded, because a redacted original bundles no edit. Parents need not be known: a child
 * may arrive before its parent, and routes join with the events table where they need both.
 */
import { sql, type Kysely } from 'kysely';
import { inChunks } from '../../internal/sqlutil/index.js';
import { toEvent, type StreamEvent } from './syncstore.js';
import type { SyncapiDatabase } from './tables.js';

export interface Relation {
  roomId: string;
  /** The parent. */
  eventId: string;
  childEventId: string;
  childType: string;
  relType: string;
  sender: string;
  originTs: number;
  pos: number;
}

/** The relation an event's content declares, when it is well formed (spec: others are ignored). */
export function parseRelation(content: unknown): { relType: string; eventId: string } | undefined {
  if (typeof content !== 'object' || content === null) return undefined;
  const rel = (content as Record<string, unknown>)['m.relates_to'];
  if (typeof rel !== 'object' || rel === null || Array.isArray(rel)) return undefined;
  const relType = (rel as Record<string, unknown>)['rel_type'];
  const eventId = (rel as Record<string, unknown>)['event_id'];
  if (typeof relType !== 'string' || relType === '' || typeof eventId !== 'string' || eventId === '') return undefined;
  return { relType, eventId };
}

export interface ChildrenQuery {
  roomId: string;
  eventId: string;
  relType?: string;
  eventType?: string;
  /**
   * Where the page starts: backwards gives children at or before this position, newest
   * first; forwards gives those after it, oldest first. Undefined starts at the newest
   * (backwards) or the oldest (forwards).
   */
  from?: number;
  backwards: boolean;
  limit: number;
  /** Relation levels followed: 1 is direct children only. Filters apply at every level. */
  depth: number;
}

export interface ThreadSummary {
  roomId: string;
  count: number;
  latestPos: number;
  /** Whether `userId` sent a child of the thread. */
  participated: boolean;
}

const EVENT_COLUMNS = ['e.id', 'e.room_id', 'e.event_id', 'e.type', 'e.sender', 'e.state_key', 'e.event_json', 'e.room_version', 'e.device_id', 'e.txn_id', 'e.depth'] as const;

export class RelationsStore {
  constructor(readonly db: Kysely<SyncapiDatabase>) {}

  /** Records a child (a redelivered event changes nothing). */
  async add(r: Relation): Promise<void> {
    await this.db
      .insertInto('syncapi_relations')
      .values({ room_id: r.roomId, event_id: r.eventId, child_event_id: r.childEventId, child_type: r.childType, rel_type: r.relType, sender: r.sender, origin_ts: r.originTs, pos: r.pos })
      .onConflict((oc) => oc.column('child_event_id').doNothing())
      .execute();
  }

  /**
   * An event was redacted: as a child its relation ends; as a parent it is remembered as
   * redacted (its edits are no longer bundled).
   */
  async redacted(roomId: string, eventId: string, redactionEventId: string): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx.deleteFrom('syncapi_relations').where('child_event_id', '=', eventId).execute();
      await tx
        .insertInto('syncapi_redacted_events')
        .values({ room_id: roomId, event_id: eventId, redaction_event_id: redactionEventId })
        .onConflict((oc) => oc.column('event_id').doNothing())
        .execute();
    });
  }

  /** Which of these events were redacted. */
  async redactedAmong(eventIds: readonly string[]): Promise<Set<string>> {
    const rows = await inChunks([...new Set(eventIds)], (chunk) => this.db.selectFrom('syncapi_redacted_events').select('event_id').where('event_id', 'in', chunk).execute());
    return new Set(rows.map((r) => r.event_id));
  }

  /** The redaction of each of these events that was redacted, by event ID. */
  async redactionsOf(eventIds: readonly string[]): Promise<Map<string, string>> {
    const rows = await inChunks([...new Set(eventIds)], (chunk) =>
      this.db.selectFrom('syncapi_redacted_events').select(['event_id', 'redaction_event_id']).where('event_id', 'in', chunk).execute(),
    );
    return new Map(rows.map((r) => [r.event_id, r.redaction_event_id]));
  }

  /**
   * Whether `sender` has an annotation of type `type` with key `key` on `eventId` (one not
   * redacted: a redacted child leaves the relations table).
   */
  async hasAnnotation(q: { roomId: string; eventId: string; sender: string; type: string; key: string }): Promise<boolean> {
    const rows = await this.db
      .selectFrom('syncapi_relations as rel')
      .innerJoin('syncapi_output_room_events as e', 'e.event_id', 'rel.child_event_id')
      .select('e.event_json')
      .where('rel.event_id', '=', q.eventId)
      .where('rel.room_id', '=', q.roomId)
      .where('rel.rel_type', '=', 'm.annotation')
      .where('rel.child_type', '=', q.type)
      .where('rel.sender', '=', q.sender)
      .execute();
    return rows.some((r) => {
      const content = (JSON.parse(r.event_json) as { content?: { 'm.relates_to'?: { key?: unknown } } }).content;
      return content?.['m.relates_to']?.key === q.key;
    });
  }

  /**
   * A page of an event's children (and, with depth > 1, their children in turn), as stored
   * events, in the order the query asks. Children must be in the parent's room.
   */
  async children(q: ChildrenQuery): Promise<StreamEvent[]> {
    let query = this.db
      .selectFrom('syncapi_relations as rel')
      .innerJoin('syncapi_output_room_events as e', 'e.event_id', 'rel.child_event_id')
      .select([...EVENT_COLUMNS]);
    if (q.depth <= 1) {
      query = query.where('rel.event_id', '=', q.eventId).where('rel.room_id', '=', q.roomId);
      if (q.relType !== undefined) query = query.where('rel.rel_type', '=', q.relType);
      if (q.eventType !== undefined) query = query.where('rel.child_type', '=', q.eventType);
    } else {
      // Descendants level by level, each edge passing the filters (an event that matches but
      // hangs off one that does not is left out, as the spec says). The depth bound also ends
      // cycles, which room versions with sender-chosen event IDs make possible. Each edge is
      // checked to be in the room inside the recursion, so the outer query looks the tree's rows
      // up by their key alone (a room condition there would scan the room's relations instead).
      // The room is carried along the tree rather than compared with a constant, and SQLite
      // does not reorder a CROSS JOIN: both keep the planners on the (event_id, room_id) index
      // for each step, instead of scanning the room's relations once per row of the tree (what
      // they did, without table statistics, when the step compared room_id with the constant).
      const relType = q.relType === undefined ? sql`` : sql` AND r.rel_type = ${q.relType}`;
      const eventType = q.eventType === undefined ? sql`` : sql` AND r.child_type = ${q.eventType}`;
      const tree = sql`(
        WITH RECURSIVE tree(child_event_id, room_id, depth) AS (
          SELECT r.child_event_id, r.room_id, 1 FROM syncapi_relations r
            WHERE r.room_id = ${q.roomId} AND r.event_id = ${q.eventId}${relType}${eventType}
          UNION ALL
          SELECT r.child_event_id, r.room_id, tree.depth + 1 FROM tree CROSS JOIN syncapi_relations r
            WHERE r.event_id = tree.child_event_id AND r.room_id = tree.room_id AND tree.depth < ${q.depth}${relType}${eventType}
        )
        SELECT child_event_id FROM tree
      )`;
      query = query.where(sql<boolean>`rel.child_event_id IN ${tree}`).where('rel.child_event_id', '!=', q.eventId);
    }
    if (q.from !== undefined) query = query.where('rel.pos', q.backwards ? '<=' : '>', q.from);
    const rows = await query
      .orderBy('rel.pos', q.backwards ? 'desc' : 'asc')
      .limit(q.limit)
      .execute();
    return rows.map(toEvent);
  }

  /**
   * Per parent (event ID -> its room): the number of `m.thread` children in the parent's room
   * not sent by `ignored` users, the newest one's position, and whether `userId` sent one.
   */
  async threadSummaries(parents: ReadonlyMap<string, string>, userId: string, ignored: ReadonlySet<string>): Promise<Map<string, ThreadSummary>> {
    const rows = await inChunks([...parents.keys()], (chunk) => {
      let q = this.db
        .selectFrom('syncapi_relations')
        .select((eb) => [
          'event_id',
          'room_id',
          eb.fn.countAll<number | string>().as('n'),
          eb.fn.max<number | string>('pos').as('latest'),
          eb.fn.max<number | string>(eb.case().when('sender', '=', userId).then(1).else(0).end()).as('mine'),
        ])
        .where('event_id', 'in', chunk)
        .where('rel_type', '=', 'm.thread');
      if (ignored.size > 0) q = q.where('sender', 'not in', [...ignored]);
      return q.groupBy(['event_id', 'room_id']).execute();
    });
    const out = new Map<string, ThreadSummary>();
    // Children in another room than their parent's are no relation (spec); they make a group of their own, left out here.
    for (const r of rows) if (parents.get(r.event_id) === r.room_id) out.set(r.event_id, { roomId: r.room_id, count: Number(r.n), latestPos: Number(r.latest), participated: Number(r.mine) === 1 });
    return out;
  }

  /** Children of these parents with these relation types, oldest first, leaving out `ignored` senders. */
  async childrenOf(parentIds: readonly string[], relTypes: readonly string[], ignored: ReadonlySet<string>): Promise<Relation[]> {
    const rows = await inChunks([...new Set(parentIds)], (chunk) => {
      let q = this.db.selectFrom('syncapi_relations').selectAll().where('event_id', 'in', chunk).where('rel_type', 'in', [...relTypes]);
      if (ignored.size > 0) q = q.where('sender', 'not in', [...ignored]);
      return q.execute();
    });
    return rows
      .map((r) => ({ roomId: r.room_id, eventId: r.event_id, childEventId: r.child_event_id, childType: r.child_type, relType: r.rel_type, sender: r.sender, originTs: Number(r.origin_ts), pos: Number(r.pos) }))
      .sort((a, b) => a.pos - b.pos);
  }

  /** The newest `limit` thread children of a parent before position `before`, newest first (a fallback when the newest cannot be shown). */
  async threadChildrenBefore(roomId: string, parentId: string, before: number, limit: number, ignored: ReadonlySet<string>): Promise<StreamEvent[]> {
    let q = this.db
      .selectFrom('syncapi_relations as rel')
      .innerJoin('syncapi_output_room_events as e', 'e.event_id', 'rel.child_event_id')
      .select([...EVENT_COLUMNS])
      .where('rel.event_id', '=', parentId)
      .where('rel.room_id', '=', roomId)
      .where('rel.rel_type', '=', 'm.thread')
      .where('rel.pos', '<', before);
    if (ignored.size > 0) q = q.where('rel.sender', 'not in', [...ignored]);
    return (await q.orderBy('rel.pos', 'desc').limit(limit).execute()).map(toEvent);
  }

  /** Stored events by stream position or by event ID, in one query. */
  async eventsByPosOrId(positions: readonly number[], eventIds: readonly string[]): Promise<StreamEvent[]> {
    if (positions.length === 0 && eventIds.length === 0) return [];
    // Both lists are bounded by one response's events, well under an IN list's limit.
    const rows = await this.db
      .selectFrom('syncapi_output_room_events as e')
      .select([...EVENT_COLUMNS])
      .where((eb) => {
        const parts = [];
        if (positions.length > 0) parts.push(eb('e.id', 'in', [...new Set(positions)]));
        if (eventIds.length > 0) parts.push(eb('e.event_id', 'in', [...new Set(eventIds)]));
        return eb.or(parts);
      })
      .execute();
    return rows.map(toEvent);
  }

  /**
   * A room's thread roots the parent events table holds, by their newest thread child,
   * newest first, whose newest child is at or before `upTo`; with `participant`, only threads
   * that user started or posted in.
   */
  async threadRoots(q: { roomId: string; upTo?: number; participant?: string; limit: number }): Promise<Array<{ root: StreamEvent; latestPos: number }>> {
    const participant = q.participant;
    let threads = this.db
      .selectFrom('syncapi_relations')
      .select((eb) => ['event_id', eb.fn.max<number | string>('pos').as('latest'), eb.fn.max<number>(eb.case().when('sender', '=', participant ?? '').then(1).else(0).end()).as('mine')])
      .where('room_id', '=', q.roomId)
      .where('rel_type', '=', 'm.thread')
      .groupBy('event_id');
    if (q.upTo !== undefined) threads = threads.having((eb) => eb.fn.max('pos'), '<=', q.upTo);
    let query = this.db
      .selectFrom(threads.as('t'))
      .innerJoin('syncapi_output_room_events as e', 'e.event_id', 't.event_id')
      .select([...EVENT_COLUMNS, 't.latest'])
      .where('e.room_id', '=', q.roomId);
    if (participant !== undefined) query = query.where((eb) => eb.or([eb('e.sender', '=', participant), eb('t.mine', '=', 1)]));
    const rows = await query.orderBy('t.latest', 'desc').limit(q.limit).execute();
    return rows.map((r) => ({ root: toEvent(r), latestPos: Number(r.latest) }));
  }
}

/**
 * Fills the relations table from the events already stored (the migration that creates it:
 * a server that ran before it existed keeps its relations). Reads in batches by position.
 */
export async function backfillRelations(db: Kysely<SyncapiDatabase>): Promise<void> {
  const store = new RelationsStore(db);
  let after = 0;
  for (;;) {
    const rows = await db
      .selectFrom('syncapi_output_room_events')
      .select(['id', 'room_id', 'event_id', 'type', 'sender', 'event_json'])
      .where('id', '>', after)
      .where('event_json', 'like', '%m.relates_to%')
      .orderBy('id')
      .limit(1000)
      .execute();
    if (rows.length === 0) return;
    for (const r of rows) {
      const json = JSON.parse(r.event_json) as { content?: unknown; origin_server_ts?: unknown };
      const rel = parseRelation(json.content);
      if (!rel) continue;
      const ts = typeof json.origin_server_ts === 'number' ? json.origin_server_ts : 0;
      await store.add({ roomId: r.room_id, eventId: rel.eventId, childEventId: r.event_id, childType: r.type, relType: rel.relType, sender: r.sender, originTs: ts, pos: Number(r.id) });
    }
    after = Number(rows[rows.length - 1]!.id);
  }
}
