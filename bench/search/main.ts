/**
 * bench/search: syncapi's full-text index (syncapi/storage/search.ts) on both databases.
 *  - indexing events/s: 100,000 generated messages (8-20 words from a 5,000-word vocabulary
 *    with a Zipf-like spread, in 100 rooms) in batches of 500 (a reindex, a backlog), and
 *    2,000 more one event per call (the consumer's path: one transaction per event);
 *  - query latency (p50/p99 ms, 200 queries each) over the 100,000 messages, in all 100 rooms
 *    as the route asks (rooms IN (...), limit 10 + the count), for a rare word, a common word
 *    and a two-word AND, in rank and recent order.
 * Run: npm run build && node dist/bench/search/main.js
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { withPostgresDatabase } from '../common.js';
import { sql, type Kysely } from 'kysely';
import { connectDatabase, runMigrations, type OpenedDatabase } from '../../internal/sqlutil/index.js';
import { syncapiMigrations } from '../../syncapi/storage/migrations.js';
import { newSearchIndex, parseSearchTerm, type SearchDocument, type SearchQuery } from '../../syncapi/storage/search.js';
import type { SyncapiDatabase } from '../../syncapi/storage/tables.js';

const MESSAGES = 100_000;
const SINGLE = 2_000;
const ROOMS = 100;
const VOCABULARY = 5_000;
const QUERIES = 200;

/** A deterministic pseudo-random generator (mulberry32), so both databases index the same text. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const vocabulary = Array.from({ length: VOCABULARY }, (_, i) => `w${i.toString(36)}x${'abcdefghij'[i % 10]}`);

function documents(count: number, from: number): SearchDocument[] {
  const rand = rng(from + 1);
  const out: SearchDocument[] = [];
  for (let i = 0; i < count; i++) {
    const n = 8 + Math.floor(rand() * 13);
    // Zipf-like: low indices are much more frequent.
    const text = Array.from({ length: n }, () => vocabulary[Math.floor(VOCABULARY * rand() ** 3)]!).join(' ');
    const pos = from + i + 1;
    out.push({ eventId: `$bench${pos}`, roomId: `!room${pos % ROOMS}:bench`, sender: `@u${pos % 500}:bench`, type: 'm.room.message', key: 'content.body', pos, text });
  }
  return out;
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
const round = (n: number, d = 2) => Math.round(n * 10 ** d) / 10 ** d;

async function measure(opened: OpenedDatabase<unknown>, label: string, out: Record<string, number>): Promise<void> {
  await runMigrations(opened.db, opened.dialect, 'syncapi', syncapiMigrations);
  const db = opened.db as unknown as Kysely<SyncapiDatabase>;
  const index = newSearchIndex(db, opened.dialect, 'en');

  const docs = documents(MESSAGES, 0);
  let t0 = performance.now();
  for (let i = 0; i < docs.length; i += 500) await index.index(docs.slice(i, i + 500));
  let s = (performance.now() - t0) / 1000;
  out[`${label}: index ${MESSAGES} messages in batches of 500, events/s`] = Math.round(MESSAGES / s);

  const singles = documents(SINGLE, MESSAGES);
  t0 = performance.now();
  for (const d of singles) await index.index([d]);
  s = (performance.now() - t0) / 1000;
  out[`${label}: index one event per call, events/s`] = Math.round(SINGLE / s);
  if (opened.dialect === 'postgres') await sql`ANALYZE syncapi_search_events`.execute(db);

  const roomIds = Array.from({ length: ROOMS }, (_, i) => `!room${i}:bench`);
  const terms: Array<[string, string]> = [
    ['rare word', vocabulary[VOCABULARY - 7]!],
    ['common word', vocabulary[3]!],
    ['two words', `${vocabulary[10]!} ${vocabulary[40]!}`],
  ];
  for (const [name, term] of terms) {
    for (const orderBy of ['rank', 'recent'] as const) {
      const q: SearchQuery = { query: parseSearchTerm(term), roomIds, keys: ['content.body'], orderBy, limit: 10 };
      const times: number[] = [];
      let hits = 0;
      for (let i = 0; i < QUERIES; i++) {
        const start = performance.now();
        await index.search(q);
        hits = await index.count(q);
        times.push(performance.now() - start);
      }
      times.sort((a, b) => a - b);
      out[`${label}: query ${name} (${hits} hits), ${orderBy}, limit 10 + count, p50 ms`] = round(percentile(times, 50));
      out[`${label}: query ${name} (${hits} hits), ${orderBy}, limit 10 + count, p99 ms`] = round(percentile(times, 99));
    }
  }
}

export async function searchBenches(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-search-'));
  const sqlite = await connectDatabase(`file:${path.join(dir, 'sync.db')}`, { baseDir: dir });
  try {
    await measure(sqlite, 'SQLite FTS5', out);
  } finally {
    await sqlite.close();
    rmSync(dir, { recursive: true, force: true });
  }
  await withPostgresDatabase('search', async (url) => {
    const pgdb = await connectDatabase(url, { baseDir: '.' });
    try {
      await measure(pgdb, 'PostgreSQL tsvector', out);
    } finally {
      await pgdb.close();
    }
  });
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const [k, v] of Object.entries(await searchBenches())) console.log(`${k}: ${v}`);
}
