/**
 * bench/userapi: password logins/s over HTTP on a real monolith (embedded defaults), at
 * bcrypt cost 10 (the default) and 4 (CI), and access-token checks/s (GET /account/whoami).
 * Run: npm run build && node dist/bench/userapi/main.js
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import autocannon from 'autocannon';
import pino from 'pino';
import { formatMatrixKeyPem, generateSigningKey } from '../../internal/matrix/index.js';
import { parseConfig } from '../../setup/config/config.js';
import { generateConfigDocument } from '../../setup/config/generate.js';
import { startServer } from '../../setup/server.js';

async function withServer<T>(bcryptCost: number, fn: (base: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-userapi-'));
  const doc = generateConfigDocument({ ci: true, dir }) as Record<string, Record<string, unknown>>;
  doc.logging = [{ type: 'std', level: 'error' }] as unknown as Record<string, unknown>;
  doc.user_api!.bcrypt_cost = bcryptCost;
  const { keyId, seed } = generateSigningKey();
  writeFileSync(path.join(dir, 'matrix_key.pem'), formatMatrixKeyPem(keyId, seed));
  const server = await startServer({ cfg: parseConfig(doc, dir), logger: pino({ level: 'error' }), httpBind: { host: '127.0.0.1', port: 0 } });
  try {
    return await fn(`http://127.0.0.1:${server.http!.address.port}`);
  } finally {
    await server.shutdown('bench done');
  }
}

async function register(base: string, username: string): Promise<string> {
  const r = await fetch(`${base}/_matrix/client/v3/register`, { method: 'POST', body: JSON.stringify({ auth: { type: 'm.login.dummy' }, username, password: 'bench-password' }) });
  return ((await r.json()) as { access_token: string }).access_token;
}

async function loginsPerSecond(base: string, seconds: number): Promise<number> {
  await register(base, 'benchuser');
  const body = JSON.stringify({ type: 'm.login.password', identifier: { type: 'm.id.user', user: 'benchuser' }, password: 'bench-password' });
  const r = await autocannon({ url: `${base}/_matrix/client/v3/login`, method: 'POST', body, connections: 8, duration: seconds, workers: 1 });
  if (r.non2xx > 0) throw new Error(`${r.non2xx} logins failed`);
  return Math.round(r.requests.average);
}

export async function userapiBenches(seconds = 5): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  out['password logins/s, bcrypt cost 10'] = await withServer(10, (b) => loginsPerSecond(b, seconds));
  out['password logins/s, bcrypt cost 4'] = await withServer(4, (b) => loginsPerSecond(b, seconds));
  await withServer(4, async (base) => {
    const token = await register(base, 'whoami');
    const r = await autocannon({ url: `${base}/_matrix/client/v3/account/whoami`, headers: { Authorization: `Bearer ${token}` }, connections: 50, duration: seconds, workers: 1 });
    out['whoami (access token check) requests/s'] = Math.round(r.requests.average);
    out['whoami latency p99 ms'] = r.latency.p99;
  });
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const [k, v] of Object.entries(await userapiBenches())) console.log(`${k}: ${v}`);
}
