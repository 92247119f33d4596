/**
 * Paging back through a forked history that arrives by backfill a little at a time, on a real
 * syncapi database with a stand-in roomserver: deterministic, unlike a race between servers
 * (federationapi/forkbackfill.test.ts). The room's join has two prev events, heads of branches X
 * and Y with interleaved depths. Each backfill answers one missing prev event of the gap asked
 * about: for X the whole of X behind it, for Y only that one event. So a gap can stay open after
 * a fill that brought history (both of the join's prevs are missing), and a page runs out of
 * fills while Y still has gaps above X's events. Paging back must give every event, each branch
 * newest first, none twice: a page ends at a gap it cannot fill now rather than reading past it.
 */
import type { Kysely } from 'kysely';
import { Hono } from 'hono';
import pino from 'pino';
import { beforeAll, expect, it } from 'vitest';
import { buildEvent, generateSigningKey, type Event, type PDUJson } from '../../internal/matrix/index.js';
import { runMigrations } from '../../internal/sqlutil/index.js';
import { describeEachDatabase } from '../../internal/sqlutil/testing.js';
import type { PerformBackfillRequest, PerformBackfillResponse, QueryEventsByIdResponse } from '../../roomserver/api/index.js';
import { HistoryFiller, type BackfillRoomserverAPI } from '../internal/backfill.js';
import { syncapiMigrations } from '../storage/migrations.js';
import { SyncStore } from '../storage/syncstore.js';
import type { SyncapiDatabase } from '../storage/tables.js';
import { addMessagesRoutes, type MessagesRoomserverAPI } from './messages.js';

const key = generateSigningKey();
const ROOM = '!fork:remote.test';
const USER = '@carol:hs.test';
const BRANCH = 12;
const CREATE = `$${'c'.repeat(43)}`;
const message = (body: string, depth: number, prevs: string[]): Event =>
  buildEvent({ type: 'm.room.message', sender: '@a:remote.test', room_id: ROOM, content: { body }, prev_events: prevs, auth_events: [], depth }, '10', 'remote.test', key.keyId, key);

/** Branch X at even depths 2..2n, Y at odd depths 3..2n+1, both from the (missing) create event. */
function fork(n: number): { x: Event[]; y: Event[]; join: Event } {
  const x: Event[] = [];
  const y: Event[] = [];
  for (let i = 0; i < n; i++) {
    x.push(message(`x${i}`, 2 + 2 * i, [x[i - 1]?.eventId ?? CREATE]));
    y.push(message(`y${i}`, 3 + 2 * i, [y[i - 1]?.eventId ?? CREATE]));
  }
  const join = message('join', 2 * n + 2, [x[n - 1]!.eventId, y[n - 1]!.eventId]);
  return { x, y, join };
}

describeEachDatabase<SyncapiDatabase>('/messages over a forked history backfilled bit by bit', (ctx) => {
  let app: Hono;
  const { x, y, join } = fork(BRANCH);
  const byId = new Map([...x, ...y, join].map((e) => [e.eventId, e]));
  const xIds = new Set(x.map((e) => e.eventId));
  /** What the stand-in roomserver has handed to syncapi so far. */
  const given = new Set<string>();
  let backfills = 0;

  beforeAll(async () => {
    await runMigrations(ctx.db() as unknown as Kysely<unknown>, ctx.dialect, 'syncapi', syncapiMigrations);
    const store = new SyncStore(ctx.db());
    const headered = (e: Event) => ({ room_version: '10', pdu: e.json as PDUJson, rejected: false, soft_failed: false, outlier: false });
    const rsAPI: BackfillRoomserverAPI & MessagesRoomserverAPI = {
      performBackfill: async (req: PerformBackfillRequest): Promise<PerformBackfillResponse> => {
        backfills++;
        const gap = byId.get(req.event_ids[0]!)!;
        // One missing prev event per answer; X with everything behind it, oldest first.
        const prev = gap.prevEventIds.find((p) => byId.has(p) && !given.has(p));
        if (prev === undefined) return { event_ids: [], not_shown_event_ids: gap.prevEventIds.filter((p) => !byId.has(p)) };
        const ids = xIds.has(prev) ? x.slice(0, x.findIndex((e) => e.eventId === prev) + 1).map((e) => e.eventId) : [prev];
        for (const id of ids) given.add(id);
        return { event_ids: ids, not_shown_event_ids: [CREATE] };
      },
      queryEventsById: async (req): Promise<QueryEventsByIdResponse> => ({ events: req.event_ids.flatMap((id) => (byId.has(id) ? [headered(byId.get(id)!)] : [])) }),
      queryVisibleEvents: async (req) => ({ visible_event_ids: req.event_ids }),
      queryMembershipForUser: async () => ({ room_exists: true, membership: 'join', is_in_room: true }),
      queryLatestEventsAndState: async () => ({ room_exists: true, room_version: '10', latest_event_ids: [], depth: 0, state_events: [] }),
      queryStateAfterEvents: async () => ({ room_exists: true, state_events: [] }) as never,
    };
    const userAPI = { queryAccessToken: async () => ({ device: { userId: USER, deviceId: 'DEV', isGuest: false, isAdmin: false } as never }) };
    app = new Hono();
    addMessagesRoutes(app, store, userAPI, rsAPI, undefined, new HistoryFiller({ store, rsAPI, log: pino({ level: 'silent' }) }));
    // The join arrived live; all behind it is missing.
    await store.insertEvent({ roomId: ROOM, eventId: join.eventId, type: join.type, sender: join.sender, stateKey: null, json: JSON.stringify(join.json), roomVersion: '10', addsState: [], removesState: [] });
  });

  it('gives every event of both branches, each newest first, none twice, pages ending at gaps they cannot fill yet', async () => {
    const got: string[] = [];
    let from: string | undefined;
    for (let pages = 0; pages < 50; pages++) {
      const res = await app.request(`/v3/rooms/${encodeURIComponent(ROOM)}/messages?dir=b&limit=10${from ? `&from=${from}` : ''}`, { headers: { Authorization: 'Bearer t' } });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { chunk: Array<{ content: { body: string } }>; end?: string };
      got.push(...body.chunk.map((e) => e.content.body));
      if (body.end === undefined) break;
      from = body.end;
    }
    expect(new Set(got).size).toBe(got.length);
    expect(got.filter((b) => b.startsWith('x'))).toEqual(x.map((e) => e.content['body']).reverse());
    expect(got.filter((b) => b.startsWith('y'))).toEqual(y.map((e) => e.content['body']).reverse());
    expect(got[0]).toBe('join');
    // One backfill per missing event of Y, one for all of X, and one more that says the create event is not to be had.
    expect(backfills).toBeLessThanOrEqual(BRANCH + 2 + 2);
  });
});
