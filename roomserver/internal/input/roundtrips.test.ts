/**
 * One event per request (a client's sends): what it costs in statements, and the shortcut that
 * skips the first query when the process knows the room, the auth and the prev events. The
 * shortcut must give the same verdicts and outputs as the long way. On both databases.
 */
import type { Kysely } from 'kysely';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { openDatabase, runMigrations, type OpenedDatabase } from '../../../internal/sqlutil/index.js';
import { describeEachDatabase } from '../../../internal/sqlutil/testing.js';
import type { InputRoomEvent, OutputRoomEvent } from '../../api/index.js';
import { EventStore } from '../../storage/eventstore.js';
import { roomserverMigrations } from '../../storage/migrations.js';
import { StateSnapshotStore } from '../../storage/statesnapshots.js';
import type { RoomserverDatabase } from '../../storage/tables.js';
import { EventLoader } from '../eventloader.js';
import { Inputer } from './inputer.js';
import { TestRoom } from './testroom.js';

describeEachDatabase<RoomserverDatabase>('roomserver input, one event per request', (ctx) => {
  let published: Array<{ roomId: string; msgId: string; output: OutputRoomEvent }>;
  let statements: string[];
  let logged: OpenedDatabase<RoomserverDatabase>;
  let events: EventStore;
  let inputer: Inputer;
  /** Warnings and errors the inputer logs: a planned statement that fails would show here. */
  const warnings: string[] = [];
  beforeAll(async () => {
    await runMigrations(ctx.db() as unknown as Kysely<unknown>, ctx.dialect, 'roomserver', roomserverMigrations);
    // A second handle on the same database, whose statements are counted.
    logged = openDatabase<RoomserverDatabase>(ctx.connectionString, {
      logger: { trace: (o) => void statements.push((o as { sql: string }).sql), debug: () => {}, warn: () => {} },
    });
    events = new EventStore(logged.db);
    inputer = new Inputer({
      serverName: 'hs.test',
      events,
      snapshots: new StateSnapshotStore(logged.db),
      loader: new EventLoader(events),
      log: pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) }),
      publish: async (roomId, msgId, output) => void published.push({ roomId, msgId, output }),
    });
  });
  afterAll(async () => {
    await inputer.flushOutbox();
    await logged.close();
  });
  beforeEach(() => {
    published = [];
    statements = [];
  });
  afterEach(() => {
    expect(warnings).toEqual([]);
  });

  const one = async (e: InputRoomEvent) => (await inputer.input([e]))[0]!;
  /** The statements of one request, once earlier outputs have left the outbox (and its flush timer has run). */
  const counted = async (e: InputRoomEvent) => {
    await new Promise((resolve) => setTimeout(resolve, 50));
    await inputer.flushOutbox();
    statements = [];
    const r = await one(e);
    return { r, sql: statements.map((s) => s.trim().toLowerCase()) };
  };
  const started = async (version = '10') => {
    const room = new TestRoom(version);
    const start = room.start();
    for (const e of start) expect((await one(room.input(e))).status).toBe('accepted');
    published = [];
    return { room, start };
  };

  it('a message costs one transaction of a few statements; a join a few more', async () => {
    const { room, start } = await started();
    // The first message of the process also names its type once.
    const first = room.build({ type: 'm.room.message', sender: room.creator, content: { body: 'first' } }, [start.at(-1)!.eventId]);
    expect((await one(room.input(first))).status).toBe('accepted');
    const hello = room.build({ type: 'm.room.message', sender: room.creator, content: { body: 'hello' } }, [first.eventId]);
    const msg = await counted(room.input(hello));
    expect(msg.r.status).toBe('accepted');
    if (ctx.dialect === 'postgres') {
      // The event, its JSON, the extremities and the output in one statement: atomic without a
      // transaction.
      expect(msg.sql).toHaveLength(1);
      expect(msg.sql.some((s) => s.startsWith('begin') || s === 'commit')).toBe(false);
    } else {
      // One transaction; SQLite runs the writes as separate statements, which cost it little.
      expect(msg.sql.filter((s) => s.startsWith('begin'))).toHaveLength(1);
      expect(msg.sql.at(-1)).toBe('commit');
      expect(msg.sql.length).toBeLessThanOrEqual(9);
    }
    const roomNid = (await events.room(room.roomId))!.roomNid;
    expect((await events.eventsByNids(await events.forwardExtremities(roomNid))).map((e) => e.eventId)).toEqual([hello.eventId]);
    const [stored] = await events.eventsByIds([hello.eventId]);
    expect(stored).toMatchObject({ roomNid, isRejected: false, isSoftFailed: false, depth: hello.depth });
    expect(stored!.eventNid).toBeGreaterThan((await events.eventsByIds([first.eventId]))[0]!.eventNid);
    expect(JSON.parse([...(await events.eventJson([stored!.eventNid])).values()][0]!)).toEqual(hello.json);

    const bob = '@bob:hs.test';
    const join = room.build({ type: 'm.room.member', state_key: bob, sender: bob, content: { membership: 'join' } }, [hello.eventId]);
    const joined = await counted(room.input(join));
    expect(joined.r.status).toBe('accepted');
    expect(joined.sql.at(-1)).toBe('commit');
    expect(joined.sql.length).toBeLessThanOrEqual(ctx.dialect === 'postgres' ? 7 : 12);
    expect((await events.membership((await events.room(room.roomId))!.roomNid, bob))?.membership).toBe('join');
    expect(published.filter((p) => p.output.type === 'new_room_event').map((p) => p.msgId)).toEqual([first, hello, join].map((e) => `new:${e.eventId}`));

    // What the process remembers of the message (its NID among them) is what was stored: a
    // redaction finds it and redacts that row.
    const redaction = room.build({ type: 'm.room.redaction', sender: room.creator, content: {}, redacts: hello.eventId }, [join.eventId]);
    expect((await one(room.input(redaction))).status).toBe('accepted');
    expect(published.filter((p) => p.output.type === 'redacted_event').map((p) => p.msgId)).toEqual([`redacted:${hello.eventId}:${redaction.eventId}`]);
    expect(JSON.parse((await events.eventJson([stored!.eventNid])).get(stored!.eventNid)!).content).toEqual({});
    expect(JSON.parse((await events.eventJson([(await events.eventsByIds([first.eventId]))[0]!.eventNid])).values().next().value!).content).toEqual({ body: 'first' });
  });

  it('room version 12 (the create event named by the room ID): messages and a join, one by one', async () => {
    const { room, start } = await started('12');
    let last = start.at(-1)!.eventId;
    const ids: string[] = [];
    for (const body of ['one', 'two']) {
      const m = room.build({ type: 'm.room.message', sender: room.creator, content: { body } }, [last]);
      expect((await one(room.input(m))).status).toBe('accepted');
      ids.push(m.eventId);
      last = m.eventId;
    }
    const bob = '@bob:hs.test';
    const join = room.build({ type: 'm.room.member', state_key: bob, sender: bob, content: { membership: 'join' } }, [last]);
    expect((await one(room.input(join))).status).toBe('accepted');
    const said = room.build({ type: 'm.room.message', sender: bob, content: { body: 'hi' } }, [join.eventId]);
    const r = await counted(room.input(said));
    expect(r.r.status).toBe('accepted');
    if (ctx.dialect === 'postgres') expect(r.sql).toHaveLength(1);
    expect(published.filter((p) => p.output.type === 'new_room_event').map((p) => p.msgId)).toEqual([...ids, join.eventId, said.eventId].map((id) => `new:${id}`));
  });

  it('a message the auth rules refuse is stored rejected and moves nothing', async () => {
    const { room, start } = await started();
    const intruder = room.build({ type: 'm.room.message', sender: '@bob:hs.test', content: { body: 'hi' } }, [start.at(-1)!.eventId]);
    const r = await one(room.input(intruder));
    expect(r.status).toBe('rejected');
    const roomNid = (await events.room(room.roomId))!.roomNid;
    expect((await events.eventsByNids(await events.forwardExtremities(roomNid))).map((e) => e.eventId)).toEqual([start.at(-1)!.eventId]);
    expect((await events.eventsByIds([intruder.eventId]))[0]).toMatchObject({ isRejected: true });
    expect(published).toEqual([]);
    expect((await one(room.input(intruder))).status).toBe('duplicate');
  });

  it('a message merging two branches of different state is resolved, in a transaction', async () => {
    const { room, start } = await started();
    const last = start.at(-1)!.eventId;
    const topic = room.build({ type: 'm.room.topic', state_key: '', sender: room.creator, content: { topic: 't' } }, [last]);
    const side = room.build({ type: 'm.room.message', sender: room.creator, content: { body: 'side' } }, [last]);
    expect((await one(room.input(topic))).status).toBe('accepted');
    expect((await one(room.input(side))).status).toBe('accepted');
    const merge = room.build({ type: 'm.room.message', sender: room.creator, content: { body: 'merge' } }, [topic.eventId, side.eventId]);
    const m = await counted(room.input(merge));
    expect(m.r.status).toBe('accepted');
    expect(m.sql.filter((s) => s.startsWith('begin'))).toHaveLength(1);
    const out = published.filter((p) => p.msgId === `new:${merge.eventId}`);
    expect(out).toHaveLength(1);
    expect((out[0]!.output as { new_room_event: { latest_event_ids: string[] } }).new_room_event.latest_event_ids).toEqual([merge.eventId]);
  });

  it('a redaction from another room waiting for a message is taken, and does not redact it', async () => {
    const a = await started();
    const b = await started();
    const target = a.room.build({ type: 'm.room.message', sender: a.room.creator, content: { body: 'mine' } }, [a.start.at(-1)!.eventId]);
    const foreign = b.room.build({ type: 'm.room.redaction', sender: b.room.creator, content: {}, redacts: target.eventId }, [b.start.at(-1)!.eventId]);
    expect((await one(b.room.input(foreign))).status).toBe('accepted');
    expect([...(await events.pendingRedactionTargets([target.eventId]))]).toEqual([target.eventId]);
    published = [];
    expect((await one(a.room.input(target))).status).toBe('accepted');
    expect(published.map((p) => p.msgId)).toEqual([`new:${target.eventId}`]);
    expect([...(await events.pendingRedactionTargets([target.eventId]))]).toEqual([]);
    const [stored] = await events.eventsByIds([target.eventId]);
    expect(JSON.parse([...(await events.eventJson([stored!.eventNid])).values()][0]!).content).toEqual({ body: 'mine' });
  });

  it('a stored event the shortcut took for new is a duplicate, and changes nothing', async () => {
    const { room, start } = await started();
    const last = start.at(-1)!.eventId;
    // Two siblings: the first is stored; the process forgets the room, then learns the shared
    // prev and auth events again from the second, but not the first itself.
    const a = room.build({ type: 'm.room.message', sender: room.creator, content: { body: 'a' } }, [last]);
    const b = room.build({ type: 'm.room.message', sender: room.creator, content: { body: 'b' } }, [last]);
    expect((await one(room.input(a))).status).toBe('accepted');
    inputer.forgetRoom(room.roomId);
    expect((await one(room.input(b))).status).toBe('accepted');
    published = [];
    const again = await counted(room.input(a));
    expect(again.r).toEqual({ event_id: a.eventId, status: 'duplicate' });
    expect(published).toEqual([]);
    // The first try was undone: the room's extremities are the two siblings, still.
    const roomNid = (await events.room(room.roomId))!.roomNid;
    const latest = await events.eventsByNids(await events.forwardExtremities(roomNid));
    expect(latest.map((e) => e.eventId).sort()).toEqual([a.eventId, b.eventId].sort());
    // And the room goes on from there, on the shortcut again.
    const c = room.build({ type: 'm.room.message', sender: room.creator, content: { body: 'c' } }, [a.eventId, b.eventId]);
    const next = await counted(room.input(c));
    expect(next.r.status).toBe('accepted');
    expect(published.map((p) => p.msgId)).toEqual([`new:${c.eventId}`]);
  });

  it('an outlier sent again as a new event is taken into the DAG', async () => {
    const { room, start } = await started();
    const topic = room.build({ type: 'm.room.topic', state_key: '', sender: room.creator, content: { topic: 't' } }, [start.at(-1)!.eventId]);
    expect((await one(room.input(topic, 'outlier'))).status).toBe('accepted');
    expect((await one(room.input(topic))).status).toBe('accepted');
    expect(published.filter((p) => p.output.type === 'new_room_event').map((p) => p.msgId)).toEqual([`new:${topic.eventId}`]);
    const [stored] = await events.eventsByIds([topic.eventId]);
    expect(stored!.stateSnapshotNid).not.toBeNull();
  });

  it('an event arriving alone after its redaction is redacted on arrival', async () => {
    const { room, start } = await started();
    const target = room.build({ type: 'm.room.message', sender: room.creator, content: { body: 'oops' } }, [start.at(-1)!.eventId]);
    const redaction = room.build({ type: 'm.room.redaction', sender: room.creator, content: {}, redacts: target.eventId }, [start.at(-1)!.eventId]);
    expect((await one(room.input(redaction))).status).toBe('accepted');
    expect(published.some((p) => p.output.type === 'redacted_event')).toBe(false);
    expect((await one(room.input(target))).status).toBe('accepted');
    expect(published.filter((p) => p.output.type === 'redacted_event').map((p) => p.msgId)).toEqual([`redacted:${target.eventId}:${redaction.eventId}`]);
    const json = await events.eventJson([(await events.eventsByIds([target.eventId]))[0]!.eventNid]);
    expect(JSON.parse([...json.values()][0]!).content).toEqual({});
  });

  it('published outputs leave the outbox with the next request, or shortly after without one', async () => {
    const { room, start } = await started();
    const roomNid = (await events.room(room.roomId))!.roomNid;
    const m1 = room.build({ type: 'm.room.message', sender: room.creator, content: { body: '1' } }, [start.at(-1)!.eventId]);
    const m2 = room.build({ type: 'm.room.message', sender: room.creator, content: { body: '2' } }, [m1.eventId]);
    await one(room.input(m1));
    await one(room.input(m2));
    // The second request took the first's row out; its own row waits for the next, or the flush.
    expect((await events.outbox(roomNid)).map((o) => o.msgId).filter((id) => id !== `new:${m2.eventId}`)).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await events.outbox(roomNid)).toEqual([]);
  });
});
