import type { Kysely } from 'kysely';
import pino from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { runMigrations } from '../../../internal/sqlutil/index.js';
import { describeEachDatabase } from '../../../internal/sqlutil/testing.js';
import type { OutputNewRoomEvent, OutputRoomEvent } from '../../api/index.js';
import { DirectoryStore } from '../../storage/directory.js';
import { EventStore } from '../../storage/eventstore.js';
import { roomserverMigrations } from '../../storage/migrations.js';
import { StateSnapshotStore } from '../../storage/statesnapshots.js';
import type { RoomserverDatabase } from '../../storage/tables.js';
import { RoomserverInternalAPIImpl } from '../api.js';
import { EventLoader } from '../eventloader.js';
import { Inputer } from './inputer.js';
import { RoomCreator } from '../perform/createroom.js';
import { generateSigningKey } from '../../../internal/matrix/index.js';
import { signingIdentityFromKey } from '../../../internal/signingidentity.js';
import { TestRoom } from './testroom.js';

const BOB = '@bob:hs.test';
const room0creator = '@alice:hs.test';
const CAROL = '@carol:hs.test';

describeEachDatabase<RoomserverDatabase>('roomserver input', (ctx) => {
  let published: Array<{ roomId: string; msgId: string; output: OutputRoomEvent }>;
  let failPublish = false;
  let api: RoomserverInternalAPIImpl;
  let inputer: Inputer;
  const make = () => {
    const db = ctx.db();
    const events = new EventStore(db);
    const snapshots = new StateSnapshotStore(db);
    const loader = new EventLoader(events);
    const inp = new Inputer({
      serverName: 'hs.test',
      events,
      snapshots,
      loader,
      log: pino({ level: 'silent' }),
      publish: async (roomId, msgId, output) => {
        if (failPublish) throw new Error('bus down');
        published.push({ roomId, msgId, output });
      },
    });
    const identity = signingIdentityFromKey('hs.test', generateSigningKey());
    return { inp, api: new RoomserverInternalAPIImpl('hs.test', inp, events, snapshots, loader, new DirectoryStore(db), new RoomCreator(identity, inp), identity) };
  };
  beforeAll(async () => {
    await runMigrations(ctx.db() as unknown as Kysely<unknown>, ctx.dialect, 'roomserver', roomserverMigrations);
    published = [];
    ({ inp: inputer, api } = make());
  });
  const newEvents = (roomId: string): OutputNewRoomEvent[] =>
    published.filter((p) => p.roomId === roomId && p.output.type === 'new_room_event').map((p) => (p.output as { new_room_event: OutputNewRoomEvent }).new_room_event);

  for (const version of ['10', '12']) {
    it(`room version ${version}: creates a room, accepts messages, reports state changes and the latest events`, async () => {
      const room = new TestRoom(version);
      const start = room.start();
      const hello = room.build({ type: 'm.room.message', sender: room.creator, content: { body: 'hello' } }, [start.at(-1)!.eventId]);
      const res = await api.inputRoomEvents({ events: [...start, hello].map((e) => room.input(e)) });
      expect(res.results.map((r) => r.error ?? '')).toEqual(['', '', '', '', '']);
      expect(res.results.map((r) => r.status)).toEqual(['accepted', 'accepted', 'accepted', 'accepted', 'accepted']);
      const outs = newEvents(room.roomId);
      expect(outs.map((o) => o.event.pdu.type)).toEqual(['m.room.create', 'm.room.member', 'm.room.power_levels', 'm.room.join_rules', 'm.room.message']);
      expect(outs[0]!.adds_state_event_ids).toEqual([start[0]!.eventId]);
      expect(outs[3]!.adds_state_event_ids).toEqual([start[3]!.eventId]);
      expect(outs[4]!.adds_state_event_ids).toEqual([]);
      expect(outs[4]!.latest_event_ids).toEqual([hello.eventId]);

      const latest = await api.queryLatestEventsAndState({ room_id: room.roomId });
      expect(latest).toMatchObject({ room_exists: true, room_version: version, latest_event_ids: [hello.eventId], depth: hello.depth });
      expect(latest.state_events.map((e) => e.pdu.type).sort()).toEqual(['m.room.create', 'm.room.join_rules', 'm.room.member', 'm.room.power_levels']);
      const some = await api.queryLatestEventsAndState({ room_id: room.roomId, state_to_fetch: [{ type: 'm.room.member', state_key: room.creator }, { type: 'm.room.topic', state_key: '' }] });
      expect(some.state_events.map((e) => e.pdu.type)).toEqual(['m.room.member']);
      expect((await api.queryLatestEventsAndState({ room_id: '!nope:hs.test' })).room_exists).toBe(false);
    });
  }

  it('ignores duplicates, rejects what the auth rules refuse, and reports missing data', async () => {
    const room = new TestRoom('10');
    const start = room.start();
    await api.inputRoomEvents({ events: start.map((e) => room.input(e)) });
    const before = published.length;
    expect((await api.inputRoomEvents({ events: [room.input(start[1]!)] })).results[0]!.status).toBe('duplicate');
    // Bob never joined: his message cites no membership of his.
    const intruder = room.build({ type: 'm.room.message', sender: BOB, content: { body: 'hi' } }, [start[3]!.eventId]);
    const r = (await api.inputRoomEvents({ events: [room.input(intruder)] })).results[0]!;
    expect(r.status).toBe('rejected');
    expect(r.error).toMatch(/auth events|state before/);
    expect(published.length).toBe(before);
    expect((await api.queryLatestEventsAndState({ room_id: room.roomId })).latest_event_ids).toEqual([start[3]!.eventId]);
    const [stored] = (await api.queryEventsById({ event_ids: [intruder.eventId] })).events;
    expect(stored).toMatchObject({ rejected: true, soft_failed: false });

    const orphanRoom = new TestRoom('10');
    const orphanStart = orphanRoom.start();
    const missingPrev = (await api.inputRoomEvents({ events: [orphanRoom.input(orphanStart[2]!)] })).results[0]!;
    expect(missingPrev.status).toBe('error');
    expect(missingPrev.error).toMatch(/not known|missing/);
    const garbage = (await api.inputRoomEvents({ events: [{ kind: 'new', event: { room_version: '10', pdu: { type: 'x' } as never } }] })).results[0]!;
    expect(garbage.status).toBe('error');
  });

  it('rejects against the state before the event, and soft-fails against the current state', async () => {
    const room = new TestRoom('10');
    const start = room.start();
    const bobJoin = room.build({ type: 'm.room.member', state_key: BOB, sender: BOB, content: { membership: 'join' } }, [start[3]!.eventId]);
    const ban = room.build({ type: 'm.room.member', state_key: BOB, sender: room.creator, content: { membership: 'ban' } }, [bobJoin.eventId]);
    // Bob speaks on a branch from before the ban: allowed there, not in the room as it is now.
    const late = room.build({ type: 'm.room.message', sender: BOB, content: { body: 'sneaky' } }, [bobJoin.eventId]);
    const res = await api.inputRoomEvents({ events: [start, bobJoin, ban, late].flat().map((e) => room.input(e)) });
    expect(res.results.map((x) => x.status)).toEqual(['accepted', 'accepted', 'accepted', 'accepted', 'accepted', 'accepted', 'soft_failed']);
    expect((await api.queryLatestEventsAndState({ room_id: room.roomId })).latest_event_ids).toEqual([ban.eventId]);
    expect(newEvents(room.roomId).map((o) => o.event.pdu.event_id ?? '')).not.toContain(late.eventId);
    // Memberships follow the current state.
    expect(await api.queryMembershipForUser({ room_id: room.roomId, user_id: BOB })).toEqual({ room_exists: true, membership: 'ban', event_id: ban.eventId, is_in_room: false });
    expect(await api.queryMembershipForUser({ room_id: room.roomId, user_id: room.creator })).toMatchObject({ membership: 'join', is_in_room: true });
    expect(await api.queryMembershipForUser({ room_id: room.roomId, user_id: CAROL })).toEqual({ room_exists: true, is_in_room: false });
    const joined = await api.queryMembershipsForRoom({ room_id: room.roomId, memberships: ['join'] });
    expect(joined.members.map((m) => m.user_id)).toEqual([room.creator]);
    expect((await api.queryMembershipsForRoom({ room_id: room.roomId })).members.map((m) => `${m.user_id}:${m.membership}`)).toEqual([`${room.creator}:join`, `${BOB}:ban`].sort());
    expect((await api.queryRoomsForUser({ user_id: BOB, membership: 'ban' })).room_ids).toEqual([room.roomId]);
    expect((await api.queryRoomsForUser({ user_id: BOB, membership: 'join' })).room_ids).not.toContain(room.roomId);
    expect(await api.queryServersInRoom({ room_id: room.roomId })).toEqual({ servers: ['hs.test'] });
    // After the ban, in the DAG: his message cites his join as auth, but the state before it has the ban.
    const afterBan = room.build({ type: 'm.room.message', sender: BOB, content: { body: 'still here?' } }, [ban.eventId], { authFrom: [bobJoin.eventId] });
    const rejected = (await api.inputRoomEvents({ events: [room.input(afterBan)] })).results[0]!;
    expect(rejected.status).toBe('rejected');
    expect(rejected.error).toMatch(/state before/);
  });

  it('resolves forks: concurrent state on two branches, merged', async () => {
    const room = new TestRoom('10', 'hs.test', '@alice:hs.test');
    const start = room.start({ [BOB]: 50, [CAROL]: 50 });
    const bob = room.build({ type: 'm.room.member', state_key: BOB, sender: BOB, content: { membership: 'join' } }, [start[3]!.eventId]);
    const carol = room.build({ type: 'm.room.member', state_key: CAROL, sender: CAROL, content: { membership: 'join' } }, [bob.eventId]);
    const topicA = room.build({ type: 'm.room.topic', state_key: '', sender: BOB, content: { topic: 'A' } }, [carol.eventId]);
    const topicB = room.build({ type: 'm.room.topic', state_key: '', sender: CAROL, content: { topic: 'B' } }, [carol.eventId]);
    const merge = room.build({ type: 'm.room.message', sender: room.creator, content: { body: 'merge' } }, [topicA.eventId, topicB.eventId]);
    const res = await api.inputRoomEvents({ events: [...start, bob, carol, topicA, topicB].map((e) => room.input(e)) });
    expect(res.results.every((x) => x.status === 'accepted')).toBe(true);
    // Two forward extremities while the branches are apart; the current state has one topic.
    const apart = await api.queryLatestEventsAndState({ room_id: room.roomId, state_to_fetch: [{ type: 'm.room.topic', state_key: '' }] });
    expect(apart.latest_event_ids.sort()).toEqual([topicA.eventId, topicB.eventId].sort());
    expect(apart.state_events).toHaveLength(1);
    const resolvedTopic = apart.state_events[0]!.pdu.content as { topic: string };
    const outB = newEvents(room.roomId).at(-1)!;
    expect(outB.latest_event_ids.sort()).toEqual([topicA.eventId, topicB.eventId].sort());

    expect((await api.inputRoomEvents({ events: [room.input(merge)] })).results[0]!.status).toBe('accepted');
    const after = await api.queryStateAfterEvents({ room_id: room.roomId, prev_event_ids: [merge.eventId], state_to_fetch: [{ type: 'm.room.topic', state_key: '' }] });
    expect(after.prev_events_exist).toBe(true);
    expect(after.state_events[0]!.pdu.content).toEqual({ topic: resolvedTopic.topic });
    expect((await api.queryLatestEventsAndState({ room_id: room.roomId })).latest_event_ids).toEqual([merge.eventId]);
    expect((await api.queryStateAfterEvents({ room_id: room.roomId, prev_event_ids: ['$unknown'] })).prev_events_exist).toBe(false);

    // The merge computed states nobody keeps (each branch's state after); collecting them
    // leaves the room whole.
    expect((await api.performStateGarbageCollection({ room_id: room.roomId })).deleted_nodes).toBeGreaterThan(0);
    expect((await api.performStateGarbageCollection({ room_id: room.roomId })).deleted_nodes).toBe(0);
    const next = room.build({ type: 'm.room.topic', state_key: '', sender: room.creator, content: { topic: 'C' } }, [merge.eventId]);
    expect((await api.inputRoomEvents({ events: [room.input(next)] })).results[0]!.status).toBe('accepted');
    const now = await api.queryLatestEventsAndState({ room_id: room.roomId });
    expect(now.state_events.map((e) => e.pdu.type).sort()).toEqual(['m.room.create', 'm.room.join_rules', 'm.room.member', 'm.room.member', 'm.room.member', 'm.room.power_levels', 'm.room.topic']);
    expect((await api.queryStateAfterEvents({ room_id: room.roomId, prev_event_ids: [topicA.eventId] })).state_events.length).toBe(7);
    expect((await api.performStateGarbageCollection({ room_id: '!unknown:hs.test' })).deleted_nodes).toBe(0);
  });

  it('applies redactions that take effect, also to events that arrive after their redaction', async () => {
    const room = new TestRoom('10');
    const start = room.start();
    const secret = room.build({ type: 'm.room.message', sender: room.creator, content: { body: 'secret' } }, [start[3]!.eventId]);
    const redaction = room.build({ type: 'm.room.redaction', sender: room.creator, content: {}, redacts: secret.eventId }, [secret.eventId]);
    await api.inputRoomEvents({ events: [...start, secret, redaction].map((e) => room.input(e)) });
    const redactedOut = published.filter((p) => p.roomId === room.roomId && p.output.type === 'redacted_event');
    expect(redactedOut.map((p) => p.output)).toEqual([
      { type: 'redacted_event', redacted_event: { redacted_event_id: secret.eventId, redacted_because: { room_version: '10', pdu: redaction.json } } },
    ]);
    const [stored] = (await api.queryEventsById({ event_ids: [secret.eventId] })).events;
    expect(stored!.pdu.content).toEqual({});

    // The redaction first, its target after.
    const later = room.build({ type: 'm.room.message', sender: room.creator, content: { body: 'oops' } }, [redaction.eventId]);
    const early = room.build({ type: 'm.room.redaction', sender: room.creator, content: {}, redacts: later.eventId }, [redaction.eventId]);
    await api.inputRoomEvents({ events: [room.input(early), room.input(later)] });
    expect((await api.queryEventsById({ event_ids: [later.eventId] })).events[0]!.pdu.content).toEqual({});
    expect(published.filter((p) => p.roomId === room.roomId && p.output.type === 'redacted_event').length).toBe(2);

    // Someone from another server without the redact level cannot redact Alice's message.
    const mallory = '@mallory:evil.test';
    const join = room.build({ type: 'm.room.member', state_key: mallory, sender: mallory, content: { membership: 'join' } }, [later.eventId, early.eventId]);
    const kept = room.build({ type: 'm.room.message', sender: room.creator, content: { body: 'keep me' } }, [join.eventId]);
    const attempt = room.build({ type: 'm.room.redaction', sender: mallory, content: {}, redacts: kept.eventId }, [kept.eventId]);
    const res = await api.inputRoomEvents({ events: [join, kept, attempt].map((e) => room.input(e)) });
    expect(res.results.map((r) => r.status)).toEqual(['accepted', 'accepted', 'accepted']);
    expect((await api.queryEventsById({ event_ids: [kept.eventId] })).events[0]!.pdu.content).toEqual({ body: 'keep me' });
    expect((await api.queryServersInRoom({ room_id: room.roomId })).servers).toEqual(['evil.test', 'hs.test']);
  });

  // Sytest "An event which redacts an event in a different room should be ignored".
  it('rejects a redaction naming a known event of another room, and leaves that event alone', async () => {
    const a = new TestRoom('10');
    const b = new TestRoom('10');
    const startA = a.start();
    const startB = b.start();
    const msg = a.build({ type: 'm.room.message', sender: a.creator, content: { body: 'hi' } }, [startA[3]!.eventId]);
    await api.inputRoomEvents({ events: [...startA, msg].map((e) => a.input(e)) });
    await api.inputRoomEvents({ events: startB.map((e) => b.input(e)) });
    // Room B's creator holds every power in B: only the room mismatch can refuse it.
    const foreign = b.build({ type: 'm.room.redaction', sender: b.creator, content: {}, redacts: msg.eventId }, [startB[3]!.eventId]);
    const res = await api.inputRoomEvents({ events: [b.input(foreign)] });
    expect(res.results[0]).toMatchObject({ event_id: foreign.eventId, status: 'rejected' });
    expect(res.results[0]!.error).toMatch(/another room/);
    expect(newEvents(b.roomId).map((o) => o.event.pdu.event_id ?? '')).not.toContain(foreign.eventId);
    expect(newEvents(b.roomId).some((o) => o.event.pdu.type === 'm.room.redaction')).toBe(false);
    expect(published.some((p) => p.output.type === 'redacted_event' && p.output.redacted_event.redacted_event_id === msg.eventId)).toBe(false);
    expect((await api.queryEventsById({ event_ids: [msg.eventId] })).events[0]!.pdu.content).toEqual({ body: 'hi' });
    // The same redaction in the target's own room goes through.
    const own = a.build({ type: 'm.room.redaction', sender: a.creator, content: {}, redacts: msg.eventId }, [msg.eventId]);
    expect((await api.inputRoomEvents({ events: [a.input(own)] })).results[0]!.status).toBe('accepted');
    expect((await api.queryEventsById({ event_ids: [msg.eventId] })).events[0]!.pdu.content).toEqual({});
  });

  it('keeps aliases (removable by their creator or whoever may set the canonical alias) and the published rooms', async () => {
    const room = new TestRoom('10');
    const start = room.start();
    const bobJoin = room.build({ type: 'm.room.member', state_key: BOB, sender: BOB, content: { membership: 'join' } }, [start[3]!.eventId]);
    await api.inputRoomEvents({ events: [...start, bobJoin].map((e) => room.input(e)) });
    const alias = `#a${Date.now()}:hs.test`;
    expect(await api.performSetRoomAlias({ alias, room_id: room.roomId, user_id: room.creator })).toEqual({});
    expect(await api.performSetRoomAlias({ alias, room_id: room.roomId, user_id: BOB })).toEqual({ error: 'alias_exists' });
    expect(await api.performSetRoomAlias({ alias: `${alias}x`, room_id: '!nope:hs.test', user_id: BOB })).toEqual({ error: 'unknown_room' });
    expect(await api.queryRoomIdForAlias({ alias })).toEqual({ room_id: room.roomId });
    expect(await api.queryRoomIdForAlias({ alias: '#none:hs.test' })).toEqual({});
    const bobs = `#b${Date.now()}:hs.test`;
    await api.performSetRoomAlias({ alias: bobs, room_id: room.roomId, user_id: BOB });
    expect((await api.queryAliasesForRoom({ room_id: room.roomId })).aliases).toEqual([alias, bobs].sort());
    // Bob (power 0) may remove his own alias only; Alice (100) may remove any.
    expect(await api.performRemoveRoomAlias({ alias, user_id: BOB })).toEqual({ error: 'forbidden' });
    expect(await api.performRemoveRoomAlias({ alias: bobs, user_id: room.creator })).toEqual({});
    expect(await api.performRemoveRoomAlias({ alias, user_id: room.creator })).toEqual({});
    expect(await api.performRemoveRoomAlias({ alias, user_id: room.creator })).toEqual({ error: 'not_found' });
    expect((await api.queryAliasesForRoom({ room_id: room.roomId })).aliases).toEqual([]);

    expect(await api.performPublish({ room_id: room.roomId, visibility: 'public' })).toEqual({});
    expect((await api.queryPublishedRooms({ room_id: room.roomId })).room_ids).toEqual([room.roomId]);
    expect((await api.queryPublishedRooms({})).room_ids).toContain(room.roomId);
    await api.performPublish({ room_id: room.roomId, visibility: 'private' });
    expect((await api.queryPublishedRooms({ room_id: room.roomId })).room_ids).toEqual([]);
    expect(await api.performPublish({ room_id: '!nope:hs.test', visibility: 'public' })).toEqual({ error: 'unknown_room' });
  });

  it('decides history visibility for users and servers from the state at each event', async () => {
    const room = new TestRoom('10');
    const start = room.start();
    const hv = (v: string, prev: string) => room.build({ type: 'm.room.history_visibility', state_key: '', sender: room.creator, content: { history_visibility: v } }, [prev]);
    const msg = (body: string, prev: string) => room.build({ type: 'm.room.message', sender: room.creator, content: { body } }, [prev]);
    const joined = hv('joined', start[3]!.eventId);
    const m1 = msg('before bob', joined.eventId);
    const bobJoin = room.build({ type: 'm.room.member', state_key: BOB, sender: BOB, content: { membership: 'join' } }, [m1.eventId]);
    const m2 = msg('with bob', bobJoin.eventId);
    const shared = hv('shared', m2.eventId);
    const m3 = msg('shared', shared.eventId);
    const open = hv('world_readable', m3.eventId);
    const m4 = msg('for all', open.eventId);
    await api.inputRoomEvents({ events: [...start, joined, m1, bobJoin, m2, shared, m3, open, m4].map((e) => room.input(e)) });
    const ids = [m1, bobJoin, m2, m3, m4].map((e) => e.eventId);
    const seen = async (who: { user_id?: string; server_name?: string }) => (await api.queryVisibleEvents({ event_ids: ids, ...who })).visible_event_ids;
    expect(await seen({ user_id: room.creator })).toEqual(ids);
    expect(await seen({ user_id: BOB })).toEqual([bobJoin.eventId, m2.eventId, m3.eventId, m4.eventId]);
    expect(await seen({ user_id: CAROL })).toEqual([m4.eventId]);
    expect(await seen({ server_name: 'hs.test' })).toEqual(ids);
    expect(await seen({ server_name: 'other.test' })).toEqual([m4.eventId]);
    // Nobody in particular (a guest peeking, an unauthenticated reader) sees what is world readable.
    expect(await seen({})).toEqual([m4.eventId]);
    expect((await api.queryVisibleEvents({ event_ids: ['$unknown'], user_id: room.creator })).visible_event_ids).toEqual([]);
  });

  it('announces invites of local users and their end', async () => {
    const room = new TestRoom('10');
    const start = room.start();
    const invite = room.build({ type: 'm.room.member', state_key: BOB, sender: room.creator, content: { membership: 'invite' } }, [start[3]!.eventId]);
    const remote = room.build({ type: 'm.room.member', state_key: '@x:other.test', sender: room.creator, content: { membership: 'invite' } }, [invite.eventId]);
    const join = room.build({ type: 'm.room.member', state_key: BOB, sender: BOB, content: { membership: 'join' } }, [remote.eventId]);
    await api.inputRoomEvents({ events: [...start, invite, remote, join].map((e) => room.input(e)) });
    const mine = published.filter((p) => p.roomId === room.roomId && (p.output.type === 'new_invite_event' || p.output.type === 'retire_invite_event')).map((p) => p.output);
    expect(mine).toEqual([
      { type: 'new_invite_event', new_invite_event: { event: { room_version: '10', pdu: invite.json } } },
      { type: 'retire_invite_event', retire_invite_event: { event_id: invite.eventId, target_user_id: BOB, membership: 'join', retired_by_event_id: join.eventId } },
    ]);
    expect((await api.queryRoomsForUser({ user_id: '@x:other.test', membership: 'invite' })).room_ids).toEqual([room.roomId]);
  });

  for (const version of ['10', '12']) {
    it(`creates rooms with every preset (room version ${version})`, async () => {
      const alice = room0creator;
      const roomIdFor = () => (version === '12' ? {} : { room_id: `!c${Math.random().toString(36).slice(2)}:hs.test` });
      const pub = await api.performCreateRoom({
        user_id: alice,
        room_version: version,
        preset: 'public_chat',
        name: 'Lobby',
        topic: 'hello',
        initial_state: [{ type: 'm.room.encryption', state_key: '', content: { algorithm: 'm.megolm.v1.aes-sha2' } }],
        invite: [BOB],
        creator_profile: { displayname: 'Alice' },
        canonical_alias: '#lobby:hs.test',
        ...roomIdFor(),
      });
      expect(pub.error).toBeUndefined();
      const roomId = pub.room_id!;
      const state = await api.queryLatestEventsAndState({ room_id: roomId });
      const byType = new Map(state.state_events.map((e) => [`${e.pdu.type}|${e.pdu.state_key}`, e.pdu.content as Record<string, unknown>]));
      expect(byType.get('m.room.join_rules|')).toEqual({ join_rule: 'public' });
      expect(byType.get('m.room.name|')).toEqual({ name: 'Lobby' });
      expect(byType.get('m.room.topic|')).toEqual({ topic: 'hello' });
      expect(byType.get('m.room.canonical_alias|')).toEqual({ alias: '#lobby:hs.test' });
      expect(byType.get('m.room.encryption|')).toEqual({ algorithm: 'm.megolm.v1.aes-sha2' });
      expect(byType.get('m.room.history_visibility|')).toEqual({ history_visibility: 'shared' });
      expect(byType.has('m.room.guest_access|')).toBe(false);
      expect(byType.get(`m.room.member|${alice}`)).toEqual({ membership: 'join', displayname: 'Alice' });
      expect(byType.get(`m.room.member|${BOB}`)).toEqual({ membership: 'invite' });
      expect((byType.get('m.room.power_levels|') as { invite: number }).invite).toBe(50);
      expect(await api.queryMembershipForUser({ room_id: roomId, user_id: BOB })).toMatchObject({ membership: 'invite' });

      const trusted = await api.performCreateRoom({ user_id: alice, room_version: version, preset: 'trusted_private_chat', invite: [BOB], is_direct: true, power_level_content_override: { events_default: 10 }, ...roomIdFor() });
      const tState = await api.queryLatestEventsAndState({ room_id: trusted.room_id! });
      const tBy = new Map(tState.state_events.map((e) => [`${e.pdu.type}|${e.pdu.state_key}`, e.pdu.content as Record<string, unknown>]));
      expect(tBy.get('m.room.join_rules|')).toEqual({ join_rule: 'invite' });
      expect(tBy.get('m.room.guest_access|')).toEqual({ guest_access: 'can_join' });
      expect(tBy.get(`m.room.member|${BOB}`)).toEqual({ membership: 'invite', is_direct: true });
      const pl = tBy.get('m.room.power_levels|') as { users: Record<string, number>; events_default: number };
      expect(pl.events_default).toBe(10);
      if (version === '12') expect((tBy.get('m.room.create|') as { additional_creators: string[] }).additional_creators).toEqual([BOB]);
      else expect(pl.users).toEqual({ [alice]: 100, [BOB]: 100 });

      expect((await api.performCreateRoom({ user_id: alice, room_version: '99', preset: 'private_chat' })).error).toBe('unsupported_room_version');
      // A power level override that locks the creator out of their own next event is refused;
      // in room version 12 creators outrank any power level, so it is not.
      const locked = await api.performCreateRoom({ user_id: alice, room_version: version, preset: 'private_chat', power_level_content_override: { state_default: 1000, users: {} }, name: 'x', ...roomIdFor() });
      expect(locked.error).toBe(version === '12' ? undefined : 'refused');
    });
  }

  it('stores outliers without state, and takes them into the DAG later', async () => {
    const room = new TestRoom('10');
    const start = room.start();
    await api.inputRoomEvents({ events: start.slice(0, 3).map((e) => room.input(e)) });
    expect((await api.inputRoomEvents({ events: [room.input(start[3]!, 'outlier')] })).results[0]!.status).toBe('accepted');
    expect((await api.queryLatestEventsAndState({ room_id: room.roomId })).latest_event_ids).toEqual([start[2]!.eventId]);
    expect((await api.queryStateAfterEvents({ room_id: room.roomId, prev_event_ids: [start[3]!.eventId] })).prev_events_exist).toBe(false);
    expect((await api.inputRoomEvents({ events: [room.input(start[3]!, 'outlier')] })).results[0]!.status).toBe('duplicate');
    expect((await api.inputRoomEvents({ events: [room.input(start[3]!)] })).results[0]!.status).toBe('accepted');
    expect((await api.queryLatestEventsAndState({ room_id: room.roomId })).latest_event_ids).toEqual([start[3]!.eventId]);
  });

  it('keeps one room in order and runs rooms side by side', async () => {
    const rooms = Array.from({ length: 8 }, () => new TestRoom('10'));
    const chains = rooms.map((room) => {
      const events = room.start();
      for (let i = 0; i < 25; i++) events.push(room.build({ type: 'm.room.message', sender: room.creator, content: { body: `m${i}` } }, [events.at(-1)!.eventId]));
      return { room, events };
    });
    // Every event submitted separately and at once: only per-room ordering keeps prevs first.
    const results = await Promise.all(chains.flatMap(({ room, events }) => events.map((e) => api.inputRoomEvents({ events: [room.input(e)] }))));
    expect(results.flatMap((r) => r.results).every((x) => x.status === 'accepted')).toBe(true);
    for (const { room, events } of chains) {
      expect((await api.queryLatestEventsAndState({ room_id: room.roomId })).latest_event_ids).toEqual([events.at(-1)!.eventId]);
      expect(newEvents(room.roomId).map((o) => o.event.pdu.content)).toEqual(events.map((e) => e.content));
    }
  });

  for (const version of ['10', '12']) {
    it(`room version ${version}: joins a room it does not have from its state and auth chain (a join over federation)`, async () => {
      const room = new TestRoom(version, 'remote.test', '@alice:remote.test');
      const start = room.start();
      const topic = room.build({ type: 'm.room.topic', state_key: '', sender: room.creator, content: { topic: 'far away' } }, [start[3]!.eventId]);
      const msg = room.build({ type: 'm.room.message', sender: room.creator, content: { body: 'before you came' } }, [topic.eventId]);
      const join = room.build({ type: 'm.room.member', state_key: BOB, sender: BOB, content: { membership: 'join' } }, [msg.eventId]);
      const state = [...start, topic];
      // The auth chain and state as outliers, oldest first, then the join with its state.
      const outliers = await api.inputRoomEvents({ events: state.map((e) => room.input(e, 'outlier')) });
      expect(outliers.results.map((r) => r.status)).toEqual(state.map(() => 'accepted'));
      expect(newEvents(room.roomId)).toEqual([]);
      const res = await api.inputRoomEvents({ events: [{ ...room.input(join), state_event_ids: state.map((e) => e.eventId), origin: 'remote.test' }] });
      expect(res.results[0]).toMatchObject({ status: 'accepted' });
      const [out] = newEvents(room.roomId);
      expect(out!.event.pdu.type).toBe('m.room.member');
      expect(new Set(out!.adds_state_event_ids)).toEqual(new Set([...state.map((e) => e.eventId), join.eventId]));
      const latest = await api.queryLatestEventsAndState({ room_id: room.roomId });
      expect(latest.latest_event_ids).toEqual([join.eventId]);
      expect(latest.state_events.map((e) => e.pdu.type).sort()).toEqual(['m.room.create', 'm.room.join_rules', 'm.room.member', 'm.room.member', 'm.room.power_levels', 'm.room.topic']);
      expect((await api.queryMembershipForUser({ room_id: room.roomId, user_id: BOB })).membership).toBe('join');
      // The room goes on from there.
      const reply = room.build({ type: 'm.room.message', sender: BOB, content: { body: 'hello' } }, [join.eventId]);
      expect((await api.inputRoomEvents({ events: [room.input(reply)] })).results[0]!.status).toBe('accepted');
    });
  }

  it('refuses a join whose given state names events it does not have', async () => {
    const room = new TestRoom('10', 'remote.test', '@alice:remote.test');
    const start = room.start();
    await api.inputRoomEvents({ events: start.map((e) => room.input(e, 'outlier')) });
    const topic = room.build({ type: 'm.room.topic', state_key: '', sender: room.creator, content: { topic: 'never sent' } }, [start[3]!.eventId]);
    const join = room.build({ type: 'm.room.member', state_key: BOB, sender: BOB, content: { membership: 'join' } }, [topic.eventId]);
    const res = await api.inputRoomEvents({ events: [{ ...room.input(join), state_event_ids: [...start, topic].map((e) => e.eventId) }] });
    expect(res.results[0]).toMatchObject({ status: 'error' });
    expect(res.results[0]!.error).toMatch(/missing state events/);
  });

  it('publishes after a crash what was stored but not published, once', async () => {
    const room = new TestRoom('10');
    const start = room.start();
    failPublish = true;
    const res = await inputer.input(start.map((e) => room.input(e)));
    failPublish = false;
    // The events are stored (publishing failed after commit), their outputs wait in the outbox.
    expect(res.map((r) => r.status)).toEqual(['accepted', 'accepted', 'accepted', 'accepted']);
    expect(newEvents(room.roomId)).toEqual([]);
    expect((await api.inputRoomEvents({ events: [room.input(start[0]!)] })).results[0]!.status).toBe('duplicate');
    const restarted = make();
    expect(await restarted.inp.recover()).toBeGreaterThanOrEqual(4);
    expect(newEvents(room.roomId).map((o) => o.event.pdu.type)).toEqual(['m.room.create', 'm.room.member', 'm.room.power_levels', 'm.room.join_rules']);
    expect(await restarted.inp.recover()).toBe(0);
  });
});

describe('TestRoom', () => {
  it('builds version 12 rooms whose ID comes from the create event', () => {
    const room = new TestRoom('12');
    const [create] = room.start();
    expect(room.roomId).toBe(`!${create!.eventId.slice(1)}`);
  });
});
