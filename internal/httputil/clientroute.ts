import type { Handler, Hono } from 'hono';

type Method = 'get' | 'post' | 'put' | 'delete';

/** Registers a Client-Server route under both `/r0` and `/v3`, as servers still must. */
export function clientRoute(client: Hono, method: Method, path: string, handler: Handler): void {
  for (const version of ['/r0', '/v3']) client[method](`${version}${path}`, handler);
}
