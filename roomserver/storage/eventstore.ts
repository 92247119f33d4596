/**
 * Rooms, numeric IDs (NIDs) for event types and state keys, events with their JSON, forward
 * extremities and the outbox of outputs. NIDs are assigned on first use and cached: they never
 * change and never leave the roomserver.
 */
import { sql, type Kysely, type RawBuilder, type Transaction } from 'kysely';
import { dbBool, dialectOf, fromDbBool, inChunks, IN_LIST_CHUNK, type DialectName } from '../../internal/sqlutil/index.js';
import { NotPlannable } from './plan.js';
import type { RoomserverDatabase } from './tables.js';
import { originServerTsOf } from './timestamps.js';

type Db = Kysely<RoomserverDatabase> | Transaction<RoomserverDatabase>;

export interface RoomInfo {
  roomNid: number;
  roomId: string;
  roomVersion: string;
  /** The current state (after the forward extremities); 0 when unknown. */
  stateSnapshotNid: number;
}

export interface StoredEvent {
  eventNid: number;
  roomNid: number;
  eventId: string;
  typeNid: number;
  stateKeyNid: number | null;
  depth: number;
  /** The state before the event (0: empty); null for outliers. */
  stateSnapshotNid: number | null;
  isRejected: boolean;
  rejectionReason: string | null;
  isSoftFailed: boolean;
  authEventNids: number[];
}

export interface NewEvent {
  roomNid: number;
  eventId: string;
  type: string;
  stateKey: string | undefined;
  depth: number;
  json: string;
  authEventNids: number[];
  /** null for an outlier. */
  stateSnapshotNid: number | null;
  rejectionReason: string | null;
  softFailed?: boolean;
  /** The event's origin_server_ts; read from `json` when absent. */
  originServerTs?: number | null;
}

type EventRow = {
  event_nid: number;
  room_nid: number;
  event_id: string;
  event_type_nid: number;
  event_state_key_nid: number | null;
  depth: number;
  state_snapshot_nid: number | null;
  is_rejected: number;
  rejection_reason: string | null;
  is_soft_failed: number;
  auth_event_nids: string;
};

function toStored(r: EventRow): StoredEvent {
  return {
    eventNid: Number(r.event_nid),
    roomNid: Number(r.room_nid),
    eventId: r.event_id,
    typeNid: Number(r.event_type_nid),
    stateKeyNid: r.event_state_key_nid === null ? null : Number(r.event_state_key_nid),
    depth: Number(r.depth),
    stateSnapshotNid: r.state_snapshot_nid === null ? null : Number(r.state_snapshot_nid),
    isRejected: fromDbBool(r.is_rejected),
    rejectionReason: r.rejection_reason,
    isSoftFailed: fromDbBool(r.is_soft_failed),
    authEventNids: JSON.parse(r.auth_event_nids) as number[],
  };
}

/** A bidirectional cache for one kind of NID (types or state keys), bounded: oldest first out. */
export class NidCache {
  readonly byName = new Map<string, number>();
  readonly byNid = new Map<number, string>();
  constructor(private readonly limit = Infinity) {}
  add(name: string, nid: number): void {
    if (this.byName.size >= this.limit && !this.byName.has(name)) {
      let drop = Math.ceil(this.limit / 4);
      for (const [oldName, oldNid] of this.byName) {
        this.byName.delete(oldName);
        this.byNid.delete(oldNid);
        if (--drop <= 0) break;
      }
    }
    this.byName.set(name, nid);
    this.byNid.set(nid, name);
  }
}

/** How many names of each kind the shared caches keep (state keys grow with the users seen). */
const NID_CACHE_LIMIT = 200_000;

/** A batch's end in one go: see EventStore.finishBatch. */
export interface BatchWrites {
  /** Rooms whose forward extremities (and maybe current state) moved. */
  rooms: ReadonlyArray<{ roomNid: number; latest: readonly number[]; stateSnapshotNid?: number }>;
  /** Outputs for the outbox, of one room. */
  outbox?: { roomNid: number; items: ReadonlyArray<{ msgId: string; payload: string }> };
  /** Outbox rows already published, to delete. */
  removeFromOutbox: readonly number[];
}

/**
 * What a planned store's event goes by until finishPlanned has stored it (no row has it): the
 * caller puts the real NID in its place afterwards.
 */
export const PLANNED_EVENT_NID = -1;

interface PlannedEvent {
  e: NewEvent;
  typeNid: number;
  stateKeyNid: number | null;
}

/** Outbox rows and extremities folded into one PostgreSQL statement at most (3 parameters each). */
const FOLD_LIMIT = 1000;

function foldable(w: BatchWrites): boolean {
  const extremities = w.rooms.reduce((n, r) => n + r.latest.length, 0);
  return (w.outbox?.items.length ?? 0) + extremities + w.removeFromOutbox.length <= FOLD_LIMIT;
}

/**
 * PostgreSQL WITH parts for a batch's end, each applied only when `guard` holds; the outbox rows
 * come back from the part named `box` (empty when there are none).
 */
function batchParts(w: BatchWrites, guard: RawBuilder<unknown>, planned?: RawBuilder<unknown>): Array<RawBuilder<unknown>> {
  const parts: Array<RawBuilder<unknown>> = [];
  const name = (): RawBuilder<unknown> => sql.raw(`w${parts.length}`);
  // The planned event's NID is the one its insert in the same statement returns.
  const nid = (n: number): RawBuilder<unknown> => (planned && n === PLANNED_EVENT_NID ? planned : sql`${n}::bigint`);
  for (const r of w.rooms) {
    const stored = r.latest.filter((n) => !planned || n !== PLANNED_EVENT_NID);
    const keep = stored.length > 0 ? sql` AND event_nid NOT IN (${sql.join(stored)})` : sql``;
    parts.push(sql`${name()} AS (DELETE FROM roomserver_forward_extremities WHERE room_nid = ${r.roomNid}${keep} AND ${guard})`);
    if (r.latest.length > 0) {
      const rows = sql.join(r.latest.map((n) => sql`(${r.roomNid}::bigint, ${nid(n)})`));
      parts.push(sql`${name()} AS (INSERT INTO roomserver_forward_extremities (room_nid, event_nid) SELECT v.r, v.n FROM (VALUES ${rows}) AS v (r, n) WHERE ${guard} ON CONFLICT DO NOTHING)`);
    }
    if (r.stateSnapshotNid !== undefined) {
      parts.push(sql`${name()} AS (UPDATE roomserver_rooms SET state_snapshot_nid = ${r.stateSnapshotNid} WHERE room_nid = ${r.roomNid} AND ${guard})`);
    }
  }
  if (w.removeFromOutbox.length > 0) parts.push(sql`${name()} AS (DELETE FROM roomserver_outbox WHERE outbox_nid IN (${sql.join([...w.removeFromOutbox])}) AND ${guard})`);
  const items = w.outbox?.items ?? [];
  if (w.outbox && items.length > 0) {
    const roomNid = w.outbox.roomNid;
    const rows = sql.join(items.map((i) => sql`(${roomNid}::bigint, ${i.msgId}::text, ${i.payload}::text)`));
    parts.push(sql`box AS (INSERT INTO roomserver_outbox (room_nid, msg_id, payload) SELECT v.r, v.m, v.p FROM (VALUES ${rows}) AS v (r, m, p) WHERE ${guard} RETURNING outbox_nid)`);
  } else {
    parts.push(sql`box AS (SELECT NULL::bigint AS outbox_nid WHERE false)`);
  }
  return parts;
}

export class EventStore {
  private readonly types: NidCache;
  private readonly stateKeys: NidCache;
  /** For a transaction's store: the shared caches, read but not written (the transaction may roll back). */
  private readonly shared: { types: NidCache; stateKeys: NidCache } | undefined;

  /** PostgreSQL runs several writes as one statement (data-modifying WITH), SQLite has no such thing. */
  readonly dialect: DialectName;

  /** For a planned store (see planned()): the event whose writes wait for finishPlanned. */
  private readonly plan: { events: PlannedEvent[] } | undefined;

  constructor(
    readonly db: Kysely<RoomserverDatabase>,
    shared?: { types: NidCache; stateKeys: NidCache },
    dialect?: DialectName,
    plan?: { events: PlannedEvent[] },
  ) {
    this.plan = plan;
    // The store's own caches are its transaction's (dropped with it) or, outside one, the shared ones.
    this.types = new NidCache(shared ? Infinity : NID_CACHE_LIMIT);
    this.stateKeys = new NidCache(shared ? Infinity : NID_CACHE_LIMIT);
    this.shared = shared;
    this.dialect = dialect ?? dialectOf(db);
  }

  /** A planned store holds back its event and refuses other writes: see planned(). */
  private writable(): void {
    if (this.plan) throw new NotPlannable('a planned store writes only its event');
  }

  /** A store whose every query runs in `tx`, sharing this store's committed NID caches. */
  inTransaction(tx: Transaction<RoomserverDatabase>): EventStore {
    return new EventStore(tx, this.shared ?? { types: this.types, stateKeys: this.stateKeys }, this.dialect);
  }

  /**
   * For a transaction's store, once the transaction has committed: its NIDs join the shared
   * caches, so that later transactions do not ask for them again.
   */
  keepCaches(): void {
    if (!this.shared) return;
    for (const [name, nid] of this.types.byName) this.shared.types.add(name, nid);
    for (const [name, nid] of this.stateKeys.byName) this.shared.stateKeys.add(name, nid);
  }

  // -------------------------------------------------------------------------------------------
  // Rooms

  async room(roomId: string, db: Db = this.db): Promise<RoomInfo | undefined> {
    const r = await db.selectFrom('roomserver_rooms').selectAll().where('room_id', '=', roomId).executeTakeFirst();
    return r && { roomNid: Number(r.room_nid), roomId: r.room_id, roomVersion: r.room_version, stateSnapshotNid: Number(r.state_snapshot_nid) };
  }

  async roomByNid(roomNid: number, db: Db = this.db): Promise<RoomInfo | undefined> {
    const r = await db.selectFrom('roomserver_rooms').selectAll().where('room_nid', '=', roomNid).executeTakeFirst();
    return r && { roomNid: Number(r.room_nid), roomId: r.room_id, roomVersion: r.room_version, stateSnapshotNid: Number(r.state_snapshot_nid) };
  }

  /** The room, created with `roomVersion` when new (an existing room keeps its version). */
  async ensureRoom(roomId: string, roomVersion: string, db: Db = this.db): Promise<RoomInfo> {
    this.writable();
    await db.insertInto('roomserver_rooms').values({ room_id: roomId, room_version: roomVersion }).onConflict((oc) => oc.column('room_id').doNothing()).execute();
    return (await this.room(roomId, db))!;
  }

  async setCurrentState(roomNid: number, snapshotNid: number, db: Db = this.db): Promise<void> {
    this.writable();
    await db.updateTable('roomserver_rooms').set({ state_snapshot_nid: snapshotNid }).where('room_nid', '=', roomNid).execute();
  }

  // -------------------------------------------------------------------------------------------
  // NIDs

  private async assign(
    cache: NidCache,
    names: readonly string[],
    table: 'roomserver_event_types' | 'roomserver_event_state_keys',
    db: Db,
  ): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    const sharedCache = this.shared ? (cache === this.types ? this.shared.types : this.shared.stateKeys) : undefined;
    const missing = [...new Set(names)].filter((n) => {
      const nid = cache.byName.get(n) ?? sharedCache?.byName.get(n);
      if (nid !== undefined) out.set(n, nid);
      return nid === undefined;
    });
    if (missing.length === 0) return out;
    const found = (name: string, nid: number): void => {
      cache.add(name, nid);
      out.set(name, nid);
    };
    // New names come back from the insert itself; only names stored before need a second look.
    const got = new Set<string>();
    if (table === 'roomserver_event_types') {
      const inserted = await inChunks(missing, (chunk) =>
        db
          .insertInto('roomserver_event_types')
          .values(chunk.map((event_type) => ({ event_type })))
          .onConflict((oc) => oc.column('event_type').doNothing())
          .returning(['event_type_nid as nid', 'event_type as name'])
          .execute(),
      );
      for (const r of inserted) {
        got.add(r.name);
        found(r.name, Number(r.nid));
      }
      const rest = missing.filter((n) => !got.has(n));
      const rows = await inChunks(rest, (chunk) => db.selectFrom('roomserver_event_types').select(['event_type_nid as nid', 'event_type as name']).where('event_type', 'in', chunk).execute());
      for (const r of rows) found(r.name, Number(r.nid));
    } else {
      const inserted = await inChunks(missing, (chunk) =>
        db
          .insertInto('roomserver_event_state_keys')
          .values(chunk.map((event_state_key) => ({ event_state_key })))
          .onConflict((oc) => oc.column('event_state_key').doNothing())
          .returning(['event_state_key_nid as nid', 'event_state_key as name'])
          .execute(),
      );
      for (const r of inserted) {
        got.add(r.name);
        found(r.name, Number(r.nid));
      }
      const rest = missing.filter((n) => !got.has(n));
      const rows = await inChunks(rest, (chunk) =>
        db.selectFrom('roomserver_event_state_keys').select(['event_state_key_nid as nid', 'event_state_key as name']).where('event_state_key', 'in', chunk).execute(),
      );
      for (const r of rows) found(r.name, Number(r.nid));
    }
    return out;
  }

  typeNids(types: readonly string[], db: Db = this.db): Promise<Map<string, number>> {
    return this.assign(this.types, types, 'roomserver_event_types', db);
  }

  stateKeyNids(keys: readonly string[], db: Db = this.db): Promise<Map<string, number>> {
    return this.assign(this.stateKeys, keys, 'roomserver_event_state_keys', db);
  }

  /** Names of NIDs, for turning state back into (type, state key) pairs. */
  async names(typeNids: readonly number[], stateKeyNids: readonly number[]): Promise<{ types: Map<number, string>; stateKeys: Map<number, string> }> {
    // Only what was asked for, gathered as it is found: a bounded cache may let some go meanwhile.
    const types = new Map<number, string>();
    const stateKeys = new Map<number, string>();
    const missingTypes: number[] = [];
    const missingKeys: number[] = [];
    for (const n of new Set(typeNids)) {
      const name = this.types.byNid.get(n) ?? this.shared?.types.byNid.get(n);
      if (name !== undefined) types.set(n, name);
      else missingTypes.push(n);
    }
    for (const n of new Set(stateKeyNids)) {
      const name = this.stateKeys.byNid.get(n) ?? this.shared?.stateKeys.byNid.get(n);
      if (name !== undefined) stateKeys.set(n, name);
      else missingKeys.push(n);
    }
    const typeRows = await inChunks(missingTypes, (chunk) => this.db.selectFrom('roomserver_event_types').select(['event_type_nid as nid', 'event_type as name']).where('event_type_nid', 'in', chunk).execute());
    for (const r of typeRows) {
      this.types.add(r.name, Number(r.nid));
      types.set(Number(r.nid), r.name);
    }
    const keyRows = await inChunks(missingKeys, (chunk) =>
      this.db.selectFrom('roomserver_event_state_keys').select(['event_state_key_nid as nid', 'event_state_key as name']).where('event_state_key_nid', 'in', chunk).execute(),
    );
    for (const r of keyRows) {
      this.stateKeys.add(r.name, Number(r.nid));
      stateKeys.set(Number(r.nid), r.name);
    }
    return { types, stateKeys };
  }

  // -------------------------------------------------------------------------------------------
  // Events

  /**
   * Stores an event, or returns the stored one's NID when the ID is known already (`existed`).
   * An outlier stored earlier gets the state snapshot given now, so an event first seen as an
   * auth event and later in the DAG is not left without state.
   */
  async storeEvent(
    e: NewEvent,
    db: Db = this.db,
    opts: { askRedactions?: boolean } = {},
  ): Promise<{ eventNid: number; existed: boolean; stored?: StoredEvent; redactionPending?: boolean }> {
    const typeNid = (await this.typeNids([e.type], db)).get(e.type)!;
    const stateKeyNid = e.stateKey === undefined ? null : (await this.stateKeyNids([e.stateKey], db)).get(e.stateKey)!;
    if (this.plan) {
      // The row waits for finishPlanned, which gives it its NID as any insert does (so NIDs keep
      // the order events are stored in); until then it goes by PLANNED_EVENT_NID.
      if (this.plan.events.length > 0) throw new NotPlannable('one event per plan');
      this.plan.events.push({ e, typeNid, stateKeyNid });
      // Whether redactions wait for it is checked by the final statement, which stores nothing if so.
      return { eventNid: PLANNED_EVENT_NID, existed: false, stored: this.storedForm(e, PLANNED_EVENT_NID, typeNid, stateKeyNid), ...(opts.askRedactions ? { redactionPending: false } : {}) };
    }
    // Every event comes through here: written as SQL, which costs a few times less to build than
    // the query builder's form of the same statement.
    const insertEvent = sql<{ event_nid: number }>`
      INSERT INTO roomserver_events
        (room_nid, event_id, event_type_nid, event_state_key_nid, depth, state_snapshot_nid, is_rejected, rejection_reason, is_soft_failed, auth_event_nids, origin_server_ts)
      VALUES (${e.roomNid}, ${e.eventId}, ${typeNid}, ${stateKeyNid}, ${e.depth}, ${e.stateSnapshotNid}, ${dbBool(e.rejectionReason !== null)}, ${e.rejectionReason},
        ${dbBool(e.softFailed === true)}, ${JSON.stringify(e.authEventNids)}, ${e.originServerTs !== undefined ? e.originServerTs : originServerTsOf(e.json)})
      ON CONFLICT (event_id) DO NOTHING
      RETURNING event_nid`;
    if (this.dialect === 'postgres') {
      // The event and its JSON in one round trip (no JSON row when the event existed), and
      // whether redactions wait for it when the caller has not asked yet.
      const pending = opts.askRedactions ? sql`EXISTS (SELECT 1 FROM roomserver_redactions WHERE redacts_event_id = ${e.eventId})` : sql`false`;
      const { rows } = await sql<{ event_nid: number; pending: boolean }>`
        WITH ev AS (${insertEvent}),
          js AS (INSERT INTO roomserver_event_json (event_nid, event_json, unredacted_json) SELECT event_nid, ${e.json}, NULL FROM ev)
        SELECT event_nid, ${pending} AS pending FROM ev`.execute(db);
      if (rows.length === 0) return this.storedAlready(e, db);
      const eventNid = Number(rows[0]!.event_nid);
      return { eventNid, existed: false, stored: this.storedForm(e, eventNid, typeNid, stateKeyNid), ...(opts.askRedactions ? { redactionPending: rows[0]!.pending === true } : {}) };
    }
    const { rows: inserted } = await insertEvent.execute(db);
    if (inserted.length === 0) return this.storedAlready(e, db);
    const eventNid = Number(inserted[0]!.event_nid);
    await sql`INSERT INTO roomserver_event_json (event_nid, event_json, unredacted_json) VALUES (${eventNid}, ${e.json}, NULL)`.execute(db);
    const stored = this.storedForm(e, eventNid, typeNid, stateKeyNid);
    if (!opts.askRedactions) return { eventNid, existed: false, stored };
    return { eventNid, existed: false, stored, redactionPending: (await this.pendingRedactionTargets([e.eventId], db)).size > 0 };
  }

  /** An event whose ID is stored already: its NID, and an outlier's state given now. */
  private async storedAlready(e: NewEvent, db: Db): Promise<{ eventNid: number; existed: boolean }> {
    const existing = await db.selectFrom('roomserver_events').select(['event_nid', 'state_snapshot_nid']).where('event_id', '=', e.eventId).executeTakeFirstOrThrow();
    const eventNid = Number(existing.event_nid);
    if (existing.state_snapshot_nid === null && e.stateSnapshotNid !== null) {
      await db
        .updateTable('roomserver_events')
        .set({
          state_snapshot_nid: e.stateSnapshotNid,
          is_rejected: dbBool(e.rejectionReason !== null),
          rejection_reason: e.rejectionReason,
          is_soft_failed: dbBool(e.softFailed === true),
        })
        .where('event_nid', '=', eventNid)
        .execute();
    }
    return { eventNid, existed: true };
  }

  /** The row as eventsByIds would read it back, for callers that keep track without asking again. */
  private storedForm(e: NewEvent, eventNid: number, typeNid: number, stateKeyNid: number | null): StoredEvent {
    return {
      eventNid,
      roomNid: e.roomNid,
      eventId: e.eventId,
      typeNid,
      stateKeyNid,
      depth: e.depth,
      stateSnapshotNid: e.stateSnapshotNid,
      isRejected: e.rejectionReason !== null,
      rejectionReason: e.rejectionReason,
      isSoftFailed: e.softFailed === true,
      authEventNids: [...e.authEventNids],
    };
  }

  async eventsByIds(eventIds: readonly string[], db: Db = this.db): Promise<StoredEvent[]> {
    const rows = await inChunks([...new Set(eventIds)], (chunk) => db.selectFrom('roomserver_events').selectAll().where('event_id', 'in', chunk).execute());
    return rows.map(toStored);
  }

  async eventsByNids(eventNids: readonly number[], db: Db = this.db): Promise<StoredEvent[]> {
    const rows = await inChunks([...new Set(eventNids)], (chunk) => db.selectFrom('roomserver_events').selectAll().where('event_nid', 'in', chunk).execute());
    return rows.map(toStored);
  }

  /** Events by NID with their JSON (as served), in one query: what loading an event takes. */
  async eventsWithJson(eventNids: readonly number[], db: Db = this.db): Promise<Array<{ stored: StoredEvent; json: string }>> {
    // The JSON by a lookup per row (its primary key): a join may be planned as a scan of the
    // whole JSON table when the statistics are small or stale.
    const rows = await inChunks([...new Set(eventNids)], (chunk) =>
      db
        .selectFrom('roomserver_events')
        .selectAll('roomserver_events')
        .select((eb) => eb.selectFrom('roomserver_event_json').select('roomserver_event_json.event_json').whereRef('roomserver_event_json.event_nid', '=', 'roomserver_events.event_nid').as('event_json'))
        .where('roomserver_events.event_nid', 'in', chunk)
        .execute(),
    );
    const out: Array<{ stored: StoredEvent; json: string }> = [];
    for (const r of rows) if (r.event_json !== null) out.push({ stored: toStored(r), json: r.event_json });
    return out;
  }

  /** Event JSON by NID (as served: redacted where a redaction took effect). */
  async eventJson(eventNids: readonly number[], db: Db = this.db): Promise<Map<number, string>> {
    const rows = await inChunks([...new Set(eventNids)], (chunk) => db.selectFrom('roomserver_event_json').select(['event_nid', 'event_json']).where('event_nid', 'in', chunk).execute());
    return new Map(rows.map((r) => [Number(r.event_nid), r.event_json]));
  }

  /** Replaces an event's JSON with its redacted form, keeping the original once. */
  async redact(eventNid: number, redactedJson: string, db: Db = this.db): Promise<void> {
    this.writable();
    const row = await db.selectFrom('roomserver_event_json').select(['event_json', 'unredacted_json']).where('event_nid', '=', eventNid).executeTakeFirst();
    if (!row) return;
    await db
      .updateTable('roomserver_event_json')
      .set({ event_json: redactedJson, unredacted_json: row.unredacted_json ?? row.event_json })
      .where('event_nid', '=', eventNid)
      .execute();
  }

  // -------------------------------------------------------------------------------------------
  // Memberships (of the current state)

  async setMembership(roomNid: number, targetNid: number, userId: string, membership: string, eventNid: number, db: Db = this.db): Promise<void> {
    this.writable();
    await db
      .insertInto('roomserver_membership')
      .values({ room_nid: roomNid, target_nid: targetNid, user_id: userId, membership, event_nid: eventNid })
      .onConflict((oc) =>
        oc.columns(['room_nid', 'target_nid']).doUpdateSet((eb) => ({
          membership,
          event_nid: eventNid,
          // A new membership event of the user (a re-join, an invite, a knock...) ends a forget;
          // the same event applied again (state re-resolved to it) keeps it.
          forgotten: eb.case().when('roomserver_membership.event_nid', '=', eventNid).then(eb.ref('roomserver_membership.forgotten')).else(0).end(),
        })),
      )
      .execute();
  }

  /**
   * Marks the user's membership of the room as forgotten, if it is one of `memberships` (checked
   * in the same statement, so a join arriving meanwhile is not forgotten); false when it is not.
   */
  async setForgotten(roomNid: number, userId: string, memberships: readonly string[], db: Db = this.db): Promise<boolean> {
    this.writable();
    const rows = await db
      .updateTable('roomserver_membership')
      .set({ forgotten: 1 })
      .where('room_nid', '=', roomNid)
      .where('user_id', '=', userId)
      .where('membership', 'in', [...memberships])
      .returning('event_nid')
      .execute();
    return rows.length > 0;
  }

  async removeMembership(roomNid: number, targetNid: number, db: Db = this.db): Promise<void> {
    this.writable();
    await db.deleteFrom('roomserver_membership').where('room_nid', '=', roomNid).where('target_nid', '=', targetNid).execute();
  }

  async membership(roomNid: number, userId: string, db: Db = this.db): Promise<{ membership: string; eventNid: number; forgotten: boolean } | undefined> {
    const r = await db.selectFrom('roomserver_membership').select(['membership', 'event_nid', 'forgotten']).where('room_nid', '=', roomNid).where('user_id', '=', userId).executeTakeFirst();
    return r && { membership: r.membership, eventNid: Number(r.event_nid), forgotten: fromDbBool(r.forgotten) };
  }

  /** Members of a room (all memberships, or only these), as (user ID, membership, event NID). */
  async members(roomNid: number, memberships?: readonly string[], db: Db = this.db): Promise<Array<{ userId: string; membership: string; eventNid: number }>> {
    let q = db.selectFrom('roomserver_membership').select(['user_id', 'membership', 'event_nid']).where('room_nid', '=', roomNid);
    if (memberships !== undefined) q = q.where('membership', 'in', memberships.length > 0 ? [...memberships] : ['']);
    const rows = await q.orderBy('user_id').execute();
    return rows.map((r) => ({ userId: r.user_id, membership: r.membership, eventNid: Number(r.event_nid) }));
  }

  /** The rooms where a user has this membership. */
  async roomsOfUser(userId: string, membership: string, db: Db = this.db): Promise<string[]> {
    const rows = await db
      .selectFrom('roomserver_membership')
      .innerJoin('roomserver_rooms', 'roomserver_rooms.room_nid', 'roomserver_membership.room_nid')
      .select('roomserver_rooms.room_id')
      .where('user_id', '=', userId)
      .where('membership', '=', membership)
      .orderBy('roomserver_rooms.room_id')
      .execute();
    return rows.map((r) => r.room_id);
  }

  // -------------------------------------------------------------------------------------------
  // Redactions waiting for their target

  async addPendingRedaction(redactionEventId: string, redactsEventId: string, db: Db = this.db): Promise<void> {
    this.writable();
    await db
      .insertInto('roomserver_redactions')
      .values({ redaction_event_id: redactionEventId, redacts_event_id: redactsEventId })
      .onConflict((oc) => oc.column('redaction_event_id').doNothing())
      .execute();
  }

  /** Of these event IDs, the ones that pending redactions wait for. */
  async pendingRedactionTargets(eventIds: readonly string[], db: Db = this.db): Promise<Set<string>> {
    const rows = await inChunks([...new Set(eventIds)], (chunk) => db.selectFrom('roomserver_redactions').select('redacts_event_id').where('redacts_event_id', 'in', chunk).execute());
    return new Set(rows.map((r) => r.redacts_event_id));
  }

  /**
   * Stored events by ID and, of `targetIds`, the ones pending redactions wait for: what an input
   * batch asks for first, in one statement when the lists are short.
   */
  async eventsAndRedactionTargets(eventIds: readonly string[], targetIds: readonly string[], db: Db = this.db): Promise<{ events: StoredEvent[]; redactionTargets: Set<string> }> {
    const ids = [...new Set(eventIds)];
    const targets = [...new Set(targetIds)];
    if (ids.length === 0 || targets.length === 0 || ids.length + targets.length > IN_LIST_CHUNK) {
      return { events: await this.eventsByIds(ids, db), redactionTargets: await this.pendingRedactionTargets(targets, db) };
    }
    // The redactions' rows ride along with a marker and NULLs for the event columns.
    const { rows } = await sql<EventRow & { pending: number }>`
      SELECT event_nid, room_nid, event_id, event_type_nid, event_state_key_nid, depth, state_snapshot_nid, is_rejected,
        rejection_reason, is_soft_failed, auth_event_nids, 0 AS pending
      FROM roomserver_events WHERE event_id IN (${sql.join(ids)})
      UNION ALL
      SELECT NULL, NULL, redacts_event_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 1
      FROM roomserver_redactions WHERE redacts_event_id IN (${sql.join(targets)})`.execute(db);
    const events: StoredEvent[] = [];
    const redactionTargets = new Set<string>();
    for (const r of rows) {
      if (Number(r.pending) === 1) redactionTargets.add(r.event_id);
      else events.push(toStored(r));
    }
    return { events, redactionTargets };
  }

  /** Takes the pending redactions of an event that has just arrived. */
  async takePendingRedactions(redactsEventId: string, db: Db = this.db): Promise<string[]> {
    this.writable();
    const rows = await db.deleteFrom('roomserver_redactions').where('redacts_event_id', '=', redactsEventId).returning('redaction_event_id').execute();
    return rows.map((r) => r.redaction_event_id);
  }

  // -------------------------------------------------------------------------------------------
  // Outbox

  /** Adds outputs to the outbox; returns their outbox NIDs, in the order of `items`. */
  async addToOutbox(roomNid: number, items: ReadonlyArray<{ msgId: string; payload: string }>, db: Db = this.db): Promise<number[]> {
    this.writable();
    if (items.length === 0) return [];
    const rows = await inChunks(
      items,
      (chunk) =>
        db
          .insertInto('roomserver_outbox')
          .values(chunk.map((i) => ({ room_nid: roomNid, msg_id: i.msgId, payload: i.payload })))
          .returning('outbox_nid')
          .execute(),
      100,
    );
    // NIDs grow in the order rows are inserted; RETURNING itself promises no order.
    return rows.map((r) => Number(r.outbox_nid)).sort((a, b) => a - b);
  }

  /**
   * The writes that end an input batch: rooms' forward extremities (and current state), the
   * batch's outputs into the outbox, and published outputs out of it. Returns the new outbox
   * NIDs in the order of the items. On PostgreSQL this is one statement (data-modifying WITH),
   * whose parts touch distinct rows: the extremities that stay are neither deleted nor
   * inserted again.
   */
  async finishBatch(w: BatchWrites, db: Db = this.db): Promise<number[]> {
    if (this.plan) throw new NotPlannable('a planned store finishes with finishPlanned');
    if (this.dialect !== 'postgres' || !foldable(w)) {
      for (const r of w.rooms) {
        await this.setForwardExtremities(r.roomNid, r.latest, db);
        if (r.stateSnapshotNid !== undefined) await this.setCurrentState(r.roomNid, r.stateSnapshotNid, db);
      }
      const nids = w.outbox ? await this.addToOutbox(w.outbox.roomNid, w.outbox.items, db) : [];
      await this.removeFromOutbox(w.removeFromOutbox, db);
      return nids;
    }
    if (w.rooms.length === 0 && (w.outbox?.items.length ?? 0) === 0 && w.removeFromOutbox.length === 0) return [];
    const parts = batchParts(w, sql`true`);
    const { rows } = await sql<{ nid: number }>`WITH ${sql.join(parts)} SELECT outbox_nid AS nid FROM box`.execute(db);
    // NIDs grow in the order rows are inserted; RETURNING itself promises no order.
    return rows.map((r) => Number(r.nid)).sort((a, b) => a - b);
  }

  /**
   * A store for one event whose writes wait for finishPlanned (PostgreSQL only): it reads through
   * the database as it is (outside any transaction), holds the event back under PLANNED_EVENT_NID
   * when asked to store it, and refuses any other write (NotPlannable) but new type and state key
   * names, which may be committed alone. It shares this store's committed NID caches.
   */
  planned(): EventStore {
    if (this.dialect !== 'postgres') throw new NotPlannable('PostgreSQL only');
    return new EventStore(this.db, this.shared ?? { types: this.types, stateKeys: this.stateKeys }, this.dialect, { events: [] });
  }

  /**
   * A planned store's event and the writes that end its batch, as one statement: atomic without
   * a transaction, so one round trip and one commit. The event goes in only if its ID is not
   * stored and no redaction waits for it (the planner took both for granted), and everything
   * else only with it; PLANNED_EVENT_NID in `w` stands for the NID it gets. Returns that NID and
   * the outbox NIDs, or undefined when the event did not go in (nothing was written: the caller
   * goes the usual way).
   */
  async finishPlanned(w: BatchWrites): Promise<{ eventNid: number; outbox: number[] } | undefined> {
    const planned = this.plan?.events[0];
    if (!this.plan || this.plan.events.length !== 1 || !planned || !foldable(w)) throw new NotPlannable('one planned event');
    const { e, typeNid, stateKeyNid } = planned;
    const ts = e.originServerTs !== undefined ? e.originServerTs : originServerTsOf(e.json);
    const parts = [
      sql`ev AS (
        INSERT INTO roomserver_events
          (room_nid, event_id, event_type_nid, event_state_key_nid, depth, state_snapshot_nid, is_rejected, rejection_reason, is_soft_failed, auth_event_nids, origin_server_ts)
        SELECT ${e.roomNid}::bigint, ${e.eventId}::text, ${typeNid}::bigint, ${stateKeyNid}::bigint, ${e.depth}::bigint, ${e.stateSnapshotNid}::bigint,
          ${dbBool(e.rejectionReason !== null)}::smallint, ${e.rejectionReason}::text, ${dbBool(e.softFailed === true)}::smallint, ${JSON.stringify(e.authEventNids)}::text, ${ts}::bigint
        WHERE NOT EXISTS (SELECT 1 FROM roomserver_redactions WHERE redacts_event_id = ${e.eventId})
        ON CONFLICT (event_id) DO NOTHING
        RETURNING event_nid)`,
      sql`js AS (INSERT INTO roomserver_event_json (event_nid, event_json, unredacted_json) SELECT event_nid, ${e.json}::text, NULL FROM ev)`,
      ...batchParts(w, sql`EXISTS (SELECT 1 FROM ev)`, sql`(SELECT event_nid FROM ev)`),
    ];
    const { rows } = await sql<{ kind: number; nid: number }>`
      WITH ${sql.join(parts)}
      SELECT 0 AS kind, event_nid AS nid FROM ev UNION ALL SELECT 1, outbox_nid FROM box`.execute(this.db);
    const stored = rows.find((r) => Number(r.kind) === 0);
    if (!stored) return undefined;
    return {
      eventNid: Number(stored.nid),
      outbox: rows
        .filter((r) => Number(r.kind) === 1)
        .map((r) => Number(r.nid))
        .sort((x, y) => x - y),
    };
  }

  /** Outputs not yet published, oldest first (of one room, or all). */
  async outbox(roomNid?: number, db: Db = this.db): Promise<Array<{ outboxNid: number; roomNid: number; msgId: string; payload: string }>> {
    let q = db.selectFrom('roomserver_outbox').selectAll().orderBy('outbox_nid');
    if (roomNid !== undefined) q = q.where('room_nid', '=', roomNid);
    const rows = await q.execute();
    return rows.map((r) => ({ outboxNid: Number(r.outbox_nid), roomNid: Number(r.room_nid), msgId: r.msg_id, payload: r.payload }));
  }

  async removeFromOutbox(outboxNids: readonly number[], db: Db = this.db): Promise<void> {
    this.writable();
    await inChunks(outboxNids, (chunk) => db.deleteFrom('roomserver_outbox').where('outbox_nid', 'in', chunk).execute().then(() => []));
  }

  // -------------------------------------------------------------------------------------------
  // The DAG's edges

  async forwardExtremities(roomNid: number, db: Db = this.db): Promise<number[]> {
    const rows = await db.selectFrom('roomserver_forward_extremities').select('event_nid').where('room_nid', '=', roomNid).orderBy('event_nid').execute();
    return rows.map((r) => Number(r.event_nid));
  }

  async setForwardExtremities(roomNid: number, eventNids: readonly number[], db: Db = this.db): Promise<void> {
    this.writable();
    await db.deleteFrom('roomserver_forward_extremities').where('room_nid', '=', roomNid).execute();
    if (eventNids.length > 0) await db.insertInto('roomserver_forward_extremities').values(eventNids.map((event_nid) => ({ room_nid: roomNid, event_nid }))).execute();
  }

  /** Every state snapshot this room's events and current state use: the roots garbage collection keeps. */
  async snapshotsInUse(roomNid: number, db: Db = this.db): Promise<number[]> {
    const rows = await db
      .selectFrom('roomserver_events')
      .select('state_snapshot_nid')
      .distinct()
      .where('room_nid', '=', roomNid)
      .where('state_snapshot_nid', 'is not', null)
      .where('state_snapshot_nid', '!=', 0)
      .execute();
    const room = await this.roomByNid(roomNid, db);
    return [...rows.map((r) => Number(r.state_snapshot_nid)), ...(room && room.stateSnapshotNid !== 0 ? [room.stateSnapshotNid] : [])];
  }
}
