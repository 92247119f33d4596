/**
 * bench/userapi: password logins/s over HTTP on a real monolith (embedded defaults), at
 * bcrypt cost 10 (the default) and 4 (CI), access-token checks/s (GET /account/whoami),
 * keys/query latency for a user with 50 devices, and keys/upload of 100 one-time keys.
 * Remote keys/query: two monoliths federating over HTTPS on loopback (A and B, named
 * 127.0.0.1:<port>); alice on A queries a user of B with 50 devices, one request at a time:
 * bob, who shares a room with alice (A follows his device list and answers from its copy
 * after the first query), against carol, who shares none (each query asks B, as every remote
 * query did before device lists were followed).
 * Run: npm run build && node dist/bench/userapi/main.js
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { withBenchServer } from '../common.js';
import autocannon from 'autocannon';
import pino from 'pino';
import { formatMatrixKeyPem, generateSigningKey } from '../../internal/matrix/index.js';
import { parseConfig } from '../../setup/config/config.js';
import { generateConfigDocument } from '../../setup/config/generate.js';
import { startServer, type RunningServer } from '../../setup/server.js';
import { generateTlsMaterial } from '../../setup/tlscert.js';

function withServer<T>(bcryptCost: number, fn: (base: string) => Promise<T>): Promise<T> {
  return withBenchServer('userapi', { configure: (doc) => void (doc.user_api!.bcrypt_cost = bcryptCost) }, fn);
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

async function login(base: string, username: string, deviceId: string): Promise<string> {
  const r = await fetch(`${base}/_matrix/client/v3/login`, {
    method: 'POST',
    body: JSON.stringify({ type: 'm.login.password', identifier: { type: 'm.id.user', user: username }, password: 'bench-password', device_id: deviceId }),
  });
  return ((await r.json()) as { access_token: string }).access_token;
}

async function postJson(base: string, path: string, token: string, body: unknown): Promise<unknown> {
  const r = await fetch(`${base}/_matrix/client/v3${path}`, { method: 'POST', headers: { Authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
  if (r.status !== 200) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  return r.json();
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function keyBenches(base: string, seconds: number, out: Record<string, number>): Promise<void> {
  const whoami = await fetch(`${base}/_matrix/client/v3/account/whoami`, { headers: { Authorization: `Bearer ${await register(base, 'many')}` } });
  const userId = ((await whoami.json()) as { user_id: string }).user_id;
  for (let i = 0; i < 50; i++) {
    const deviceId = `DEV${i}`;
    const token = await login(base, 'many', deviceId);
    await postJson(base, '/keys/upload', token, {
      device_keys: {
        user_id: userId,
        device_id: deviceId,
        algorithms: ['m.olm.v1.curve25519-aes-sha2', 'm.megolm.v1.aes-sha2'],
        keys: { [`curve25519:${deviceId}`]: 'c'.repeat(43), [`ed25519:${deviceId}`]: 'e'.repeat(43) },
        signatures: { [userId]: { [`ed25519:${deviceId}`]: 's'.repeat(86) } },
      },
    });
  }
  const asker = await register(base, 'asker');
  const q = (await postJson(base, '/keys/query', asker, { device_keys: { [userId]: [] } })) as { device_keys: Record<string, object> };
  const devices = Object.keys(q.device_keys[userId] ?? {}).length;
  if (devices !== 50) throw new Error(`keys/query returned ${devices} devices, not 50`);
  const r = await autocannon({
    url: `${base}/_matrix/client/v3/keys/query`,
    method: 'POST',
    headers: { Authorization: `Bearer ${asker}` },
    body: JSON.stringify({ device_keys: { [userId]: [] } }),
    connections: 8,
    duration: seconds,
    workers: 1,
  });
  if (r.non2xx > 0) throw new Error(`${r.non2xx} key queries failed`);
  out['keys/query, 50 devices: requests/s'] = Math.round(r.requests.average);
  out['keys/query, 50 devices: latency p50 ms'] = r.latency.p50;
  out['keys/query, 50 devices: latency p99 ms'] = r.latency.p99;

  // keys/upload of 100 new one-time keys, one request at a time (a client replenishing its pool).
  const uploader = await login(base, 'many', 'DEV0');
  const times: number[] = [];
  for (let round = 0; round < 100; round++) {
    const otks = Object.fromEntries(
      Array.from({ length: 100 }, (_, i) => [`signed_curve25519:${round}_${i}`, { key: 'k'.repeat(43), signatures: { [userId]: { 'ed25519:DEV0': 's'.repeat(86) } } }]),
    );
    const t0 = performance.now();
    await postJson(base, '/keys/upload', uploader, { one_time_keys: otks });
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  out['keys/upload of 100 one-time keys: p50 ms'] = Math.round(percentile(times, 50) * 100) / 100;
  out['keys/upload of 100 one-time keys: p99 ms'] = Math.round(percentile(times, 99) * 100) / 100;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A monolith named 127.0.0.1:<its HTTPS port> that federates with others like it on loopback. */
async function federatingServer(): Promise<{ server: RunningServer; name: string; base: string }> {
  const port = await freePort();
  const name = `127.0.0.1:${port}`;
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-userapi-fed-'));
  const doc = generateConfigDocument({ ci: true, dir, serverName: name }) as Record<string, Record<string, unknown>>;
  doc.logging = [{ type: 'std', level: 'error' }] as unknown as Record<string, unknown>;
  doc.user_api!.bcrypt_cost = 4;
  doc.federation_api!.disable_tls_validation = true;
  doc.federation_api!.deny_networks = [];
  const { keyId, seed } = generateSigningKey();
  writeFileSync(path.join(dir, 'matrix_key.pem'), formatMatrixKeyPem(keyId, seed));
  const tls = await generateTlsMaterial({ hosts: ['127.0.0.1', 'localhost'], keySize: 2048 });
  writeFileSync(path.join(dir, 'tls.crt'), tls.certPem);
  writeFileSync(path.join(dir, 'tls.key'), tls.keyPem);
  const server = await startServer({
    cfg: parseConfig(doc, dir),
    logger: pino({ level: 'error' }),
    httpBind: { host: '127.0.0.1', port: 0 },
    tls: { certFile: path.join(dir, 'tls.crt'), keyFile: path.join(dir, 'tls.key') },
    httpsBind: { host: '127.0.0.1', port },
  });
  return { server, name, base: `http://127.0.0.1:${server.http!.address.port}` };
}

/** Registers `username` and gives them 50 devices with keys; their user ID. */
async function userWith50Devices(base: string, username: string): Promise<string> {
  const whoami = await fetch(`${base}/_matrix/client/v3/account/whoami`, { headers: { Authorization: `Bearer ${await register(base, username)}` } });
  const userId = ((await whoami.json()) as { user_id: string }).user_id;
  for (let i = 0; i < 50; i++) {
    const deviceId = `DEV${i}`;
    await postJson(base, '/keys/upload', await login(base, username, deviceId), {
      device_keys: {
        user_id: userId,
        device_id: deviceId,
        algorithms: ['m.olm.v1.curve25519-aes-sha2', 'm.megolm.v1.aes-sha2'],
        keys: { [`curve25519:${deviceId}`]: 'c'.repeat(43), [`ed25519:${deviceId}`]: 'e'.repeat(43) },
        signatures: { [userId]: { [`ed25519:${deviceId}`]: 's'.repeat(86) } },
      },
    });
  }
  return userId;
}

/** keys/query of a remote user from A, one request at a time: p50 and p99 ms. */
async function remoteQueryLatency(base: string, token: string, userId: string, rounds: number): Promise<{ p50: number; p99: number }> {
  const times: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    const q = (await postJson(base, '/keys/query', token, { device_keys: { [userId]: [] } })) as { device_keys: Record<string, object>; failures: object };
    times.push(performance.now() - t0);
    const n = Object.keys(q.device_keys[userId] ?? {}).length;
    if (n !== 50 || Object.keys(q.failures).length > 0) throw new Error(`remote keys/query returned ${n} devices, failures ${JSON.stringify(q.failures)}`);
  }
  times.sort((a, b) => a - b);
  const round2 = (x: number) => Math.round(x * 100) / 100;
  return { p50: round2(percentile(times, 50)), p99: round2(percentile(times, 99)) };
}

async function remoteKeyBenches(out: Record<string, number>): Promise<void> {
  const [a, b] = await Promise.all([federatingServer(), federatingServer()]);
  try {
    const alice = await register(a.base, 'alice');
    const bob = await userWith50Devices(b.base, 'bob');
    const carol = await userWith50Devices(b.base, 'carol');
    const roomId = ((await postJson(a.base, '/createRoom', alice, { preset: 'public_chat' })) as { room_id: string }).room_id;
    await postJson(b.base, `/join/${encodeURIComponent(roomId)}`, await login(b.base, 'bob', 'DEV0'), {});
    // Wait for A to see bob in the room, then let the first query fetch his list.
    for (let i = 0; ; i++) {
      const { membership } = await a.server.apis.roomserver.queryMembershipForUser({ room_id: roomId, user_id: bob });
      if (membership === 'join') break;
      if (i > 200) throw new Error('bob never joined on A');
      await new Promise((r) => setTimeout(r, 50));
    }
    await remoteQueryLatency(a.base, alice, bob, 5);
    await remoteQueryLatency(a.base, alice, carol, 5);
    const cached = await remoteQueryLatency(a.base, alice, bob, 300);
    const uncached = await remoteQueryLatency(a.base, alice, carol, 300);
    out['remote keys/query, 50 devices, followed list (from our copy): p50 ms'] = cached.p50;
    out['remote keys/query, 50 devices, followed list (from our copy): p99 ms'] = cached.p99;
    out['remote keys/query, 50 devices, not followed (asks the server): p50 ms'] = uncached.p50;
    out['remote keys/query, 50 devices, not followed (asks the server): p99 ms'] = uncached.p99;
  } finally {
    await Promise.all([a.server.shutdown('bench done'), b.server.shutdown('bench done')]);
  }
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
  await withServer(4, (base) => keyBenches(base, seconds, out));
  await remoteKeyBenches(out);
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const [k, v] of Object.entries(await userapiBenches())) console.log(`${k}: ${v}`);
}
