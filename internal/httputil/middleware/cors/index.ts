/**
 * CORS as the Client-Server API asks (spec "Web Browser Clients"): any origin, the methods
 * and headers clients use, and OPTIONS answered directly so that browsers can preflight
 * every endpoint.
 */
import type { MiddlewareHandler } from 'hono';

export const corsHeaders: Readonly<Record<string, string>> = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Methods': 'GET, POST, PUT, DELETE, OPTIONS',
  'Access-Control-Allow-Headers': 'X-Requested-With, Content-Type, Authorization',
};

export function matrixCors(): MiddlewareHandler {
  return async (c, next) => {
    if (c.req.method === 'OPTIONS') {
      return new Response(JSON.stringify({}), {
        status: 200,
        headers: { ...corsHeaders, 'Content-Type': 'application/json' },
      });
    }
    await next();
    for (const [k, v] of Object.entries(corsHeaders)) c.res.headers.set(k, v);
  };
}
