/**
 * bench/relations: relations and bundled aggregations on a real monolith, once on SQLite and
 * once on PostgreSQL (CI defaults, in-process bus):
 *  - GET /v1/rooms/{roomId}/relations/{eventId} for a parent with 1,000 children (thread
 *    replies from two users): the first page of 50 (all children, `/m.thread`, `recurse=true`),
 *    all 1,000 in one page, and paging through all of them 50 at a time (p50/p99 ms);
 *  - the cost of bundling aggregations on a /messages page of 50 events: the page of 50 thread
 *    roots (each with 3 thread replies and 1 reference) against the same page shape in a room
 *    without relations (p50/p99 ms; the difference is the bundling);
 *  - Aggregations.bundle() in process on those 50 roots, and on 50 roots that also have an edit
 *    each: ms per call, SQL statements per call and roomserver visibility calls per call, and
 *    the same for 10 roots (the counts must not grow with the page: no query per event);
 *  - the roomserver's history visibility check of 50 events alone, for comparison.
 * Run: npm run bench -- relations
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { withPostgresDatabase } from '../common.js';
import type { Kysely } from 'kysely';
import pino from 'pino';
import { formatMatrixKeyPem, generateSigningKey } from '../../internal/matrix/index.js';
import { connectDatabase } from '../../internal/sqlutil/index.js';
import type { RoomserverInternalAPI } from '../../roomserver/api/index.js';
import { parseConfig, databaseFor, type Config } from '../../setup/config/config.js';
import { generateConfigDocument } from '../../setup/config/generate.js';
import { startServer, type RunningServer } from '../../setup/server.js';
import { Aggregations } from '../../syncapi/internal/aggregations.js';
import { clientEvent } from '../../syncapi/internal/clientevent.js';
import { RelationsStore } from '../../syncapi/storage/relations.js';
import { SyncStore } from '../../syncapi/storage/syncstore.js';
import type { SyncapiDatabase } from '../../syncapi/storage/tables.js';
import type { UserInternalAPI } from '../../userapi/api/index.js';

const CLIENT = '/_matrix/client';
const CHILDREN = 1000;
const ROOTS = 50;
const REQUESTS = 100;

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
const round2 = (n: number) => Math.round(n * 100) / 100;

function summarize(out: Record<string, number>, key: string, times: number[]): void {
  times.sort((a, b) => a - b);
  out[`${key} p50 ms`] = round2(percentile(times, 50));
  out[`${key} p99 ms`] = round2(percentile(times, 99));
}

class Client {
  private txn = 0;
  constructor(
    readonly base: string,
    readonly token: string,
    readonly userId: string,
  ) {}

  static async register(base: string, username: string): Promise<Client> {
    const r = await fetch(`${base}${CLIENT}/v3/register`, { method: 'POST', body: JSON.stringify({ auth: { type: 'm.login.dummy' }, username, password: 'bench-password' }) });
    if (r.status !== 200) throw new Error(`register ${username}: ${r.status} ${await r.text()}`);
    const body = (await r.json()) as { access_token: string; user_id: string };
    return new Client(base, body.access_token, body.user_id);
  }

  async request<T>(method: string, p: string, body?: unknown): Promise<T> {
    const r = await fetch(`${this.base}${CLIENT}${p}`, { method, headers: { Authorization: `Bearer ${this.token}` }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    const text = await r.text();
    if (r.status !== 200) throw new Error(`${method} ${p}: ${r.status} ${text}`);
    return JSON.parse(text) as T;
  }

  async createRoom(): Promise<string> {
    return (await this.request<{ room_id: string }>('POST', '/v3/createRoom', { preset: 'public_chat' })).room_id;
  }

  async join(roomId: string): Promise<void> {
    await this.request('POST', `/v3/rooms/${encodeURIComponent(roomId)}/join`, {});
  }

  async send(roomId: string, content: Record<string, unknown>, type = 'm.room.message'): Promise<string> {
    return (await this.request<{ event_id: string }>('PUT', `/v3/rooms/${encodeURIComponent(roomId)}/send/${type}/b${++this.txn}`, content)).event_id;
  }

  /** Waits until syncapi has processed everything sent to the room so far (in order per room). */
  async flush(roomId: string): Promise<void> {
    const marker = await this.send(roomId, {}, 'org.example.marker');
    const until = Date.now() + 120_000;
    for (;;) {
      const r = await fetch(`${this.base}${CLIENT}/v3/rooms/${encodeURIComponent(roomId)}/event/${encodeURIComponent(marker)}`, { headers: { Authorization: `Bearer ${this.token}` } });
      await r.text();
      if (r.status === 200) return;
      if (Date.now() > until) throw new Error('syncapi did not catch up');
      await new Promise((res) => setTimeout(res, 20));
    }
  }
}

const text = (body: string) => ({ msgtype: 'm.text', body });
const related = (body: string, relType: string, eventId: string) => ({ ...text(body), 'm.relates_to': { rel_type: relType, event_id: eventId } });

/** Runs `count` sends, `concurrency` at a time (children of one parent: their order does not matter). */
async function sendMany(count: number, concurrency: number, send: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count) await send(next++);
  }));
}

async function timeGets(c: Client, p: string, n: number, check?: (body: unknown) => void): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    const body = await c.request<unknown>('GET', p);
    times.push(performance.now() - s);
    if (i === 0) check?.(body);
  }
  return times;
}

async function measure(server: RunningServer, cfg: Config, baseDir: string, label: string, out: Record<string, number>): Promise<void> {
  const base = `http://127.0.0.1:${server.http!.address.port}`;
  const alice = await Client.register(base, 'alice');
  const bob = await Client.register(base, 'bob');

  // 1. A parent with 1,000 children.
  let t0 = performance.now();
  const big = await alice.createRoom();
  await bob.join(big);
  const parent = await alice.send(big, text('parent'));
  await sendMany(CHILDREN, 4, (i) => (i % 2 === 0 ? alice : bob).send(big, related(`child ${i}`, 'm.thread', parent)));
  await alice.flush(big);
  out[`${label}: setup, 1,000 children s`] = round2((performance.now() - t0) / 1000);
  const rel = `/v1/rooms/${encodeURIComponent(big)}/relations/${encodeURIComponent(parent)}`;
  const expectChunk = (n: number) => (body: unknown) => {
    const got = (body as { chunk: unknown[] }).chunk.length;
    if (got !== n) throw new Error(`/relations gave ${got} events, not ${n}`);
  };
  summarize(out, `${label}: /relations first page of 50 (of 1,000)`, await timeGets(alice, `${rel}?limit=50`, REQUESTS, expectChunk(50)));
  summarize(out, `${label}: /relations/m.thread first page of 50`, await timeGets(alice, `${rel}/m.thread?limit=50`, REQUESTS, expectChunk(50)));
  summarize(out, `${label}: /relations recurse=true first page of 50`, await timeGets(alice, `${rel}?limit=50&recurse=true`, REQUESTS, expectChunk(50)));
  summarize(out, `${label}: /relations all 1,000 in one page`, await timeGets(alice, `${rel}?limit=1000`, 10, expectChunk(CHILDREN)));
  const walks: number[] = [];
  for (let round = 0; round < 5; round++) {
    const s = performance.now();
    let from: string | undefined;
    let seen = 0;
    do {
      const page: { chunk: unknown[]; next_batch?: string } = await alice.request('GET', `${rel}?limit=50${from ? `&from=${encodeURIComponent(from)}` : ''}`);
      seen += page.chunk.length;
      from = page.next_batch;
    } while (from);
    walks.push(performance.now() - s);
    if (seen !== CHILDREN) throw new Error(`paging gave ${seen} children`);
  }
  summarize(out, `${label}: /relations paging through 1,000, 20 pages of 50, whole walk`, walks);

  // 2. /messages pages of 50 thread roots, with and without relations.
  t0 = performance.now();
  const threaded = await alice.createRoom();
  const plain = await alice.createRoom();
  await bob.join(threaded);
  await bob.join(plain);
  const roots: string[] = [];
  for (let i = 0; i < ROOTS; i++) roots.push(await alice.send(threaded, text(`root ${i}`)));
  for (let i = 0; i < ROOTS; i++) await alice.send(plain, text(`root ${i}`));
  await sendMany(ROOTS * 4, 4, (i) => {
    const root = roots[Math.floor(i / 4)]!;
    return i % 4 === 3 ? bob.send(threaded, related('see this', 'm.reference', root)) : bob.send(threaded, related(`reply ${i}`, 'm.thread', root));
  });
  await sendMany(ROOTS * 4, 4, (i) => bob.send(plain, text(`chatter ${i}`)));
  await alice.flush(threaded);
  await alice.flush(plain);
  out[`${label}: setup, 2 rooms of 50 roots + 200 events s`] = round2((performance.now() - t0) / 1000);
  const filter = encodeURIComponent(JSON.stringify({ senders: [alice.userId], types: ['m.room.message'] }));
  const page = (roomId: string) => `/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=50&filter=${filter}`;
  const bundled = (want: boolean) => (body: unknown) => {
    const chunk = (body as { chunk: Array<{ unsigned?: Record<string, unknown> }> }).chunk;
    const withBundle = chunk.filter((e) => e.unsigned?.['m.relations'] !== undefined).length;
    if (chunk.length !== ROOTS || withBundle !== (want ? ROOTS : 0)) throw new Error(`/messages gave ${chunk.length} events, ${withBundle} with bundles`);
  };
  const withRel = await timeGets(alice, page(threaded), REQUESTS, bundled(true));
  const without = await timeGets(alice, page(plain), REQUESTS, bundled(false));
  summarize(out, `${label}: /messages 50 thread roots (3 replies + 1 reference each), bundled`, withRel);
  summarize(out, `${label}: /messages 50 events, no relations`, without);
  out[`${label}: /messages bundling cost, p50 difference ms`] = round2(percentile(withRel, 50) - percentile(without, 50));

  // 3. Aggregations.bundle() in process: time, SQL statements and roomserver calls per call.
  for (let i = 0; i < ROOTS; i++) await alice.send(threaded, { ...text(`root ${i}, edited`), 'm.new_content': text(`root ${i}, edited`), 'm.relates_to': { rel_type: 'm.replace', event_id: roots[i] } });
  await alice.flush(threaded);
  let statements = 0;
  const opened = await connectDatabase<SyncapiDatabase>(databaseFor(cfg, 'syncapi').connectionString, { baseDir, logger: { trace: () => void statements++, debug: () => {}, warn: () => {} } });
  try {
    let visibilityCalls = 0;
    const rs = server.apis.roomserver as RoomserverInternalAPI;
    const counted: Pick<RoomserverInternalAPI, 'queryVisibleEvents'> = { queryVisibleEvents: (r) => (visibilityCalls++, rs.queryVisibleEvents(r)) };
    const aggregations = new Aggregations(new RelationsStore(opened.db as Kysely<SyncapiDatabase>), counted, server.apis.userapi as UserInternalAPI);
    const events = await new SyncStore(opened.db as Kysely<SyncapiDatabase>).events(roots);
    // What the roomserver's history visibility check of 50 events costs on its own (bundles and /relations pages make one such call).
    const visTimes: number[] = [];
    for (let i = 0; i < REQUESTS; i++) {
      const s = performance.now();
      await rs.queryVisibleEvents({ event_ids: roots, user_id: alice.userId });
      visTimes.push(performance.now() - s);
    }
    summarize(out, `${label}: roomserver queryVisibleEvents, 50 events`, visTimes);
    for (const n of [10, ROOTS]) {
      const times: number[] = [];
      let perCall = { sql: 0, visibility: 0 };
      for (let i = 0; i < REQUESTS; i++) {
        const targets = events.slice(0, n).map((e) => ({ event: e, json: clientEvent(e) }));
        statements = 0;
        visibilityCalls = 0;
        const s = performance.now();
        await aggregations.bundle(alice.userId, targets, { ignored: new Set() });
        times.push(performance.now() - s);
        perCall = { sql: statements, visibility: visibilityCalls };
        const rels = targets[0]!.json['unsigned'] as Record<string, Record<string, unknown>> | undefined;
        if (!rels?.['m.relations']?.['m.replace'] || !rels['m.relations']['m.thread']) throw new Error('bundle() left out the edit or the thread');
      }
      summarize(out, `${label}: bundle() ${n} roots (thread, reference, edit)`, times);
      out[`${label}: bundle() ${n} roots, SQL statements per call`] = perCall.sql;
      out[`${label}: bundle() ${n} roots, roomserver visibility calls per call`] = perCall.visibility;
    }
  } finally {
    await opened.close();
  }
}

function configFor(dir: string, db?: string): Config {
  const doc = generateConfigDocument({ ci: true, dir, ...(db ? { db } : {}) }) as Record<string, Record<string, unknown>>;
  doc.logging = [{ type: 'std', level: 'error' }] as unknown as Record<string, unknown>;
  const { keyId, seed } = generateSigningKey();
  writeFileSync(path.join(dir, 'matrix_key.pem'), formatMatrixKeyPem(keyId, seed));
  return parseConfig(doc, dir);
}

async function withServer(cfg: Config, fn: (server: RunningServer) => Promise<void>): Promise<void> {
  const server = await startServer({ cfg, logger: pino({ level: 'error' }), httpBind: { host: '127.0.0.1', port: 0 } });
  try {
    await fn(server);
  } finally {
    await server.shutdown('bench done');
  }
}

export async function relationsBenches(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-relations-'));
  const sqliteCfg = configFor(dir);
  await withServer(sqliteCfg, (server) => measure(server, sqliteCfg, dir, 'SQLite', out));

  await withPostgresDatabase('relations', async (db) => {
    const pgDir = mkdtempSync(path.join(tmpdir(), 'bench-relations-pg-'));
    const pgCfg = configFor(pgDir, db);
    await withServer(pgCfg, (server) => measure(server, pgCfg, pgDir, 'PostgreSQL', out));
  });
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const [k, v] of Object.entries(await relationsBenches())) console.log(`${k}: ${v}`);
}
