/**
 * The federationapi schema, versioned. Tables are prefixed `federationapi_`; the history of applied
 * versions lives in `federationapi_migrations`.
 */
import type { ComponentMigration } from '../../internal/sqlutil/index.js';
import { addAutoIdColumn, bigintType, jsonTextType } from '../../internal/sqlutil/index.js';

export const federationapiMigrations: readonly ComponentMigration[] = [
  {
    version: 1,
    name: 'server_keys',
    up: async (db) => {
      // Other servers' signing keys, as the key ring fetched them (storage/serverkeys.ts).
      // valid_until_ts is already capped at fetched_ts + 7 days; expired_ts is set for keys
      // that came as old_verify_keys. response_json is the origin-signed
      // /_matrix/key/v2/server response the key came from, re-served by our notary endpoints.
      await db.schema
        .createTable('federationapi_server_keys')
        .addColumn('server_name', 'text', (c) => c.notNull())
        .addColumn('key_id', 'text', (c) => c.notNull())
        .addColumn('public_key', 'text', (c) => c.notNull())
        .addColumn('valid_until_ts', bigintType, (c) => c.notNull())
        .addColumn('expired_ts', bigintType)
        .addColumn('fetched_ts', bigintType, (c) => c.notNull())
        .addColumn('response_json', jsonTextType, (c) => c.notNull())
        .addPrimaryKeyConstraint('federationapi_server_keys_pk', ['server_name', 'key_id'])
        .execute();
    },
  },
  {
    version: 2,
    name: 'outbound_queue',
    up: async (db, dialect) => {
      // What waits to be sent to each server: PDUs and EDUs in the order they were queued.
      // A row goes once the destination acknowledged the transaction that carried it.
      await addAutoIdColumn(db.schema.createTable('federationapi_queue'), dialect, 'id')
        .addColumn('destination', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('json', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('federationapi_queue_destination').on('federationapi_queue').columns(['destination', 'id']).execute();
    },
  },
  {
    version: 3,
    name: 'peeks',
    up: async (db) => {
      // Peeks over federation (MSC2444, storage/peeks.ts). Inbound: other servers peeking our
      // rooms, sent the rooms' events while renewed within renewal_interval (ms). Outbound: our
      // peeks into other servers' rooms, renewed while local devices peek them.
      for (const table of ['federationapi_inbound_peeks', 'federationapi_outbound_peeks'] as const) {
        await db.schema
          .createTable(table)
          .addColumn('server_name', 'text', (c) => c.notNull())
          .addColumn('room_id', 'text', (c) => c.notNull())
          .addColumn('peek_id', 'text', (c) => c.notNull())
          .addColumn('creation_ts', bigintType, (c) => c.notNull())
          .addColumn('renewed_ts', bigintType, (c) => c.notNull())
          .addColumn('renewal_interval', bigintType, (c) => c.notNull())
          .addPrimaryKeyConstraint(`${table}_pk`, ['server_name', 'room_id', 'peek_id'])
          .execute();
        await db.schema.createIndex(`${table}_room`).on(table).column('room_id').execute();
      }
    },
  },
];
