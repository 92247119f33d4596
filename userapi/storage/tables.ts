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
}
