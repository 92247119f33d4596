/**
 * PeekActivity with a real peek store (SQLite) and a roomserver that records what it is told:
 * idle rooms are reported once, a device's next /sync resumes its quiet rooms, a failed report
 * or resume is tried again.
 */
import type { Kysely } from 'kysely';
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { DEFAULT_PEEK_TIMING, peekTiming } from '../../internal/peektiming.js';
import { runMigrations } from '../../internal/sqlutil/index.js';
import { createTestDatabase, type TestDatabase } from '../../internal/sqlutil/testing.js';
import { openDatabase, type OpenedDatabase } from '../../internal/sqlutil/index.js';
import type { PerformPeekRequest, PerformPeekResponse, PerformPeekersGoneRequest, PerformPeekersGoneResponse } from '../../roomserver/api/index.js';
import { syncapiMigrations } from '../storage/migrations.js';
import { PeekStore } from '../storage/peeks.js';
import type { SyncapiDatabase } from '../storage/tables.js';
import { PeekActivity } from './peekactivity.js';

let t: TestDatabase;
let db: OpenedDatabase<unknown>;
let peeks: PeekStore;
const told: { gone: string[]; peek: PerformPeekRequest[] } = { gone: [], peek: [] };
let failGone = false;
const rsAPI = {
  performPeekersGone: async (r: PerformPeekersGoneRequest): Promise<PerformPeekersGoneResponse> => {
    if (failGone) throw new Error('roomserver away');
    told.gone.push(r.room_id);
    return { ended_remote_peek: true };
  },
  performPeek: async (r: PerformPeekRequest): Promise<PerformPeekResponse> => {
    told.peek.push(r);
    return { room_id: r.room_id_or_alias };
  },
};
const settle = () => new Promise((r) => setTimeout(r, 20));

beforeAll(async () => {
  t = await createTestDatabase('sqlite');
  db = openDatabase(t.connectionString);
  await runMigrations(db.db, db.dialect, 'syncapi', syncapiMigrations);
  peeks = new PeekStore(db.db as unknown as Kysely<SyncapiDatabase>);
  peekTiming.idlePeekerMs = 1000;
});
afterAll(async () => {
  Object.assign(peekTiming, DEFAULT_PEEK_TIMING);
  await db.close();
  await t.drop();
});
beforeEach(async () => {
  told.gone = [];
  told.peek = [];
  failGone = false;
  await db.db.deleteFrom('syncapi_peeks' as never).execute();
});

it('reports a room once all its peeking devices went idle, and resumes it at the next /sync', async () => {
  const activity = new PeekActivity({ peeks, rsAPI, log: pino({ level: 'silent' }) });
  const now = Date.now();
  await peeks.add('@u:hs', 'D1', '!r:hs', 1);
  await peeks.add('@v:hs', 'D2', '!r:hs', 1);
  activity.confirm('!r:hs');
  await activity.touch('@u:hs', 'D1', now);
  await activity.touch('@v:hs', 'D2', now + 800);
  // D1 is idle, D2 is not: the room still has a peeker.
  await activity.sweep(now + 1500);
  expect(told.gone).toEqual([]);
  await activity.sweep(now + 2000);
  expect(told.gone).toEqual(['!r:hs']);
  // Reported once.
  await activity.sweep(now + 3000);
  expect(told.gone).toEqual(['!r:hs']);
  expect(told.peek).toEqual([]);
  // D2 comes back: the room is peeked again for it, once.
  await activity.touch('@v:hs', 'D2', now + 3100);
  await activity.touch('@v:hs', 'D2', now + 3200);
  await settle();
  expect(told.peek).toEqual([{ room_id_or_alias: '!r:hs', user_id: '@v:hs', device_id: 'D2', resume: true }]);
});

it('after a start-up, resumes each peeked room once at its first /sync, and counts devices from the start', async () => {
  const activity = new PeekActivity({ peeks, rsAPI, log: pino({ level: 'silent' }) });
  await peeks.add('@u:hs', 'D1', '!a:hs', 1);
  await peeks.add('@u:hs', 'D1', '!b:hs', 1);
  await activity.touch('@u:hs', 'D1');
  await activity.touch('@u:hs', 'D1');
  await settle();
  expect(told.peek.map((p) => p.room_id_or_alias).sort()).toEqual(['!a:hs', '!b:hs']);
  // A device never seen counts from the start of the process.
  await peeks.add('@x:hs', 'DX', '!c:hs', 1);
  await activity.sweep(Date.now() + 500);
  expect(told.gone).toEqual([]);
  await activity.sweep(Date.now() + 5000);
  expect(told.gone.sort()).toEqual(['!a:hs', '!b:hs', '!c:hs']);
});

it('tries again when the roomserver could not be told', async () => {
  const activity = new PeekActivity({ peeks, rsAPI, log: pino({ level: 'silent' }) });
  await peeks.add('@u:hs', 'D1', '!r:hs', 1);
  failGone = true;
  await activity.sweep(Date.now() + 5000);
  // The last peeker unpeeks while the roomserver is away.
  await activity.gone('!gone:hs');
  expect(told.gone).toEqual([]);
  failGone = false;
  await activity.sweep(Date.now() + 5000);
  expect(told.gone.sort()).toEqual(['!gone:hs', '!r:hs']);
});
