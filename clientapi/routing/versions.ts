import type { Hono } from 'hono';

/** Spec versions this server speaks (GET /_matrix/client/versions). */
export const supportedSpecVersions = [
  'r0.0.1', 'r0.1.0', 'r0.2.0', 'r0.3.0', 'r0.4.0', 'r0.5.0', 'r0.6.0', 'r0.6.1',
  'v1.1', 'v1.2', 'v1.3', 'v1.4', 'v1.5', 'v1.6', 'v1.7', 'v1.8', 'v1.9', 'v1.10', 'v1.11', 'v1.12',
] as const;

export function addVersionsRoute(client: Hono, unstableFeatures: Record<string, boolean>): void {
  // Built once: this answer never changes while the process runs.
  const body = JSON.stringify({ versions: supportedSpecVersions, unstable_features: unstableFeatures });
  client.get('/versions', () => new Response(body, { headers: { 'Content-Type': 'application/json' } }));
}
