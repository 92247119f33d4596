import type { Hono } from 'hono';

export const serverSoftware = { name: 'dendrite-ts', version: '0.1.0' } as const;

/** GET /_matrix/federation/v1/version */
export function addVersionRoute(federation: Hono): void {
  const body = JSON.stringify({ server: serverSoftware });
  federation.get('/v1/version', () => new Response(body, { headers: { 'Content-Type': 'application/json' } }));
}
