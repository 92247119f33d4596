/**
 * Full-text search of room events on the database's own full-text index, behind one small
 * interface (`SearchIndex`), with no search server beside the database:
 *
 * - SQLite: an FTS5 virtual table, `syncapi_search_fts`, contentless (the text already lives in
 *   the event JSON) with `contentless_delete=1`, tokenised by `porter unicode61
 *   remove_diacritics 2`: Unicode word splitting, accents folded, English (Porter) stemming.
 *   Its rowid is the row's ID in `syncapi_search_events`, which holds what the search filters
 *   on (room, sender, type, key, stream position). Ranked by FTS5's bm25(), negated so that
 *   higher is better. FTS5 has one stemmer and it is English: with another configured
 *   language, words are still split and matched, only stemming is English-shaped (the query
 *   goes through the same stemmer, so matching stays symmetric).
 * - PostgreSQL: a `tsvector` column on `syncapi_search_events` with a GIN index, built at
 *   insert with the text search configuration named by `sync_api.search.language` ("en" →
 *   english, ...; see `postgresTextSearchConfig`), queried with websearch_to_tsquery (which
 *   never fails on user input) and ranked by ts_rank normalised by document length (as bm25
 *   is). Accents are not folded (that needs the unaccent extension). After changing the language, reindex
 *   (POST /_dendrite/admin/fulltext/reindex).
 *
 * Both speak the same query language, a subset of web search syntax: words are ANDed, "a
 * quoted phrase" matches in order, `or` between two terms is OR, and `-word` excludes. Terms
 * are matched as whole (stemmed) words, not prefixes, the same on both databases.
 *
 * What is indexed (Synapse's and Dendrite's choice): `content.body` of m.room.message,
 * `content.name` of m.room.name and `content.topic` of m.room.topic (state events with an
 * empty state key). A redaction removes the event from the index; a purged room goes with
 * `removeRoom`.
 *
 * Ties in rank are broken by stream position, oldest first, so that pages are stable.
 */
import { sql, type Kysely, type RawBuilder } from 'kysely';
import { chunks, inChunks, type DialectName } from '../../internal/sqlutil/index.js';
import type { SyncapiDatabase } from './tables.js';

/** The search keys of the Client-Server API and the event type each one is found in. */
export const SEARCH_KEYS = {
  'content.body': 'm.room.message',
  'content.name': 'm.room.name',
  'content.topic': 'm.room.topic',
} as const;
export type SearchKey = keyof typeof SEARCH_KEYS;
export const ALL_SEARCH_KEYS = Object.keys(SEARCH_KEYS) as SearchKey[];
export const isSearchKey = (k: unknown): k is SearchKey => typeof k === 'string' && Object.hasOwn(SEARCH_KEYS, k);

/** One event's text in the index. */
export interface SearchDocument {
  eventId: string;
  roomId: string;
  sender: string;
  type: string;
  key: SearchKey;
  /** The event's stream position in syncapi_output_room_events. */
  pos: number;
  text: string;
}

/** An event as the indexer sees it. */
export interface IndexableEvent {
  eventId: string;
  roomId: string;
  sender: string;
  type: string;
  stateKey: string | null | undefined;
  content: unknown;
  pos: number;
}

/** Longest text indexed per event (events are at most 64 KiB anyway). */
const MAX_TEXT = 65536;

/** The document to index for an event, or undefined when the event has no searchable text. */
export function searchDocument(e: IndexableEvent): SearchDocument | undefined {
  const content = typeof e.content === 'object' && e.content !== null ? (e.content as Record<string, unknown>) : {};
  let key: SearchKey;
  if (e.type === 'm.room.message' && (e.stateKey === null || e.stateKey === undefined)) key = 'content.body';
  else if (e.type === 'm.room.name' && e.stateKey === '') key = 'content.name';
  else if (e.type === 'm.room.topic' && e.stateKey === '') key = 'content.topic';
  else return undefined;
  const text = content[key.slice('content.'.length)];
  if (typeof text !== 'string' || text.trim() === '') return undefined;
  return { eventId: e.eventId, roomId: e.roomId, sender: e.sender, type: e.type, key, pos: e.pos, text: text.slice(0, MAX_TEXT) };
}

// ---------------------------------------------------------------------------------------------
// The query language

/** A parsed search term: clauses ANDed (each clause a list of alternatives, ORed), and exclusions. */
export interface ParsedQuery {
  /** Each alternative is a phrase: one or more words, in order. */
  clauses: string[][][];
  excluded: string[][];
}

/** Words as both indexes split them: runs of letters, marks and digits. */
export function words(text: string): string[] {
  return text.match(/[\p{L}\p{M}\p{N}]+/gu) ?? [];
}

/** Parses web search syntax; an empty `clauses` means the term can match nothing. */
export function parseSearchTerm(term: string): ParsedQuery {
  const clauses: string[][][] = [];
  const excluded: string[][] = [];
  let orPending = false;
  for (const m of term.matchAll(/(-?)"([^"]*)"?|(\S+)/g)) {
    const negated = m[1] === '-' || (m[3]?.startsWith('-') ?? false);
    const raw = m[2] ?? (negated ? m[3]!.slice(1) : m[3]!);
    if (m[2] === undefined && !negated && raw.toLowerCase() === 'or') {
      orPending = clauses.length > 0;
      continue;
    }
    const ws = words(raw);
    if (ws.length === 0) continue;
    if (negated) {
      excluded.push(ws);
      orPending = false;
      continue;
    }
    // A quoted phrase, or unquoted punctuation-joined words ("e-mail"), is matched as a phrase.
    if (orPending) clauses[clauses.length - 1]!.push(ws);
    else clauses.push([ws]);
    orPending = false;
  }
  return { clauses, excluded };
}

/** The query as an FTS5 MATCH expression: every word double-quoted, so no user input is syntax. */
export function fts5Query(q: ParsedQuery): string {
  const phrase = (ws: string[]) => `"${ws.join(' ').replace(/"/g, '""')}"`;
  const positive = q.clauses.map((alts) => (alts.length === 1 ? phrase(alts[0]!) : `(${alts.map(phrase).join(' OR ')})`)).join(' AND ');
  if (q.excluded.length === 0) return positive;
  return `(${positive}) NOT (${q.excluded.map(phrase).join(' OR ')})`;
}

/** The query in websearch_to_tsquery syntax, rebuilt from the parse so both databases mean the same. */
export function websearchQuery(q: ParsedQuery): string {
  const phrase = (ws: string[]) => (ws.length === 1 ? ws[0]! : `"${ws.join(' ')}"`);
  const positive = q.clauses.map((alts) => alts.map(phrase).join(' or ')).join(' ');
  return [positive, ...q.excluded.map((ws) => `-${phrase(ws)}`)].join(' ');
}

/** PostgreSQL text search configurations by ISO 639-1 code (Dendrite's `language` is a code). */
const PG_CONFIGS: Record<string, string> = {
  ar: 'arabic',
  hy: 'armenian',
  eu: 'basque',
  ca: 'catalan',
  da: 'danish',
  nl: 'dutch',
  en: 'english',
  fi: 'finnish',
  fr: 'french',
  de: 'german',
  el: 'greek',
  hi: 'hindi',
  hu: 'hungarian',
  id: 'indonesian',
  ga: 'irish',
  it: 'italian',
  lt: 'lithuanian',
  ne: 'nepali',
  no: 'norwegian',
  nb: 'norwegian',
  nn: 'norwegian',
  pt: 'portuguese',
  ro: 'romanian',
  ru: 'russian',
  sr: 'serbian',
  es: 'spanish',
  sv: 'swedish',
  ta: 'tamil',
  tr: 'turkish',
  yi: 'yiddish',
};

/**
 * The PostgreSQL text search configuration for a configured language: a code ("en") or a
 * configuration's name ("english"); anything else is `simple` (no stemming, no stop words).
 * Only names from this list reach SQL.
 */
export function postgresTextSearchConfig(language: string): string {
  const l = language.trim().toLowerCase();
  if (PG_CONFIGS[l]) return PG_CONFIGS[l];
  if (Object.values(PG_CONFIGS).includes(l)) return l;
  return 'simple';
}

// ---------------------------------------------------------------------------------------------
// The index

export interface SearchQuery {
  query: ParsedQuery;
  roomIds: readonly string[];
  keys: readonly SearchKey[];
  senders?: readonly string[];
  notSenders?: readonly string[];
  orderBy: 'rank' | 'recent';
  limit: number;
  /** rank order: how many hits to skip. */
  offset?: number;
  /** recent order: only hits before this stream position. */
  beforePos?: number;
}

export interface SearchHit {
  eventId: string;
  roomId: string;
  sender: string;
  type: string;
  key: SearchKey;
  pos: number;
  /** Higher is better; comparable only within one database. */
  rank: number;
}

export interface SearchIndex {
  readonly dialect: DialectName;
  /** Adds documents (a document already indexed is left as it is). */
  index(docs: readonly SearchDocument[]): Promise<void>;
  /** Indexes an event if it has searchable text. */
  indexEvent(e: IndexableEvent): Promise<void>;
  remove(eventIds: readonly string[]): Promise<void>;
  removeRoom(roomId: string): Promise<void>;
  clear(): Promise<void>;
  search(q: SearchQuery): Promise<SearchHit[]>;
  /** How many hits the query has in all (ignoring limit, offset and beforePos). */
  count(q: SearchQuery): Promise<number>;
}

interface HitRow {
  event_id: string;
  room_id: string;
  sender: string;
  type: string;
  key: string;
  pos: number | string;
  score: number | string;
}

const toHit = (r: HitRow, negate: boolean): SearchHit => ({
  eventId: r.event_id,
  roomId: r.room_id,
  sender: r.sender,
  type: r.type,
  key: r.key as SearchKey,
  pos: Number(r.pos),
  rank: negate ? -Number(r.score) : Number(r.score),
});

/** Rows per multi-row insert: 7 parameters each stays far below both databases' limits. */
const INSERT_BATCH = 500;

abstract class BaseSearchIndex implements SearchIndex {
  abstract readonly dialect: DialectName;
  constructor(protected readonly db: Kysely<SyncapiDatabase>) {}

  abstract index(docs: readonly SearchDocument[]): Promise<void>;
  abstract remove(eventIds: readonly string[]): Promise<void>;
  abstract removeRoom(roomId: string): Promise<void>;
  abstract clear(): Promise<void>;
  protected abstract matchFrom(q: SearchQuery): { from: RawBuilder<unknown>; match: RawBuilder<unknown>; score: RawBuilder<unknown>; negate: boolean };

  async indexEvent(e: IndexableEvent): Promise<void> {
    const doc = searchDocument(e);
    if (doc) await this.index([doc]);
  }

  /** The WHERE conditions besides the text match. */
  protected filters(q: SearchQuery): RawBuilder<unknown>[] {
    const conds: RawBuilder<unknown>[] = [sql`e.room_id IN (${sql.join([...new Set(q.roomIds)])})`, sql`e.key IN (${sql.join([...new Set(q.keys)])})`];
    if (q.senders !== undefined) conds.push(q.senders.length > 0 ? sql`e.sender IN (${sql.join([...q.senders])})` : sql`1 = 0`);
    if (q.notSenders !== undefined && q.notSenders.length > 0) conds.push(sql`e.sender NOT IN (${sql.join([...q.notSenders])})`);
    return conds;
  }

  private empty(q: SearchQuery): boolean {
    return q.query.clauses.length === 0 || q.roomIds.length === 0 || q.keys.length === 0 || q.limit <= 0;
  }

  async search(q: SearchQuery): Promise<SearchHit[]> {
    if (this.empty(q)) return [];
    const { from, match, score, negate } = this.matchFrom(q);
    const conds = [match, ...this.filters(q)];
    let order: RawBuilder<unknown>;
    if (q.orderBy === 'recent') {
      if (q.beforePos !== undefined) conds.push(sql`e.pos < ${q.beforePos}`);
      order = sql`e.pos DESC`;
    } else {
      order = negate ? sql`score ASC, e.pos ASC` : sql`score DESC, e.pos ASC`;
    }
    const offset = q.orderBy === 'rank' ? (q.offset ?? 0) : 0;
    const { rows } = await sql<HitRow>`SELECT e.event_id, e.room_id, e.sender, e.type, e.key, e.pos, ${score} AS score FROM ${from} WHERE ${sql.join(conds, sql` AND `)} ORDER BY ${order} LIMIT ${q.limit} OFFSET ${offset}`.execute(this.db);
    return rows.map((r) => toHit(r, negate));
  }

  async count(q: SearchQuery): Promise<number> {
    if (this.empty({ ...q, limit: 1 })) return 0;
    const { from, match } = this.matchFrom(q);
    const { rows } = await sql<{ n: number | string }>`SELECT count(*) AS n FROM ${from} WHERE ${sql.join([match, ...this.filters(q)], sql` AND `)}`.execute(this.db);
    return Number(rows[0]?.n ?? 0);
  }
}

class SqliteSearchIndex extends BaseSearchIndex {
  readonly dialect = 'sqlite' as const;

  async index(docs: readonly SearchDocument[]): Promise<void> {
    if (docs.length === 0) return;
    await this.db.transaction().execute(async (tx) => {
      for (const batch of chunks(docs, INSERT_BATCH)) {
        const rows = await tx
          .insertInto('syncapi_search_events')
          .values(batch.map((d) => ({ event_id: d.eventId, room_id: d.roomId, sender: d.sender, type: d.type, key: d.key, pos: d.pos })))
          .onConflict((oc) => oc.column('event_id').doNothing())
          .returning(['id', 'event_id'])
          .execute();
        if (rows.length === 0) continue;
        const text = new Map(batch.map((d) => [d.eventId, d.text]));
        await sql`INSERT INTO syncapi_search_fts (rowid, body) VALUES ${sql.join(rows.map((r) => sql`(${r.id}, ${text.get(r.event_id)!})`))}`.execute(tx);
      }
    });
  }

  async remove(eventIds: readonly string[]): Promise<void> {
    if (eventIds.length === 0) return;
    await this.db.transaction().execute(async (tx) => {
      await inChunks([...new Set(eventIds)], async (chunk) => {
        const ids = (await tx.selectFrom('syncapi_search_events').select('id').where('event_id', 'in', chunk).execute()).map((r) => r.id);
        if (ids.length === 0) return [];
        await sql`DELETE FROM syncapi_search_fts WHERE rowid IN (${sql.join(ids)})`.execute(tx);
        await tx.deleteFrom('syncapi_search_events').where('id', 'in', ids).execute();
        return [];
      });
    });
  }

  async removeRoom(roomId: string): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await sql`DELETE FROM syncapi_search_fts WHERE rowid IN (SELECT id FROM syncapi_search_events WHERE room_id = ${roomId})`.execute(tx);
      await tx.deleteFrom('syncapi_search_events').where('room_id', '=', roomId).execute();
    });
  }

  async clear(): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await sql`DELETE FROM syncapi_search_fts`.execute(tx);
      await tx.deleteFrom('syncapi_search_events').execute();
    });
  }

  protected matchFrom(q: SearchQuery) {
    return {
      from: sql`syncapi_search_fts JOIN syncapi_search_events e ON e.id = syncapi_search_fts.rowid`,
      match: sql`syncapi_search_fts MATCH ${fts5Query(q.query)}`,
      // bm25() is lower for better matches.
      score: sql`bm25(syncapi_search_fts)`,
      negate: true,
    };
  }
}

class PostgresSearchIndex extends BaseSearchIndex {
  readonly dialect = 'postgres' as const;
  constructor(
    db: Kysely<SyncapiDatabase>,
    /** A name from PG_CONFIGS (never user input). */
    readonly config: string,
  ) {
    super(db);
  }

  async index(docs: readonly SearchDocument[]): Promise<void> {
    for (const batch of chunks(docs, INSERT_BATCH)) {
      const values = batch.map((d) => sql`(${d.eventId}, ${d.roomId}, ${d.sender}, ${d.type}, ${d.key}, ${d.pos}, to_tsvector(${this.config}::regconfig, ${d.text}))`);
      await sql`INSERT INTO syncapi_search_events (event_id, room_id, sender, type, key, pos, tsv) VALUES ${sql.join(values)} ON CONFLICT (event_id) DO NOTHING`.execute(this.db);
    }
  }

  async remove(eventIds: readonly string[]): Promise<void> {
    await inChunks([...new Set(eventIds)], async (chunk) => {
      await this.db.deleteFrom('syncapi_search_events').where('event_id', 'in', chunk).execute();
      return [];
    });
  }

  async removeRoom(roomId: string): Promise<void> {
    await this.db.deleteFrom('syncapi_search_events').where('room_id', '=', roomId).execute();
  }

  async clear(): Promise<void> {
    await this.db.deleteFrom('syncapi_search_events').execute();
  }

  protected matchFrom(q: SearchQuery) {
    const tsq = sql`websearch_to_tsquery(${this.config}::regconfig, ${websearchQuery(q.query)})`;
    return { from: sql`syncapi_search_events e`, match: sql`e.tsv @@ ${tsq}`, score: sql`ts_rank(e.tsv, ${tsq}, 1)`, negate: false };
  }
}

/** The search index of this database. */
export function newSearchIndex(db: Kysely<SyncapiDatabase>, dialect: DialectName, language: string): SearchIndex {
  return dialect === 'sqlite' ? new SqliteSearchIndex(db) : new PostgresSearchIndex(db, postgresTextSearchConfig(language));
}

/** Events read per round while reindexing. */
const REINDEX_BATCH = 2000;

/**
 * Rebuilds the index from syncapi's copy of the rooms (after enabling search, or changing the
 * language). Redacted events are stored redacted, so they have no text and stay out.
 */
export async function reindexAll(db: Kysely<SyncapiDatabase>, index: SearchIndex): Promise<number> {
  await index.clear();
  let after = 0;
  let indexed = 0;
  for (;;) {
    const rows = await db
      .selectFrom('syncapi_output_room_events')
      .select(['id', 'room_id', 'event_id', 'type', 'sender', 'state_key', 'event_json'])
      .where('type', 'in', Object.values(SEARCH_KEYS))
      .where('id', '>', after)
      .orderBy('id')
      .limit(REINDEX_BATCH)
      .execute();
    if (rows.length === 0) return indexed;
    const docs: SearchDocument[] = [];
    for (const r of rows) {
      const content = (JSON.parse(r.event_json) as { content?: unknown }).content;
      const doc = searchDocument({ eventId: r.event_id, roomId: r.room_id, sender: r.sender, type: r.type, stateKey: r.state_key, content, pos: Number(r.id) });
      if (doc) docs.push(doc);
    }
    await index.index(docs);
    indexed += docs.length;
    after = Number(rows[rows.length - 1]!.id);
  }
}

/** The room a room replaced (`predecessor` in its m.room.create), from syncapi's current state. */
export async function roomPredecessor(db: Kysely<SyncapiDatabase>, roomId: string): Promise<string | undefined> {
  const r = await db
    .selectFrom('syncapi_current_room_state as s')
    .innerJoin('syncapi_output_room_events as e', 'e.event_id', 's.event_id')
    .select('e.event_json')
    .where('s.room_id', '=', roomId)
    .where('s.type', '=', 'm.room.create')
    .where('s.state_key', '=', '')
    .executeTakeFirst();
  if (!r) return undefined;
  const pred = (JSON.parse(r.event_json) as { content?: { predecessor?: { room_id?: unknown } } }).content?.predecessor?.room_id;
  return typeof pred === 'string' ? pred : undefined;
}

