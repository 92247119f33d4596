/**
 * GET of an arbitrary http(s) URL on behalf of users (URL previews) or another server (a
 * `Location` in a federation media answer), where the URL is chosen by someone we do not trust.
 * Every hop, redirects included, may connect only to addresses the NetworkPolicy allows: IP
 * literals are checked before connecting, host names inside the DNS lookup itself (so the
 * address checked is the address connected to). Redirects are followed by hand, at most
 * `maxRedirects`, and only to http(s).
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { checkLiteral, policyLookup, type NetworkPolicy } from '../../internal/netpolicy/index.js';
import { serverSoftware } from '../../internal/version.js';

export interface UrlFetchOptions {
  policy: NetworkPolicy;
  /** Aborts the whole exchange (connect, redirects, body). */
  signal: AbortSignal;
  rejectUnauthorized?: boolean;
  maxRedirects?: number;
  headers?: Record<string, string>;
  /** Host name resolution (the system resolver by default); tests point names at loopback. */
  resolve?: (host: string) => Promise<string[]>;
}

export interface FetchedUrl {
  status: number;
  headers: IncomingMessage['headers'];
  /** Read it to the end or destroy it. */
  body: IncomingMessage;
  /** The URL that answered, after redirects. */
  url: URL;
}

/** The URL is not one we fetch (scheme, form); a client error. */
export class UrlRefusedError extends Error {
  override readonly name = 'UrlRefusedError';
}

/** Parses a URL that may be fetched: absolute http(s), no credentials. */
export function parseFetchableUrl(raw: string, base?: URL): URL {
  let u: URL;
  try {
    u = base ? new URL(raw, base) : new URL(raw);
  } catch {
    throw new UrlRefusedError('not a valid URL');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UrlRefusedError(`${u.protocol} URLs cannot be fetched, only http: and https:`);
  if (u.username || u.password) throw new UrlRefusedError('URLs with credentials cannot be fetched');
  if (!u.hostname) throw new UrlRefusedError('the URL has no host');
  return u;
}

export async function fetchPublicUrl(raw: string | URL, opts: UrlFetchOptions): Promise<FetchedUrl> {
  let url = typeof raw === 'string' ? parseFetchableUrl(raw) : raw;
  const maxRedirects = opts.maxRedirects ?? 5;
  for (let hop = 0; ; hop++) {
    const res = await getOnce(url, opts);
    const location = res.headers.location;
    if (res.statusCode && res.statusCode >= 300 && res.statusCode < 400 && location && hop < maxRedirects) {
      res.destroy();
      url = parseFetchableUrl(location, url);
      continue;
    }
    return { status: res.statusCode ?? 0, headers: res.headers, body: res, url };
  }
}

function getOnce(url: URL, opts: UrlFetchOptions): Promise<IncomingMessage> {
  checkLiteral(opts.policy, url.hostname);
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    let settled = false;
    const req = request(
      url,
      {
        method: 'GET',
        headers: { 'User-Agent': `${serverSoftware.name}/${serverSoftware.version} (URL preview)`, Accept: '*/*', ...opts.headers },
        lookup: policyLookup(opts.policy, opts.resolve),
        signal: opts.signal,
        // One connection per fetch: these go to arbitrary hosts, nothing worth pooling.
        agent: false,
        ...(url.protocol === 'https:' ? { rejectUnauthorized: opts.rejectUnauthorized ?? true } : {}),
      },
      (res) => {
        settled = true;
        // An abort while nobody reads the body must not be an unhandled 'error'; readers still see it.
        res.on('error', () => {});
        resolve(res);
      },
    );
    req.on('error', (e) => {
      if (!settled) {
        settled = true;
        reject(e);
      }
    });
    req.end();
  });
}
