/**
 * The syncapi schema, versioned. Tables are prefixed `syncapi_`; the history of applied
 * versions lives in `syncapi_migrations`. Auto-increment IDs are stream positions: they only
 * grow, so "everything after position N" is a range scan.
 */
import { sql, type Kysely } from 'kysely';
import type { ComponentMigration } from '../../internal/sqlutil/index.js';
import { addAutoIdColumn, bigintType, boolType } from '../../internal/sqlutil/index.js';
import { backfillRelations } from './relations.js';
import type { SyncapiDatabase } from './tables.js';
import { backfillTopology } from './topology.js';
import { STATE_CHANGED } from './syncstore.js';

export const syncapiMigrations: readonly ComponentMigration[] = [
  {
    version: 1,
    name: 'room_events_state_account_data_invites',
    up: async (db, dialect) => {
      // Room events in the order this server learnt them (the PDU stream).
      await addAutoIdColumn(db.schema.createTable('syncapi_output_room_events'), dialect, 'id')
        .addColumn('room_id', 'text', (c) => c.notNull())
        .addColumn('event_id', 'text', (c) => c.notNull().unique())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('sender', 'text', (c) => c.notNull())
        .addColumn('state_key', 'text')
        .addColumn('event_json', 'text', (c) => c.notNull())
        .addColumn('room_version', 'text', (c) => c.notNull())
        // The state event IDs the event added to and removed from the current state (JSON lists).
        .addColumn('adds_state', 'text', (c) => c.notNull())
        .addColumn('removes_state', 'text', (c) => c.notNull())
        // The sending device's transaction, echoed to that device's /sync.
        .addColumn('device_id', 'text')
        .addColumn('txn_id', 'text')
        .execute();
      await db.schema.createIndex('syncapi_output_room_events_room').on('syncapi_output_room_events').columns(['room_id', 'id']).execute();

      // The current state of each room, with the position at which each entry arrived.
      await db.schema
        .createTable('syncapi_current_room_state')
        .addColumn('room_id', 'text', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('state_key', 'text', (c) => c.notNull())
        .addColumn('event_id', 'text', (c) => c.notNull())
        .addColumn('membership', 'text')
        .addColumn('added_at', bigintType, (c) => c.notNull())
        .addPrimaryKeyConstraint('syncapi_current_room_state_pk', ['room_id', 'type', 'state_key'])
        .execute();
      await db.schema.createIndex('syncapi_current_room_state_member').on('syncapi_current_room_state').columns(['state_key', 'membership']).execute();

      // Account data changes: one row per (user, room, type) whose ID moves on each change.
      await addAutoIdColumn(db.schema.createTable('syncapi_account_data'), dialect, 'id')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('room_id', 'text', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addUniqueConstraint('syncapi_account_data_key', ['user_id', 'room_id', 'type'])
        .execute();

      // Invites of local users and their end (retired).
      await addAutoIdColumn(db.schema.createTable('syncapi_invites'), dialect, 'id')
        .addColumn('event_id', 'text', (c) => c.notNull().unique())
        .addColumn('room_id', 'text', (c) => c.notNull())
        .addColumn('target_user_id', 'text', (c) => c.notNull())
        .addColumn('event_json', 'text', (c) => c.notNull())
        .addColumn('room_version', 'text', (c) => c.notNull())
        .addColumn('retired', boolType, (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema.createIndex('syncapi_invites_target').on('syncapi_invites').columns(['target_user_id', 'id']).execute();
    },
  },
  {
    version: 2,
    name: 'receipts_send_to_device_presence',
    up: async (db, dialect) => {
      // The latest receipt of each (room, type, user, thread); a new receipt moves the row to a new position.
      await addAutoIdColumn(db.schema.createTable('syncapi_receipts'), dialect, 'id')
        .addColumn('room_id', 'text', (c) => c.notNull())
        .addColumn('receipt_type', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('thread_id', 'text', (c) => c.notNull())
        .addColumn('event_id', 'text', (c) => c.notNull())
        .addColumn('ts', bigintType, (c) => c.notNull())
        .addUniqueConstraint('syncapi_receipts_key', ['room_id', 'receipt_type', 'user_id', 'thread_id'])
        .execute();
      await db.schema.createIndex('syncapi_receipts_room').on('syncapi_receipts').columns(['room_id', 'id']).execute();

      // To-device messages waiting for their device; deleted once a sync past them is acknowledged.
      await addAutoIdColumn(db.schema.createTable('syncapi_send_to_device'), dialect, 'id')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('device_id', 'text', (c) => c.notNull())
        .addColumn('content', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('syncapi_send_to_device_target').on('syncapi_send_to_device').columns(['user_id', 'device_id', 'id']).execute();

      // Each user's presence; the row moves to a new position on each change.
      await addAutoIdColumn(db.schema.createTable('syncapi_presence'), dialect, 'id')
        .addColumn('user_id', 'text', (c) => c.notNull().unique())
        .addColumn('presence', 'text', (c) => c.notNull())
        .addColumn('status_msg', 'text')
        .addColumn('last_active_ts', bigintType, (c) => c.notNull())
        .execute();
    },
  },
  {
    version: 3,
    name: 'lazy_loaded_members',
    up: async (db) => {
      // Per device, the member event of each room member it was last sent in a /sync response.
      await db.schema
        .createTable('syncapi_lazy_loaded_members')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('device_id', 'text', (c) => c.notNull())
        .addColumn('room_id', 'text', (c) => c.notNull())
        .addColumn('target_user_id', 'text', (c) => c.notNull())
        .addColumn('event_id', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('syncapi_lazy_loaded_members_pk', ['user_id', 'device_id', 'room_id', 'target_user_id'])
        .execute();
    },
  },
  {
    version: 4,
    name: 'search_index',
    up: async (db, dialect) => {
      // The full-text index of room events (storage/search.ts): one row per indexed event, the
      // text itself in the database's own full-text index. Rows are keyed by event ID and carry
      // the event's stream position (for "recent" order and for context around a result).
      await addAutoIdColumn(db.schema.createTable('syncapi_search_events'), dialect, 'id')
        .addColumn('event_id', 'text', (c) => c.notNull().unique())
        .addColumn('room_id', 'text', (c) => c.notNull())
        .addColumn('sender', 'text', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        // Which search key the text is: content.body, content.name or content.topic.
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('pos', bigintType, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('syncapi_search_events_room').on('syncapi_search_events').columns(['room_id', 'pos']).execute();
      if (dialect === 'sqlite') {
        // FTS5, contentless (the text is kept once, in the event JSON); rowid = syncapi_search_events.id.
        await sql`CREATE VIRTUAL TABLE syncapi_search_fts USING fts5(body, content='', contentless_delete=1, tokenize='porter unicode61 remove_diacritics 2')`.execute(db);
      } else {
        // tsvector built with the configured text search configuration at insert time; GIN-indexed.
        await sql`ALTER TABLE syncapi_search_events ADD COLUMN tsv tsvector NOT NULL`.execute(db);
        await sql`CREATE INDEX syncapi_search_events_tsv ON syncapi_search_events USING GIN (tsv)`.execute(db);
      }
    },
  },
  {
    version: 5,
    name: 'peeks',
    up: async (db) => {
      // Local peeks (MSC2753): the rooms each device reads without being joined.
      await db.schema
        .createTable('syncapi_peeks')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('device_id', 'text', (c) => c.notNull())
        .addColumn('room_id', 'text', (c) => c.notNull())
        // The PDU stream position when the peek began.
        .addColumn('creation_pos', bigintType, (c) => c.notNull())
        // Whether a /sync gave the device the room's full section since then.
        .addColumn('sent', boolType, (c) => c.notNull().defaultTo(0))
        .addPrimaryKeyConstraint('syncapi_peeks_pk', ['user_id', 'device_id', 'room_id'])
        .execute();
      await db.schema.createIndex('syncapi_peeks_room').on('syncapi_peeks').column('room_id').execute();
    },
  },
  {
    version: 6,
    name: 'relations',
    up: async (db) => {
      // Event relationships (storage/relations.ts): one row per child, keyed by it.
      await db.schema
        .createTable('syncapi_relations')
        .addColumn('child_event_id', 'text', (c) => c.primaryKey())
        .addColumn('room_id', 'text', (c) => c.notNull())
        .addColumn('event_id', 'text', (c) => c.notNull())
        .addColumn('child_type', 'text', (c) => c.notNull())
        .addColumn('rel_type', 'text', (c) => c.notNull())
        .addColumn('sender', 'text', (c) => c.notNull())
        .addColumn('origin_ts', bigintType, (c) => c.notNull())
        .addColumn('pos', bigintType, (c) => c.notNull())
        .execute();
      // A parent's children in stream order (/relations, bundled aggregations). room_id makes
      // (event_id, room_id) the planner's choice over the room index for the lookups of recursion.
      await db.schema.createIndex('syncapi_relations_parent').on('syncapi_relations').columns(['event_id', 'room_id', 'pos']).execute();
      // A room's threads by their latest child (/threads).
      await db.schema.createIndex('syncapi_relations_room_rel').on('syncapi_relations').columns(['room_id', 'rel_type', 'event_id', 'pos']).execute();
      await db.schema
        .createTable('syncapi_redacted_events')
        .addColumn('event_id', 'text', (c) => c.primaryKey())
        .addColumn('room_id', 'text', (c) => c.notNull())
        .addColumn('redaction_event_id', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('syncapi_redacted_events_room').on('syncapi_redacted_events').column('room_id').execute();
      // Relations of the events stored before this table existed.
      await backfillRelations(db as unknown as Kysely<SyncapiDatabase>);
    },
  },
  {
    version: 7,
    name: 'topological_order',
    up: async (db, dialect) => {
      // Each event's depth: /messages pages a room by (depth, position), so that history
      // backfilled later (stored at negative positions: never new to /sync) lands in its place.
      await db.schema.alterTable('syncapi_output_room_events').addColumn('depth', bigintType, (c) => c.notNull().defaultTo(0)).execute();
      await db.schema.createIndex('syncapi_output_room_events_topo').on('syncapi_output_room_events').columns(['room_id', 'depth', 'id']).execute();
      // Gaps in rooms' history here (storage/topology.ts): an event and each prev event syncapi lacks.
      await db.schema
        .createTable('syncapi_backward_extremities')
        .addColumn('room_id', 'text', (c) => c.notNull())
        .addColumn('event_id', 'text', (c) => c.notNull())
        .addColumn('prev_event_id', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('syncapi_backward_extremities_pk', ['event_id', 'prev_event_id'])
        .execute();
      await db.schema.createIndex('syncapi_backward_extremities_room').on('syncapi_backward_extremities').column('room_id').execute();
      // A stored event closes the gaps that lacked it.
      await db.schema.createIndex('syncapi_backward_extremities_prev').on('syncapi_backward_extremities').column('prev_event_id').execute();
      await backfillTopology(db as unknown as Kysely<SyncapiDatabase>, dialect);
    },
  },
  {
    version: 8,
    name: 'state_change_indexes',
    up: async (db) => {
      // A user's own member events by position (their joins and leaves since a sync token),
      // without walking the events of every room in between.
      await sql`CREATE INDEX syncapi_output_room_events_state_key ON syncapi_output_room_events (state_key, id) WHERE state_key IS NOT NULL`.execute(db);
      // Each room's state changes by position: what changed in a /sync gap costs the changes,
      // not the events in it. Queries repeat the predicate word for word (STATE_CHANGED).
      await sql`CREATE INDEX syncapi_output_room_events_state_changes ON syncapi_output_room_events (room_id, id) WHERE ${sql.raw(STATE_CHANGED)}`.execute(db);
    },
  },
  {
    version: 9,
    name: 'transaction_index',
    up: async (db) => {
      // The event a device's transaction produced (SyncStore.eventIdForTransaction): clientapi
      // answers a retried PUT /send or /redact with it, also after a restart. Partial: only the
      // events sent by a local device carry a transaction ID, so the rest cost the index nothing.
      await sql`CREATE INDEX syncapi_output_room_events_txn ON syncapi_output_room_events (sender, device_id, txn_id) WHERE txn_id IS NOT NULL`.execute(db);
    },
  },
];
