/**
 * The homeserver's configuration: Dendrite's `dendrite.yaml` keys (version 2), with a default
 * for every key. `parseConfig` only reads and validates; `loadConfig` also reads files the
 * config points at (the signing key), so that every problem is found before anything listens.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { isSupportedRoomVersion, DEFAULT_ROOM_VERSION, type RoomVersionId } from '../../internal/matrix/roomversion.js';
import { ConfigError, Section } from './reader.js';

export { ConfigError } from './reader.js';

export interface DatabaseOptions {
  connectionString: string;
  maxOpenConns: number;
  maxIdleConns: number;
  connMaxLifetimeMs: number;
}

export interface OldSigningKey {
  privateKeyPath?: string;
  publicKey?: string;
  keyId?: string;
  expiredAt: number;
}

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
export interface LoggingHook {
  type: 'std' | 'file';
  level: LogLevel;
  path?: string;
}

export interface Config {
  /** Directory of the config file: relative paths in it are resolved against this. */
  baseDir: string;
  global: {
    serverName: string;
    privateKeyPath: string;
    oldPrivateKeys: OldSigningKey[];
    keyValidityPeriodMs: number;
    database: DatabaseOptions | undefined;
    cache: { maxSizeEstimatedBytes: number; maxAgeMs: number };
    wellKnownServerName: string;
    wellKnownClientName: string;
    trustedThirdPartyIdServers: string[];
    disableFederation: boolean;
    presence: { enableInbound: boolean; enableOutbound: boolean };
    serverNotices: { enabled: boolean; localPart: string; displayName: string; avatarUrl: string; roomName: string };
    jetstream: {
      addresses: string[];
      disableTlsValidation: boolean;
      storagePath: string;
      topicPrefix: string;
      inMemory: boolean;
    };
    metrics: { enabled: boolean; basicAuth: { username: string; password: string } };
    dnsCache: { enabled: boolean; cacheSize: number; cacheLifetimeMs: number };
  };
  appServiceApi: { disableTlsValidation: boolean; configFiles: string[]; database: DatabaseOptions | undefined };
  clientApi: {
    registrationDisabled: boolean;
    openRegistrationWithoutVerificationEnabled: boolean;
    guestsDisabled: boolean;
    registrationSharedSecret: string;
    registrationRequiresToken: boolean;
    passwordAuthenticationDisabled: boolean;
    enableRegistrationCaptcha: boolean;
    recaptchaPublicKey: string;
    recaptchaPrivateKey: string;
    recaptchaBypassSecret: string;
    recaptchaSiteverifyApi: string;
    loginViaExistingSession: { enabled: boolean; requireUiAuth: boolean; tokenTimeoutMs: number };
    turn: { turnUserLifetimeMs: number; turnUris: string[]; turnSharedSecret: string; turnUsername: string; turnPassword: string };
    rateLimiting: { enabled: boolean; threshold: number; cooloffMs: number; exemptUserIds: string[] };
  };
  federationApi: {
    database: DatabaseOptions | undefined;
    sendMaxRetries: number;
    disableTlsValidation: boolean;
    disableHttpKeepalives: boolean;
    keyPerspectives: Array<{ serverName: string; keys: Array<{ keyId: string; publicKey: string }> }>;
    preferDirectFetch: boolean;
    federationCertificates: string[];
    denyNetworks: string[];
    allowNetworks: string[];
  };
  mediaApi: {
    database: DatabaseOptions | undefined;
    basePath: string;
    maxFileSizeBytes: number;
    dynamicThumbnails: boolean;
    maxThumbnailGenerators: number;
    thumbnailSizes: Array<{ width: number; height: number; method: 'crop' | 'scale' }>;
    /** GET /preview_url: off unless enabled; fetches only from addresses the networks allow. */
    urlPreview: { enabled: boolean; denyNetworks: string[]; allowNetworks: string[]; maxPageSizeBytes: number; timeoutMs: number };
  };
  mscs: { mscs: string[]; database: DatabaseOptions | undefined };
  roomServer: { database: DatabaseOptions | undefined; defaultRoomVersion: RoomVersionId };
  syncApi: {
    database: DatabaseOptions | undefined;
    realIpHeader: string;
    search: { enabled: boolean; indexPath: string; inMemory: boolean; language: string };
  };
  userApi: {
    accountDatabase: DatabaseOptions | undefined;
    bcryptCost: number;
    openidTokenLifetimeMs: number;
    refreshableAccessTokenLifetimeMs: number;
    autoJoinRooms: string[];
    pushGatewayDisableTlsValidation: boolean;
  };
  logging: LoggingHook[];
}

/** Components that own a database, and the YAML key of their database block. */
export const componentDatabaseKeys = {
  appservice: ['app_service_api', 'database'],
  federationapi: ['federation_api', 'database'],
  mediaapi: ['media_api', 'database'],
  mscs: ['mscs', 'database'],
  roomserver: ['room_server', 'database'],
  syncapi: ['sync_api', 'database'],
  userapi: ['user_api', 'account_database'],
} as const;
export type DatabaseComponent = keyof typeof componentDatabaseKeys;

const serverNameRe = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::\d{1,5})?$/;
const levels: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];

function readDatabase(s: Section): DatabaseOptions | undefined {
  const conn = s.string('connection_string', '');
  if (!conn) return undefined;
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(conn)?.[1]?.toLowerCase();
  if (scheme !== 'postgres' && scheme !== 'postgresql' && scheme !== 'file') {
    throw new ConfigError(
      s.key('connection_string'),
      `unsupported database scheme ${scheme ? `"${scheme}:"` : `in "${conn}"`} (use postgresql://... or file:...)`,
    );
  }
  return {
    connectionString: conn,
    maxOpenConns: s.int('max_open_conns', 90, { min: 1 }),
    maxIdleConns: s.int('max_idle_conns', 5, { min: 0 }),
    connMaxLifetimeMs: s.durationMs('conn_max_lifetime', -1),
  };
}

/** Reads and validates a parsed YAML document. Throws ConfigError naming the key. */
export function parseConfig(doc: unknown, baseDir: string): Config {
  const root = Section.root(doc);
  const version = root.int('version', 2);
  if (version !== 2) throw new ConfigError('version', `must be 2 (this server reads Dendrite's config version 2), not ${version}`);
  const abs = (p: string): string => (p === '' ? p : path.resolve(baseDir, p));

  const g = root.section('global');
  const serverName = g.string('server_name', 'localhost:8008');
  if (!serverNameRe.test(serverName)) {
    throw new ConfigError(g.key('server_name'), `"${serverName}" is not a valid server name (host or host:port)`);
  }
  const js = g.section('jetstream');
  const ca = root.section('client_api');
  const rl = ca.section('rate_limiting');
  const turn = ca.section('turn');
  const lves = ca.section('login_via_existing_session');
  const fed = root.section('federation_api');
  const media = root.section('media_api');
  const preview = media.section('url_preview');
  const sync = root.section('sync_api');
  const search = sync.section('search');
  const user = root.section('user_api');
  const rs = root.section('room_server');

  const defaultRoomVersion = rs.string('default_room_version', DEFAULT_ROOM_VERSION);
  if (!isSupportedRoomVersion(defaultRoomVersion)) {
    throw new ConfigError(rs.key('default_room_version'), `room version "${defaultRoomVersion}" is not supported (1-12)`);
  }

  const logging: LoggingHook[] = root.list('logging').map((h) => {
    const type = h.string('type', 'std');
    if (type !== 'std' && type !== 'file') throw new ConfigError(h.key('type'), `must be "std" or "file", not "${type}"`);
    const level = h.string('level', 'info').toLowerCase() as LogLevel;
    if (!levels.includes(level)) throw new ConfigError(h.key('level'), `must be one of ${levels.join(', ')}`);
    const hook: LoggingHook = { type, level };
    if (type === 'file') {
      const p = h.section('params').string('path', './logs');
      hook.path = abs(p);
    }
    return hook;
  });

  return {
    baseDir,
    global: {
      serverName,
      privateKeyPath: abs(g.string('private_key', 'matrix_key.pem')),
      oldPrivateKeys: g.list('old_private_keys').map((k) => {
        const privateKeyPath = k.string('private_key', '');
        const publicKey = k.string('public_key', '');
        const keyId = k.string('key_id', '');
        if (!privateKeyPath && !(publicKey && keyId)) {
          throw new ConfigError(k.path, 'needs private_key, or public_key and key_id');
        }
        return {
          ...(privateKeyPath ? { privateKeyPath: abs(privateKeyPath) } : {}),
          ...(publicKey ? { publicKey } : {}),
          ...(keyId ? { keyId } : {}),
          expiredAt: k.int('expired_at', 0, { min: 0 }),
        };
      }),
      keyValidityPeriodMs: g.durationMs('key_validity_period', 7 * 24 * 3_600_000),
      database: readDatabase(g.section('database')),
      cache: {
        maxSizeEstimatedBytes: g.section('cache').bytes('max_size_estimated', 1024 ** 3),
        maxAgeMs: g.section('cache').durationMs('max_age', 3_600_000),
      },
      wellKnownServerName: g.string('well_known_server_name', ''),
      wellKnownClientName: g.string('well_known_client_name', ''),
      trustedThirdPartyIdServers: g.stringList('trusted_third_party_id_servers', ['matrix.org', 'vector.im']),
      disableFederation: g.bool('disable_federation', false),
      presence: {
        enableInbound: g.section('presence').bool('enable_inbound', false),
        enableOutbound: g.section('presence').bool('enable_outbound', false),
      },
      serverNotices: {
        enabled: g.section('server_notices').bool('enabled', false),
        localPart: g.section('server_notices').string('local_part', '_server'),
        displayName: g.section('server_notices').string('display_name', 'Server Alerts'),
        avatarUrl: g.section('server_notices').string('avatar_url', ''),
        roomName: g.section('server_notices').string('room_name', 'Server Alerts'),
      },
      jetstream: {
        addresses: js.stringList('addresses'),
        disableTlsValidation: js.bool('disable_tls_validation', false),
        storagePath: abs(js.string('storage_path', './')),
        topicPrefix: js.string('topic_prefix', 'Dendrite'),
        inMemory: js.bool('in_memory', false),
      },
      metrics: {
        enabled: g.section('metrics').bool('enabled', false),
        basicAuth: {
          username: g.section('metrics').section('basic_auth').string('username', 'metrics'),
          password: g.section('metrics').section('basic_auth').string('password', 'metrics'),
        },
      },
      dnsCache: {
        enabled: g.section('dns_cache').bool('enabled', false),
        cacheSize: g.section('dns_cache').int('cache_size', 256, { min: 1 }),
        cacheLifetimeMs: g.section('dns_cache').durationMs('cache_lifetime', 300_000),
      },
    },
    appServiceApi: {
      disableTlsValidation: root.section('app_service_api').bool('disable_tls_validation', false),
      configFiles: root.section('app_service_api').stringList('config_files').map(abs),
      database: readDatabase(root.section('app_service_api').section('database')),
    },
    clientApi: {
      registrationDisabled: ca.bool('registration_disabled', true),
      openRegistrationWithoutVerificationEnabled: ca.bool('enable_registration_without_verification', false),
      guestsDisabled: ca.bool('guests_disabled', true),
      registrationSharedSecret: ca.string('registration_shared_secret', ''),
      registrationRequiresToken: ca.bool('registration_requires_token', false),
      passwordAuthenticationDisabled: ca.bool('password_authentication_disabled', false),
      enableRegistrationCaptcha: ca.bool('enable_registration_captcha', false),
      recaptchaPublicKey: ca.string('recaptcha_public_key', ''),
      recaptchaPrivateKey: ca.string('recaptcha_private_key', ''),
      recaptchaBypassSecret: ca.string('recaptcha_bypass_secret', ''),
      recaptchaSiteverifyApi: ca.string('recaptcha_siteverify_api', 'https://www.google.com/recaptcha/api/siteverify'),
      loginViaExistingSession: {
        enabled: lves.bool('enabled', false),
        requireUiAuth: lves.bool('require_ui_auth', true),
        tokenTimeoutMs: lves.durationMs('token_timeout', 300_000),
      },
      turn: {
        turnUserLifetimeMs: turn.durationMs('turn_user_lifetime', 300_000),
        turnUris: turn.stringList('turn_uris'),
        turnSharedSecret: turn.string('turn_shared_secret', ''),
        turnUsername: turn.string('turn_username', ''),
        turnPassword: turn.string('turn_password', ''),
      },
      rateLimiting: {
        enabled: rl.bool('enabled', true),
        threshold: rl.int('threshold', 20, { min: 1 }),
        cooloffMs: rl.int('cooloff_ms', 500, { min: 0 }),
        exemptUserIds: rl.stringList('exempt_user_ids'),
      },
    },
    federationApi: {
      database: readDatabase(fed.section('database')),
      sendMaxRetries: fed.int('send_max_retries', 16, { min: 1, max: 64 }),
      disableTlsValidation: fed.bool('disable_tls_validation', false),
      disableHttpKeepalives: fed.bool('disable_http_keepalives', false),
      keyPerspectives: fed.list('key_perspectives').map((p) => ({
        serverName: p.string('server_name', ''),
        keys: p.list('keys').map((k) => ({ keyId: k.string('key_id', ''), publicKey: k.string('public_key', '') })),
      })),
      preferDirectFetch: fed.bool('prefer_direct_fetch', false),
      federationCertificates: fed.stringList('federation_certificates').map(abs),
      denyNetworks: fed.stringList('deny_networks', [
        '127.0.0.1/8', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10',
        '169.254.0.0/16', '::1/128', 'fe80::/64', 'fc00::/7',
      ]),
      allowNetworks: fed.stringList('allow_networks', ['0.0.0.0/0', '::/0']),
    },
    mediaApi: {
      database: readDatabase(media.section('database')),
      basePath: abs(media.string('base_path', './media_store')),
      maxFileSizeBytes: media.bytes('max_file_size_bytes', 10 * 1024 * 1024),
      dynamicThumbnails: media.bool('dynamic_thumbnails', false),
      maxThumbnailGenerators: media.int('max_thumbnail_generators', 10, { min: 1 }),
      thumbnailSizes: media.list('thumbnail_sizes').map((t) => {
        const method = t.string('method', 'scale');
        if (method !== 'crop' && method !== 'scale') throw new ConfigError(t.key('method'), 'must be "crop" or "scale"');
        return { width: t.int('width', 0, { min: 1 }), height: t.int('height', 0, { min: 1 }), method };
      }),
      urlPreview: {
        enabled: preview.bool('enabled', false),
        denyNetworks: preview.stringList('deny_networks', [
          '127.0.0.1/8', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10',
          '169.254.0.0/16', '::1/128', 'fe80::/64', 'fc00::/7', '0.0.0.0/8', '::/128',
        ]),
        allowNetworks: preview.stringList('allow_networks', ['0.0.0.0/0', '::/0']),
        maxPageSizeBytes: preview.bytes('max_page_size_bytes', 10 * 1024 * 1024),
        timeoutMs: preview.int('timeout_ms', 10_000, { min: 1 }),
      },
    },
    mscs: { mscs: root.section('mscs').stringList('mscs'), database: readDatabase(root.section('mscs').section('database')) },
    roomServer: { database: readDatabase(rs.section('database')), defaultRoomVersion },
    syncApi: {
      database: readDatabase(sync.section('database')),
      realIpHeader: sync.string('real_ip_header', ''),
      search: {
        enabled: search.bool('enabled', false),
        indexPath: abs(search.string('index_path', './searchindex')),
        inMemory: search.bool('in_memory', false),
        language: search.string('language', 'en'),
      },
    },
    userApi: {
      accountDatabase: readDatabase(user.section('account_database')),
      bcryptCost: user.int('bcrypt_cost', 10, { min: 4, max: 31 }),
      openidTokenLifetimeMs: user.int('openid_token_lifetime_ms', 3_600_000, { min: 1 }),
      refreshableAccessTokenLifetimeMs: user.int('refreshable_access_token_lifetime_ms', 300_000, { min: 1 }),
      autoJoinRooms: user.stringList('auto_join_rooms'),
      pushGatewayDisableTlsValidation: user.bool('push_gateway_disable_tls_validation', false),
    },
    logging: logging.length > 0 ? logging : [{ type: 'std', level: 'info' }],
  };
}

/** Parses YAML text; a syntax error becomes a one-line ConfigError with its line. */
export function parseConfigYaml(text: string, baseDir: string): Config {
  let doc: unknown;
  try {
    doc = parseYaml(text, { uniqueKeys: false });
  } catch (err) {
    const msg = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new ConfigError('(yaml)', `malformed YAML: ${msg}`);
  }
  return parseConfig(doc, baseDir);
}

/** Reads the config file at `file`. */
export function readConfigFile(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError('--config', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return parseConfigYaml(text, path.dirname(path.resolve(file)));
}

/**
 * The database a component uses: its own block, else the global one. For the embedded
 * default (no database configured anywhere), a SQLite file per component beside the config.
 */
export function databaseFor(cfg: Config, component: DatabaseComponent): DatabaseOptions {
  const own = {
    appservice: cfg.appServiceApi.database,
    federationapi: cfg.federationApi.database,
    mediaapi: cfg.mediaApi.database,
    mscs: cfg.mscs.database,
    roomserver: cfg.roomServer.database,
    syncapi: cfg.syncApi.database,
    userapi: cfg.userApi.accountDatabase,
  }[component];
  if (own) return own;
  if (cfg.global.database) return cfg.global.database;
  return {
    connectionString: `file:${path.join(cfg.baseDir, `dendrite_${component}.db`)}`,
    maxOpenConns: 1,
    maxIdleConns: 1,
    connMaxLifetimeMs: -1,
  };
}
