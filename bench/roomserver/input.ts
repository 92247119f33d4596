/**
 * bench/roomserver input: events/s through the input pipeline (auth, state, storage, outbox),
 * (a) one busy room, events submitted one by one (a client's sends), (b) the same with 50 events
 * per request (a federation transaction: one database transaction per request), (c) 100 rooms at
 * once, on SQLite and PostgreSQL. Events are built and signed before timing; outputs go to a
 * no-op publisher. Also: the SQL statements (round trips) per event of (a), counted apart, and
 * the disk bytes per stored message and per state change (a join) in a room of 1,000 members.
 * Run: npm run build && node dist/bench/roomserver/input.js
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { withPostgresDatabase } from '../common.js';
import { sql, type Kysely } from 'kysely';
import pino from 'pino';
import { connectDatabase, runMigrations, type OpenedDatabase, type QueryLogger } from '../../internal/sqlutil/index.js';
import type { InputRoomEvent } from '../../roomserver/api/index.js';
import { EventLoader } from '../../roomserver/internal/eventloader.js';
import { Inputer } from '../../roomserver/internal/input/inputer.js';
import { TestRoom } from '../../roomserver/internal/input/testroom.js';
import { EventStore } from '../../roomserver/storage/eventstore.js';
import { roomserverMigrations } from '../../roomserver/storage/migrations.js';
import { StateSnapshotStore } from '../../roomserver/storage/statesnapshots.js';
import type { RoomserverDatabase } from '../../roomserver/storage/tables.js';

/** A room's start, then `n` events: every tenth a member joining, the rest messages. */
function roomEvents(n: number): InputRoomEvent[] {
  const room = new TestRoom('10');
  const events = room.start();
  let last = events.at(-1)!.eventId;
  for (let i = 0; i < n; i++) {
    const e =
      i % 10 === 0
        ? room.build({ type: 'm.room.member', state_key: `@u${i}:hs.test`, sender: `@u${i}:hs.test`, content: { membership: 'join' } }, [last])
        : room.build({ type: 'm.room.message', sender: room.creator, content: { body: `message ${i}` } }, [last]);
    events.push(e);
    last = e.eventId;
  }
  return events.map((e) => room.input(e));
}

function inputerOver(opened: OpenedDatabase<unknown>): Inputer {
  const db = opened.db as unknown as Kysely<RoomserverDatabase>;
  const events = new EventStore(db);
  return new Inputer({ serverName: 'hs.test', events, snapshots: new StateSnapshotStore(db), loader: new EventLoader(events), log: pino({ level: 'silent' }), publish: async () => {} });
}

/**
 * SQL statements per event (BEGIN and COMMIT included) in a busy room, one event per request,
 * counted on a second handle with a query log: a separate room, so the timings above are not
 * disturbed by the counting.
 */
async function statementsPerEvent(open: (logger: QueryLogger) => Promise<OpenedDatabase<unknown>>): Promise<number> {
  let count = 0;
  const counting = await open({ trace: () => void count++, debug: () => {}, warn: () => {} });
  try {
    const inputer = inputerOver(counting);
    const all = roomEvents(500);
    // The room's start (its create event, first names and so on) is not counted.
    for (const e of all.slice(0, 10)) await inputer.input([e]);
    const counted = all.slice(10);
    count = 0;
    for (const e of counted) {
      const [r] = await inputer.input([e]);
      if (r!.status !== 'accepted') throw new Error(`${r!.status}: ${r!.error}`);
    }
    // Published outputs leave the outbox with the next request or a flush shortly after: count that too.
    await inputer.flushOutbox();
    return Math.round((count / counted.length) * 100) / 100;
  } finally {
    await counting.close();
  }
}

async function measure(opened: OpenedDatabase<unknown>, label: string, out: Record<string, number>, open: (logger: QueryLogger) => Promise<OpenedDatabase<unknown>>): Promise<void> {
  await runMigrations(opened.db, opened.dialect, 'roomserver', roomserverMigrations);
  const inputer = inputerOver(opened);

  const busy = roomEvents(2000);
  let t = performance.now();
  // One room: each event submitted on its own, as a client's sends are.
  for (const e of busy) {
    const [r] = await inputer.input([e]);
    if (r!.status !== 'accepted') throw new Error(`${r!.status}: ${r!.error}`);
  }
  out[`${label}: one room, events/s`] = Math.round(busy.length / ((performance.now() - t) / 1000));

  // One room again, 50 events per request, as federation /send submits a transaction's PDUs.
  const batched = roomEvents(2000);
  t = performance.now();
  for (let i = 0; i < batched.length; i += 50) {
    for (const r of await inputer.input(batched.slice(i, i + 50))) if (r.status !== 'accepted') throw new Error(`${r.status}: ${r.error}`);
  }
  out[`${label}: one room, 50 events per request, events/s`] = Math.round(batched.length / ((performance.now() - t) / 1000));

  const rooms = Array.from({ length: 100 }, () => roomEvents(40));
  t = performance.now();
  const results = await Promise.all(rooms.map(async (evs) => {
    for (const e of evs) {
      const [r] = await inputer.input([e]);
      if (r!.status !== 'accepted') throw new Error(`${r!.status}: ${r!.error}`);
    }
  }));
  void results;
  const total = rooms.reduce((n, r) => n + r.length, 0);
  out[`${label}: 100 rooms at once, events/s`] = Math.round(total / ((performance.now() - t) / 1000));

  // A fork: two branches each set the same 250 state keys (500 conflicting state events),
  // then one event merges them: its state before needs state resolution over all of them.
  const room = new TestRoom('10');
  const start = room.start();
  const branch = (tag: string): string[] => {
    let last = start.at(-1)!.eventId;
    const ids: string[] = [];
    for (let i = 0; i < 250; i++) {
      const e = room.build({ type: 'org.bench.state', state_key: `k${i}`, sender: room.creator, content: { v: `${tag}${i}` } }, [last]);
      forkEvents.push(e);
      ids.push(e.eventId);
      last = e.eventId;
    }
    return ids;
  };
  const forkEvents = [...start];
  const a = branch('a');
  const b = branch('b');
  for (const e of forkEvents) {
    const [r] = await inputer.input([room.input(e)]);
    if (r!.status !== 'accepted') throw new Error(`${r!.status}: ${r!.error}`);
  }
  const merge = room.build({ type: 'm.room.message', sender: room.creator, content: { body: 'merge' } }, [a.at(-1)!, b.at(-1)!]);
  t = performance.now();
  const [merged] = await inputer.input([room.input(merge)]);
  if (merged!.status !== 'accepted') throw new Error(`${merged!.status}: ${merged!.error}`);
  out[`${label}: merge of a fork over 500 conflicting state events, ms`] = Math.round(performance.now() - t);
  out[`${label}: one room, SQL statements per event`] = await statementsPerEvent(open);
  await diskBytes(opened, inputer, label, out);
}

/** The database's size on disk, in bytes (SQLite: after folding the WAL into the file). */
async function dbSize(opened: OpenedDatabase<unknown>): Promise<number> {
  if (opened.dialect === 'postgres') {
    return Number((await sql<{ s: string }>`SELECT pg_database_size(current_database()) AS s`.execute(opened.db)).rows[0]!.s);
  }
  await sql`PRAGMA wal_checkpoint(TRUNCATE)`.execute(opened.db);
  const pages = Number((await sql<{ page_count: number }>`PRAGMA page_count`.execute(opened.db)).rows[0]!.page_count);
  const size = Number((await sql<{ page_size: number }>`PRAGMA page_size`.execute(opened.db)).rows[0]!.page_size);
  return pages * size;
}

/**
 * Disk bytes per stored event and per state change in a room of 1,000 members: the room is
 * built (1,000 joins, 50 events per request), then 1,000 more messages and 200 more joins go
 * in one by one, and the database's growth is divided by their number.
 */
async function diskBytes(opened: OpenedDatabase<unknown>, inputer: Inputer, label: string, out: Record<string, number>): Promise<void> {
  const room = new TestRoom('10');
  const setup = room.start();
  let last = setup.at(-1)!.eventId;
  const join = (i: number) => {
    const e = room.build({ type: 'm.room.member', state_key: `@m${i}:hs.test`, sender: `@m${i}:hs.test`, content: { membership: 'join' } }, [last]);
    last = e.eventId;
    return e;
  };
  for (let i = 0; i < 1000; i++) setup.push(join(i));
  const inputs = setup.map((e) => room.input(e));
  for (let i = 0; i < inputs.length; i += 50) {
    for (const r of await inputer.input(inputs.slice(i, i + 50))) if (r.status !== 'accepted') throw new Error(`${r.status}: ${r.error}`);
  }
  const one = async (e: ReturnType<typeof room.build>) => {
    const [r] = await inputer.input([room.input(e)]);
    if (r!.status !== 'accepted') throw new Error(`${r!.status}: ${r!.error}`);
  };
  let before = await dbSize(opened);
  for (let i = 0; i < 1000; i++) {
    const e = room.build({ type: 'm.room.message', sender: room.creator, content: { msgtype: 'm.text', body: `message ${i} of a busy room with a thousand members` } }, [last]);
    last = e.eventId;
    await one(e);
  }
  out[`${label}: 1,000-member room, disk bytes per stored message`] = Math.round(((await dbSize(opened)) - before) / 1000);
  before = await dbSize(opened);
  for (let i = 1000; i < 1200; i++) await one(join(i));
  out[`${label}: 1,000-member room, disk bytes per state change (a join)`] = Math.round(((await dbSize(opened)) - before) / 200);
}

export async function inputBenches(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-input-'));
  const sqliteConn = `file:${path.join(dir, 'rs.db')}`;
  const sqlite = await connectDatabase(sqliteConn, { baseDir: dir });
  try {
    await measure(sqlite, 'SQLite', out, (logger) => connectDatabase(sqliteConn, { baseDir: dir, logger }));
  } finally {
    await sqlite.close();
    rmSync(dir, { recursive: true, force: true });
  }
  await withPostgresDatabase('input', async (pgConn) => {
    const pgdb = await connectDatabase(pgConn, { baseDir: '.' });
    try {
      await measure(pgdb, 'PostgreSQL', out, (logger) => connectDatabase(pgConn, { baseDir: '.', logger }));
    } finally {
      await pgdb.close();
    }
  });
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const [k, v] of Object.entries(await inputBenches())) console.log(`${k}: ${v}`);
}
