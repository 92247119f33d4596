/**
 * bench/syncapi: /sync and /messages over HTTP on a real monolith (embedded SQLite, in-process
 * bus, CI defaults so registration is open and unthrottled):
 *  - initial /sync latency and response size for a user in 50 rooms with 20 messages each
 *    (default filter: 10 timeline events per room, so each room is `limited`);
 *  - incremental /sync with nothing new (since=next_batch, timeout=0): requests/s and latency
 *    under autocannon (8 connections, 5 s);
 *  - wake-up latency: 20 users long-poll /sync in a shared room, another user sends a message,
 *    time from the send's HTTP 200 until each long-poll returns with that event;
 *  - /messages?dir=b&limit=50 in a room with 1,000 messages.
 * Syncapi consumes room events asynchronously, so each phase first polls /sync until the last
 * event sent is visible.
 * Run: npm run build && node dist/bench/syncapi/main.js
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

const CLIENT = '/_matrix/client/v3';

interface SyncBody {
  next_batch: string;
  rooms?: { join?: Record<string, { timeline?: { events?: Array<{ event_id: string; content?: { body?: unknown } }> } }> };
}

async function withServer<T>(fn: (base: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-syncapi-'));
  const doc = generateConfigDocument({ ci: true, dir }) as Record<string, Record<string, unknown>>;
  doc.logging = [{ type: 'std', level: 'error' }] as unknown as Record<string, unknown>;
  const { keyId, seed } = generateSigningKey();
  writeFileSync(path.join(dir, 'matrix_key.pem'), formatMatrixKeyPem(keyId, seed));
  const server = await startServer({ cfg: parseConfig(doc, dir), logger: pino({ level: 'error' }), httpBind: { host: '127.0.0.1', port: 0 } });
  try {
    return await fn(`http://127.0.0.1:${server.http!.address.port}`);
  } finally {
    await server.shutdown('bench done');
  }
}

class Client {
  constructor(
    readonly base: string,
    readonly token: string,
    readonly userId: string,
  ) {}

  static async register(base: string, username: string): Promise<Client> {
    const r = await fetch(`${base}${CLIENT}/register`, { method: 'POST', body: JSON.stringify({ auth: { type: 'm.login.dummy' }, username, password: 'bench-password' }) });
    if (r.status !== 200) throw new Error(`register ${username}: ${r.status} ${await r.text()}`);
    const body = (await r.json()) as { access_token: string; user_id: string };
    return new Client(base, body.access_token, body.user_id);
  }

  async request(method: string, p: string, body?: unknown): Promise<unknown> {
    const r = await fetch(`${this.base}${CLIENT}${p}`, {
      method,
      headers: { Authorization: `Bearer ${this.token}` },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    if (r.status !== 200) throw new Error(`${method} ${p}: ${r.status} ${await r.text()}`);
    return r.json();
  }

  async createRoom(): Promise<string> {
    return ((await this.request('POST', '/createRoom', { preset: 'public_chat' })) as { room_id: string }).room_id;
  }

  async join(roomId: string): Promise<void> {
    await this.request('POST', `/rooms/${encodeURIComponent(roomId)}/join`, {});
  }

  private txn = 0;
  async send(roomId: string, body: string): Promise<string> {
    const p = `/rooms/${encodeURIComponent(roomId)}/send/m.room.message/bench${++this.txn}`;
    return ((await this.request('PUT', p, { msgtype: 'm.text', body })) as { event_id: string }).event_id;
  }

  syncPath(query: Record<string, string>): string {
    return `${CLIENT}/sync?${new URLSearchParams(query).toString()}`;
  }

  /** Raw GET of a path under the server, with the response text. */
  async getText(p: string, signal?: AbortSignal): Promise<string> {
    const r = await fetch(`${this.base}${p}`, { headers: { Authorization: `Bearer ${this.token}` }, ...(signal ? { signal } : {}) });
    const text = await r.text();
    if (r.status !== 200) throw new Error(`GET ${p}: ${r.status} ${text}`);
    return text;
  }

  async sync(query: Record<string, string>): Promise<SyncBody> {
    return JSON.parse(await this.getText(this.syncPath(query))) as SyncBody;
  }

  /** Polls a one-room initial /sync until `eventId` is in the room's timeline. */
  async waitForEvent(roomId: string, eventId: string, deadlineMs = 30_000): Promise<void> {
    const filter = JSON.stringify({ room: { rooms: [roomId], timeline: { limit: 5 } }, presence: { types: [] }, account_data: { types: [] } });
    const until = Date.now() + deadlineMs;
    for (;;) {
      const s = await this.sync({ filter });
      if (timelineIds(s, roomId).includes(eventId)) return;
      if (Date.now() > until) throw new Error(`${this.userId}: ${eventId} not in /sync of ${roomId} after ${deadlineMs} ms`);
      await new Promise((res) => setTimeout(res, 20));
    }
  }
}

function timelineIds(s: SyncBody, roomId: string): string[] {
  return (s.rooms?.join?.[roomId]?.timeline?.events ?? []).map((e) => e.event_id);
}

function timelineBodies(s: SyncBody, roomId: string): unknown[] {
  return (s.rooms?.join?.[roomId]?.timeline?.events ?? []).map((e) => e.content?.body);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

function summarize(out: Record<string, number>, prefix: string, times: number[]): void {
  times.sort((a, b) => a - b);
  out[`${prefix}_p50_ms`] = round2(percentile(times, 50));
  out[`${prefix}_p99_ms`] = round2(percentile(times, 99));
}

/** Phases 1 and 2: initial /sync of 50 rooms x 20 messages, then incremental /sync with nothing new. */
async function manyRooms(base: string, out: Record<string, number>, seconds: number): Promise<void> {
  const creator = await Client.register(base, 'creator');
  const syncer = await Client.register(base, 'syncer');
  const t0 = performance.now();
  const rooms: string[] = [];
  let lastRoom = '';
  let lastEvent = '';
  for (let r = 0; r < 50; r++) {
    const roomId = await creator.createRoom();
    await syncer.join(roomId);
    for (let m = 0; m < 20; m++) lastEvent = await creator.send(roomId, `message ${m} in room ${r}`);
    rooms.push(roomId);
    lastRoom = roomId;
  }
  await syncer.waitForEvent(lastRoom, lastEvent);
  out['setup_50_rooms_x_20_messages_s'] = round2((performance.now() - t0) / 1000);

  const syncPath = syncer.syncPath({ timeout: '0' });
  const times: number[] = [];
  let size = 0;
  let first: SyncBody | undefined;
  for (let i = 0; i < 30; i++) {
    const s = performance.now();
    const text = await syncer.getText(syncPath);
    times.push(performance.now() - s);
    size = Buffer.byteLength(text);
    first ??= JSON.parse(text) as SyncBody;
  }
  const joined = Object.keys(first!.rooms?.join ?? {}).length;
  if (joined !== 50) throw new Error(`initial /sync returned ${joined} joined rooms, not 50`);
  if (!timelineIds(first!, lastRoom).includes(lastEvent)) throw new Error('initial /sync is missing the last message');
  summarize(out, 'initial_sync_50_rooms', times);
  out['initial_sync_50_rooms_bytes'] = size;

  // Incremental: nothing happens after next_batch, so every response is empty.
  const since = first!.next_batch;
  const check = await syncer.sync({ since, timeout: '0' });
  if (Object.keys(check.rooms?.join ?? {}).length !== 0) throw new Error(`incremental /sync is not empty: ${JSON.stringify(check).slice(0, 300)}`);
  const r = await autocannon({
    url: `${base}${syncer.syncPath({ since, timeout: '0' })}`,
    headers: { Authorization: `Bearer ${syncer.token}` },
    connections: 8,
    duration: seconds,
    workers: 1,
  });
  if (r.non2xx > 0 || r.errors > 0) throw new Error(`incremental /sync: ${r.non2xx} non-2xx, ${r.errors} errors`);
  out['incremental_sync_empty_requests_per_s'] = Math.round(r.requests.average);
  out['incremental_sync_empty_p50_ms'] = r.latency.p50;
  out['incremental_sync_empty_p99_ms'] = r.latency.p99;
}

/** Phase 3: 20 long-pollers in one room, woken by a message from another user. */
async function wakeUp(base: string, out: Record<string, number>): Promise<void> {
  const sender = await Client.register(base, 'sender');
  const roomId = await sender.createRoom();
  const pollers: Client[] = [];
  for (let i = 0; i < 20; i++) {
    const c = await Client.register(base, `poller${i}`);
    await c.join(roomId);
    pollers.push(c);
  }
  const settle = await sender.send(roomId, 'settle');
  const since = new Map<Client, string>();
  for (const c of pollers) {
    await c.waitForEvent(roomId, settle);
    since.set(c, (await c.sync({ timeout: '0' })).next_batch);
  }
  // Drain anything that arrived after those tokens (e.g. presence) so the first round starts quiet.
  for (const c of pollers) since.set(c, (await c.sync({ since: since.get(c)!, timeout: '0' })).next_batch);

  const wake: number[] = [];
  let extraWakes = 0;
  for (let round = 0; round < 20; round++) {
    const marker = `wake ${round}`;
    const polls = pollers.map(async (c) => {
      // Keep polling until the round's event shows up; an early return for something else counts as an extra wake.
      for (;;) {
        const s = JSON.parse(await c.getText(c.syncPath({ since: since.get(c)!, timeout: '30000' }))) as SyncBody;
        const done = performance.now();
        since.set(c, s.next_batch);
        // Matched by body: a poll may return before the send's own response does.
        if (timelineBodies(s, roomId).includes(marker)) return done;
        extraWakes++;
      }
    });
    // Give every long-poll time to reach the server and start waiting.
    await new Promise((res) => setTimeout(res, 150));
    await sender.send(roomId, marker);
    const sentAt = performance.now();
    for (const done of await Promise.all(polls)) wake.push(done - sentAt);
  }
  summarize(out, 'wakeup_20_longpolls', wake);
  out['wakeup_20_longpolls_max_ms'] = round2(Math.max(...wake));
  out['wakeup_20_longpolls_early_returns'] = extraWakes;
}

/** Phase 4: /messages backwards, 50 events, in a room with 1,000 messages. */
async function messages(base: string, out: Record<string, number>): Promise<void> {
  const author = await Client.register(base, 'author');
  const roomId = await author.createRoom();
  const t0 = performance.now();
  let last = '';
  for (let i = 0; i < 1000; i++) last = await author.send(roomId, `history ${i}`);
  await author.waitForEvent(roomId, last);
  out['setup_1000_messages_s'] = round2((performance.now() - t0) / 1000);

  const p = `${CLIENT}/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=50`;
  const times: number[] = [];
  for (let i = 0; i < 50; i++) {
    const s = performance.now();
    const text = await author.getText(p);
    times.push(performance.now() - s);
    if (i === 0) {
      const chunk = (JSON.parse(text) as { chunk: Array<{ event_id: string }> }).chunk;
      if (chunk.length !== 50 || chunk[0]!.event_id !== last) throw new Error(`/messages returned ${chunk.length} events, newest ${chunk[0]?.event_id} (want 50, ${last})`);
    }
  }
  summarize(out, 'messages_backwards_50_of_1000', times);
}

export async function syncapiBenches(seconds = 5): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  await withServer(async (base) => {
    await manyRooms(base, out, seconds);
    await wakeUp(base, out);
    await messages(base, out);
  });
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const [k, v] of Object.entries(await syncapiBenches())) console.log(`${k}: ${v}`);
}
