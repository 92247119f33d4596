/**
 * The OutputRoomEvent consumer that queues our events for other servers, in batches on a real
 * in-process bus, with the roomserver and the sender stood in for: a batch asks for a room's
 * servers once (again after a state change), each event goes to the servers in the room when
 * it is handled, and a failure part way through a batch queues nothing twice.
 */
import pino from 'pino';
import { afterEach, expect, it } from 'vitest';
import { buildEvent, generateSigningKey, type Event, type JsonObject, type JsonValue } from '../../internal/matrix/index.js';
import type { OutputRoomEvent } from '../../roomserver/api/index.js';
import { sleep, subjectFor } from '../../setup/jetstream/index.js';
import { InProcessBus } from '../../setup/jetstream/inprocess/inprocess-bus.js';
import type { OutboundSender } from '../internal/sender.js';
import { startRoomserverConsumer } from './roomserver.js';

const key = generateSigningKey();
const OURS = 'ours.test';
const ROOM = `!room:${OURS}`;
const PREFIX = 'FedConsumerTest';
const enc = new TextEncoder();
let depth = 0;

function event(sender: string, type: string, content: JsonObject, stateKey?: string): Event {
  const server = sender.slice(sender.indexOf(':') + 1);
  return buildEvent({ type, sender, room_id: ROOM, content, prev_events: [], auth_events: [], depth: ++depth, ...(stateKey !== undefined ? { state_key: stateKey } : {}) }, '10', server, key.keyId, key);
}
const out = (e: Event, adds: string[] = []): OutputRoomEvent => ({ type: 'new_room_event', new_room_event: { event: { room_version: '10', pdu: e.json }, adds_state_event_ids: adds, removes_state_event_ids: [], latest_event_ids: [e.eventId] } });
const body = (pdu: JsonValue) => ((pdu as { content: { body?: string } }).content.body ?? '');

const buses: InProcessBus[] = [];
afterEach(async () => {
  for (const b of buses.splice(0)) await b.close();
});

/** The consumer on a fresh bus; `state.servers` is what the roomserver says now; the sender fails its `failAt`th call. */
async function setUp() {
  const bus = new InProcessBus({ topicPrefix: PREFIX, inMemory: true, storagePath: '', logger: pino({ level: 'silent' }) });
  buses.push(bus);
  const state = { servers: [OURS, 'a.test'], queries: 0, calls: 0, failAt: 0, failed: 0 };
  const sent: Array<{ to: string[]; body: string }> = [];
  const sender = {
    sendPDU: async (to: readonly string[], pdu: JsonValue) => {
      if (++state.calls === state.failAt) {
        state.failed++;
        throw new Error('queue unavailable');
      }
      sent.push({ to: [...to].sort(), body: body(pdu) });
    },
  } as unknown as OutboundSender;
  await startRoomserverConsumer({
    bus,
    prefix: PREFIX,
    serverName: OURS,
    rsAPI: {
      queryServersInRoom: async () => {
        state.queries++;
        return { servers: [...state.servers] };
      },
      queryVisibleEvents: async () => ({ visible_event_ids: [] }),
    },
    sender,
    log: pino({ level: 'silent' }),
  });
  const publishTogether = (outs: OutputRoomEvent[]) => Promise.all(outs.map((o) => bus.publish(subjectFor(PREFIX, 'OutputRoomEvent'), enc.encode(JSON.stringify(o)))));
  return { state, sent, publishTogether };
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what}: not within 10 s`);
    await sleep(10);
  }
}

it('asks for the servers once per batch and again after a state change, sending each event to those in the room', async () => {
  const { state, sent, publishTogether } = await setUp();
  const msg = (text: string) => out(event(`@alice:${OURS}`, 'm.room.message', { body: text }));
  await publishTogether([msg('m1'), msg('m2'), msg('m3')]);
  await until(() => sent.length === 3, 'three sends');
  expect(state.queries).toBe(1);
  expect(sent.every((s) => s.to.join() === 'a.test')).toBe(true);

  // A remote join (a state change the roomserver has applied already): later events go to its server too.
  state.queries = 0;
  state.servers = [OURS, 'a.test', 'b.test'];
  const join = event('@bob:b.test', 'm.room.member', { membership: 'join' }, '@bob:b.test');
  await publishTogether([msg('before'), out(join, [join.eventId]), msg('after')]);
  await until(() => sent.length === 5, 'two more sends');
  expect(state.queries).toBe(2);
  // The join itself is b.test's to send; ours go to everyone in the room.
  expect(sent.slice(3)).toEqual([
    { to: ['a.test', 'b.test'], body: 'before' },
    { to: ['a.test', 'b.test'], body: 'after' },
  ]);
});

it('queues nothing twice when a batch fails part way: only the rest comes again', async () => {
  const { state, sent, publishTogether } = await setUp();
  const msg = (text: string) => out(event(`@alice:${OURS}`, 'm.room.message', { body: text }));
  await publishTogether([msg('one')]);
  await until(() => sent.length === 1, 'the first send');
  // In the next batch the second send fails once, after the first was queued.
  state.failAt = sent.length + 2;
  await publishTogether([msg('two'), msg('three'), msg('four')]);
  await until(() => sent.length === 4, 'the rest sent');
  await sleep(200);
  expect(state.failed).toBe(1);
  expect(sent.map((s) => s.body)).toEqual(['one', 'two', 'three', 'four']);
});
