/** The roomserver in a running monolith: input through the API and through the bus, outputs on the bus. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { subjectFor } from '../setup/jetstream/index.js';
import { startTestServer, type TestServer } from '../test/harness.js';
import type { OutputRoomEvent } from './api/index.js';
import { TestRoom } from './internal/input/testroom.js';

let t: TestServer;
const outputs: OutputRoomEvent[] = [];

beforeAll(async () => {
  t = await startTestServer();
  const prefix = t.cfg.global.jetstream.topicPrefix;
  await t.server.bus.consume({ stream: `${prefix}OutputRoomEvent`, durable: 'test-output' }, async (m) => {
    outputs.push(JSON.parse(new TextDecoder().decode(m.data)) as OutputRoomEvent);
  });
});
afterAll(async () => {
  await t.stop();
});

const until = async (check: () => boolean, ms = 5000): Promise<void> => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
};

it('takes events through the API and publishes OutputRoomEvent', async () => {
  const room = new TestRoom('10');
  const start = room.start();
  const res = await t.server.apis.roomserver.inputRoomEvents({ events: start.map((e) => room.input(e)) });
  expect(res.results.map((r) => r.status)).toEqual(['accepted', 'accepted', 'accepted', 'accepted']);
  await until(() => outputs.filter((o) => o.type === 'new_room_event' && o.new_room_event.event.pdu.room_id === room.roomId).length === 4);
});

it('takes events published on InputRoomEvent, in order, and drops malformed messages', async () => {
  const room = new TestRoom('10');
  const events = room.start();
  for (let i = 0; i < 10; i++) events.push(room.build({ type: 'm.room.message', sender: room.creator, content: { body: `${i}` } }, [events.at(-1)!.eventId]));
  const prefix = t.cfg.global.jetstream.topicPrefix;
  const subject = subjectFor(prefix, 'InputRoomEvent', room.roomId);
  await t.server.bus.publish(subject, new TextEncoder().encode('not json'));
  for (const e of events) await t.server.bus.publish(subject, new TextEncoder().encode(JSON.stringify({ events: [room.input(e)] })));
  await until(() => outputs.filter((o) => o.type === 'new_room_event' && o.new_room_event.event.pdu.room_id === room.roomId).length === events.length);
  const latest = await t.server.apis.roomserver.queryLatestEventsAndState({ room_id: room.roomId });
  expect(latest.latest_event_ids).toEqual([events.at(-1)!.eventId]);
});
