/**
 * bench/roomserver state: the snapshot store's cost on disk and in time, on SQLite and
 * PostgreSQL: bytes written per membership change in rooms of 1,000 / 10,000 / 100,000
 * members, the time to store such a state from scratch, to apply one change, and to load a
 * whole state and one entry cold (empty cache).
 * Run: npm run build && node dist/bench/roomserver/state.js
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { withPostgresDatabase } from '../common.js';
import { sql, type Kysely } from 'kysely';
import { connectDatabase, runMigrations, type OpenedDatabase } from '../../internal/sqlutil/index.js';
import { roomserverMigrations } from '../../roomserver/storage/migrations.js';
import { StateSnapshotStore, type StateEntry } from '../../roomserver/storage/statesnapshots.js';
import type { RoomserverDatabase } from '../../roomserver/storage/tables.js';

function members(n: number): StateEntry[] {
  const out: StateEntry[] = [{ typeNid: 1, stateKeyNid: 1, eventNid: 1 }];
  for (let i = 0; i < n; i++) out.push({ typeNid: 3, stateKeyNid: 10 + i, eventNid: 100 + i });
  return out;
}

async function bytesOf(db: Kysely<RoomserverDatabase>, roomNid: number): Promise<number> {
  // Node bytes plus the 32-byte hash each row carries (indexes not counted).
  const r = await db.selectFrom('roomserver_state_nodes').select(sql<number>`sum(length(node)) + count(*) * 32`.as('b')).where('room_nid', '=', roomNid).executeTakeFirst();
  return Number(r?.b ?? 0);
}

async function measure(opened: OpenedDatabase<unknown>, label: string, out: Record<string, number>): Promise<void> {
  await runMigrations(opened.db, opened.dialect, 'roomserver', roomserverMigrations);
  const db = opened.db as unknown as Kysely<RoomserverDatabase>;
  let room = 0;
  for (const n of [1000, 10_000, 100_000]) {
    const r = ++room;
    const store = new StateSnapshotStore(db);
    let t = performance.now();
    let nid = await store.store(r, members(n));
    out[`${label} ${n} members: store whole state ms`] = Math.round(performance.now() - t);
    const base = await bytesOf(db, r);
    out[`${label} ${n} members: bytes per state entry`] = Math.round((base / (n + 1)) * 10) / 10;
    const changes = 200;
    t = performance.now();
    for (let i = 0; i < changes; i++) nid = await store.apply(r, nid, [{ typeNid: 3, stateKeyNid: 10 + ((i * 7919) % n), eventNid: 10_000_000 + i }]);
    out[`${label} ${n} members: apply one change ms`] = Math.round(((performance.now() - t) / changes) * 100) / 100;
    out[`${label} ${n} members: bytes written per change`] = Math.round(((await bytesOf(db, r)) - base) / changes);
    const cold = new StateSnapshotStore(db);
    t = performance.now();
    await cold.load(nid);
    out[`${label} ${n} members: load whole state cold ms`] = Math.round(performance.now() - t);
    const cold2 = new StateSnapshotStore(db);
    t = performance.now();
    await cold2.lookup(nid, [{ typeNid: 3, stateKeyNid: 15 }]);
    out[`${label} ${n} members: look up one entry cold ms`] = Math.round((performance.now() - t) * 100) / 100;
  }
}

export async function stateBenches(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-state-'));
  const sqlite = await connectDatabase(`file:${path.join(dir, 'rs.db')}`, { baseDir: dir });
  try {
    await measure(sqlite, 'SQLite', out);
  } finally {
    await sqlite.close();
    rmSync(dir, { recursive: true, force: true });
  }
  await withPostgresDatabase('state', async (url) => {
    const pgdb = await connectDatabase(url, { baseDir: '.' });
    try {
      await measure(pgdb, 'PostgreSQL', out);
    } finally {
      await pgdb.close();
    }
  });
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const [k, v] of Object.entries(await stateBenches())) console.log(`${k}: ${v}`);
}
