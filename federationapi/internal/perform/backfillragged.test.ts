/**
 * Outbound backfill of a ragged answer, as a server walking back through a forked DAG gives: more
 * events at its bottom lack prev events than there are state fetches to spend. The events asked
 * for (what closes the gap a client pages into) must be taken all the same, with the newest part
 * of the answer; the oldest part is left for a later backfill.
 */
import pino from 'pino';
import { expect, it } from 'vitest';
import { buildEvent, generateSigningKey, type Event, type JsonObject } from '../../../internal/matrix/index.js';
import type { InputRoomEvent } from '../../../roomserver/api/index.js';
import { Backfiller, newestPart } from './backfill.js';

const key = generateSigningKey();
const ROOM = '!ragged:remote.test';
const missing = (i: number): string => `$${String(i).padStart(43, 'm')}`;
const make = (body: string, prevs: string[], depth: number): Event =>
  buildEvent({ type: 'm.room.message', sender: '@a:remote.test', room_id: ROOM, content: { body }, prev_events: prevs, auth_events: [], depth }, '10', 'remote.test', key.keyId, key);

/** `top` (asked for) on `merge`, which merges seven stragglers at depths 10..16, each on an event not in the answer. */
function ragged(): { top: Event; merge: Event; stragglers: Event[] } {
  const stragglers = Array.from({ length: 7 }, (_, i) => make(`s${i}`, [missing(i)], 10 + i));
  const merge = make('merge', stragglers.map((s) => s.eventId), 19);
  const top = make('top', [merge.eventId], 20);
  return { top, merge, stragglers };
}

it('takes the events asked for and the newest part of an answer whose ragged bottom needs more state fetches than allowed', async () => {
  const { top, merge, stragglers } = ragged();
  const answer = [top, merge, ...stragglers];
  const inputs: InputRoomEvent[] = [];
  const stateAsked: string[] = [];
  const backfiller = new Backfiller({
    serverName: 'hs.test',
    client: {
      request: async (_server, _method, path, opts) => {
        if (path.includes('/state_ids/')) {
          stateAsked.push((opts?.query as { event_id: string }).event_id);
          return { status: 200, body: { pdu_ids: [], auth_chain_ids: [] } };
        }
        return { status: 200, body: { origin: 'good.test', pdus: answer.map((e) => e.json as unknown as JsonObject) } };
      },
    },
    keys: { ensure: async () => {}, keyLookup: (server, keyId) => (server === 'remote.test' && keyId === key.keyId ? key.publicKeyBase64 : undefined) },
    rsAPI: {
      queryLatestEventsAndState: async () => ({ room_exists: true, room_version: '10', latest_event_ids: [], depth: 0, state_events: [] }),
      queryEventsById: async () => ({ events: [] }),
      inputRoomEvents: async (r) => {
        inputs.push(...r.events);
        return { results: r.events.map((i) => ({ event_id: answer.find((e) => e.json === i.event.pdu)!.eventId, status: 'accepted' as const })) };
      },
    },
    log: pino({ level: 'silent' }),
  });
  const res = await backfiller.backfill({ room_id: ROOM, event_ids: [top.eventId], limit: 100, server_names: ['good.test'] });
  // The newest stragglers the five fetches cover (four, and the merge), the merge and the event asked for, oldest first.
  const kept = [...stragglers.slice(3), merge, top].map((e) => e.eventId);
  expect(res).toEqual({ event_ids: kept, server: 'good.test' });
  expect(stateAsked.sort()).toEqual([...stragglers.slice(3), merge].map((e) => e.eventId).sort());
  expect(inputs.map((i) => i.kind)).toEqual(kept.map(() => 'old'));
});

it('picks the part of an answer at or above the lowest depth the budget covers, never below what was asked for', () => {
  const { top, merge, stragglers } = ragged();
  const answer = [top, merge, ...stragglers];
  const none = (): boolean => false;
  const ids = (r: { events: Event[] }): string[] => r.events.map((e) => e.eventId).sort();
  // Budget enough for all: all of it.
  expect(newestPart(answer, none, 8, new Set([top.eventId]))).toEqual({ events: answer, stateFetches: 7 });
  // Held prev events need no fetch: with the stragglers' held, the whole answer needs none.
  const held = new Set(Array.from({ length: 7 }, (_, i) => missing(i)));
  expect(newestPart(answer, (id) => held.has(id), 0, new Set([top.eventId]))).toEqual({ events: answer, stateFetches: 0 });
  // Asked for a straggler low down: kept with all above it, the budget raised to what that needs.
  const low = newestPart(answer, none, 1, new Set([stragglers[3]!.eventId]));
  expect(ids(low)).toEqual(ids({ events: [top, merge, ...stragglers.slice(3)] }));
  expect(low.stateFetches).toBe(5);
});
