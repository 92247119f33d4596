import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterEach, expect, it } from 'vitest';
import { PushGatewayClient } from './pushgateway.js';

const servers: http.Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

async function gateway(answer: (n: number, body: Record<string, unknown>) => { status: number; body?: unknown }): Promise<{ url: string; bodies: Array<Record<string, unknown>> }> {
  const bodies: Array<Record<string, unknown>> = [];
  const server = http.createServer((req, res) => {
    let text = '';
    req.on('data', (b: Buffer) => (text += b.toString()));
    req.on('end', () => {
      const body = JSON.parse(text) as Record<string, unknown>;
      bodies.push(body);
      const a = answer(bodies.length, body);
      res.writeHead(a.status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(a.body ?? {}));
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/_matrix/push/v1/notify`, bodies };
}

const device = (pushkey: string) => ({ app_id: 'app', pushkey, pushkey_ts: 1, data: {}, tweaks: {} });

it('posts the notification, retries failures with backoff, and reports rejected pushkeys', async () => {
  const g = await gateway((n) => (n === 1 ? { status: 503 } : { status: 200, body: { rejected: ['k1'] } }));
  const rejected: string[][] = [];
  const client = new PushGatewayClient({ disableTlsValidation: false, log: pino({ level: 'silent' }), baseDelayMs: 10, onRejected: async (_u, _a, keys) => void rejected.push(keys) });
  client.send(g.url, '@a:x', { event_id: '$e', counts: { unread: 1 }, devices: [device('k1')] });
  await client.idle();
  expect(g.bodies).toHaveLength(2);
  expect(g.bodies[0]).toEqual({ notification: { event_id: '$e', counts: { unread: 1 }, devices: [device('k1')] } });
  expect(rejected).toEqual([['k1']]);
  client.close();
});

it('gives up on 4xx at once and after maxAttempts on 5xx, without blocking the caller', async () => {
  const bad = await gateway(() => ({ status: 400 }));
  const down = await gateway(() => ({ status: 500 }));
  const client = new PushGatewayClient({ disableTlsValidation: false, log: pino({ level: 'silent' }), baseDelayMs: 5, maxAttempts: 3, onRejected: async () => {} });
  const t0 = Date.now();
  client.send(bad.url, '@a:x', { devices: [device('k')] });
  client.send(down.url, '@a:x', { devices: [device('k')] });
  expect(Date.now() - t0).toBeLessThan(50);
  await client.idle();
  expect(bad.bodies).toHaveLength(1);
  expect(down.bodies).toHaveLength(3);
  client.close();
});
