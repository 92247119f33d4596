/**
 * A `lookup` for node:http(s) requests that resolves a host name and hands the socket only the
 * addresses a NetworkPolicy allows. Checking inside the lookup (rather than resolving once up
 * front and connecting later) means the address checked is the address connected to: a name
 * whose DNS answer changes between a check and the connect (DNS rebinding) cannot slip through.
 * Host names that are IP literals never reach a lookup: check them with `checkLiteral` first.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP, type LookupFunction } from 'node:net';
import type { NetworkPolicy } from './networks.js';

/** Every address of `host` was refused by the policy: nothing was connected to. */
export class DeniedAddressError extends Error {
  override readonly name = 'DeniedAddressError';
  readonly code = 'EDENIED';
  constructor(
    readonly host: string,
    readonly addresses: readonly string[],
  ) {
    super(`${host} resolves only to addresses that are not allowed (${addresses.join(', ')})`);
  }
}

/** All A/AAAA addresses of `host` through the system resolver. */
export async function systemLookupAll(host: string): Promise<string[]> {
  return (await dnsLookup(host, { all: true, verbatim: true })).map((a) => a.address);
}

/** Throws DeniedAddressError when `host` is an IP literal the policy refuses. */
export function checkLiteral(policy: NetworkPolicy, host: string): void {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (isIP(bare) && !policy.isAllowed(bare)) throw new DeniedAddressError(bare, [bare]);
}

/**
 * The lookup to pass as the `lookup` option of http.request / https.request: it resolves with
 * `resolve` (the system resolver by default) and fails with DeniedAddressError when no address
 * is allowed.
 */
export function policyLookup(policy: NetworkPolicy, resolve: (host: string) => Promise<string[]> = systemLookupAll): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname).then(
      (all) => {
        const allowed = all.filter((a) => policy.isAllowed(a) && (!options.family || isIP(a) === options.family));
        if (allowed.length === 0) {
          callback(all.length ? new DeniedAddressError(hostname, all) : Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), '', 0);
          return;
        }
        if (options.all) callback(null, allowed.map((address) => ({ address, family: isIP(address) })));
        else callback(null, allowed[0]!, isIP(allowed[0]!));
      },
      (err: unknown) => callback(err as NodeJS.ErrnoException, '', 0),
    );
  };
}
