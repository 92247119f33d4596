/** HistoryFiller on a real syncapi database, with a stand-in roomserver that records what it is asked. */
import type { Kysely } from 'kysely';
import pino from 'pino';
import { beforeAll, expect, it } from 'vitest';
import { buildEvent, generateSigningKey, type Event, type PDUJson } from '../../internal/matrix/index.js';
import { runMigrations } from '../../internal/sqlutil/index.js';
import { describeEachDatabase } from '../../internal/sqlutil/testing.js';
import type { PerformBackfillRequest, PerformBackfillResponse, QueryEventsByIdRequest, QueryEventsByIdResponse } from '../../roomserver/api/index.js';
import { syncapiMigrations } from '../storage/migrations.js';
import { SyncStore } from '../storage/syncstore.js';
import type { SyncapiDatabase } from '../storage/tables.js';
import { HistoryFiller } from './backfill.js';

const key = generateSigningKey();
const ROOM = '!fill:remote.test';
/** IDs of events no store here holds (valid in form). */
const CREATE = `$${'c'.repeat(43)}`;
const REJECTED = `$${'r'.repeat(43)}`;
const message = (body: string, depth: number, prevs: string[]): Event =>
  buildEvent({ type: 'm.room.message', sender: '@a:remote.test', room_id: ROOM, content: { body }, prev_events: prevs, auth_events: [], depth }, '10', 'remote.test', key.keyId, key);
const headered = (e: Event) => ({ room_version: '10', pdu: e.json as PDUJson });

describeEachDatabase<SyncapiDatabase>('syncapi history filler', (ctx) => {
  let store: SyncStore;
  const asked: PerformBackfillRequest[] = [];
  let answer: (req: PerformBackfillRequest) => Promise<PerformBackfillResponse>;
  let filler: HistoryFiller;
  /** What the stand-in roomserver holds. */
  const held = new Map<string, Event>();
  beforeAll(async () => {
    await runMigrations(ctx.db() as unknown as Kysely<unknown>, ctx.dialect, 'syncapi', syncapiMigrations);
    store = new SyncStore(ctx.db());
    const rsAPI = {
      performBackfill: async (req: PerformBackfillRequest) => {
        asked.push(req);
        return answer(req);
      },
      queryEventsById: async (req: QueryEventsByIdRequest): Promise<QueryEventsByIdResponse> => ({
        events: req.event_ids.flatMap((id) => {
          const e = held.get(id);
          return e ? [{ ...headered(e), rejected: e.content['body'] === 'rejected', soft_failed: false, outlier: false }] : [];
        }),
      }),
    };
    filler = new HistoryFiller({ store, rsAPI, log: pino({ level: 'silent' }), cooldownMs: 200 });
  });

  it('stores what the roomserver answers as history, closes gaps it says are none, and rests after a failure', async () => {
    const m1 = message('m1', 5, [CREATE]);
    const m2 = message('m2', 6, [m1.eventId]);
    const m3 = message('m3', 7, [m2.eventId, REJECTED]);
    const join = message('join', 8, [m3.eventId]);
    await store.insertEvent({ roomId: ROOM, eventId: join.eventId, type: join.type, sender: join.sender, stateKey: null, json: JSON.stringify(join.json), roomVersion: '10', addsState: [], removesState: [] });
    const gap = await filler.nextGap(ROOM, new Set());
    expect(gap?.eventId).toBe(join.eventId);

    // Two pages reaching the gap at once share one backfill.
    const bad = message('rejected', 6, [m1.eventId]);
    for (const e of [m2, m3, bad]) held.set(e.eventId, e);
    answer = async () => {
      await new Promise((r) => setTimeout(r, 50));
      // A rejected event among the IDs is not stored (the roomserver never names one; syncapi checks all the same).
      return { event_ids: [m2.eventId, bad.eventId, m3.eventId], not_shown_event_ids: [REJECTED] };
    };
    await Promise.all([filler.fill(ROOM, gap!), filler.fill(ROOM, gap!)]);
    expect(asked).toEqual([{ room_id: ROOM, event_ids: [join.eventId], limit: 100 }]);
    const stored = await store.events([m2.eventId, m3.eventId]);
    expect(stored.every((e) => e.pos < 0)).toBe(true);
    expect(stored.length).toBe(2);
    expect(await store.events([bad.eventId])).toEqual([]);
    // The join's gap and m3's are closed; m2 lacks m1.
    expect((await store.backwardExtremities(ROOM, 10)).map((g) => g.eventId)).toEqual([m2.eventId]);

    // A failed fill leaves the gap resting: not offered again until the pause is over.
    answer = async () => ({ event_ids: [], not_shown_event_ids: [], error: 'unreachable', message: 'down' });
    const next = await filler.nextGap(ROOM, new Set());
    expect(next?.eventId).toBe(m2.eventId);
    await filler.fill(ROOM, next!);
    expect(await filler.nextGap(ROOM, new Set())).toBeUndefined();
    await new Promise((r) => setTimeout(r, 250));
    expect((await filler.nextGap(ROOM, new Set()))?.eventId).toBe(m2.eventId);
    // A roomserver that throws is a failure too, never the page's.
    answer = async () => {
      throw new Error('roomserver gone');
    };
    await filler.fill(ROOM, next!);
    expect(await filler.nextGap(ROOM, new Set())).toBeUndefined();
    expect(await filler.nextGap(ROOM, new Set([m2.eventId]))).toBeUndefined();
  });
});
