/**
 * Server discovery (Server-Server API, "Resolving server names"): from a server name to the
 * endpoints to connect to, each with the Host header and the TLS name the spec asks for.
 *
 *  1. IP literal, with or without port: that address, the port or 8448; Host is the server name;
 *     the certificate must be valid for the IP.
 *  2. Host name with an explicit port: that name (A/AAAA) and port; Host is the server name;
 *     the certificate must be valid for the host name.
 *  3. Otherwise GET https://<hostname>/.well-known/matrix/server. When it yields a valid
 *     `m.server` = <delegated_hostname>[:<delegated_port>]:
 *     3.1 an IP literal: that address, the port or 8448, Host = the delegated name as given;
 *     3.2 a host name with a port: that name and port, Host = the delegated name;
 *     3.3 SRV `_matrix-fed._tcp.<delegated_hostname>`, 3.4 the deprecated `_matrix._tcp.`;
 *         Host and certificate name = the delegated host name;
 *     3.5 the delegated host name, port 8448.
 *  4./5. No (valid) well-known: SRV `_matrix-fed._tcp.<hostname>` then `_matrix._tcp.<hostname>`,
 *     Host and certificate name = the host name.
 *  6. The host name, port 8448.
 *
 * Well-known answers are cached per Cache-Control/Expires (default 24 h, kept between 5 min
 * and 48 h); failures (network errors, non-200, bad JSON, invalid m.server) for an hour. SRV
 * and A/AAAA answers are cached for `dnsTtlMs` (node's resolver reports no TTLs for SRV or
 * getaddrinfo). Concurrent resolutions of one name share one lookup.
 *
 * The resolution yields endpoints, not addresses: the transport looks up A/AAAA just before
 * connecting, so that the deny/allow network check sees the address actually connected to.
 */
import { promises as dnsPromises } from 'node:dns';
import { isIP } from 'node:net';
import { isValidServerName } from '../../internal/matrix/identifiers.js';
import { FederationClientError } from './errors.js';
import { DEFAULT_ALLOW_NETWORKS, DEFAULT_DENY_NETWORKS, NetworkPolicy } from './networks.js';
import { newAgent, sendToEndpoints, type Endpoint, type TransportOptions } from './transport.js';

export const DEFAULT_FEDERATION_PORT = 8448;
export const WELL_KNOWN_DEFAULT_TTL_MS = 24 * 3600_000;
export const WELL_KNOWN_MAX_TTL_MS = 48 * 3600_000;
export const WELL_KNOWN_MIN_TTL_MS = 5 * 60_000;
export const WELL_KNOWN_ERROR_TTL_MS = 3600_000;
const WELL_KNOWN_MAX_REDIRECTS = 5;
/** Well-known documents are a few dozen bytes; anything big is not one. */
export const WELL_KNOWN_MAX_BYTES = 64 * 1024;

/** How a server's endpoint was found (the step of the spec's algorithm). */
export type ResolutionStep =
  | 'ip-literal'
  | 'explicit-port'
  | 'well-known-ip-literal'
  | 'well-known-explicit-port'
  | 'well-known-srv'
  | 'well-known-legacy-srv'
  | 'well-known-default-port'
  | 'srv'
  | 'legacy-srv'
  | 'default-port';

export interface ResolvedEndpoint extends Endpoint {
  step: ResolutionStep;
}

export interface SrvRecord {
  name: string;
  port: number;
  priority: number;
  weight: number;
}

/** The DNS queries discovery makes; node:dns/promises by default. */
export interface DnsClient {
  /** SRV records of `name`; [] when there are none (NXDOMAIN/NODATA). */
  resolveSrv(name: string): Promise<SrvRecord[]>;
  /** Every address of `host` (following CNAMEs); throws when there is none. */
  lookup(host: string): Promise<string[]>;
}

/** One HTTP exchange for the well-known document (redirects are followed by the resolver). */
export interface WellKnownHttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer | string;
}
export type WellKnownFetcher = (url: URL) => Promise<WellKnownHttpResponse>;

export interface ResolverOptions {
  dns?: DnsClient;
  /**
   * Fetches one well-known URL. FederationClient passes one that runs through its transport
   * (network policy, TLS settings); the default uses Dendrite's default deny networks and the
   * system's CAs.
   */
  fetchWellKnown?: WellKnownFetcher;
  /** Clock, for tests. */
  now?: () => number;
  /** How long SRV answers are kept (node's resolver does not report TTLs); default 5 min. */
  dnsTtlMs?: number;
  wellKnownErrorTtlMs?: number;
  /** Random source in [0,1) for SRV weight selection; Math.random by default. */
  random?: () => number;
}

export const systemDns: DnsClient = {
  async resolveSrv(name) {
    try {
      return await dnsPromises.resolveSrv(name);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOTFOUND' || code === 'ENODATA' || code === 'ENONAME' || code === 'NXDOMAIN') return [];
      throw e;
    }
  },
  async lookup(host) {
    const all = await dnsPromises.lookup(host, { all: true, verbatim: true });
    return all.map((a) => a.address);
  },
};

/** A server name split into host and port; undefined when it is not a valid server name. */
export function parseServerName(name: string): { host: string; port: number | undefined; ipLiteral: boolean } | undefined {
  if (!isValidServerName(name)) return undefined;
  let host: string;
  let portText: string | undefined;
  if (name.startsWith('[')) {
    const end = name.indexOf(']');
    host = name.slice(1, end);
    const rest = name.slice(end + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) return undefined;
      portText = rest.slice(1);
    }
    if (isIP(host) !== 6) return undefined;
  } else {
    const colon = name.lastIndexOf(':');
    host = colon >= 0 ? name.slice(0, colon) : name;
    portText = colon >= 0 ? name.slice(colon + 1) : undefined;
  }
  let port: number | undefined;
  if (portText !== undefined) {
    if (!/^\d{1,5}$/.test(portText)) return undefined;
    port = Number(portText);
    if (port < 1 || port > 65535) return undefined;
  }
  return { host, port, ipLiteral: isIP(host) !== 0 };
}

/**
 * A WellKnownFetcher over the federation transport: one GET (no redirect following), bounded
 * to WELL_KNOWN_MAX_BYTES and `timeoutMs` (default 10 s).
 */
export function createWellKnownFetcher(t: TransportOptions, timeoutMs = 10_000): WellKnownFetcher {
  return async (url) => {
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    const endpoint: Endpoint = { host, port: url.port ? Number(url.port) : 443, hostHeader: url.host, tlsServerName: host };
    const res = await sendToEndpoints(
      [endpoint],
      {
        method: 'GET',
        path: `${url.pathname}${url.search}`,
        headers: { Accept: 'application/json' },
        maxBytes: WELL_KNOWN_MAX_BYTES,
        signal: AbortSignal.timeout(timeoutMs),
        destination: url.host,
      },
      t,
    );
    return { status: res.status, headers: res.headers, body: res.body };
  };
}

interface CacheEntry<T> {
  value: T;
  expiresAt: number;
}

/** Result of a well-known lookup: the delegated server name, or why there is none. */
export type WellKnownResult = { ok: true; server: string } | { ok: false; reason: string };

function headerValue(h: string | string[] | undefined): string | undefined {
  return Array.isArray(h) ? h.join(', ') : h;
}

/** Cache lifetime of a well-known answer from its headers, clamped to [min, max]. */
export function wellKnownTtlMs(headers: Record<string, string | string[] | undefined>, now: number): number {
  const cc = headerValue(headers['cache-control'])?.toLowerCase();
  let ttl: number | undefined;
  if (cc) {
    if (/(^|[,\s])(no-store|no-cache)\b/.test(cc)) ttl = 0;
    const maxAge = /(?:^|[,\s])max-age\s*=\s*"?(\d+)"?/.exec(cc);
    if (ttl === undefined && maxAge) ttl = Number(maxAge[1]) * 1000;
  }
  if (ttl === undefined) {
    const expires = headerValue(headers['expires']);
    if (expires !== undefined) {
      const t = Date.parse(expires);
      // An invalid Expires (e.g. "0") means already expired (RFC 9111 §5.3).
      ttl = Number.isNaN(t) ? 0 : t - now;
    }
  }
  if (ttl === undefined) ttl = WELL_KNOWN_DEFAULT_TTL_MS;
  return Math.min(WELL_KNOWN_MAX_TTL_MS, Math.max(WELL_KNOWN_MIN_TTL_MS, ttl));
}

export class ServerResolver {
  private readonly dns: DnsClient;
  private readonly fetchWellKnown: WellKnownFetcher;
  private readonly now: () => number;
  private readonly dnsTtlMs: number;
  private readonly errorTtlMs: number;
  private readonly random: () => number;
  private readonly wellKnownCache = new Map<string, CacheEntry<WellKnownResult>>();
  private readonly srvCache = new Map<string, CacheEntry<SrvRecord[]>>();
  private readonly inflight = new Map<string, Promise<ResolvedEndpoint[]>>();
  private readonly addressCache = new Map<string, CacheEntry<string[]>>();
  private readonly lookupInflight = new Map<string, Promise<string[]>>();

  constructor(opts: ResolverOptions) {
    this.dns = opts.dns ?? systemDns;
    this.fetchWellKnown =
      opts.fetchWellKnown ??
      createWellKnownFetcher({
        agent: newAgent({ keepAlive: false }),
        policy: new NetworkPolicy({ allowNetworks: DEFAULT_ALLOW_NETWORKS, denyNetworks: DEFAULT_DENY_NETWORKS }),
        lookup: (h) => this.dns.lookup(h),
        rejectUnauthorized: true,
        connectTimeoutMs: 5_000,
        userAgent: 'dendrite-ts',
      });
    this.now = opts.now ?? Date.now;
    this.dnsTtlMs = opts.dnsTtlMs ?? 5 * 60_000;
    this.errorTtlMs = opts.wellKnownErrorTtlMs ?? WELL_KNOWN_ERROR_TTL_MS;
    this.random = opts.random ?? Math.random;
  }

  /**
   * A/AAAA lookup with the configured DNS client (used by the transport). Answers are kept for
   * `dnsTtlMs`; failures are not kept.
   */
  lookup(host: string): Promise<string[]> {
    const now = this.now();
    const hit = this.addressCache.get(host);
    if (hit && hit.expiresAt > now) return Promise.resolve(hit.value);
    const pending = this.lookupInflight.get(host);
    if (pending) return pending;
    const p = this.dns
      .lookup(host)
      .then((addresses) => {
        if (addresses.length > 0) this.addressCache.set(host, { value: addresses, expiresAt: this.now() + this.dnsTtlMs });
        return addresses;
      })
      .finally(() => this.lookupInflight.delete(host));
    this.lookupInflight.set(host, p);
    return p;
  }

  /**
   * The endpoints for `serverName`, in the order to try them (SRV records by priority and
   * weight; otherwise one). Throws FederationClientError('bad_response') for an invalid name.
   */
  resolve(serverName: string): Promise<ResolvedEndpoint[]> {
    const pending = this.inflight.get(serverName);
    if (pending) return pending;
    const p = this.resolveUncached(serverName).finally(() => this.inflight.delete(serverName));
    this.inflight.set(serverName, p);
    return p;
  }

  /** Forgets cached well-known, SRV and address answers (all, or those of one name). */
  clearCache(name?: string): void {
    if (name === undefined) {
      this.wellKnownCache.clear();
      this.srvCache.clear();
      this.addressCache.clear();
      return;
    }
    this.wellKnownCache.delete(name);
    this.addressCache.delete(name);
    for (const key of this.srvCache.keys()) if (key.endsWith(`.${name}`)) this.srvCache.delete(key);
  }

  private async resolveUncached(serverName: string): Promise<ResolvedEndpoint[]> {
    const parsed = parseServerName(serverName);
    if (!parsed) throw new FederationClientError('bad_response', `${JSON.stringify(serverName)} is not a valid server name`, serverName);
    const { host, port, ipLiteral } = parsed;
    // 1. IP literal.
    if (ipLiteral) {
      return [{ host, port: port ?? DEFAULT_FEDERATION_PORT, hostHeader: serverName, tlsServerName: host, step: 'ip-literal' }];
    }
    // 2. Host name with explicit port.
    if (port !== undefined) {
      return [{ host, port, hostHeader: serverName, tlsServerName: host, step: 'explicit-port' }];
    }
    // 3. Well-known delegation.
    const wk = await this.wellKnown(host);
    if (wk.ok) {
      const delegated = parseServerName(wk.server);
      if (delegated) {
        if (delegated.ipLiteral) {
          return [{
            host: delegated.host,
            port: delegated.port ?? DEFAULT_FEDERATION_PORT,
            hostHeader: wk.server,
            tlsServerName: delegated.host,
            step: 'well-known-ip-literal',
          }];
        }
        if (delegated.port !== undefined) {
          return [{ host: delegated.host, port: delegated.port, hostHeader: wk.server, tlsServerName: delegated.host, step: 'well-known-explicit-port' }];
        }
        return this.srvOrDefault(delegated.host, 'well-known-srv', 'well-known-legacy-srv', 'well-known-default-port');
      }
    }
    // 4.-6. SRV on the server name itself, else port 8448.
    return this.srvOrDefault(host, 'srv', 'legacy-srv', 'default-port');
  }

  private async srvOrDefault(host: string, fed: ResolutionStep, legacy: ResolutionStep, fallback: ResolutionStep): Promise<ResolvedEndpoint[]> {
    for (const [service, step] of [['_matrix-fed._tcp', fed], ['_matrix._tcp', legacy]] as const) {
      const records = await this.srv(`${service}.${host}`);
      if (records.length > 0) {
        // The Host header and certificate name stay the host name; only the address moves.
        return this.orderSrv(records).map((r) => ({ host: r.name, port: r.port, hostHeader: host, tlsServerName: host, step }));
      }
    }
    return [{ host, port: DEFAULT_FEDERATION_PORT, hostHeader: host, tlsServerName: host, step: fallback }];
  }

  private async srv(name: string): Promise<SrvRecord[]> {
    const now = this.now();
    const hit = this.srvCache.get(name);
    if (hit && hit.expiresAt > now) return hit.value;
    let records: SrvRecord[];
    try {
      records = await this.dns.resolveSrv(name);
    } catch {
      // SERVFAIL, timeouts: treat as no record, like a missing one, but remember it briefly.
      records = [];
    }
    // Target "." means the service is decidedly not available (RFC 2782).
    const usable = records
      .map((r) => ({ ...r, name: r.name.replace(/\.$/, '') }))
      .filter((r) => r.name !== '' && r.port > 0 && r.port <= 65535);
    this.srvCache.set(name, { value: usable, expiresAt: now + this.dnsTtlMs });
    return usable;
  }

  /** RFC 2782 order: ascending priority, weighted random order within one priority. */
  private orderSrv(records: SrvRecord[]): SrvRecord[] {
    const byPriority = new Map<number, SrvRecord[]>();
    for (const r of records) {
      const list = byPriority.get(r.priority) ?? [];
      list.push(r);
      byPriority.set(r.priority, list);
    }
    const out: SrvRecord[] = [];
    for (const priority of [...byPriority.keys()].sort((a, b) => a - b)) {
      const pool = [...(byPriority.get(priority) ?? [])];
      while (pool.length > 0) {
        const total = pool.reduce((s, r) => s + r.weight, 0);
        let pick = 0;
        if (total > 0) {
          let x = this.random() * total;
          pick = pool.findIndex((r) => (x -= r.weight) < 0);
          if (pick < 0) pick = pool.length - 1;
        }
        out.push(...pool.splice(pick, 1));
      }
    }
    return out;
  }

  /** The well-known answer for `host`, from cache or fetched. */
  async wellKnown(host: string): Promise<WellKnownResult> {
    const now = this.now();
    const hit = this.wellKnownCache.get(host);
    if (hit && hit.expiresAt > now) return hit.value;
    const { result, ttlMs } = await this.fetchAndParseWellKnown(host);
    this.wellKnownCache.set(host, { value: result, expiresAt: this.now() + ttlMs });
    return result;
  }

  private async fetchAndParseWellKnown(host: string): Promise<{ result: WellKnownResult; ttlMs: number }> {
    const failure = (reason: string) => ({ result: { ok: false as const, reason }, ttlMs: this.errorTtlMs });
    let url = new URL(`https://${host.includes(':') ? `[${host}]` : host}/.well-known/matrix/server`);
    const seen = new Set<string>();
    let res: WellKnownHttpResponse;
    for (;;) {
      seen.add(url.href);
      try {
        res = await this.fetchWellKnown(url);
      } catch (e) {
        return failure(`fetching ${url.href}: ${e instanceof Error ? e.message : String(e)}`);
      }
      if (res.status >= 300 && res.status < 400 && res.status !== 304) {
        const location = headerValue(res.headers['location']);
        if (!location) return failure(`${url.href} redirected without a Location`);
        let next: URL;
        try {
          next = new URL(location, url);
        } catch {
          return failure(`${url.href} redirected to an invalid URL`);
        }
        if (next.protocol !== 'https:') return failure(`${url.href} redirected to a non-HTTPS URL`);
        if (seen.has(next.href)) return failure(`redirect loop at ${next.href}`);
        if (seen.size > WELL_KNOWN_MAX_REDIRECTS) return failure(`too many redirects from ${host}`);
        url = next;
        continue;
      }
      break;
    }
    if (res.status !== 200) return failure(`${url.href} answered ${res.status}`);
    let doc: unknown;
    try {
      doc = JSON.parse(typeof res.body === 'string' ? res.body : res.body.toString('utf8'));
    } catch {
      return failure(`${url.href} is not JSON`);
    }
    const server = typeof doc === 'object' && doc !== null && !Array.isArray(doc) ? (doc as Record<string, unknown>)['m.server'] : undefined;
    if (typeof server !== 'string' || !parseServerName(server)) return failure(`${url.href} has no valid m.server`);
    return { result: { ok: true, server }, ttlMs: wellKnownTtlMs(res.headers, this.now()) };
  }
}
