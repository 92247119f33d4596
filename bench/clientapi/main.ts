/**
 * bench/clientapi: PUT /rooms/{roomId}/send/m.room.message/{txnId} over HTTP on a real monolith
 * (CI defaults: open registration, no rate limits, presence on, in-process bus), once on SQLite
 * and once on PostgreSQL (a fresh database, dropped afterwards). Clients talk to it over loopback
 * through keep-alive node:http agents (bench/syncapi/client.ts), one socket per user.
 *
 * BENCH_CLIENTAPI_USERS users (10) each send BENCH_CLIENTAPI_MESSAGES messages (200) one after
 * another, all users at once:
 *   - one_room: every user in the same room (the roomserver orders one room's events one at a time);
 *   - ten_rooms: the users spread round-robin over BENCH_CLIENTAPI_ROOMS rooms (10: a room each).
 * Before each phase every user sends BENCH_CLIENTAPI_WARMUP messages (10) into the phase's rooms,
 * not counted, and the bench waits until syncapi has seen them, so that a phase does not pay for
 * the previous phase's backlog. Figures per phase: messages/s = all messages / (start until the
 * last PUT's 200), the latency of each PUT (p50/p99/max ms), and how long after the last 200 a
 * /sync first shows the last message (the asynchronous consumers catching up).
 * BENCH_CLIENTAPI_DATABASES (sqlite,postgres) picks databases.
 * Run: npm run bench -- clientapi  (or: npm run build && node dist/bench/clientapi/main.js)
 */
import { pathToFileURL } from 'node:url';
import { envInt, percentile, round2, withBenchServer, withPostgresDatabase } from '../common.js';
import { Client, Http } from '../syncapi/client.js';

function progress(text: string): void {
  process.stderr.write(`  [clientapi] ${text}\n`);
}

interface Phase {
  name: string;
  rooms: number;
}

/** Each user sends `perUser` messages one after another into its room, all users at once: the PUT latencies and the wall time. */
async function sendAll(users: readonly Client[], roomOf: readonly string[], perUser: number, tag: string): Promise<{ latencies: number[]; seconds: number; lastIds: Map<string, { client: Client; eventId: string; at: number }> }> {
  const latencies: number[] = [];
  const lastIds = new Map<string, { client: Client; eventId: string; at: number }>();
  const start = performance.now();
  await Promise.all(
    users.map(async (u, i) => {
      const roomId = roomOf[i]!;
      for (let k = 0; k < perUser; k++) {
        const s = performance.now();
        const eventId = await u.send(roomId, `${tag} ${k} from user ${i}`);
        const done = performance.now();
        latencies.push(done - s);
        // The newest 200 per room: what /sync must show for the room to have caught up.
        const prev = lastIds.get(roomId);
        if (!prev || prev.at < done) lastIds.set(roomId, { client: u, eventId, at: done });
      }
    }),
  );
  return { latencies, seconds: (performance.now() - start) / 1000, lastIds };
}

/** Waits until every room's newest message is visible to its sender in /sync; the ms from the last 200 until then. */
async function catchUp(lastIds: Map<string, { client: Client; eventId: string; at: number }>): Promise<number> {
  const last = Math.max(...[...lastIds.values()].map((v) => v.at));
  await Promise.all([...lastIds].map(([roomId, v]) => v.client.waitForEvent(roomId, v.eventId)));
  return performance.now() - last;
}

async function measure(base: string, label: string, out: Record<string, number>): Promise<void> {
  const nUsers = envInt('BENCH_CLIENTAPI_USERS', 10);
  const perUser = envInt('BENCH_CLIENTAPI_MESSAGES', 200);
  const warmup = envInt('BENCH_CLIENTAPI_WARMUP', 10, 0);
  const tenRooms = envInt('BENCH_CLIENTAPI_ROOMS', 10);
  const http = new Http(base, nUsers + 8);
  try {
    const users: Client[] = [];
    for (let i = 0; i < nUsers; i++) users.push(await Client.register(http, `sender${i}`));
    const phases: Phase[] = [
      { name: 'one_room', rooms: 1 },
      { name: `${tenRooms === 10 ? 'ten' : tenRooms}_rooms`, rooms: tenRooms },
    ];
    for (const phase of phases) {
      // Room r is created by user r and joined by the users sent into it (round-robin).
      const rooms: string[] = [];
      for (let r = 0; r < phase.rooms; r++) rooms.push(await users[r % nUsers]!.createRoom());
      const roomOf = users.map((_, i) => rooms[i % phase.rooms]!);
      for (let i = 0; i < nUsers; i++) if (i >= phase.rooms) await users[i]!.join(roomOf[i]!);
      if (warmup > 0) await catchUp((await sendAll(users, roomOf, warmup, 'warmup')).lastIds);

      progress(`${label} ${phase.name}: ${nUsers} users x ${perUser} messages into ${phase.rooms} room(s)`);
      const { latencies, seconds, lastIds } = await sendAll(users, roomOf, perUser, phase.name);
      const behind = await catchUp(lastIds);
      latencies.sort((a, b) => a - b);
      const p = `${label}_${phase.name}`;
      out[`${p}_messages`] = latencies.length;
      out[`${p}_messages_per_s`] = Math.round(latencies.length / seconds);
      out[`${p}_send_p50_ms`] = round2(percentile(latencies, 50));
      out[`${p}_send_p99_ms`] = round2(percentile(latencies, 99));
      out[`${p}_send_max_ms`] = round2(latencies.at(-1)!);
      out[`${p}_sync_caught_up_after_last_200_ms`] = Math.round(behind);
      progress(`${label} ${phase.name}: ${out[`${p}_messages_per_s`]} messages/s, p50 ${out[`${p}_send_p50_ms`]} ms, p99 ${out[`${p}_send_p99_ms`]} ms`);
    }
  } finally {
    http.close();
  }
}

export async function clientapiBenches(): Promise<Record<string, number>> {
  const databases = (process.env['BENCH_CLIENTAPI_DATABASES'] ?? 'sqlite,postgres').split(',').map((s) => s.trim());
  for (const d of databases) if (d !== 'sqlite' && d !== 'postgres') throw new Error(`BENCH_CLIENTAPI_DATABASES: unknown database "${d}" (known: sqlite, postgres)`);
  const out: Record<string, number> = {};
  if (databases.includes('sqlite')) await withBenchServer('clientapi', {}, (base) => measure(base, 'sqlite', out));
  if (databases.includes('postgres')) await withPostgresDatabase('clientapi', (db) => withBenchServer('clientapi', { db }, (base) => measure(base, 'postgres', out)));
  console.log('(messages_per_s: messages / (first PUT /send until the last one\'s 200), each user sending one after another, all users at once; send_*_ms: latency of each PUT; sync_caught_up_after_last_200_ms: from the last 200 until /sync shows the newest message of every room)');
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const [k, v] of Object.entries(await clientapiBenches())) console.log(`${k}: ${v}`);
}
