/**
 * Durable streams of the in-process bus in one SQLite file (WAL, synchronous=NORMAL): a
 * publish returns after its INSERT commits, and a committed WAL write survives the process
 * being killed (only an OS crash or power loss can take the last commits).
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Sqlite from 'better-sqlite3';
import { subjectMatches, type Headers } from '../bus.js';
import { UNCONSUMED_RETENTION, type MessageStore, type StoredMessage } from './store.js';

interface Row {
  stream: string;
  seq: number;
  subject: string;
  data: Buffer;
  headers: string;
  ts: number;
}

export class SqliteStore implements MessageStore {
  private readonly db: Sqlite.Database;
  private readonly stmts;
  private readonly lastSeq = new Map<string, number>();
  private readonly filters = new Map<string, string>();

  constructor(dir: string) {
    mkdirSync(dir, { recursive: true });
    this.db = new Sqlite(path.join(dir, 'jetstream.db'));
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS bus_messages (
        stream TEXT NOT NULL, seq INTEGER NOT NULL, subject TEXT NOT NULL, data BLOB NOT NULL,
        headers TEXT NOT NULL, ts INTEGER NOT NULL, msg_id TEXT, PRIMARY KEY (stream, seq));
      CREATE UNIQUE INDEX IF NOT EXISTS bus_messages_msg_id ON bus_messages (stream, msg_id) WHERE msg_id IS NOT NULL;
      CREATE TABLE IF NOT EXISTS bus_streams (stream TEXT PRIMARY KEY, last_seq INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS bus_consumers (
        stream TEXT NOT NULL, durable TEXT NOT NULL, filter TEXT NOT NULL, floor INTEGER NOT NULL,
        PRIMARY KEY (stream, durable));
      CREATE TABLE IF NOT EXISTS bus_acks (
        stream TEXT NOT NULL, durable TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (stream, durable, seq));
    `);
    this.stmts = {
      insert: this.db.prepare('INSERT OR IGNORE INTO bus_messages (stream, seq, subject, data, headers, ts, msg_id) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      setLast: this.db.prepare('INSERT INTO bus_streams (stream, last_seq) VALUES (?, ?) ON CONFLICT (stream) DO UPDATE SET last_seq = excluded.last_seq'),
      getLast: this.db.prepare('SELECT last_seq FROM bus_streams WHERE stream = ?'),
      upsertConsumer: this.db.prepare(
        'INSERT INTO bus_consumers (stream, durable, filter, floor) VALUES (?, ?, ?, 0) ON CONFLICT (stream, durable) DO UPDATE SET filter = excluded.filter',
      ),
      consumers: this.db.prepare('SELECT durable, filter, floor FROM bus_consumers WHERE stream = ?'),
      floorOf: this.db.prepare('SELECT floor FROM bus_consumers WHERE stream = ? AND durable = ?'),
      after: this.db.prepare('SELECT stream, seq, subject, data, headers, ts FROM bus_messages WHERE stream = ? AND seq > ? ORDER BY seq'),
      acked: this.db.prepare('SELECT seq FROM bus_acks WHERE stream = ? AND durable = ?'),
      ack: this.db.prepare('INSERT OR IGNORE INTO bus_acks (stream, durable, seq) VALUES (?, ?, ?)'),
      walk: this.db.prepare('SELECT seq, subject FROM bus_messages WHERE stream = ? AND seq > ? ORDER BY seq LIMIT 10000'),
      isAcked: this.db.prepare('SELECT 1 FROM bus_acks WHERE stream = ? AND durable = ? AND seq = ?'),
      setFloor: this.db.prepare('UPDATE bus_consumers SET floor = ? WHERE stream = ? AND durable = ?'),
      dropAcks: this.db.prepare('DELETE FROM bus_acks WHERE stream = ? AND durable = ? AND seq <= ?'),
      dropUpTo: this.db.prepare('DELETE FROM bus_messages WHERE stream = ? AND seq <= ?'),
      dropOlder: this.db.prepare('DELETE FROM bus_messages WHERE stream = ? AND ts < ?'),
    };
  }

  private last(stream: string): number {
    let n = this.lastSeq.get(stream);
    if (n === undefined) {
      n = (this.stmts.getLast.get(stream) as { last_seq: number } | undefined)?.last_seq ?? 0;
      this.lastSeq.set(stream, n);
    }
    return n;
  }

  append(stream: string, subject: string, data: Uint8Array, headers: Headers, ts: number, msgId?: string): number | undefined {
    const seq = this.last(stream) + 1;
    const write = this.db.transaction(() => {
      const r = this.stmts.insert.run(stream, seq, subject, Buffer.from(data), JSON.stringify(headers), ts, msgId ?? null);
      if (r.changes === 0) return false;
      this.stmts.setLast.run(stream, seq);
      return true;
    });
    if (!write()) return undefined;
    this.lastSeq.set(stream, seq);
    return seq;
  }

  registerConsumer(stream: string, durable: string, filter: string): void {
    this.stmts.upsertConsumer.run(stream, durable, filter);
    this.filters.set(`${stream}\u0000${durable}`, filter);
  }

  pending(stream: string, durable: string): StoredMessage[] {
    const floor = (this.stmts.floorOf.get(stream, durable) as { floor: number } | undefined)?.floor;
    if (floor === undefined) return [];
    const filter = this.filters.get(`${stream}\u0000${durable}`) ?? '>';
    const acked = new Set((this.stmts.acked.all(stream, durable) as Array<{ seq: number }>).map((r) => r.seq));
    return (this.stmts.after.all(stream, floor) as Row[])
      .filter((r) => !acked.has(r.seq) && subjectMatches(filter, r.subject))
      .map((r) => ({ stream: r.stream, seq: r.seq, subject: r.subject, data: new Uint8Array(r.data), headers: JSON.parse(r.headers) as Headers, ts: r.ts }));
  }

  ack(stream: string, durable: string, seq: number): void {
    this.stmts.ack.run(stream, durable, seq);
  }

  compact(stream: string, olderThanTs: number | undefined): void {
    this.db.transaction(() => {
      const consumers = this.stmts.consumers.all(stream) as Array<{ durable: string; filter: string; floor: number }>;
      let minFloor = Infinity;
      for (const c of consumers) {
        let floor = c.floor;
        for (const m of this.stmts.walk.all(stream, floor) as Array<{ seq: number; subject: string }>) {
          if (subjectMatches(c.filter, m.subject) && !this.stmts.isAcked.get(stream, c.durable, m.seq)) break;
          floor = m.seq;
        }
        if (floor !== c.floor) {
          this.stmts.setFloor.run(floor, stream, c.durable);
          this.stmts.dropAcks.run(stream, c.durable, floor);
        }
        minFloor = Math.min(minFloor, floor);
      }
      const upTo = consumers.length > 0 ? minFloor : this.last(stream) - UNCONSUMED_RETENTION;
      if (upTo > 0) this.stmts.dropUpTo.run(stream, upTo);
      if (olderThanTs !== undefined) this.stmts.dropOlder.run(stream, olderThanTs);
    })();
  }

  close(): void {
    this.db.close();
  }
}
