/** The relations table on both databases: children pages, recursion, thread summaries and roots, redactions, backfill. */
import type { Kysely } from 'kysely';
import { beforeAll, expect, it } from 'vitest';
import { runMigrations } from '../../internal/sqlutil/index.js';
import { describeEachDatabase } from '../../internal/sqlutil/testing.js';
import { syncapiMigrations } from './migrations.js';
import { backfillRelations, parseRelation, RelationsStore } from './relations.js';
import { SyncStore } from './syncstore.js';
import type { SyncapiDatabase } from './tables.js';

const ROOM = '!r:hs';

describeEachDatabase<SyncapiDatabase>('syncapi relations storage', (ctx) => {
  let store: SyncStore;
  let rels: RelationsStore;
  beforeAll(async () => {
    await runMigrations(ctx.db() as unknown as Kysely<unknown>, ctx.dialect, 'syncapi', syncapiMigrations);
    store = new SyncStore(ctx.db());
    rels = new RelationsStore(ctx.db());
  });

  /** Stores an event (with an optional relation in its content) and its relation row, as the consumer does. */
  const put = async (eventId: string, opts: { sender?: string; type?: string; rel?: [string, string]; room?: string; ts?: number } = {}) => {
    const content: Record<string, unknown> = { body: eventId };
    if (opts.rel) content['m.relates_to'] = { rel_type: opts.rel[0], event_id: opts.rel[1] };
    const roomId = opts.room ?? ROOM;
    const sender = opts.sender ?? '@a:hs';
    const type = opts.type ?? 'm.room.message';
    const json = JSON.stringify({ type, sender, room_id: roomId, content, origin_server_ts: opts.ts ?? 1 });
    const { pos } = await store.insertEvent({ roomId, eventId, type, sender, stateKey: null, json, roomVersion: '10', addsState: [], removesState: [] });
    const rel = parseRelation(content);
    if (rel) await rels.add({ roomId, eventId: rel.eventId, childEventId: eventId, childType: type, relType: rel.relType, sender, originTs: opts.ts ?? 1, pos });
    return pos;
  };

  it('parses only well-formed relations', () => {
    expect(parseRelation({ 'm.relates_to': { rel_type: 'm.thread', event_id: '$x' } })).toEqual({ relType: 'm.thread', eventId: '$x' });
    expect(parseRelation({ 'm.relates_to': { event_id: '$x' } })).toBeUndefined();
    expect(parseRelation({ 'm.relates_to': { rel_type: 'm.thread', event_id: 5 } })).toBeUndefined();
    expect(parseRelation({ 'm.relates_to': { 'm.in_reply_to': { event_id: '$x' } } })).toBeUndefined();
    expect(parseRelation({ 'm.relates_to': [] })).toBeUndefined();
    expect(parseRelation(null)).toBeUndefined();
  });

  it('pages children both ways, filters by rel_type and type, and follows relations to a depth', async () => {
    await put('$p');
    const c1 = await put('$c1', { rel: ['m.annotation', '$p'], type: 'm.reaction' });
    const c2 = await put('$c2', { rel: ['m.thread', '$p'] });
    await put('$c3', { rel: ['m.thread', '$p'] });
    await put('$g1', { rel: ['m.annotation', '$c2'], type: 'm.reaction' });
    await put('$gg1', { rel: ['m.reference', '$g1'] });
    await put('$ggg1', { rel: ['m.reference', '$gg1'] });
    // Another room's event naming $p is not its child.
    await put('$x', { rel: ['m.thread', '$p'], room: '!other:hs' });
    const ids = async (q: Partial<Parameters<RelationsStore['children']>[0]>) =>
      (await rels.children({ roomId: ROOM, eventId: '$p', backwards: true, limit: 50, depth: 1, ...q })).map((e) => e.eventId);
    expect(await ids({})).toEqual(['$c3', '$c2', '$c1']);
    expect(await ids({ backwards: false })).toEqual(['$c1', '$c2', '$c3']);
    expect(await ids({ limit: 2 })).toEqual(['$c3', '$c2']);
    expect(await ids({ from: c2 })).toEqual(['$c2', '$c1']);
    expect(await ids({ from: c1, backwards: false })).toEqual(['$c2', '$c3']);
    expect(await ids({ relType: 'm.thread' })).toEqual(['$c3', '$c2']);
    expect(await ids({ relType: 'm.annotation', eventType: 'm.reaction' })).toEqual(['$c1']);
    expect(await ids({ relType: 'm.annotation', eventType: 'm.room.message' })).toEqual([]);
    expect(await ids({ depth: 3 })).toEqual(['$gg1', '$g1', '$c3', '$c2', '$c1']);
    expect(await ids({ depth: 4 })).toEqual(['$ggg1', '$gg1', '$g1', '$c3', '$c2', '$c1']);
    // The filter applies at every level: $g1 hangs off an m.thread child, not an annotation.
    expect(await ids({ depth: 3, relType: 'm.annotation' })).toEqual(['$c1']);
  });

  it('ends relation cycles at the depth bound', async () => {
    await put('$cyc1', { rel: ['m.reference', '$cyc2'] });
    await put('$cyc2', { rel: ['m.reference', '$cyc1'] });
    const page = await rels.children({ roomId: ROOM, eventId: '$cyc1', backwards: true, limit: 50, depth: 3 });
    expect(page.map((e) => e.eventId)).toEqual(['$cyc2']);
  });

  it('summarises threads per parent, without ignored users, and lists roots by latest activity', async () => {
    await put('$t1', { sender: '@b:hs' });
    await put('$t2');
    await put('$t1a', { rel: ['m.thread', '$t1'], sender: '@b:hs' });
    await put('$t2a', { rel: ['m.thread', '$t2'], sender: '@c:hs' });
    const last = await put('$t1b', { rel: ['m.thread', '$t1'], sender: '@c:hs' });
    // A child in another room naming $t1 makes no difference.
    await put('$t1x', { rel: ['m.thread', '$t1'], sender: '@b:hs', room: '!other:hs' });
    const s = await rels.threadSummaries(new Map([['$t1', ROOM], ['$t2', ROOM], ['$nothing', ROOM]]), '@b:hs', new Set());
    expect(s.get('$t1')).toEqual({ roomId: ROOM, count: 2, latestPos: last, participated: true });
    expect(s.get('$t2')?.participated).toBe(false);
    expect(s.has('$nothing')).toBe(false);
    const ignoring = await rels.threadSummaries(new Map([['$t1', ROOM]]), '@b:hs', new Set(['@c:hs']));
    expect(ignoring.get('$t1')?.count).toBe(1);

    const roots = await rels.threadRoots({ roomId: ROOM, limit: 10 });
    expect(roots.map((r) => r.root.eventId)).toEqual(['$t1', '$t2', '$p']);
    expect(roots[0]!.latestPos).toBe(last);
    const older = await rels.threadRoots({ roomId: ROOM, limit: 10, upTo: last - 1 });
    expect(older.map((r) => r.root.eventId)).toEqual(['$t2', '$p']);
    // Participation: a child sent (b in $t1) or the root sent (a sent $t2 and $p).
    expect((await rels.threadRoots({ roomId: ROOM, limit: 10, participant: '@b:hs' })).map((r) => r.root.eventId)).toEqual(['$t1']);
    expect((await rels.threadRoots({ roomId: ROOM, limit: 10, participant: '@a:hs' })).map((r) => r.root.eventId)).toEqual(['$t2', '$p']);
  });

  it('drops a redacted child and remembers a redacted parent', async () => {
    await put('$r');
    await put('$r1', { rel: ['m.reference', '$r'] });
    await put('$r2', { rel: ['m.replace', '$r'] });
    await rels.redacted(ROOM, '$r1', '$redaction1');
    await rels.redacted(ROOM, '$r1', '$redaction1');
    expect((await rels.childrenOf(['$r'], ['m.reference', 'm.replace'], new Set())).map((c) => c.childEventId)).toEqual(['$r2']);
    expect(await rels.redactedAmong(['$r', '$r1'])).toEqual(new Set(['$r1']));
  });

  it('fills the table from events stored before it existed', async () => {
    await put('$b');
    await put('$b1', { rel: ['m.thread', '$b'] });
    await ctx.db().deleteFrom('syncapi_relations').where('event_id', '=', '$b').execute();
    expect(await rels.childrenOf(['$b'], ['m.thread'], new Set())).toEqual([]);
    await backfillRelations(ctx.db());
    expect((await rels.childrenOf(['$b'], ['m.thread'], new Set())).map((c) => c.childEventId)).toEqual(['$b1']);
  });
});
