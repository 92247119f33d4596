/**
 * Builds the YAML document `generate-config` prints: every key this server reads, with its
 * default, and Dendrite's `-ci` defaults for Sytest and Complement.
 */
import path from 'node:path';
import { stringify } from 'yaml';
import { DEFAULT_ROOM_VERSION } from '../../internal/matrix/roomversion.js';
import { componentDatabaseKeys } from './config.js';

export interface GenerateOptions {
  /** Dendrite's CI defaults (open registration, no rate limits, in-memory bus, trace logs). */
  ci: boolean;
  /** `global.server_name`. */
  serverName?: string;
  /** Directory for keys, databases, media and logs; relative paths when absent. */
  dir?: string;
  /** One PostgreSQL URI for every component (`global.database`). */
  db?: string;
}

export function generateConfigDocument(opts: GenerateOptions): Record<string, unknown> {
  const dir = opts.dir ?? '.';
  const at = (name: string): string => (opts.dir ? path.join(dir, name) : `./${name}`);
  const db = (component: string): Record<string, unknown> | undefined =>
    opts.db ? undefined : { connection_string: `file:${at(`dendrite_${component}.db`)}` };

  const doc: Record<string, unknown> = {
    version: 2,
    global: {
      server_name: opts.serverName ?? 'localhost:8008',
      private_key: at('matrix_key.pem'),
      old_private_keys: [],
      key_validity_period: '168h0m0s',
      ...(opts.db ? { database: { connection_string: opts.db, max_open_conns: 90, max_idle_conns: 5, conn_max_lifetime: -1 } } : {}),
      cache: { max_size_estimated: '1gb', max_age: '1h' },
      well_known_server_name: '',
      well_known_client_name: '',
      trusted_third_party_id_servers: ['matrix.org', 'vector.im'],
      disable_federation: false,
      presence: { enable_inbound: opts.ci, enable_outbound: opts.ci },
      server_notices: { enabled: false, local_part: '_server', display_name: 'Server Alerts', avatar_url: '', room_name: 'Server Alerts' },
      jetstream: {
        addresses: [],
        disable_tls_validation: false,
        storage_path: opts.dir ?? './',
        topic_prefix: 'Dendrite',
        in_memory: opts.ci,
      },
      metrics: { enabled: false, basic_auth: { username: 'metrics', password: 'metrics' } },
      dns_cache: { enabled: false, cache_size: 256, cache_lifetime: '5m' },
    },
    app_service_api: { disable_tls_validation: opts.ci, config_files: [], database: db('appservice') },
    client_api: {
      registration_disabled: !opts.ci,
      enable_registration_without_verification: opts.ci,
      guests_disabled: !opts.ci,
      registration_shared_secret: opts.ci ? 'complement' : '',
      registration_requires_token: false,
      password_authentication_disabled: false,
      enable_registration_captcha: false,
      recaptcha_public_key: '',
      recaptcha_private_key: '',
      recaptcha_bypass_secret: '',
      login_via_existing_session: { enabled: false, require_ui_auth: true, token_timeout: '5m' },
      turn: { turn_user_lifetime: '5m', turn_uris: [], turn_shared_secret: '', turn_username: '', turn_password: '' },
      rate_limiting: { enabled: !opts.ci, threshold: 20, cooloff_ms: 500, exempt_user_ids: [] },
    },
    federation_api: {
      database: db('federationapi'),
      send_max_retries: 16,
      disable_tls_validation: false,
      disable_http_keepalives: opts.ci,
      // Test servers federate over loopback; real ones must not be steered at private networks.
      deny_networks: opts.ci
        ? []
        : ['127.0.0.1/8', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '169.254.0.0/16', '::1/128', 'fe80::/64', 'fc00::/7'],
      allow_networks: ['0.0.0.0/0', '::/0'],
      // CI servers must never contact matrix.org.
      key_perspectives: opts.ci
        ? []
        : [
            {
              server_name: 'matrix.org',
              keys: [
                { key_id: 'ed25519:auto', public_key: 'Noi6WqcDj0QmPxCNQqgezwTlBKrfqehY1u2FyWP9uYw' },
                { key_id: 'ed25519:a_RXGa', public_key: 'l8Hft5qXKn1vfHrg3p4+W8gELQVo8N13JkluMfmn2sQ' },
              ],
            },
          ],
      prefer_direct_fetch: false,
    },
    media_api: {
      database: db('mediaapi'),
      base_path: opts.ci ? at('media') : at('media_store'),
      max_file_size_bytes: 10485760,
      dynamic_thumbnails: false,
      max_thumbnail_generators: 10,
      thumbnail_sizes: [
        { width: 32, height: 32, method: 'crop' },
        { width: 96, height: 96, method: 'crop' },
        { width: 640, height: 480, method: 'scale' },
      ],
      // Test servers (Sytest's "Test URL preview") preview pages they serve on loopback.
      url_preview: {
        enabled: opts.ci,
        deny_networks: opts.ci
          ? []
          : ['127.0.0.1/8', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '169.254.0.0/16', '::1/128', 'fe80::/64', 'fc00::/7', '0.0.0.0/8', '::/128'],
        allow_networks: ['0.0.0.0/0', '::/0'],
        max_page_size_bytes: 10485760,
        timeout_ms: 10000,
      },
    },
    mscs: { mscs: opts.ci ? ['msc2836', 'msc2444', 'msc2753'] : [], database: db('mscs') },
    room_server: { database: db('roomserver'), default_room_version: DEFAULT_ROOM_VERSION },
    sync_api: {
      database: db('syncapi'),
      search: { enabled: opts.ci, index_path: at('searchindex'), in_memory: opts.ci, language: 'en' },
    },
    user_api: {
      account_database: db('userapi'),
      // bcrypt's minimum cost keeps CI registration fast.
      bcrypt_cost: opts.ci ? 4 : 10,
      openid_token_lifetime_ms: 3600000,
      refreshable_access_token_lifetime_ms: 300000,
      auto_join_rooms: [],
    },
    logging: [{ type: 'std', level: opts.ci ? 'trace' : 'info' }],
  };
  // Drop database blocks that are absent (the -db form uses global.database only).
  for (const [section, key] of Object.values(componentDatabaseKeys)) {
    const s = doc[section] as Record<string, unknown>;
    if (s[key] === undefined) delete s[key];
  }
  return doc;
}

/** YAML 1.1-safe text: plain mappings and lists, strings quoted where YAML 1.1 would misread them. */
export function generateConfigYaml(opts: GenerateOptions): string {
  return stringify(generateConfigDocument(opts), { version: '1.1', lineWidth: 0 });
}
