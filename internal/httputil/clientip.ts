/** The address a request came from, for devices' "last seen IP". */
import type { Context } from 'hono';
import { getConnInfo } from '@hono/node-server/conninfo';

/** The peer's address; undefined when the request did not come over a socket (app.request in tests). */
export function remoteAddress(c: Context): string | undefined {
  try {
    const address = getConnInfo(c).remote.address;
    // IPv4 clients of a dual-stack listener appear as ::ffff:a.b.c.d.
    return address?.startsWith('::ffff:') ? address.slice(7) : address;
  } catch {
    return undefined;
  }
}
