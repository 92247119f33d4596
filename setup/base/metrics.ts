/**
 * GET /metrics (Prometheus text format) when `global.metrics.enabled`, behind the configured
 * basic auth. Process metrics plus a request counter and latency histogram per route prefix.
 */
import { timingSafeEqual } from 'node:crypto';
import type { Hono, MiddlewareHandler } from 'hono';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { forbidden, jsonResponse } from '../../internal/httputil/index.js';

export interface Metrics {
  registry: Registry;
  middleware: MiddlewareHandler;
  /** Adds GET /metrics, behind basic auth when a username or password is set. */
  addRoute(app: Hono, auth: { username: string; password: string }): void;
}

/** Buckets the path into its API (client, federation, ...) to keep label cardinality small. */
function apiOf(path: string): string {
  const m = /^\/(_matrix\/(client|federation|key|media)|_dendrite|_synapse|\.well-known)/.exec(path);
  return m ? (m[2] ?? m[1] ?? 'other') : 'other';
}

export function newMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'dendrite_' });
  const requests = new Counter({ name: 'dendrite_http_requests_total', help: 'HTTP requests', labelNames: ['api', 'method', 'status'], registers: [registry] });
  const latency = new Histogram({
    name: 'dendrite_http_request_duration_seconds',
    help: 'HTTP request latency',
    labelNames: ['api'],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
    registers: [registry],
  });
  const metrics: Metrics = {
    registry,
    addRoute: (app, auth) => addMetricsRoute(app, metrics, auth),
    middleware: async (c, next) => {
      const end = latency.startTimer({ api: apiOf(c.req.path) });
      await next();
      end();
      requests.inc({ api: apiOf(c.req.path), method: c.req.method, status: String(c.res.status) });
    },
  };
  return metrics;
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function addMetricsRoute(app: Hono, metrics: Metrics, auth: { username: string; password: string }): void {
  app.get('/metrics', async (c) => {
    const header = c.req.header('authorization') ?? '';
    const given = header.startsWith('Basic ') ? Buffer.from(header.slice(6), 'base64').toString('utf8') : '';
    const sep = given.indexOf(':');
    if (auth.username || auth.password) {
      if (sep < 0 || !sameSecret(given.slice(0, sep), auth.username) || !sameSecret(given.slice(sep + 1), auth.password)) {
        const res = jsonResponse(forbidden('Metrics need basic auth').toJSON(), 401, { 'WWW-Authenticate': 'Basic realm="metrics"' });
        return res;
      }
    }
    return new Response(await metrics.registry.metrics(), { headers: { 'Content-Type': metrics.registry.contentType } });
  });
}
