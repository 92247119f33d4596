import type { Hono } from 'hono';
import { serverSoftware } from '../../internal/version.js';

/** GET /_matrix/federation/v1/version */
export function addVersionRoute(federation: Hono): void {
  const body = JSON.stringify({ server: serverSoftware });
  federation.get('/v1/version', () => new Response(body, { headers: { 'Content-Type': 'application/json' } }));
}
