/**
 * Signed federation GETs whose answers stream (remote media): FederationClient.request reads
 * a whole body into memory under a 10 MiB cap, which is right for JSON and wrong for files.
 * Same discovery (the client's ServerResolver), signing, TLS names and network policy as the
 * JSON client; the caller reads or destroys the body, and aborts through `signal`.
 */
import { Agent, request as httpsRequest, type RequestOptions } from 'node:https';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { checkLiteral, policyLookup, type NetworkPolicy } from '../../internal/netpolicy/index.js';
import type { FederationRequest } from '../../internal/matrix/xmatrix.js';
import { serverSoftware } from '../../internal/version.js';
import { FederationClientError } from './errors.js';
import type { Endpoint } from './transport.js';
import type { ServerResolver } from './resolve.js';

export interface StreamedResponse {
  status: number;
  headers: IncomingMessage['headers'];
  body: IncomingMessage;
}

export interface StreamClientOptions {
  serverName: string;
  sign: (req: FederationRequest) => string;
  resolver: ServerResolver;
  policy: NetworkPolicy;
  rejectUnauthorized: boolean;
  keepAlive: boolean;
}

export class FederationStreamClient {
  private readonly agent: Agent;

  constructor(private readonly opts: StreamClientOptions) {
    this.agent = new Agent({ keepAlive: opts.keepAlive, maxSockets: 32, maxFreeSockets: 8 });
  }

  close(): void {
    this.agent.destroy();
  }

  /**
   * GET `path` on `destination`: the first endpoint that answers gives the response. Rejects
   * with FederationClientError (`unreachable`, `denied`, `timeout` when `signal` aborted first).
   */
  async get(destination: string, path: string, signal: AbortSignal): Promise<StreamedResponse> {
    if (!path.startsWith('/_matrix/')) throw new Error(`federation paths start with /_matrix/, not ${path}`);
    const authorization = this.opts.sign({ method: 'GET', uri: path, origin: this.opts.serverName, destination });
    let endpoints: Endpoint[];
    try {
      endpoints = await abortable(this.opts.resolver.resolve(destination), signal);
    } catch (e) {
      throw asClientError(e, destination, signal);
    }
    let last: FederationClientError | undefined;
    for (const ep of endpoints) {
      try {
        checkLiteral(this.opts.policy, ep.host);
        return await this.attempt(ep, path, authorization, signal);
      } catch (e) {
        last = asClientError(e, destination, signal);
        if (signal.aborted) throw last;
      }
    }
    throw last ?? new FederationClientError('unreachable', `${destination} has no endpoint to connect to`, destination);
  }

  private attempt(ep: Endpoint, path: string, authorization: string, signal: AbortSignal): Promise<StreamedResponse> {
    return new Promise((resolve, reject) => {
      const sniIsIp = isIP(ep.tlsServerName) !== 0;
      const options: RequestOptions = {
        host: ep.host,
        port: ep.port,
        method: 'GET',
        path,
        headers: { Host: ep.hostHeader, 'User-Agent': `${serverSoftware.name}/${serverSoftware.version}`, Authorization: authorization, Accept: '*/*' },
        agent: this.agent,
        // As the JSON transport: no SNI for IP literals; the certificate is checked against the
        // server name discovery gave, which for SRV targets differs from the host connected to.
        servername: sniIsIp ? '' : ep.tlsServerName,
        rejectUnauthorized: this.opts.rejectUnauthorized,
        lookup: policyLookup(this.opts.policy, (h) => this.opts.resolver.lookup(h)),
        signal,
        ...(sniIsIp && ep.tlsServerName !== ep.host ? { checkServerIdentity: (_h: string, cert: PeerCertificate) => checkServerIdentity(ep.tlsServerName, cert) } : {}),
      };
      let settled = false;
      const req = httpsRequest(options, (res) => {
        settled = true;
        // An abort or reset while nobody reads the body must not be an unhandled 'error';
        // readers (pipeline, async iteration) still see it through their own listeners.
        res.on('error', () => {});
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res });
      });
      // Errors after the response (a reset mid-body) reach the body stream; this listener keeps
      // them from being unhandled on the request.
      req.on('error', (e) => {
        if (!settled) {
          settled = true;
          reject(e);
        }
      });
      req.end();
    });
  }
}

function asClientError(e: unknown, destination: string, signal: AbortSignal): FederationClientError {
  if (e instanceof FederationClientError) return e;
  if (signal.aborted) return new FederationClientError('timeout', `request to ${destination} timed out`, destination, { cause: e });
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  const message = e instanceof Error ? e.message : String(e);
  return new FederationClientError(code === 'EDENIED' ? 'denied' : 'unreachable', `${destination}: ${message}`, destination, { cause: e });
}

async function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) throw signal.reason;
  let onAbort: (() => void) | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        onAbort = () => reject(signal.reason as Error);
        signal.addEventListener('abort', onAbort, { once: true });
      }),
    ]);
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}
