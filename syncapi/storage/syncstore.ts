/**
 * syncapi's copy of the rooms: events by stream position, each room's current state (only
 * event IDs: the JSON is kept once, in the events table), account data positions and invites.
 */
import { CompiledQuery, sql, type Kysely, type QueryResult, type Transaction } from 'kysely';
import { dbBool, fromDbBool, inChunks } from '../../internal/sqlutil/index.js';
import type { SyncapiDatabase } from './tables.js';
import { dagFieldsOf, type TopoKey } from './topology.js';

export interface StreamEvent {
  pos: number;
  roomId: string;
  eventId: string;
  type: string;
  sender: string;
  stateKey: string | null;
  json: string;
  roomVersion: string;
  deviceId: string | null;
  txnId: string | null;
  /** The event's depth: with `pos`, its place in the room's topological order. */
  depth: number;
}

export interface NewStreamEvent {
  roomId: string;
  eventId: string;
  type: string;
  sender: string;
  stateKey: string | null;
  json: string;
  roomVersion: string;
  addsState: string[];
  removesState: string[];
  txn?: { deviceId: string; txnId: string };
  /** From the PDU; read from `json` when not given. */
  depth?: number;
  prevEventIds?: readonly string[];
}

/** A row of syncapi_output_room_events as the event columns read it. */
export interface EventRow {
  id: number;
  room_id: string;
  event_id: string;
  type: string;
  sender: string;
  state_key: string | null;
  event_json: string;
  room_version: string;
  device_id: string | null;
  txn_id: string | null;
  depth: number;
}

export function toEvent(r: EventRow): StreamEvent {
  return {
    pos: Number(r.id),
    roomId: r.room_id,
    eventId: r.event_id,
    type: r.type,
    sender: r.sender,
    stateKey: r.state_key,
    json: r.event_json,
    roomVersion: r.room_version,
    deviceId: r.device_id,
    txnId: r.txn_id,
    depth: Number(r.depth),
  };
}

/** An event's origin_server_ts (kept by redaction too), or NaN when the JSON has none. */
function originTs(json: string): number {
  try {
    const ts = (JSON.parse(json) as { origin_server_ts?: unknown }).origin_server_ts;
    return typeof ts === 'number' ? ts : NaN;
  } catch {
    return NaN;
  }
}

/** Prev events looked at per event: far more than servers send (Synapse sends at most 10); the rest of a hostile list opens no gaps. */
const MAX_PREV_EVENTS = 50;

const EVENT_COLUMNS = ['id', 'room_id', 'event_id', 'type', 'sender', 'state_key', 'event_json', 'room_version', 'device_id', 'txn_id', 'depth'] as const;

/**
 * The events that changed their room's current state: the predicate of the partial index
 * syncapi_output_room_events_state_changes (migration 8). Queries that want that index say it
 * word for word, as SQL text rather than bound values: SQLite matches a partial index only so.
 */
export const STATE_CHANGED = "(adds_state <> '[]' OR removes_state <> '[]')";
const stateChanged = () => sql<boolean>`${sql.raw(STATE_CHANGED)}`;

/**
 * The SQL of statements that run for every event, compiled by Kysely once and then run again
 * with new parameters: building and compiling a statement costs more than SQLite takes to run
 * it. Per database (the SQL is the dialect's).
 */
class StatementCache {
  private readonly sql = new Map<string, string>();

  /**
   * Runs the statement `compile` makes, whose parameters must be `params` in this order (the
   * first run checks it: a mismatch is a bug here, and fails loudly rather than binding wrong).
   */
  async run<R>(db: Kysely<SyncapiDatabase>, key: string, params: readonly unknown[], compile: () => CompiledQuery<R>): Promise<QueryResult<R>> {
    const text = this.sql.get(key);
    if (text !== undefined) return db.executeQuery(CompiledQuery.raw(text, [...params]) as CompiledQuery<R>);
    const compiled = compile();
    if (compiled.parameters.length !== params.length || compiled.parameters.some((p, i) => p !== params[i])) {
      throw new Error(`syncapi statement ${key}: compiled parameters ${JSON.stringify(compiled.parameters)} are not ${JSON.stringify(params)}`);
    }
    this.sql.set(key, compiled.sql);
    return db.executeQuery(compiled);
  }
}

/**
 * What a store bound to a batch's transaction remembers between events, to spare statements
 * whose outcome it knows:
 * - the events it stored, by room: an event whose prev events are all among them opens no gap;
 * - the gaps to close, run once per room at the end rather than once per event. The result is
 *   the same: nothing in the transaction reads the gaps meanwhile, and a gap recorded meanwhile
 *   names a prev event of the batch only when that event was stored after the one recording
 *   it, whose closing, at the end, removes it as it would have right after.
 */
interface BatchMemory {
  stored: Map<string, Set<string>>;
  closing: Map<string, Set<string>>;
}

export class SyncStore {
  constructor(
    readonly db: Kysely<SyncapiDatabase>,
    private readonly statements = new StatementCache(),
    private readonly batch?: BatchMemory,
  ) {}

  /**
   * Runs `fn` in one database transaction, with a store whose every method works inside it
   * (a batch of room events commits together). Nothing in `fn` may wait on another component
   * or on this store's own database outside the transaction: on SQLite the transaction holds
   * the one connection, which components sharing the file use too.
   */
  async inTransaction<T>(fn: (store: SyncStore) => Promise<T>): Promise<T> {
    return this.write(async (tx) => {
      const batch: BatchMemory = { stored: new Map(), closing: new Map() };
      const out = await fn(new SyncStore(tx, this.statements, batch));
      for (const [roomId, ids] of batch.closing) {
        // Through the index on prev_event_id: `room_id || ''` keeps SQLite, which has no
        // statistics here, from walking the room's gaps by the room index instead.
        await inChunks([...ids], (chunk) =>
          sql`DELETE FROM syncapi_backward_extremities WHERE prev_event_id IN (${sql.join(chunk)}) AND room_id || '' = ${roomId}`.execute(tx).then(() => []),
        );
      }
      return out;
    });
  }

  /** A write that needs a transaction: this store's, when it is bound to one, else a new one. */
  private write<T>(fn: (tx: Transaction<SyncapiDatabase>) => Promise<T>): Promise<T> {
    return this.db.isTransaction ? fn(this.db as Transaction<SyncapiDatabase>) : this.db.transaction().execute(fn);
  }

  /** Stores an event at the next position (or finds it: a repeat keeps its first position). */
  async insertEvent(e: NewStreamEvent): Promise<{ pos: number; existed: boolean }> {
    return this.write((tx) => this.insertIn(tx, e, false));
  }

  /**
   * Stores an event of the room's past (backfilled, `old_room_event`) at a negative position,
   * counting down: it is never new to a /sync since-token (those only look forward from
   * positions >= 0) and wakes no one, while /messages finds it by its depth. A repeat keeps its
   * first position.
   */
  async insertHistoricalEvent(e: NewStreamEvent): Promise<{ pos: number; existed: boolean }> {
    return this.write((tx) => this.insertIn(tx, e, true));
  }

  private async insertIn(tx: Transaction<SyncapiDatabase>, e: NewStreamEvent, historical: boolean): Promise<{ pos: number; existed: boolean }> {
    let dag = e.depth !== undefined && e.prevEventIds !== undefined ? { depth: e.depth, prevEventIds: [...e.prevEventIds] } : undefined;
    if (!dag) {
      let pdu: unknown;
      try {
        pdu = JSON.parse(e.json);
      } catch {
        pdu = undefined;
      }
      dag = dagFieldsOf(pdu);
    }
    const row = {
      room_id: e.roomId,
      event_id: e.eventId,
      type: e.type,
      sender: e.sender,
      state_key: e.stateKey,
      event_json: e.json,
      room_version: e.roomVersion,
      adds_state: JSON.stringify(e.addsState),
      removes_state: JSON.stringify(e.removesState),
      device_id: e.txn?.deviceId ?? null,
      txn_id: e.txn?.txnId ?? null,
      depth: e.depth ?? dag.depth,
    };
    const { rows } = await this.statements.run(tx, 'insert event', Object.values(row), () =>
      tx
        .insertInto('syncapi_output_room_events')
        .values(row)
        .onConflict((oc) => oc.column('event_id').doNothing())
        .returning('id')
        .compile(),
    );
    // The event closes the gaps that lacked it (also when it was here already: a gap recorded
    // by a transaction that ran alongside the one storing it heals on the next sight of it).
    if (this.batch) {
      let ids = this.batch.closing.get(e.roomId);
      if (!ids) this.batch.closing.set(e.roomId, (ids = new Set()));
      ids.add(e.eventId);
    } else {
      await this.statements.run(tx, 'close gaps', [e.eventId, e.roomId], () =>
        tx.deleteFrom('syncapi_backward_extremities').where('prev_event_id', '=', e.eventId).where('room_id', '=', e.roomId).compile(),
      );
    }
    if (rows.length === 1) {
      let pos = Number(rows[0]!.id);
      if (historical) {
        // Mirrored below zero in the same transaction: no reader ever sees it at the positive position.
        await this.statements.run(tx, 'mirror below zero', [-pos, pos], () => tx.updateTable('syncapi_output_room_events').set({ id: -pos }).where('id', '=', pos).compile());
        pos = -pos;
      }
      await this.recordGaps(tx, e.roomId, e.eventId, dag.prevEventIds);
      if (this.batch) {
        let ids = this.batch.stored.get(e.roomId);
        if (!ids) this.batch.stored.set(e.roomId, (ids = new Set()));
        ids.add(e.eventId);
      }
      return { pos, existed: false };
    }
    const { rows: found } = await this.statements.run(tx, 'event pos', [e.eventId], () => tx.selectFrom('syncapi_output_room_events').select('id').where('event_id', '=', e.eventId).compile());
    if (!found[0]) throw new Error(`syncapi: event ${e.eventId} was neither stored nor found`);
    return { pos: Number(found[0].id), existed: true };
  }

  /** Records the prev events of a new event that this room's history here lacks (one statement: it runs for every event). */
  private async recordGaps(tx: Transaction<SyncapiDatabase>, roomId: string, eventId: string, prevEventIds: readonly string[]): Promise<void> {
    const prevs = [...new Set(prevEventIds)].slice(0, MAX_PREV_EVENTS);
    if (prevs.length === 0) return;
    // Prev events this batch stored in the room are held: no gap (an event chained on the last).
    const stored = this.batch?.stored.get(roomId);
    if (stored && prevs.every((p) => stored.has(p))) return;
    await this.statements.run(tx, `record gaps ${prevs.length}`, [roomId, eventId, ...prevs, roomId], () => {
      const candidates = sql.join(
        prevs.map((p) => sql`SELECT ${p} AS prev`),
        sql` UNION ALL `,
      );
      return sql`INSERT INTO syncapi_backward_extremities (room_id, event_id, prev_event_id)
        SELECT ${roomId}, ${eventId}, c.prev FROM (${candidates}) AS c
        WHERE NOT EXISTS (SELECT 1 FROM syncapi_output_room_events e WHERE e.event_id = c.prev AND e.room_id = ${roomId})
        ON CONFLICT (event_id, prev_event_id) DO NOTHING`.compile(tx);
    });
  }

  /**
   * The event that a device's transaction produced in a room (its ID), or undefined: what a
   * retried PUT /send or /redact answers. `type`, when given, narrows it to events of that type,
   * so that one transaction ID used on two endpoints (a message and a redaction) stays two
   * transactions; `sinceTs`, to events created (origin_server_ts) at or after it, so that a
   * transaction ID is not held forever. Were there ever two, the first is the answer. Through
   * the partial index syncapi_output_room_events_txn (migration 9).
   */
  async eventIdForTransaction(q: { roomId: string; sender: string; deviceId: string; txnId: string; type?: string; sinceTs?: number }): Promise<string | undefined> {
    let query = this.db
      .selectFrom('syncapi_output_room_events')
      .select(['id', 'event_id', 'event_json'])
      .where('sender', '=', q.sender)
      .where('device_id', '=', q.deviceId)
      .where('txn_id', '=', q.txnId)
      .where('room_id', '=', q.roomId);
    if (q.type !== undefined) query = query.where('type', '=', q.type);
    // No ORDER BY ... LIMIT in SQL: that could tempt a planner to walk the whole table by id.
    // A transaction has one event, or very rarely a few.
    const rows = await query.execute();
    let first: { id: number; event_id: string } | undefined;
    for (const r of rows) {
      if (q.sinceTs !== undefined && !(originTs(r.event_json) >= q.sinceTs)) continue;
      if (!first || Number(r.id) < Number(first.id)) first = r;
    }
    return first?.event_id;
  }

  async events(eventIds: readonly string[]): Promise<StreamEvent[]> {
    const rows = await inChunks([...new Set(eventIds)], (chunk) => this.db.selectFrom('syncapi_output_room_events').select([...EVENT_COLUMNS]).where('event_id', 'in', chunk).execute());
    return rows.map(toEvent);
  }

  async redact(eventId: string, json: string): Promise<void> {
    await this.db.updateTable('syncapi_output_room_events').set({ event_json: json }).where('event_id', '=', eventId).execute();
  }

  /** Applies a change of a room's current state (entries by event ID; the events are stored already). */
  async updateCurrentState(roomId: string, adds: ReadonlyArray<{ eventId: string; type: string; stateKey: string; membership: string | null }>, removes: readonly string[], pos: number): Promise<void> {
    await this.write(async (tx) => {
      await inChunks(removes, (chunk) => tx.deleteFrom('syncapi_current_room_state').where('room_id', '=', roomId).where('event_id', 'in', chunk).execute().then(() => []));
      for (const a of adds) {
        await tx
          .insertInto('syncapi_current_room_state')
          .values({ room_id: roomId, type: a.type, state_key: a.stateKey, event_id: a.eventId, membership: a.membership, added_at: pos })
          .onConflict((oc) => oc.columns(['room_id', 'type', 'state_key']).doUpdateSet({ event_id: a.eventId, membership: a.membership, added_at: pos }))
          .execute();
      }
    });
  }

  /** The latest position of the PDU stream. */
  async maxEventPos(): Promise<number> {
    const r = await this.db.selectFrom('syncapi_output_room_events').select((eb) => eb.fn.max('id').as('m')).executeTakeFirst();
    return Number(r?.m ?? 0);
  }

  /** Rooms where the user's current membership is one of these. */
  async roomsWithMembership(userId: string, memberships: readonly string[]): Promise<Array<{ roomId: string; membership: string }>> {
    const rows = await this.db
      .selectFrom('syncapi_current_room_state')
      .select(['room_id', 'membership'])
      .where('type', '=', 'm.room.member')
      .where('state_key', '=', userId)
      .where('membership', 'in', [...memberships])
      .execute();
    return rows.map((r) => ({ roomId: r.room_id, membership: r.membership ?? '' }));
  }

  /** The joined members of these rooms (from the current state's membership column: no JSON read). */
  async joinedMembersOf(roomIds: readonly string[]): Promise<Map<string, string[]>> {
    return this.membersOf(roomIds, ['join']);
  }

  /** Members of these rooms whose current membership is one of these. */
  async membersOf(roomIds: readonly string[], memberships: readonly string[]): Promise<Map<string, string[]>> {
    const rows = await inChunks([...roomIds], (chunk) =>
      this.db
        .selectFrom('syncapi_current_room_state')
        .select(['room_id', 'state_key'])
        .where('room_id', 'in', chunk)
        .where('type', '=', 'm.room.member')
        .where('membership', 'in', [...memberships])
        .execute(),
    );
    const out = new Map<string, string[]>();
    for (const r of rows) out.set(r.room_id, [...(out.get(r.room_id) ?? []), r.state_key]);
    return out;
  }

  /** Every member of a room and their current membership (from the membership column: no JSON read). */
  async memberships(roomId: string): Promise<Array<{ userId: string; membership: string }>> {
    const rows = await this.db
      .selectFrom('syncapi_current_room_state')
      .select(['state_key', 'membership'])
      .where('room_id', '=', roomId)
      .where('type', '=', 'm.room.member')
      .execute();
    return rows.map((r) => ({ userId: r.state_key, membership: r.membership ?? 'leave' }));
  }

  /**
   * A room's summary for /sync: its joined and invited member counts, and the first `heroes`
   * members other than `userId` in the order they came (the position of their current member
   * event: the spec's "ordered by stream ordering"), joined ones before invited ones as Synapse
   * has it, or else, when there are none, those who left or were banned. Counted in the
   * database: a big room's members are not read one by one.
   */
  async memberSummary(roomId: string, userId: string, heroes: number): Promise<{ joined: number; invited: number; heroes: string[] }> {
    const counts = await this.db
      .selectFrom('syncapi_current_room_state')
      .select((eb) => ['membership', eb.fn.countAll().as('n')])
      .where('room_id', '=', roomId)
      .where('type', '=', 'm.room.member')
      .where('membership', 'in', ['join', 'invite'])
      .groupBy('membership')
      .execute();
    const count = (m: string) => Number(counts.find((c) => c.membership === m)?.n ?? 0);
    const first = (memberships: string[]) =>
      this.db
        .selectFrom('syncapi_current_room_state')
        .select('state_key')
        .where('room_id', '=', roomId)
        .where('type', '=', 'm.room.member')
        .where('membership', 'in', memberships)
        .where('state_key', '!=', userId)
        .orderBy(sql`CASE membership WHEN 'join' THEN 0 ELSE 1 END`)
        .orderBy('added_at')
        .orderBy('state_key')
        .limit(heroes)
        .execute();
    let picked = heroes > 0 ? await first(['join', 'invite']) : [];
    if (heroes > 0 && picked.length === 0) picked = await first(['leave', 'ban']);
    return { joined: count('join'), invited: count('invite'), heroes: picked.map((r) => r.state_key) };
  }

  /** The room's current state events of these types (state key ""). */
  async currentStateOfTypes(roomId: string, types: readonly string[]): Promise<StreamEvent[]> {
    const ids = await this.db
      .selectFrom('syncapi_current_room_state')
      .select('event_id')
      .where('room_id', '=', roomId)
      .where('type', 'in', [...types])
      .where('state_key', '=', '')
      .execute();
    return this.events(ids.map((r) => r.event_id));
  }

  /** A room's current state events. */
  async currentState(roomId: string): Promise<StreamEvent[]> {
    const ids = await this.db.selectFrom('syncapi_current_room_state').select('event_id').where('room_id', '=', roomId).execute();
    return this.events(ids.map((r) => r.event_id));
  }

  /**
   * The room's events after `from` up to and including `to`, the newest `limit` of them in
   * stream order, and whether there were more.
   */
  async roomEvents(roomId: string, from: number, to: number, limit: number): Promise<{ events: StreamEvent[]; limited: boolean }> {
    const rows = await this.db
      .selectFrom('syncapi_output_room_events')
      .select([...EVENT_COLUMNS])
      .where('room_id', '=', roomId)
      .where('id', '>', from)
      .where('id', '<=', to)
      .orderBy('id', 'desc')
      .limit(limit + 1)
      .execute();
    const limited = rows.length > limit;
    return { events: rows.slice(0, limit).reverse().map(toEvent), limited };
  }

  /** The stream position of an event; undefined when this component does not have it. */
  async eventPos(eventId: string): Promise<number | undefined> {
    const r = await this.db.selectFrom('syncapi_output_room_events').select('id').where('event_id', '=', eventId).executeTakeFirst();
    return r ? Number(r.id) : undefined;
  }

  /**
   * A page of a room's events from a position: `backwards` gives those at or before `pos`,
   * newest first; forwards gives those after it, oldest first.
   */
  async roomEventsFrom(roomId: string, pos: number, backwards: boolean, limit: number): Promise<StreamEvent[]> {
    const rows = await this.db
      .selectFrom('syncapi_output_room_events')
      .select([...EVENT_COLUMNS])
      .where('room_id', '=', roomId)
      .where('id', backwards ? '<=' : '>', pos)
      .orderBy('id', backwards ? 'desc' : 'asc')
      .limit(limit)
      .execute();
    return rows.map(toEvent);
  }

  // -------------------------------------------------------------------------------------------
  // Topological order (/messages, /context): by depth, then stream position

  /** An event's place in its room's topological order; undefined when syncapi lacks it. */
  async eventKey(eventId: string): Promise<(TopoKey & { roomId: string }) | undefined> {
    const r = await this.db.selectFrom('syncapi_output_room_events').select(['id', 'depth', 'room_id']).where('event_id', '=', eventId).executeTakeFirst();
    return r ? { depth: Number(r.depth), pos: Number(r.id), roomId: r.room_id } : undefined;
  }

  /**
   * A page of a room's events in topological order from `key`: backwards gives those at or
   * before it, newest first; forwards gives those after it, oldest first.
   */
  async roomEventsTopo(roomId: string, key: TopoKey, backwards: boolean, limit: number): Promise<StreamEvent[]> {
    const dir = backwards ? 'desc' : 'asc';
    const rows = await this.db
      .selectFrom('syncapi_output_room_events')
      .select([...EVENT_COLUMNS])
      .where('room_id', '=', roomId)
      .where(sql<boolean>`(depth, id) ${sql.raw(backwards ? '<=' : '>')} (${key.depth}, ${key.pos})`)
      .orderBy('depth', dir)
      .orderBy('id', dir)
      .limit(limit)
      .execute();
    return rows.map(toEvent);
  }

  /**
   * Where a stream position (a /sync token) falls in a room's topological order: just before
   * the room's first event after it (history backfilled later, which belongs before that event,
   * is then behind the token too), or after the room's last event when none came after.
   */
  async topoKeyAtStreamPos(roomId: string, pos: number): Promise<TopoKey> {
    const next = await this.db
      .selectFrom('syncapi_output_room_events')
      .select(['id', 'depth'])
      .where('room_id', '=', roomId)
      .where('id', '>', pos)
      .orderBy('id')
      .limit(1)
      .executeTakeFirst();
    if (next) return { depth: Number(next.depth), pos: Number(next.id) - 1 };
    return (await this.maxTopoKey(roomId)) ?? { depth: 0, pos };
  }

  /** The place of the room's last event in topological order; undefined for a room without events here. */
  async maxTopoKey(roomId: string): Promise<TopoKey | undefined> {
    const r = await this.db
      .selectFrom('syncapi_output_room_events')
      .select(['id', 'depth'])
      .where('room_id', '=', roomId)
      .orderBy('depth', 'desc')
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst();
    return r ? { depth: Number(r.depth), pos: Number(r.id) } : undefined;
  }

  /** The room's gaps: events whose prev events syncapi lacks, the highest in topological order first. */
  async backwardExtremities(roomId: string, limit: number): Promise<Array<TopoKey & { eventId: string }>> {
    const rows = await this.db
      .selectFrom('syncapi_backward_extremities as x')
      .innerJoin('syncapi_output_room_events as e', 'e.event_id', 'x.event_id')
      .select(['x.event_id', 'e.depth', 'e.id'])
      .distinct()
      .where('x.room_id', '=', roomId)
      .orderBy('e.depth', 'desc')
      .orderBy('e.id', 'desc')
      .limit(limit)
      .execute();
    return rows.map((r) => ({ eventId: r.event_id, depth: Number(r.depth), pos: Number(r.id) }));
  }

  /** Whether the event still lacks some of its prev events here. */
  async isBackwardExtremity(eventId: string): Promise<boolean> {
    return (await this.db.selectFrom('syncapi_backward_extremities').select('event_id').where('event_id', '=', eventId).limit(1).executeTakeFirst()) !== undefined;
  }

  /** Closes the room's gaps made by these prev events: ones its history here will never show (rejected, of another room). */
  async closeGaps(roomId: string, prevEventIds: readonly string[]): Promise<void> {
    await inChunks([...new Set(prevEventIds)], (chunk) =>
      this.db.deleteFrom('syncapi_backward_extremities').where('room_id', '=', roomId).where('prev_event_id', 'in', chunk).execute().then(() => []),
    );
  }

  /** The current-state event IDs each event added and removed, by event ID. */
  async stateDeltas(eventIds: readonly string[]): Promise<Map<string, { adds: string[]; removes: string[] }>> {
    const rows = await inChunks([...new Set(eventIds)], (chunk) =>
      this.db.selectFrom('syncapi_output_room_events').select(['event_id', 'adds_state', 'removes_state']).where('event_id', 'in', chunk).execute(),
    );
    return new Map(rows.map((r) => [r.event_id, { adds: JSON.parse(r.adds_state) as string[], removes: JSON.parse(r.removes_state) as string[] }]));
  }

  /**
   * A room's state as it was at stream position `pos`: the current state with the state
   * changes of every later event undone, newest first (from the roomserver's adds/removes).
   */
  async stateAt(roomId: string, pos: number): Promise<StreamEvent[]> {
    const later = (await this.stateChangesAfter(roomId, pos)).reverse();
    const current = await this.currentState(roomId);
    if (later.length === 0) return current;
    const byId = new Map(current.map((e) => [e.eventId, e]));
    for (const change of later) {
      for (const id of change.adds) byId.delete(id);
      for (const e of await this.events(change.removes)) byId.set(e.eventId, e);
    }
    return [...byId.values()];
  }

  /**
   * The changes to a room's current state after stream position `pos`, oldest first: the
   * state event IDs each event added and removed. Read through the index of state changes, so
   * the cost is the number of changes, however many other events came after `pos`.
   */
  async stateChangesAfter(roomId: string, pos: number): Promise<Array<{ eventId: string; adds: string[]; removes: string[] }>> {
    const rows = await this.db
      .selectFrom('syncapi_output_room_events')
      .select(['event_id', 'adds_state', 'removes_state'])
      .where('room_id', '=', roomId)
      .where('id', '>', pos)
      .where(stateChanged())
      .orderBy('id')
      .execute();
    return rows.map((r) => ({ eventId: r.event_id, adds: JSON.parse(r.adds_state) as string[], removes: JSON.parse(r.removes_state) as string[] }));
  }

  /** Rooms with events after `from` up to `to`. */
  async roomsWithEvents(from: number, to: number, roomIds: readonly string[]): Promise<Set<string>> {
    if (to <= from) return new Set();
    // Each room's latest event up to `to`, one probe of the room index per room, never a walk
    // over the range: a since-token 100,000 events old costs what one 10 events old does.
    // - A scalar subquery with LIMIT: PostgreSQL cannot make it a join that reads the range.
    // - room_id between X and X rather than = X, so that the order (room_id, id) is one only the
    //   room index gives: with = X, PostgreSQL may walk the primary key back from `to` instead,
    //   filtering on the room, which reads every event since the room's last one.
    const rows = await inChunks([...new Set(roomIds)], (chunk) =>
      sql<{ room_id: string; latest: number | string | null }>`SELECT v.column1 AS room_id,
          (SELECT e.id FROM syncapi_output_room_events e WHERE e.room_id >= v.column1 AND e.room_id <= v.column1 AND e.id <= ${to} ORDER BY e.room_id DESC, e.id DESC LIMIT 1) AS latest
        FROM (VALUES ${sql.join(chunk.map((r) => sql`(${r})`))}) AS v`
        .execute(this.db)
        .then((r) => r.rows),
    );
    return new Set(rows.filter((r) => r.latest !== null && Number(r.latest) > from).map((r) => r.room_id));
  }

  /** The content of the user's member event in a room as of stream position `pos` (their latest one up to it). */
  async memberContentAt(roomId: string, userId: string, pos: number): Promise<Record<string, unknown> | undefined> {
    const r = await this.db
      .selectFrom('syncapi_output_room_events')
      .select('event_json')
      .where('room_id', '=', roomId)
      .where('type', '=', 'm.room.member')
      .where('state_key', '=', userId)
      .where('id', '<=', pos)
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst();
    if (!r) return undefined;
    const c = (JSON.parse(r.event_json) as { content?: unknown }).content;
    return typeof c === 'object' && c !== null ? (c as Record<string, unknown>) : undefined;
  }

  /** The user's membership in a room as of stream position `pos`. */
  async membershipAt(roomId: string, userId: string, pos: number): Promise<string | undefined> {
    const m = (await this.memberContentAt(roomId, userId, pos))?.['membership'];
    return typeof m === 'string' ? m : undefined;
  }

  /** Users whose membership changed in (from, to] in the rooms `userId` is or was joined to. */
  async membershipChangesInRoomsOf(userId: string, from: number, to: number): Promise<string[]> {
    if (to <= from) return [];
    const rooms = (await this.roomsWithMembership(userId, ['join', 'leave', 'ban'])).map((r) => r.roomId);
    // Member events that changed the state (through the index of state changes: the range's other events cost nothing).
    const rows = await inChunks(rooms, (chunk) =>
      this.db
        .selectFrom('syncapi_output_room_events')
        .select('state_key')
        .distinct()
        .where('type', '=', 'm.room.member')
        .where('room_id', 'in', chunk)
        .where('id', '>', from)
        .where('id', '<=', to)
        .where(stateChanged())
        .execute(),
    );
    return [...new Set(rows.map((r) => r.state_key).filter((s): s is string => s !== null))];
  }

  /** Users whose member event in these rooms in (from, to] made them joined (or one of `memberships`). */
  async joinsInRange(roomIds: readonly string[], from: number, to: number, memberships: readonly string[] = ['join']): Promise<Set<string>> {
    if (to <= from) return new Set();
    // Through the index of state changes, as membershipChangesInRoomsOf.
    const rows = await inChunks([...roomIds], (chunk) =>
      this.db
        .selectFrom('syncapi_output_room_events')
        .select(['state_key', 'event_json'])
        .where('type', '=', 'm.room.member')
        .where('room_id', 'in', chunk)
        .where('id', '>', from)
        .where('id', '<=', to)
        .where(stateChanged())
        .execute(),
    );
    const out = new Set<string>();
    for (const r of rows) {
      const membership = (JSON.parse(r.event_json) as { content?: { membership?: unknown } }).content?.membership;
      if (r.state_key !== null && typeof membership === 'string' && memberships.includes(membership)) out.add(r.state_key);
    }
    return out;
  }

  /** The user's own membership events in a range, oldest first (to tell new joins and leaves). */
  async membershipEvents(userId: string, from: number, to: number): Promise<StreamEvent[]> {
    const rows = await this.db
      .selectFrom('syncapi_output_room_events')
      .select([...EVENT_COLUMNS])
      .where('type', '=', 'm.room.member')
      .where('state_key', '=', userId)
      .where('id', '>', from)
      .where('id', '<=', to)
      .orderBy('id')
      .execute();
    return rows.map(toEvent);
  }

  // -------------------------------------------------------------------------------------------
  // Account data and invites

  /** Moves (user, room, type) to a new position; returns it. */
  async accountDataChanged(userId: string, roomId: string, type: string): Promise<number> {
    return this.write(async (tx) => {
      await tx.deleteFrom('syncapi_account_data').where('user_id', '=', userId).where('room_id', '=', roomId).where('type', '=', type).execute();
      const r = await tx.insertInto('syncapi_account_data').values({ user_id: userId, room_id: roomId, type }).returning('id').executeTakeFirstOrThrow();
      return Number(r.id);
    });
  }

  async accountDataChanges(userId: string, from: number, to: number): Promise<Array<{ roomId: string; type: string }>> {
    const rows = await this.db
      .selectFrom('syncapi_account_data')
      .select(['room_id', 'type'])
      .where('user_id', '=', userId)
      .where('id', '>', from)
      .where('id', '<=', to)
      .orderBy('id')
      .execute();
    return rows.map((r) => ({ roomId: r.room_id, type: r.type }));
  }

  async maxAccountDataPos(): Promise<number> {
    const r = await this.db.selectFrom('syncapi_account_data').select((eb) => eb.fn.max('id').as('m')).executeTakeFirst();
    return Number(r?.m ?? 0);
  }

  async addInvite(i: { eventId: string; roomId: string; targetUserId: string; json: string; roomVersion: string }): Promise<number> {
    const rows = await this.db
      .insertInto('syncapi_invites')
      .values({ event_id: i.eventId, room_id: i.roomId, target_user_id: i.targetUserId, event_json: i.json, room_version: i.roomVersion })
      .onConflict((oc) => oc.column('event_id').doNothing())
      .returning('id')
      .execute();
    return rows.length === 1 ? Number(rows[0]!.id) : 0;
  }

  /** Marks an invite retired at a new position (its row moves, so a since-token sees the change). */
  async retireInvite(eventId: string): Promise<number> {
    return this.write(async (tx) => {
      const old = await tx.selectFrom('syncapi_invites').selectAll().where('event_id', '=', eventId).executeTakeFirst();
      if (!old) return 0;
      await tx.deleteFrom('syncapi_invites').where('event_id', '=', eventId).execute();
      const r = await tx
        .insertInto('syncapi_invites')
        .values({ event_id: old.event_id, room_id: old.room_id, target_user_id: old.target_user_id, event_json: old.event_json, room_version: old.room_version, retired: dbBool(true) })
        .returning('id')
        .executeTakeFirstOrThrow();
      return Number(r.id);
    });
  }

  async invites(userId: string, from: number, to: number): Promise<Array<{ roomId: string; json: string; roomVersion: string; retired: boolean }>> {
    const rows = await this.db
      .selectFrom('syncapi_invites')
      .selectAll()
      .where('target_user_id', '=', userId)
      .where('id', '>', from)
      .where('id', '<=', to)
      .orderBy('id')
      .execute();
    return rows.map((r) => ({ roomId: r.room_id, json: r.event_json, roomVersion: r.room_version, retired: fromDbBool(r.retired) }));
  }

  async maxInvitePos(): Promise<number> {
    const r = await this.db.selectFrom('syncapi_invites').select((eb) => eb.fn.max('id').as('m')).executeTakeFirst();
    return Number(r?.m ?? 0);
  }
}
