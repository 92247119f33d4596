import type { ColumnType, Generated } from 'kysely';

type WithDefault<T> = ColumnType<T, T | undefined, T>;

export interface UserapiDatabase {
  userapi_accounts: {
    localpart: string;
    password_hash: string | null;
    created_ts: number;
    is_guest: WithDefault<number>;
    is_admin: WithDefault<number>;
    deactivated: WithDefault<number>;
  };
  userapi_devices: {
    session_id: Generated<number>;
    localpart: string;
    device_id: string;
    access_token_hash: string;
    display_name: string | null;
    created_ts: number;
    last_seen_ts: number;
    last_seen_ip: string | null;
    user_agent: string | null;
    access_token_expires_ts: ColumnType<number | null, number | null | undefined, number | null>;
    refresh_token_hash: ColumnType<string | null, string | null | undefined, string | null>;
    prev_refresh_token_hash: ColumnType<string | null, string | null | undefined, string | null>;
  };
  userapi_profiles: {
    localpart: string;
    display_name: string | null;
    avatar_url: string | null;
  };
  userapi_filters: {
    filter_id: Generated<number>;
    localpart: string;
    filter: string;
  };
  userapi_account_data: {
    localpart: string;
    room_id: string;
    type: string;
    content: string;
  };
  userapi_openid_tokens: {
    token_hash: string;
    localpart: string;
    expires_ts: number;
  };
  userapi_key_backup_versions: {
    version: Generated<number>;
    user_id: string;
    algorithm: string;
    auth_data: string;
    etag: WithDefault<number>;
    deleted: WithDefault<number>;
  };
  userapi_key_backups: {
    user_id: string;
    version: number;
    room_id: string;
    session_id: string;
    first_message_index: number;
    forwarded_count: number;
    is_verified: number;
    session_data: string;
  };
  userapi_login_tokens: {
    token_hash: string;
    localpart: string;
    expires_ts: number;
  };
  userapi_threepid_bindings: {
    localpart: string;
    medium: string;
    address: string;
    id_server: string;
    bound_ts: number;
  };
  userapi_registration_tokens: {
    token: string;
    uses_allowed: number | null;
    pending: WithDefault<number>;
    completed: WithDefault<number>;
    expiry_time: number | null;
  };
  userapi_device_keys: {
    user_id: string;
    device_id: string;
    key_json: string;
  };
  userapi_one_time_keys: {
    user_id: string;
    device_id: string;
    key_id: string;
    algorithm: string;
    key_json: string;
  };
  userapi_fallback_keys: {
    user_id: string;
    device_id: string;
    algorithm: string;
    key_id: string;
    key_json: string;
    used: WithDefault<number>;
  };
  userapi_cross_signing_keys: {
    user_id: string;
    key_type: string;
    key_json: string;
  };
  userapi_cross_signing_sigs: {
    origin_user_id: string;
    origin_key_id: string;
    target_user_id: string;
    target_key_id: string;
    signature: string;
  };
  userapi_key_changes: {
    change_id: Generated<number>;
    user_id: string;
    device_stream_id: number;
    /** The only user who may learn of this change (user-signing keys and signatures); NULL: everyone sharing a room. */
    visible_to: ColumnType<string | null, string | null | undefined, string | null>;
  };
  userapi_notifications: {
    id: Generated<number>;
    user_id: string;
    room_id: string;
    event_id: string;
    thread_id: WithDefault<string>;
    depth: number;
    ts: number;
    highlight: number;
    read: WithDefault<number>;
    actions: string;
    event_json: string;
  };
  userapi_notification_counts: {
    user_id: string;
    room_id: string;
    notification_count: WithDefault<number>;
    highlight_count: WithDefault<number>;
    read_depth: WithDefault<number>;
  };
  userapi_pushers: {
    user_id: string;
    device_id: string;
    app_id: string;
    pushkey: string;
    kind: string;
    app_display_name: string;
    device_display_name: string;
    profile_tag: string;
    lang: string;
    data: string;
    pushkey_ts: number;
  };
  userapi_remote_device_lists: {
    user_id: string;
    server_name: string;
    stream_id: WithDefault<number>;
    stale: number;
    updated_ts: number;
  };
  userapi_remote_device_keys: {
    user_id: string;
    device_id: string;
    display_name: string | null;
    key_json: string | null;
  };
  userapi_remote_cross_signing_keys: {
    user_id: string;
    key_type: string;
    key_json: string;
  };
}
