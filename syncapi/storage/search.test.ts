import type { Kysely } from 'kysely';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runMigrations } from '../../internal/sqlutil/index.js';
import { describeEachDatabase } from '../../internal/sqlutil/testing.js';
import { syncapiMigrations } from './migrations.js';
import {
  ALL_SEARCH_KEYS,
  fts5Query,
  newSearchIndex,
  parseSearchTerm,
  postgresTextSearchConfig,
  reindexAll,
  searchDocument,
  websearchQuery,
  type SearchDocument,
  type SearchIndex,
  type SearchQuery,
} from './search.js';
import { SyncStore } from './syncstore.js';
import type { SyncapiDatabase } from './tables.js';

describe('search query language and documents', () => {
  it('parses words, phrases, or and exclusions, and writes them for both databases', () => {
    const q = parseSearchTerm('hello "big world" cats or dogs -spam');
    expect(q).toEqual({ clauses: [[['hello']], [['big', 'world']], [['cats'], ['dogs']]], excluded: [['spam']] });
    expect(fts5Query(q)).toBe('("hello" AND "big world" AND ("cats" OR "dogs")) NOT ("spam")');
    expect(websearchQuery(q)).toBe('hello "big world" cats or dogs -spam');
    // FTS5 syntax in user input is only ever words.
    expect(fts5Query(parseSearchTerm('NEAR(a b) * "x" ^c OR'))).toBe('"NEAR a" AND "b" AND "x" AND "c"');
    expect(parseSearchTerm('  ... -- " ').clauses).toEqual([]);
    expect(parseSearchTerm('e-mail').clauses).toEqual([[['e', 'mail']]]);
  });

  it('maps languages to PostgreSQL configurations', () => {
    expect(postgresTextSearchConfig('en')).toBe('english');
    expect(postgresTextSearchConfig('German')).toBe('german');
    expect(postgresTextSearchConfig("x'; drop table")).toBe('simple');
  });

  it('indexes message bodies, room names and topics only', () => {
    const base = { eventId: '$e', roomId: '!r', sender: '@a', pos: 3 };
    expect(searchDocument({ ...base, type: 'm.room.message', stateKey: undefined, content: { body: 'hi' } })).toMatchObject({ key: 'content.body', text: 'hi' });
    expect(searchDocument({ ...base, type: 'm.room.name', stateKey: '', content: { name: 'N' } })).toMatchObject({ key: 'content.name', text: 'N' });
    expect(searchDocument({ ...base, type: 'm.room.topic', stateKey: '', content: { topic: 'T' } })).toMatchObject({ key: 'content.topic' });
    expect(searchDocument({ ...base, type: 'm.room.topic', stateKey: 'x', content: { topic: 'T' } })).toBeUndefined();
    expect(searchDocument({ ...base, type: 'm.room.message', stateKey: null, content: {} })).toBeUndefined();
    expect(searchDocument({ ...base, type: 'm.reaction', stateKey: null, content: { body: 'x' } })).toBeUndefined();
  });
});

describeEachDatabase<SyncapiDatabase>('syncapi search index', (ctx) => {
  let index: SearchIndex;
  let store: SyncStore;
  beforeAll(async () => {
    await runMigrations(ctx.db() as unknown as Kysely<unknown>, ctx.dialect, 'syncapi', syncapiMigrations);
    index = newSearchIndex(ctx.db(), ctx.dialect, 'en');
    store = new SyncStore(ctx.db());
  });
  beforeEach(async () => index.clear());

  let n = 0;
  const doc = (roomId: string, text: string, extra: Partial<SearchDocument> = {}): SearchDocument => {
    n++;
    return { eventId: `$${n}`, roomId, sender: '@a:hs', type: 'm.room.message', key: 'content.body', pos: n, text, ...extra };
  };
  const q = (term: string, extra: Partial<SearchQuery> = {}): SearchQuery => ({
    query: parseSearchTerm(term),
    roomIds: ['!r', '!s'],
    keys: ALL_SEARCH_KEYS,
    orderBy: 'rank',
    limit: 50,
    ...extra,
  });
  const ids = async (query: SearchQuery) => (await index.search(query)).map((h) => h.eventId);

  it('finds words with stemming, phrases, or and exclusions', async () => {
    const a = doc('!r', 'The quick brown fox jumps');
    const b = doc('!r', 'Jumping foxes are quick');
    const c = doc('!s', 'A lazy dog; café au lait');
    await index.index([a, b, c]);
    expect((await ids(q('fox'))).sort()).toEqual([a.eventId, b.eventId].sort());
    expect((await ids(q('jump')))).toHaveLength(2);
    expect(await ids(q('"brown fox"'))).toEqual([a.eventId]);
    expect(await ids(q('"fox brown"'))).toEqual([]);
    expect((await ids(q('lazy or brown'))).sort()).toEqual([a.eventId, c.eventId].sort());
    expect(await ids(q('fox -brown'))).toEqual([b.eventId]);
    expect(await ids(q('Café'))).toEqual([c.eventId]);
    // FTS5 folds accents; PostgreSQL without the unaccent extension does not.
    if (ctx.dialect === 'sqlite') expect(await ids(q('CAFE'))).toEqual([c.eventId]);
    expect(await ids(q('nothing'))).toEqual([]);
    expect(await ids(q('...'))).toEqual([]);
    expect(await index.count(q('fox'))).toBe(2);
  });

  it('ranks better matches first, ties oldest first, and pages by offset', async () => {
    const weak = doc('!r', 'cat and lots of other words here in a long message about nothing much');
    const strong = doc('!r', 'cat cat cat');
    const tie1 = doc('!s', 'one cat');
    const tie2 = doc('!s', 'two cat');
    await index.index([weak, strong, tie1, tie2]);
    const hits = await index.search(q('cat'));
    expect(hits[0]!.eventId).toBe(strong.eventId);
    expect(hits[hits.length - 1]!.eventId).toBe(weak.eventId);
    expect(hits.map((h) => h.eventId).indexOf(tie1.eventId)).toBeLessThan(hits.map((h) => h.eventId).indexOf(tie2.eventId));
    expect(hits[0]!.rank).toBeGreaterThan(hits[3]!.rank);
    const page2 = await ids(q('cat', { limit: 2, offset: 2 }));
    expect(page2).toEqual(hits.slice(2, 4).map((h) => h.eventId));
  });

  it('orders by recency and pages by position', async () => {
    const docs = [doc('!r', 'apple 1'), doc('!s', 'apple 2'), doc('!r', 'apple 3')];
    await index.index(docs);
    const recent = await index.search(q('apple', { orderBy: 'recent', limit: 2 }));
    expect(recent.map((h) => h.eventId)).toEqual([docs[2]!.eventId, docs[1]!.eventId]);
    expect(await ids(q('apple', { orderBy: 'recent', beforePos: recent[1]!.pos }))).toEqual([docs[0]!.eventId]);
  });

  it('filters by room, key, sender', async () => {
    const m = doc('!r', 'banana', { sender: '@b:hs' });
    const name = doc('!r', 'banana room', { type: 'm.room.name', key: 'content.name' });
    const topic = doc('!s', 'all about banana', { type: 'm.room.topic', key: 'content.topic' });
    const elsewhere = doc('!t', 'banana');
    await index.index([m, name, topic, elsewhere]);
    expect(await index.count(q('banana'))).toBe(3);
    expect(await ids(q('banana', { roomIds: ['!s'] }))).toEqual([topic.eventId]);
    expect(await ids(q('banana', { keys: ['content.name'] }))).toEqual([name.eventId]);
    expect(await ids(q('banana', { senders: ['@b:hs'] }))).toEqual([m.eventId]);
    expect(await ids(q('banana', { senders: [] }))).toEqual([]);
    expect((await ids(q('banana', { notSenders: ['@b:hs'] }))).sort()).toEqual([name.eventId, topic.eventId].sort());
    expect(await ids(q('banana', { roomIds: [] }))).toEqual([]);
  });

  it('indexes once, removes events and rooms', async () => {
    const a = doc('!r', 'cherry');
    const b = doc('!s', 'cherry');
    await index.index([a, b]);
    await index.index([a, { ...b, text: 'replaced' }]);
    expect(await index.count(q('cherry'))).toBe(2);
    await index.remove([a.eventId, '$unknown']);
    expect(await ids(q('cherry'))).toEqual([b.eventId]);
    await index.removeRoom('!s');
    expect(await ids(q('cherry'))).toEqual([]);
    // Removed events can come back (a reindex).
    await index.index([a]);
    expect(await ids(q('cherry'))).toEqual([a.eventId]);
  });

  it('rebuilds the index from the stored events, leaving out redacted ones', async () => {
    const ev = (eventId: string, type: string, stateKey: string | null, content: object) =>
      store.insertEvent({ roomId: '!re', eventId, type, sender: '@a:hs', stateKey, json: JSON.stringify({ type, content }), roomVersion: '10', addsState: [], removesState: [] });
    await ev('$re1', 'm.room.message', null, { body: 'durian fruit' });
    await ev('$re2', 'm.room.name', '', { name: 'Durian lovers' });
    await ev('$re3', 'm.room.message', null, {});
    await ev('$re4', 'm.room.member', '@a:hs', { membership: 'join', displayname: 'durian' });
    await index.index([doc('!re', 'stale durian')]);
    expect(await reindexAll(ctx.db(), index)).toBe(2);
    expect((await ids(q('durian', { roomIds: ['!re'] }))).sort()).toEqual(['$re1', '$re2']);
  });
});
