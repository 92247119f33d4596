/**
 * Rooms, numeric IDs (NIDs) for event types and state keys, events with their JSON, forward
 * extremities and the outbox of outputs. NIDs are assigned on first use and cached: they never
 * change and never leave the roomserver.
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import { dbBool, fromDbBool, inChunks } from '../../internal/sqlutil/index.js';
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

/** A bidirectional cache for one kind of NID (types or state keys). */
export class NidCache {
  readonly byName = new Map<string, number>();
  readonly byNid = new Map<number, string>();
  add(name: string, nid: number): void {
    this.byName.set(name, nid);
    this.byNid.set(nid, name);
  }
}

export class EventStore {
  private readonly types: NidCache;
  private readonly stateKeys: NidCache;
  /** For a transaction's store: the shared caches, read but not written (the transaction may roll back). */
  private readonly shared: { types: NidCache; stateKeys: NidCache } | undefined;

  constructor(
    readonly db: Kysely<RoomserverDatabase>,
    shared?: { types: NidCache; stateKeys: NidCache },
  ) {
    this.types = new NidCache();
    this.stateKeys = new NidCache();
    this.shared = shared;
  }

  /** A store whose every query runs in `tx`, sharing this store's committed NID caches. */
  inTransaction(tx: Transaction<RoomserverDatabase>): EventStore {
    return new EventStore(tx, this.shared ?? { types: this.types, stateKeys: this.stateKeys });
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
    await db.insertInto('roomserver_rooms').values({ room_id: roomId, room_version: roomVersion }).onConflict((oc) => oc.column('room_id').doNothing()).execute();
    return (await this.room(roomId, db))!;
  }

  async setCurrentState(roomNid: number, snapshotNid: number, db: Db = this.db): Promise<void> {
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
    if (table === 'roomserver_event_types') {
      await inChunks(missing, (chunk) =>
        db.insertInto('roomserver_event_types').values(chunk.map((event_type) => ({ event_type }))).onConflict((oc) => oc.column('event_type').doNothing()).execute().then(() => []),
      );
      const rows = await inChunks(missing, (chunk) => db.selectFrom('roomserver_event_types').select(['event_type_nid as nid', 'event_type as name']).where('event_type', 'in', chunk).execute());
      for (const r of rows) cache.add(r.name, Number(r.nid));
    } else {
      await inChunks(missing, (chunk) =>
        db
          .insertInto('roomserver_event_state_keys')
          .values(chunk.map((event_state_key) => ({ event_state_key })))
          .onConflict((oc) => oc.column('event_state_key').doNothing())
          .execute()
          .then(() => []),
      );
      const rows = await inChunks(missing, (chunk) =>
        db.selectFrom('roomserver_event_state_keys').select(['event_state_key_nid as nid', 'event_state_key as name']).where('event_state_key', 'in', chunk).execute(),
      );
      for (const r of rows) cache.add(r.name, Number(r.nid));
    }
    for (const n of missing) out.set(n, cache.byName.get(n)!);
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
    if (this.shared) {
      for (const n of typeNids) {
        const name = this.shared.types.byNid.get(n);
        if (name !== undefined && !this.types.byNid.has(n)) this.types.add(name, n);
      }
      for (const n of stateKeyNids) {
        const name = this.shared.stateKeys.byNid.get(n);
        if (name !== undefined && !this.stateKeys.byNid.has(n)) this.stateKeys.add(name, n);
      }
    }
    const missingTypes = [...new Set(typeNids)].filter((n) => !this.types.byNid.has(n));
    const missingKeys = [...new Set(stateKeyNids)].filter((n) => !this.stateKeys.byNid.has(n));
    const typeRows = await inChunks(missingTypes, (chunk) => this.db.selectFrom('roomserver_event_types').select(['event_type_nid as nid', 'event_type as name']).where('event_type_nid', 'in', chunk).execute());
    for (const r of typeRows) this.types.add(r.name, Number(r.nid));
    const keyRows = await inChunks(missingKeys, (chunk) =>
      this.db.selectFrom('roomserver_event_state_keys').select(['event_state_key_nid as nid', 'event_state_key as name']).where('event_state_key_nid', 'in', chunk).execute(),
    );
    for (const r of keyRows) this.stateKeys.add(r.name, Number(r.nid));
    return { types: this.types.byNid, stateKeys: this.stateKeys.byNid };
  }

  // -------------------------------------------------------------------------------------------
  // Events

  /**
   * Stores an event, or returns the stored one's NID when the ID is known already (`existed`).
   * An outlier stored earlier gets the state snapshot given now, so an event first seen as an
   * auth event and later in the DAG is not left without state.
   */
  async storeEvent(e: NewEvent, db: Db = this.db): Promise<{ eventNid: number; existed: boolean; stored?: StoredEvent }> {
    const typeNid = (await this.typeNids([e.type], db)).get(e.type)!;
    const stateKeyNid = e.stateKey === undefined ? null : (await this.stateKeyNids([e.stateKey], db)).get(e.stateKey)!;
    // Every event comes through here: written as SQL, which costs a few times less to build than
    // the query builder's form of the same statement.
    const { rows: inserted } = await sql<{ event_nid: number }>`
      INSERT INTO roomserver_events
        (room_nid, event_id, event_type_nid, event_state_key_nid, depth, state_snapshot_nid, is_rejected, rejection_reason, is_soft_failed, auth_event_nids, origin_server_ts)
      VALUES (${e.roomNid}, ${e.eventId}, ${typeNid}, ${stateKeyNid}, ${e.depth}, ${e.stateSnapshotNid}, ${dbBool(e.rejectionReason !== null)}, ${e.rejectionReason},
        ${dbBool(e.softFailed === true)}, ${JSON.stringify(e.authEventNids)}, ${e.originServerTs !== undefined ? e.originServerTs : originServerTsOf(e.json)})
      ON CONFLICT (event_id) DO NOTHING
      RETURNING event_nid`.execute(db);
    if (inserted.length === 0) {
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
    const eventNid = Number(inserted[0]!.event_nid);
    await sql`INSERT INTO roomserver_event_json (event_nid, event_json, unredacted_json) VALUES (${eventNid}, ${e.json}, NULL)`.execute(db);
    // The row as eventsByIds would read it back, for callers that keep track without asking again.
    const stored: StoredEvent = {
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
    return { eventNid, existed: false, stored };
  }

  async eventsByIds(eventIds: readonly string[], db: Db = this.db): Promise<StoredEvent[]> {
    const rows = await inChunks([...new Set(eventIds)], (chunk) => db.selectFrom('roomserver_events').selectAll().where('event_id', 'in', chunk).execute());
    return rows.map(toStored);
  }

  async eventsByNids(eventNids: readonly number[], db: Db = this.db): Promise<StoredEvent[]> {
    const rows = await inChunks([...new Set(eventNids)], (chunk) => db.selectFrom('roomserver_events').selectAll().where('event_nid', 'in', chunk).execute());
    return rows.map(toStored);
  }

  /** Event JSON by NID (as served: redacted where a redaction took effect). */
  async eventJson(eventNids: readonly number[], db: Db = this.db): Promise<Map<number, string>> {
    const rows = await inChunks([...new Set(eventNids)], (chunk) => db.selectFrom('roomserver_event_json').select(['event_nid', 'event_json']).where('event_nid', 'in', chunk).execute());
    return new Map(rows.map((r) => [Number(r.event_nid), r.event_json]));
  }

  /** Replaces an event's JSON with its redacted form, keeping the original once. */
  async redact(eventNid: number, redactedJson: string, db: Db = this.db): Promise<void> {
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

  /** Takes the pending redactions of an event that has just arrived. */
  async takePendingRedactions(redactsEventId: string, db: Db = this.db): Promise<string[]> {
    const rows = await db.deleteFrom('roomserver_redactions').where('redacts_event_id', '=', redactsEventId).returning('redaction_event_id').execute();
    return rows.map((r) => r.redaction_event_id);
  }

  // -------------------------------------------------------------------------------------------
  // Outbox

  /** Adds outputs to the outbox; returns their outbox NIDs, in the order of `items`. */
  async addToOutbox(roomNid: number, items: ReadonlyArray<{ msgId: string; payload: string }>, db: Db = this.db): Promise<number[]> {
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

  /** Outputs not yet published, oldest first (of one room, or all). */
  async outbox(roomNid?: number, db: Db = this.db): Promise<Array<{ outboxNid: number; roomNid: number; msgId: string; payload: string }>> {
    let q = db.selectFrom('roomserver_outbox').selectAll().orderBy('outbox_nid');
    if (roomNid !== undefined) q = q.where('room_nid', '=', roomNid);
    const rows = await q.execute();
    return rows.map((r) => ({ outboxNid: Number(r.outbox_nid), roomNid: Number(r.room_nid), msgId: r.msg_id, payload: r.payload }));
  }

  async removeFromOutbox(outboxNids: readonly number[], db: Db = this.db): Promise<void> {
    await inChunks(outboxNids, (chunk) => db.deleteFrom('roomserver_outbox').where('outbox_nid', 'in', chunk).execute().then(() => []));
  }

  // -------------------------------------------------------------------------------------------
  // The DAG's edges

  async forwardExtremities(roomNid: number, db: Db = this.db): Promise<number[]> {
    const rows = await db.selectFrom('roomserver_forward_extremities').select('event_nid').where('room_nid', '=', roomNid).orderBy('event_nid').execute();
    return rows.map((r) => Number(r.event_nid));
  }

  async setForwardExtremities(roomNid: number, eventNids: readonly number[], db: Db = this.db): Promise<void> {
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
