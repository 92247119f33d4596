/**
 * The userapi schema, versioned. Tables are prefixed `userapi_`; applied versions are kept in
 * `userapi_migrations`. Access tokens are stored as SHA-256 hashes: a copy of the database
 * does not let anyone act as a user.
 */
import type { ComponentMigration } from '../../internal/sqlutil/index.js';
import { addAutoIdColumn, bigintType, boolType } from '../../internal/sqlutil/index.js';

export const userapiMigrations: readonly ComponentMigration[] = [
  {
    version: 1,
    name: 'accounts_devices_profiles',
    up: async (db, dialect) => {
      await db.schema
        .createTable('userapi_accounts')
        .addColumn('localpart', 'text', (c) => c.primaryKey())
        .addColumn('password_hash', 'text')
        .addColumn('created_ts', bigintType, (c) => c.notNull())
        .addColumn('is_guest', boolType, (c) => c.notNull().defaultTo(0))
        .addColumn('is_admin', boolType, (c) => c.notNull().defaultTo(0))
        .addColumn('deactivated', boolType, (c) => c.notNull().defaultTo(0))
        .execute();
      await addAutoIdColumn(db.schema.createTable('userapi_devices'), dialect, 'session_id')
        .addColumn('localpart', 'text', (c) => c.notNull())
        .addColumn('device_id', 'text', (c) => c.notNull())
        .addColumn('access_token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('display_name', 'text')
        .addColumn('created_ts', bigintType, (c) => c.notNull())
        .addColumn('last_seen_ts', bigintType, (c) => c.notNull())
        .addColumn('last_seen_ip', 'text')
        .addColumn('user_agent', 'text')
        .addUniqueConstraint('userapi_devices_localpart_device_id', ['localpart', 'device_id'])
        .execute();
      await db.schema
        .createTable('userapi_profiles')
        .addColumn('localpart', 'text', (c) => c.primaryKey())
        .addColumn('display_name', 'text')
        .addColumn('avatar_url', 'text')
        .execute();
    },
  },
  {
    version: 2,
    name: 'filters',
    up: async (db, dialect) => {
      await addAutoIdColumn(db.schema.createTable('userapi_filters'), dialect, 'filter_id')
        .addColumn('localpart', 'text', (c) => c.notNull())
        .addColumn('filter', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('userapi_filters_localpart').on('userapi_filters').column('localpart').execute();
    },
  },
  {
    version: 3,
    name: 'account_data',
    up: async (db) => {
      // room_id '' holds global account data.
      await db.schema
        .createTable('userapi_account_data')
        .addColumn('localpart', 'text', (c) => c.notNull())
        .addColumn('room_id', 'text', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('content', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('userapi_account_data_pk', ['localpart', 'room_id', 'type'])
        .execute();
    },
  },
  {
    version: 4,
    name: 'openid_tokens',
    up: async (db) => {
      await db.schema
        .createTable('userapi_openid_tokens')
        .addColumn('token_hash', 'text', (c) => c.primaryKey())
        .addColumn('localpart', 'text', (c) => c.notNull())
        .addColumn('expires_ts', bigintType, (c) => c.notNull())
        .execute();
    },
  },
  {
    version: 5,
    name: 'key_server',
    up: async (db, dialect) => {
      // Device keys of local devices; stream_id is the device list version of the user.
      await db.schema
        .createTable('userapi_device_keys')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('device_id', 'text', (c) => c.notNull())
        .addColumn('key_json', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('userapi_device_keys_pk', ['user_id', 'device_id'])
        .execute();
      await db.schema
        .createTable('userapi_one_time_keys')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('device_id', 'text', (c) => c.notNull())
        .addColumn('key_id', 'text', (c) => c.notNull())
        .addColumn('algorithm', 'text', (c) => c.notNull())
        .addColumn('key_json', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('userapi_one_time_keys_pk', ['user_id', 'device_id', 'key_id'])
        .execute();
      await db.schema.createIndex('userapi_one_time_keys_algorithm').on('userapi_one_time_keys').columns(['user_id', 'device_id', 'algorithm']).execute();
      await db.schema
        .createTable('userapi_fallback_keys')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('device_id', 'text', (c) => c.notNull())
        .addColumn('algorithm', 'text', (c) => c.notNull())
        .addColumn('key_id', 'text', (c) => c.notNull())
        .addColumn('key_json', 'text', (c) => c.notNull())
        .addColumn('used', boolType, (c) => c.notNull().defaultTo(0))
        .addPrimaryKeyConstraint('userapi_fallback_keys_pk', ['user_id', 'device_id', 'algorithm'])
        .execute();
      await db.schema
        .createTable('userapi_cross_signing_keys')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('key_type', 'text', (c) => c.notNull())
        .addColumn('key_json', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('userapi_cross_signing_keys_pk', ['user_id', 'key_type'])
        .execute();
      // Signatures uploaded through keys/signatures/upload, merged into keys/query answers.
      await db.schema
        .createTable('userapi_cross_signing_sigs')
        .addColumn('origin_user_id', 'text', (c) => c.notNull())
        .addColumn('origin_key_id', 'text', (c) => c.notNull())
        .addColumn('target_user_id', 'text', (c) => c.notNull())
        .addColumn('target_key_id', 'text', (c) => c.notNull())
        .addColumn('signature', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('userapi_cross_signing_sigs_pk', ['origin_user_id', 'origin_key_id', 'target_user_id', 'target_key_id'])
        .execute();
      await db.schema.createIndex('userapi_cross_signing_sigs_target').on('userapi_cross_signing_sigs').columns(['target_user_id', 'target_key_id']).execute();
      // The key change stream: one row per user, its change_id the position of the user's
      // latest change (older rows are deleted, so the table stays one row per user).
      await addAutoIdColumn(db.schema.createTable('userapi_key_changes'), dialect, 'change_id')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('device_stream_id', bigintType, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('userapi_key_changes_user').on('userapi_key_changes').column('user_id').execute();
    },
  },
  {
    version: 6,
    name: 'refresh_tokens',
    up: async (db) => {
      // A device logged in with a refresh token: its access token expires, and the refresh
      // token it replaced stays usable until the new tokens are used (a lost answer to
      // /refresh must not log the device out).
      await db.schema.alterTable('userapi_devices').addColumn('access_token_expires_ts', bigintType).execute();
      await db.schema.alterTable('userapi_devices').addColumn('refresh_token_hash', 'text').execute();
      await db.schema.alterTable('userapi_devices').addColumn('prev_refresh_token_hash', 'text').execute();
      await db.schema.createIndex('userapi_devices_refresh').unique().on('userapi_devices').column('refresh_token_hash').execute();
      await db.schema.createIndex('userapi_devices_prev_refresh').on('userapi_devices').column('prev_refresh_token_hash').execute();
    },
  },
  {
    version: 7,
    name: 'registration_tokens',
    up: async (db) => {
      // uses_allowed and expiry_time NULL mean unlimited; completed counts registrations made.
      await db.schema
        .createTable('userapi_registration_tokens')
        .addColumn('token', 'text', (c) => c.primaryKey())
        .addColumn('uses_allowed', bigintType)
        .addColumn('pending', bigintType, (c) => c.notNull().defaultTo(0))
        .addColumn('completed', bigintType, (c) => c.notNull().defaultTo(0))
        .addColumn('expiry_time', bigintType)
        .execute();
    },
  },
  {
    version: 8,
    name: 'login_tokens',
    up: async (db) => {
      // Single-use m.login.token tokens, stored hashed as access tokens are.
      await db.schema
        .createTable('userapi_login_tokens')
        .addColumn('token_hash', 'text', (c) => c.primaryKey())
        .addColumn('localpart', 'text', (c) => c.notNull())
        .addColumn('expires_ts', bigintType, (c) => c.notNull())
        .execute();
    },
  },
  {
    version: 9,
    name: 'key_backup',
    up: async (db, dialect) => {
      // A backup version per row; deleted versions stay (their numbers are never reused).
      await addAutoIdColumn(db.schema.createTable('userapi_key_backup_versions'), dialect, 'version')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('algorithm', 'text', (c) => c.notNull())
        .addColumn('auth_data', 'text', (c) => c.notNull())
        .addColumn('etag', bigintType, (c) => c.notNull().defaultTo(0))
        .addColumn('deleted', boolType, (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema.createIndex('userapi_key_backup_versions_user').on('userapi_key_backup_versions').column('user_id').execute();
      await db.schema
        .createTable('userapi_key_backups')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('version', bigintType, (c) => c.notNull())
        .addColumn('room_id', 'text', (c) => c.notNull())
        .addColumn('session_id', 'text', (c) => c.notNull())
        .addColumn('first_message_index', bigintType, (c) => c.notNull())
        .addColumn('forwarded_count', bigintType, (c) => c.notNull())
        .addColumn('is_verified', boolType, (c) => c.notNull())
        .addColumn('session_data', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('userapi_key_backups_pk', ['user_id', 'version', 'room_id', 'session_id'])
        .execute();
    },
  },
  {
    version: 10,
    name: 'push',
    up: async (db, dialect) => {
      // Notifications: the stream of what push rules said to notify, per user. `id` is the
      // stream position (GET /notifications pages by it); `depth` places the event in its
      // room for read receipts; thread_id is '' for the main timeline.
      await addAutoIdColumn(db.schema.createTable('userapi_notifications'), dialect, 'id')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('room_id', 'text', (c) => c.notNull())
        .addColumn('event_id', 'text', (c) => c.notNull())
        .addColumn('thread_id', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('depth', bigintType, (c) => c.notNull())
        .addColumn('ts', bigintType, (c) => c.notNull())
        .addColumn('highlight', boolType, (c) => c.notNull())
        .addColumn('read', boolType, (c) => c.notNull().defaultTo(0))
        .addColumn('actions', 'text', (c) => c.notNull())
        .addColumn('event_json', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('userapi_notifications_user_event').unique().on('userapi_notifications').columns(['user_id', 'event_id']).execute();
      await db.schema.createIndex('userapi_notifications_unread').on('userapi_notifications').columns(['user_id', 'room_id', 'read']).execute();
      // Unread counts per user and room, kept with the rows above; read_depth is how far the
      // user's unthreaded receipts reach (an event that arrives late below it is read already).
      await db.schema
        .createTable('userapi_notification_counts')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('room_id', 'text', (c) => c.notNull())
        .addColumn('notification_count', bigintType, (c) => c.notNull().defaultTo(0))
        .addColumn('highlight_count', bigintType, (c) => c.notNull().defaultTo(0))
        .addColumn('read_depth', bigintType, (c) => c.notNull().defaultTo(0))
        .addPrimaryKeyConstraint('userapi_notification_counts_pk', ['user_id', 'room_id'])
        .execute();
      // Pushers (POST /pushers/set), tied to the device that made them.
      await db.schema
        .createTable('userapi_pushers')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('device_id', 'text', (c) => c.notNull())
        .addColumn('app_id', 'text', (c) => c.notNull())
        .addColumn('pushkey', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('app_display_name', 'text', (c) => c.notNull())
        .addColumn('device_display_name', 'text', (c) => c.notNull())
        .addColumn('profile_tag', 'text', (c) => c.notNull())
        .addColumn('lang', 'text', (c) => c.notNull())
        .addColumn('data', 'text', (c) => c.notNull())
        .addColumn('pushkey_ts', bigintType, (c) => c.notNull())
        .addPrimaryKeyConstraint('userapi_pushers_pk', ['app_id', 'pushkey', 'user_id'])
        .execute();
      await db.schema.createIndex('userapi_pushers_user').on('userapi_pushers').column('user_id').execute();
    },
  },
  {
    version: 11,
    name: 'remote_device_lists',
    up: async (db) => {
      // Other servers' users whose device lists we follow (m.device_list_update): stream_id is
      // the last update applied (or the version /user/devices gave), stale means the list may
      // have missed an update and is to be fetched again; updated_ts is 0 until the first fetch.
      await db.schema
        .createTable('userapi_remote_device_lists')
        .addColumn('user_id', 'text', (c) => c.primaryKey())
        .addColumn('server_name', 'text', (c) => c.notNull())
        .addColumn('stream_id', bigintType, (c) => c.notNull().defaultTo(0))
        .addColumn('stale', boolType, (c) => c.notNull())
        .addColumn('updated_ts', bigintType, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('userapi_remote_device_lists_stale').on('userapi_remote_device_lists').columns(['stale', 'server_name']).execute();
      // Their devices: key_json is NULL for a device that has uploaded no keys.
      await db.schema
        .createTable('userapi_remote_device_keys')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('device_id', 'text', (c) => c.notNull())
        .addColumn('display_name', 'text')
        .addColumn('key_json', 'text')
        .addPrimaryKeyConstraint('userapi_remote_device_keys_pk', ['user_id', 'device_id'])
        .execute();
      // Their master and self-signing keys (a server never shares user-signing keys).
      await db.schema
        .createTable('userapi_remote_cross_signing_keys')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('key_type', 'text', (c) => c.notNull())
        .addColumn('key_json', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('userapi_remote_cross_signing_keys_pk', ['user_id', 'key_type'])
        .execute();
    },
  },
  {
    version: 12,
    name: 'private_key_changes',
    up: async (db) => {
      // A change only one user may learn of (a new user-signing key, a signature made with it):
      // that user; NULL for changes everyone sharing a room with the user learns of.
      await db.schema.alterTable('userapi_key_changes').addColumn('visible_to', 'text').execute();
    },
  },
  {
    version: 13,
    name: 'threepid_bindings',
    up: async (db) => {
      // Where a user's 3PIDs were bound through this server (POST /account/3pid/bind), so that
      // they can be unbound there later (3PID deletion, deactivation) without the client naming
      // the identity server again.
      await db.schema
        .createTable('userapi_threepid_bindings')
        .addColumn('localpart', 'text', (c) => c.notNull())
        .addColumn('medium', 'text', (c) => c.notNull())
        .addColumn('address', 'text', (c) => c.notNull())
        .addColumn('id_server', 'text', (c) => c.notNull())
        .addColumn('bound_ts', bigintType, (c) => c.notNull())
        .addPrimaryKeyConstraint('userapi_threepid_bindings_pk', ['localpart', 'medium', 'address', 'id_server'])
        .execute();
    },
  },
];
