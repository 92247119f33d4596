/**
 * One HTTPS exchange with a server found by discovery: look up the host's addresses, refuse
 * those the network policy denies, connect to the allowed ones in turn (by IP, so nothing
 * resolves the name again between the check and the connection) with the SNI name, Host header
 * and certificate name discovery chose, then read a bounded response body.
 *
 * node:https is enough here: connecting to an IP literal with `servername` and
 * `checkServerIdentity` set gives full control over DNS, SNI and certificate checks per
 * connection, and its Agent pools keep-alive connections per (address, port, SNI, TLS options).
 */
import { Agent, request as httpsRequest } from 'node:https';
import type { IncomingHttpHeaders, ClientRequest } from 'node:http';
import { isIP } from 'node:net';
import { checkServerIdentity, type PeerCertificate, type TLSSocket } from 'node:tls';
import { FederationClientError, type FederationClientErrorCode } from './errors.js';
import type { NetworkPolicy } from './networks.js';

/** Where and how to connect for one server, as discovery decides. */
export interface Endpoint {
  /** An IP literal (no brackets) or a host name to look up with CNAME/AAAA/A. */
  host: string;
  port: number;
  /** The `Host` header value. */
  hostHeader: string;
  /** The name the certificate must be valid for, sent as SNI unless it is an IP literal. */
  tlsServerName: string;
}

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface TransportOptions {
  agent: Agent;
  policy: NetworkPolicy;
  /** A/AAAA (and CNAME) lookup: every address of `host`. */
  lookup: (host: string) => Promise<string[]>;
  rejectUnauthorized: boolean;
  /** Trusted CA certificates replacing the system roots (tests, private federations). */
  ca?: string | Buffer | Array<string | Buffer>;
  /** How long one TCP+TLS connection attempt may take before the next address is tried. */
  connectTimeoutMs: number;
  userAgent: string;
}

export interface RawRequest {
  method: string;
  /** Path and query string, already encoded. */
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  maxBytes: number;
  /** Aborted when the request's deadline passes. */
  signal: AbortSignal;
  /** For error messages. */
  destination: string;
}

/** A failure of one attempt; `beforeConnect` says whether another address may be tried. */
class AttemptError extends FederationClientError {
  constructor(
    code: FederationClientErrorCode,
    message: string,
    destination: string,
    readonly beforeConnect: boolean,
    readonly reusedSocket: boolean,
    cause?: unknown,
  ) {
    super(code, message, destination, { cause });
  }
}

function timeoutError(req: RawRequest): FederationClientError {
  return new FederationClientError('timeout', `request to ${req.destination} timed out`, req.destination);
}

/** Runs `p`, rejecting with a timeout error when `signal` aborts first. */
async function withSignal<T>(p: Promise<T>, req: RawRequest): Promise<T> {
  if (req.signal.aborted) throw timeoutError(req);
  let onAbort: (() => void) | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        onAbort = () => reject(timeoutError(req));
        req.signal.addEventListener('abort', onAbort, { once: true });
      }),
    ]);
  } finally {
    if (onAbort) req.signal.removeEventListener('abort', onAbort);
  }
}

/**
 * Sends `req` to the first endpoint and address that accepts a connection. Throws
 * FederationClientError: `denied` when every address was refused by policy (nothing was
 * connected to), `timeout`, `too_large`, or `unreachable`.
 */
export async function sendToEndpoints(endpoints: readonly Endpoint[], req: RawRequest, t: TransportOptions): Promise<RawResponse> {
  let lastFailure: FederationClientError | undefined;
  let deniedAddresses: string[] = [];
  for (const ep of endpoints) {
    let addresses: string[];
    if (isIP(ep.host)) {
      addresses = [ep.host];
    } else {
      try {
        addresses = await withSignal(t.lookup(ep.host), req);
      } catch (e) {
        if (e instanceof FederationClientError) throw e;
        lastFailure = new FederationClientError('unreachable', `cannot resolve ${ep.host}: ${errText(e)}`, req.destination, { cause: e });
        continue;
      }
    }
    const allowed = addresses.filter((a) => t.policy.isAllowed(a));
    deniedAddresses = deniedAddresses.concat(addresses.filter((a) => !t.policy.isAllowed(a)));
    for (const address of allowed) {
      if (req.signal.aborted) throw timeoutError(req);
      try {
        return await attempt(address, ep, req, t, false);
      } catch (e) {
        if (!(e instanceof AttemptError)) throw e;
        // A kept-alive connection the server had already closed: retry once on a new one.
        if (e.reusedSocket && e.code === 'unreachable') {
          try {
            return await attempt(address, ep, req, t, true);
          } catch (e2) {
            if (!(e2 instanceof AttemptError)) throw e2;
            e = e2;
          }
        }
        const err = e as AttemptError;
        if (!err.beforeConnect || err.code !== 'unreachable') throw asPlain(err);
        lastFailure = err;
      }
    }
  }
  if (lastFailure) throw asPlain(lastFailure);
  if (deniedAddresses.length > 0) {
    throw new FederationClientError(
      'denied',
      `${req.destination} resolves only to addresses refused by deny/allow networks (${[...new Set(deniedAddresses)].join(', ')})`,
      req.destination,
    );
  }
  throw new FederationClientError('unreachable', `${req.destination} has no address to connect to`, req.destination);
}

function asPlain(e: FederationClientError): FederationClientError {
  if (!(e instanceof AttemptError)) return e;
  return new FederationClientError(e.code, e.message, e.destination, { cause: e.cause });
}

function errText(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as NodeJS.ErrnoException).code;
    return code && !e.message.includes(code) ? `${code} ${e.message}` : e.message;
  }
  return String(e);
}

function attempt(address: string, ep: Endpoint, req: RawRequest, t: TransportOptions, fresh: boolean): Promise<RawResponse> {
  return new Promise<RawResponse>((resolve, reject) => {
    const target = `${address.includes(':') ? `[${address}]` : address}:${ep.port}`;
    let connected = false;
    let reused = false;
    let settled = false;
    let connectTimer: NodeJS.Timeout | undefined;
    let request: ClientRequest | undefined;

    const cleanup = () => {
      if (connectTimer) clearTimeout(connectTimer);
      req.signal.removeEventListener('abort', onAbort);
    };
    const fail = (code: FederationClientErrorCode, message: string, cause?: unknown) => {
      if (settled) return;
      settled = true;
      cleanup();
      request?.destroy();
      reject(new AttemptError(code, message, req.destination, !connected, reused && !gotResponse, cause));
    };
    let gotResponse = false;
    const onAbort = () => fail('timeout', `request to ${req.destination} (${target}) timed out`);
    if (req.signal.aborted) {
      onAbort();
      return;
    }
    req.signal.addEventListener('abort', onAbort, { once: true });

    const sniIsIp = isIP(ep.tlsServerName) !== 0;
    const headers: Record<string, string> = {
      Host: ep.hostHeader,
      'User-Agent': t.userAgent,
      ...req.headers,
    };
    if (req.body) headers['Content-Length'] = String(req.body.length);
    try {
      request = httpsRequest({
        host: address,
        port: ep.port,
        method: req.method,
        path: req.path,
        headers,
        agent: fresh ? false : t.agent,
        // No SNI for IP literals (RFC 6066). Node checks the certificate against `servername`,
        // or when that is empty against `host`, which is then the IP literal itself. A
        // per-request checkServerIdentity is only set when neither fits, since it keeps the
        // Agent from pooling the connection.
        servername: sniIsIp ? '' : ep.tlsServerName,
        rejectUnauthorized: t.rejectUnauthorized,
        ...(t.ca !== undefined ? { ca: t.ca } : {}),
        ...(sniIsIp && ep.tlsServerName !== address
          ? { checkServerIdentity: (_host: string, cert: PeerCertificate) => checkServerIdentity(ep.tlsServerName, cert) }
          : {}),
      });
    } catch (e) {
      fail('unreachable', `cannot send to ${req.destination}: ${errText(e)}`, e);
      return;
    }
    const r = request;
    r.on('socket', (socket) => {
      if (r.reusedSocket) {
        reused = true;
        connected = true;
        return;
      }
      connectTimer = setTimeout(() => {
        if (!connected) fail('unreachable', `connecting to ${req.destination} at ${target} timed out`);
      }, t.connectTimeoutMs);
      (socket as TLSSocket).once('secureConnect', () => {
        connected = true;
        if (connectTimer) clearTimeout(connectTimer);
      });
    });
    r.on('error', (e) => fail('unreachable', `${req.destination} at ${target}: ${errText(e)}`, e));
    r.on('response', (res) => {
      gotResponse = true;
      connected = true;
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > req.maxBytes) {
        fail('too_large', `response of ${req.destination} is ${declared} bytes, over the limit of ${req.maxBytes}`);
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > req.maxBytes) {
          fail('too_large', `response of ${req.destination} exceeds the limit of ${req.maxBytes} bytes`);
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () => {
        if (settled) return;
        settled = true;
        cleanup();
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
      });
      res.on('error', (e) => fail('unreachable', `response of ${req.destination} broke off: ${errText(e)}`, e));
      res.on('close', () => {
        if (!res.complete) fail('unreachable', `response of ${req.destination} broke off`);
      });
    });
    r.end(req.body);
  });
}

/** The keep-alive pool the client's requests share. */
export function newAgent(opts: { keepAlive: boolean }): Agent {
  return new Agent({ keepAlive: opts.keepAlive, keepAliveMsecs: 30_000, maxSockets: 64, maxFreeSockets: 16, timeout: 90_000 });
}
