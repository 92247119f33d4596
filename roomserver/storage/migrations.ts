/**
 * The roomserver schema, versioned. Tables are prefixed `roomserver_`; the history of applied
 * versions lives in `roomserver_migrations`.
 *
 * Numeric IDs (NIDs) stand for rooms, event types, state keys and events inside the
 * roomserver and never leave it. State is kept as snapshots made of shared, deduplicated
 * trie nodes: see ./statesnapshots.ts for the design.
 */
import type { ComponentMigration } from '../../internal/sqlutil/index.js';
import type { Kysely } from 'kysely';
import { addAutoIdColumn, bigintType, boolType, bytesType } from '../../internal/sqlutil/index.js';
import { originServerTsOf } from './timestamps.js';
import type { RoomserverDatabase } from './tables.js';

export const roomserverMigrations: readonly ComponentMigration[] = [
  {
    version: 1,
    name: 'rooms_events_state',
    up: async (db, dialect) => {
      await addAutoIdColumn(db.schema.createTable('roomserver_rooms'), dialect, 'room_nid')
        .addColumn('room_id', 'text', (c) => c.notNull().unique())
        .addColumn('room_version', 'text', (c) => c.notNull())
        // The state after the forward extremities (the room's current state); 0 until known.
        .addColumn('state_snapshot_nid', bigintType, (c) => c.notNull().defaultTo(0))
        .execute();
      await addAutoIdColumn(db.schema.createTable('roomserver_event_types'), dialect, 'event_type_nid')
        .addColumn('event_type', 'text', (c) => c.notNull().unique())
        .execute();
      await addAutoIdColumn(db.schema.createTable('roomserver_event_state_keys'), dialect, 'event_state_key_nid')
        .addColumn('event_state_key', 'text', (c) => c.notNull().unique())
        .execute();
      await addAutoIdColumn(db.schema.createTable('roomserver_events'), dialect, 'event_nid')
        .addColumn('room_nid', bigintType, (c) => c.notNull())
        .addColumn('event_id', 'text', (c) => c.notNull().unique())
        .addColumn('event_type_nid', bigintType, (c) => c.notNull())
        // NULL for events that are not state events.
        .addColumn('event_state_key_nid', bigintType)
        .addColumn('depth', bigintType, (c) => c.notNull())
        // The state before the event (0: empty, as before a create event); NULL for outliers,
        // whose state is not known.
        .addColumn('state_snapshot_nid', bigintType)
        .addColumn('is_rejected', boolType, (c) => c.notNull().defaultTo(0))
        .addColumn('rejection_reason', 'text')
        // Passed its own auth events but not the state before it: kept in the DAG, never shown.
        .addColumn('is_soft_failed', boolType, (c) => c.notNull().defaultTo(0))
        .addColumn('auth_event_nids', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('roomserver_events_room').on('roomserver_events').columns(['room_nid', 'event_type_nid', 'event_state_key_nid']).execute();
      await db.schema.createIndex('roomserver_events_snapshot').on('roomserver_events').column('state_snapshot_nid').execute();
      await db.schema
        .createTable('roomserver_event_json')
        .addColumn('event_nid', bigintType, (c) => c.primaryKey())
        // As served: redacted when a redaction took effect.
        .addColumn('event_json', 'text', (c) => c.notNull())
        // The original of a redacted event, for the few who may still see it (e.g. server admins).
        .addColumn('unredacted_json', 'text')
        .execute();
      await db.schema
        .createTable('roomserver_forward_extremities')
        .addColumn('room_nid', bigintType, (c) => c.notNull())
        .addColumn('event_nid', bigintType, (c) => c.notNull())
        .addPrimaryKeyConstraint('roomserver_forward_extremities_pk', ['room_nid', 'event_nid'])
        .execute();
      // Memberships in the rooms' current state, kept with it, for the membership queries.
      await db.schema
        .createTable('roomserver_membership')
        .addColumn('room_nid', bigintType, (c) => c.notNull())
        .addColumn('target_nid', bigintType, (c) => c.notNull())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('membership', 'text', (c) => c.notNull())
        .addColumn('event_nid', bigintType, (c) => c.notNull())
        .addPrimaryKeyConstraint('roomserver_membership_pk', ['room_nid', 'target_nid'])
        .execute();
      await db.schema.createIndex('roomserver_membership_user').on('roomserver_membership').columns(['user_id', 'membership']).execute();

      // Redactions whose target was not known when they arrived, applied when it comes.
      await db.schema
        .createTable('roomserver_redactions')
        .addColumn('redaction_event_id', 'text', (c) => c.primaryKey())
        .addColumn('redacts_event_id', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('roomserver_redactions_target').on('roomserver_redactions').column('redacts_event_id').execute();

      // Outputs written with the event they describe, in the same transaction, and deleted once
      // published: a crash between storing and publishing publishes them on restart.
      await addAutoIdColumn(db.schema.createTable('roomserver_outbox'), dialect, 'outbox_nid')
        .addColumn('room_nid', bigintType, (c) => c.notNull())
        .addColumn('msg_id', 'text', (c) => c.notNull())
        .addColumn('payload', 'text', (c) => c.notNull())
        .execute();

      // State: nodes of a persistent hash trie (./statesnapshots.ts). A snapshot is its root node's NID.
      await addAutoIdColumn(db.schema.createTable('roomserver_state_nodes'), dialect, 'state_node_nid')
        .addColumn('room_nid', bigintType, (c) => c.notNull())
        .addColumn('node_hash', bytesType(dialect), (c) => c.notNull())
        .addColumn('node', bytesType(dialect), (c) => c.notNull())
        .addUniqueConstraint('roomserver_state_nodes_hash', ['room_nid', 'node_hash'])
        .execute();
    },
  },
  {
    version: 2,
    name: 'aliases_directory',
    up: async (db) => {
      await db.schema
        .createTable('roomserver_room_aliases')
        .addColumn('alias', 'text', (c) => c.primaryKey())
        .addColumn('room_id', 'text', (c) => c.notNull())
        .addColumn('creator_id', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('roomserver_room_aliases_room').on('roomserver_room_aliases').column('room_id').execute();
      await db.schema
        .createTable('roomserver_published')
        .addColumn('room_id', 'text', (c) => c.primaryKey())
        .execute();
    },
  },
  {
    version: 3,
    name: 'membership_forgotten',
    // POST /rooms/{roomId}/forget: a user who has left (or was banned) may forget the room.
    // Kept on the membership row, as Dendrite does, and cleared by the user's next membership
    // event (a re-join, an invite...), as Synapse's per-event flag is.
    up: async (db) => {
      await db.schema.alterTable('roomserver_membership').addColumn('forgotten', boolType, (c) => c.notNull().defaultTo(0)).execute();
    },
  },
  {
    version: 4,
    name: 'events_origin_server_ts',
    // GET /timestamp_to_event (both APIs): events looked up by their origin_server_ts within a
    // room, nearest first in either direction. NULL where an event has none (not a valid PDU).
    // Events stored before this migration get theirs from their JSON.
    up: async (db) => {
      await db.schema.alterTable('roomserver_events').addColumn('origin_server_ts', bigintType).execute();
      await db.schema.createIndex('roomserver_events_room_ts').on('roomserver_events').columns(['room_nid', 'origin_server_ts']).execute();
      await backfillOriginServerTs(db as unknown as Kysely<RoomserverDatabase>);
    },
  },
];

/** Fills origin_server_ts of events stored before the column existed, in batches. */
async function backfillOriginServerTs(db: Kysely<RoomserverDatabase>): Promise<void> {
  const BATCH = 1000;
  for (let after = 0; ; ) {
    const rows = await db.selectFrom('roomserver_event_json').select(['event_nid', 'event_json']).where('event_nid', '>', after).orderBy('event_nid').limit(BATCH).execute();
    for (const r of rows) {
      const ts = originServerTsOf(r.event_json);
      if (ts !== null) await db.updateTable('roomserver_events').set({ origin_server_ts: ts }).where('event_nid', '=', Number(r.event_nid)).execute();
    }
    if (rows.length < BATCH) return;
    after = Number(rows[rows.length - 1]!.event_nid);
  }
}
