/** The outbound backfill's choices, with stand-ins for other servers (the federation client) and for the roomserver. */
import pino from 'pino';
import { expect, it } from 'vitest';
import { buildEvent, generateSigningKey, type Event, type JsonObject, type PDUJson } from '../../../internal/matrix/index.js';
import type { InputRoomEvent, QueryEventsByIdResponse } from '../../../roomserver/api/index.js';
import type { FederationResponse, RequestOptions } from '../../client/index.js';
import { Backfiller, dagOrder, type BackfillClient, type BackfillRoomserverAPI } from './backfill.js';

const key = generateSigningKey();
const ROOM = '!hist:remote.test';
const OTHER = '!other:remote.test';
const BASE = `$${'b'.repeat(43)}`;
const make = (body: string, prevs: string[], depth: number, roomId = ROOM): Event =>
  buildEvent({ type: 'm.room.message', sender: '@a:remote.test', room_id: roomId, content: { body }, prev_events: prevs, auth_events: [], depth }, '10', 'remote.test', key.keyId, key);
const chain = (from: string, n: number, depth: number, tag: string): Event[] => {
  const out: Event[] = [];
  let prev = from;
  for (let i = 0; i < n; i++) {
    const e = make(`${tag}${i}`, [prev], depth + i);
    out.push(e);
    prev = e.eventId;
  }
  return out;
};

interface Setup {
  calls: Array<{ server: string; path: string; query?: unknown; timeoutMs?: number }>;
  inputs: InputRoomEvent[];
  backfiller: Backfiller;
}

/** `answers`: per server, what GET /backfill (and /state_ids) answer; a function may hang or throw. */
function setUp(answers: Record<string, (path: string) => Promise<FederationResponse>>, heldWithState: string[], deadlineMs?: number): Setup {
  const calls: Setup['calls'] = [];
  const inputs: InputRoomEvent[] = [];
  const client: BackfillClient = {
    request: async (server: string, _method: string, path: string, opts?: RequestOptions) => {
      calls.push({ server, path, ...(opts?.query ? { query: opts.query } : {}), ...(opts?.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}) });
      const answer = answers[server];
      if (!answer) throw new Error(`${server} unreachable`);
      return answer(path);
    },
  };
  const held = new Set(heldWithState);
  const rsAPI: BackfillRoomserverAPI = {
    queryLatestEventsAndState: async () => ({ room_exists: true, room_version: '10', latest_event_ids: [], depth: 0, state_events: [] }),
    queryEventsById: async (r): Promise<QueryEventsByIdResponse> => ({
      events: r.event_ids.filter((id) => held.has(id)).map((id) => ({ room_version: '10', pdu: heldPdu(id), rejected: false, soft_failed: false, outlier: false })),
    }),
    inputRoomEvents: async (r) => {
      inputs.push(...r.events);
      return { results: r.events.map((i) => ({ event_id: idOf(i), status: 'accepted' as const })) };
    },
  };
  const backfiller = new Backfiller({
    serverName: 'hs.test',
    client,
    keys: { ensure: async () => {}, keyLookup: (server, keyId) => (server === 'remote.test' && keyId === key.keyId ? key.publicKeyBase64 : undefined) },
    rsAPI,
    log: pino({ level: 'silent' }),
    ...(deadlineMs !== undefined ? { deadlineMs } : {}),
  });
  return { calls, inputs, backfiller };
}
/** The events the stand-in roomserver holds (with their state), by ID. */
const heldEvents = new Map<string, Event>();
function heldPdu(id: string): PDUJson {
  const e = heldEvents.get(id);
  if (!e) throw new Error(`the stand-in roomserver has no ${id}`);
  return e.json as PDUJson;
}
const idOf = (i: InputRoomEvent): string => [...heldEvents.values(), ...all].find((e) => JSON.stringify(e.json) === JSON.stringify(i.event.pdu))?.eventId ?? '?';
const all: Event[] = [];
const ok = (body: JsonObject): Promise<FederationResponse> => Promise.resolve({ status: 200, body });

it('orders events each after its prev events, whatever order they came in', () => {
  const [a, b, c] = chain(BASE, 3, 5, 'o');
  expect(dagOrder([c!, a!, b!]).map((e) => e.eventId)).toEqual([a!.eventId, b!.eventId, c!.eventId]);
});

it('asks servers in turn, never itself, and takes checked events of the room not held here, oldest first', async () => {
  const base = make('base', [], 4);
  heldEvents.set(base.eventId, base);
  const events = chain(base.eventId, 5, 5, 'm');
  const elsewhere = make('elsewhere', [base.eventId], 5, OTHER);
  const forged = structuredClone(make('forged', [base.eventId], 5).json) as unknown as { signatures: Record<string, Record<string, string>> };
  for (const byKey of Object.values(forged.signatures)) for (const k of Object.keys(byKey)) byKey[k] = `${byKey[k]!.startsWith('A') ? 'B' : 'A'}${byKey[k]!.slice(1)}`;
  all.push(...events, elsewhere);
  const shuffled = [events[3]!, events[0]!, events[4]!, base, events[1]!, elsewhere, events[2]!].map((e) => e.json as unknown as JsonObject);
  const { calls, inputs, backfiller } = setUp(
    {
      'empty.test': () => ok({ origin: 'empty.test', pdus: [] }),
      'good.test': () => ok({ origin: 'good.test', pdus: [...shuffled, forged as unknown as JsonObject] }),
      'hs.test': () => Promise.reject(new Error('asked itself')),
    },
    [base.eventId],
  );
  const res = await backfiller.backfill({ room_id: ROOM, event_ids: [events[4]!.eventId], limit: 500, server_names: ['hs.test', 'down.test', 'empty.test', 'good.test', 'never.test'] });
  expect(res).toEqual({ event_ids: events.map((e) => e.eventId), server: 'good.test' });
  expect(calls.map((c) => c.server)).toEqual(['down.test', 'empty.test', 'good.test']);
  expect(calls[2]!.query).toEqual({ v: [events[4]!.eventId], limit: 100 });
  expect(inputs.map((i) => [i.kind, i.origin, i.state_event_ids])).toEqual(events.map(() => ['old', 'good.test', undefined]));

  // No more than `limit` PDUs of an answer are looked at.
  const few = setUp({ 'good.test': () => ok({ origin: 'good.test', pdus: shuffled }) }, [base.eventId]);
  await few.backfiller.backfill({ room_id: ROOM, event_ids: [events[4]!.eventId], limit: 2, server_names: ['good.test'] });
  expect(few.calls[0]!.query).toEqual({ v: [events[4]!.eventId], limit: 2 });
  expect(few.inputs.length).toBeLessThanOrEqual(2);
});

it('asks for the state before the events where the history held here ends', async () => {
  const base = make('base2', [], 4);
  heldEvents.set(base.eventId, base);
  const missing = `$${'m'.repeat(43)}`;
  const [first, second] = chain(missing, 2, 9, 's');
  all.push(first!, second!);
  const { calls, inputs, backfiller } = setUp(
    {
      'good.test': (path) =>
        path.includes('/state_ids/') ? ok({ pdu_ids: [base.eventId], auth_chain_ids: [] }) : ok({ origin: 'good.test', pdus: [second!.json as unknown as JsonObject, first!.json as unknown as JsonObject] }),
    },
    [base.eventId],
  );
  const res = await backfiller.backfill({ room_id: ROOM, event_ids: [second!.eventId], limit: 10, server_names: ['good.test'] });
  expect(res).toEqual({ event_ids: [first!.eventId, second!.eventId], server: 'good.test' });
  expect(calls.map((c) => c.path.split('/')[4])).toEqual(['backfill', 'state_ids']);
  expect(calls[1]!.query).toEqual({ event_id: first!.eventId });
  expect(inputs.map((i) => i.state_event_ids)).toEqual([[base.eventId], undefined]);
});

it('stays within its time bound: requests get no more than the time left, and no server is asked after it', async () => {
  const { backfiller, calls } = setUp({ 'slow.test': () => new Promise((r) => setTimeout(() => r({ status: 200, body: { pdus: [] } }), 300)) }, [], 200);
  const res = await backfiller.backfill({ room_id: ROOM, event_ids: [BASE], limit: 10, server_names: ['slow.test', 'next.test'] });
  expect(res.error).toBe('unreachable');
  expect(calls.map((c) => c.server)).toEqual(['slow.test']);
  expect(calls[0]!.timeoutMs).toBeLessThanOrEqual(200);
});
