/**
 * Durable streams of the in-process bus in one SQLite file, `<storage_path>/jetstream.db`.
 *
 * WAL with synchronous=NORMAL: a commit has reached the OS when it returns, so a message
 * whose publish resolved survives the process being killed (an OS crash or power loss can
 * still take the last commits; synchronous=FULL would cover those at several times the cost).
 * Acks are written in batches on the next tick: losing one to a kill means a redelivery,
 * which at-least-once delivery allows.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Sqlite from 'better-sqlite3';
import { subjectMatches, type Headers } from '../bus.js';
import {
  DUPLICATE_WINDOW_MS,
  UNCLAIMED_GRACE_MS,
  type AppendResult,
  type MessageStore,
  type NewMessage,
  type StoredMessage,
} from './message-store.js';

interface MessageRow {
  seq: number;
  subject: string;
  data: Buffer;
  headers: string;
  ts: number;
}

const PAGE = 500;

const schema = `
  CREATE TABLE IF NOT EXISTS bus_messages (
    stream TEXT NOT NULL, seq INTEGER NOT NULL, subject TEXT NOT NULL, data BLOB NOT NULL,
    headers TEXT NOT NULL, ts INTEGER NOT NULL, msg_id TEXT, PRIMARY KEY (stream, seq)) WITHOUT ROWID;
  DROP INDEX IF EXISTS bus_messages_msg_id;
  -- Message IDs seen within the duplicate window; they outlive the messages, as in JetStream.
  CREATE TABLE IF NOT EXISTS bus_msg_ids (
    stream TEXT NOT NULL, msg_id TEXT NOT NULL, seq INTEGER NOT NULL, ts INTEGER NOT NULL, PRIMARY KEY (stream, msg_id)) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS bus_messages_by_ts ON bus_messages (stream, ts);
  -- The last sequence number of each stream, so that numbers never repeat once messages are deleted.
  CREATE TABLE IF NOT EXISTS bus_streams (stream TEXT PRIMARY KEY, last_seq INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS bus_consumers (
    stream TEXT NOT NULL, durable TEXT NOT NULL, filter TEXT NOT NULL, floor INTEGER NOT NULL,
    PRIMARY KEY (stream, durable));
  CREATE TABLE IF NOT EXISTS bus_acks (
    stream TEXT NOT NULL, durable TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (stream, durable, seq)) WITHOUT ROWID;
`;

export class SqliteStore implements MessageStore {
  private readonly db: Sqlite.Database;
  private readonly stmts;
  private readonly lastSeq = new Map<string, number>();
  private readonly filters = new Map<string, string>();
  private pendingAcks: Array<[string, string, number]> = [];
  private ackFlush: NodeJS.Immediate | undefined;

  constructor(dir: string) {
    mkdirSync(dir, { recursive: true });
    this.db = new Sqlite(path.join(dir, 'jetstream.db'));
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(schema);
    const acked = 'EXISTS (SELECT 1 FROM bus_acks a WHERE a.stream = m.stream AND a.durable = ? AND a.seq = m.seq)';
    this.stmts = {
      insert: this.db.prepare('INSERT INTO bus_messages (stream, seq, subject, data, headers, ts, msg_id) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      duplicateOf: this.db.prepare('SELECT seq FROM bus_msg_ids WHERE stream = ? AND msg_id = ? AND ts >= ?'),
      rememberId: this.db.prepare(
        'INSERT INTO bus_msg_ids (stream, msg_id, seq, ts) VALUES (?, ?, ?, ?) ON CONFLICT (stream, msg_id) DO UPDATE SET seq = excluded.seq, ts = excluded.ts',
      ),
      forgetIds: this.db.prepare('DELETE FROM bus_msg_ids WHERE stream = ? AND ts < ?'),
      lastSeq: this.db.prepare(
        'SELECT max(coalesce((SELECT last_seq FROM bus_streams WHERE stream = ?), 0), coalesce((SELECT max(seq) FROM bus_messages WHERE stream = ?), 0)) AS n',
      ),
      saveLastSeq: this.db.prepare('INSERT INTO bus_streams (stream, last_seq) VALUES (?, ?) ON CONFLICT (stream) DO UPDATE SET last_seq = excluded.last_seq'),
      upsertConsumer: this.db.prepare(
        'INSERT INTO bus_consumers (stream, durable, filter, floor) VALUES (?, ?, ?, 0) ON CONFLICT (stream, durable) DO UPDATE SET filter = excluded.filter',
      ),
      consumers: this.db.prepare('SELECT durable, filter, floor FROM bus_consumers WHERE stream = ?'),
      floorOf: this.db.prepare('SELECT floor FROM bus_consumers WHERE stream = ? AND durable = ?'),
      unacked: this.db.prepare(
        `SELECT seq, subject, data, headers, ts FROM bus_messages m WHERE stream = ? AND seq > ? AND ts >= ? AND NOT ${acked} ORDER BY seq LIMIT ${PAGE}`,
      ),
      walk: this.db.prepare(`SELECT seq, subject, ${acked} AS acked FROM bus_messages m WHERE stream = ? AND seq > ? ORDER BY seq LIMIT ${PAGE}`),
      ack: this.db.prepare('INSERT OR IGNORE INTO bus_acks (stream, durable, seq) VALUES (?, ?, ?)'),
      setFloor: this.db.prepare('UPDATE bus_consumers SET floor = ? WHERE stream = ? AND durable = ?'),
      dropAcks: this.db.prepare('DELETE FROM bus_acks WHERE stream = ? AND durable = ? AND seq <= ?'),
      dropUpTo: this.db.prepare('DELETE FROM bus_messages WHERE stream = ? AND seq <= ?'),
      dropOlder: this.db.prepare('DELETE FROM bus_messages WHERE stream = ? AND ts < ?'),
    };
  }

  private last(stream: string): number {
    let n = this.lastSeq.get(stream);
    if (n === undefined) {
      n = (this.stmts.lastSeq.get(stream, stream) as { n: number }).n;
      this.lastSeq.set(stream, n);
    }
    return n;
  }

  append(msgs: readonly NewMessage[]): AppendResult[] {
    const next = new Map<string, number>();
    const results = this.db.transaction(() =>
      msgs.map((m): AppendResult => {
        if (m.msgId !== undefined) {
          const dup = this.stmts.duplicateOf.get(m.stream, m.msgId, m.ts - DUPLICATE_WINDOW_MS) as { seq: number } | undefined;
          if (dup) return { seq: dup.seq, duplicate: true };
        }
        const seq = (next.get(m.stream) ?? this.last(m.stream)) + 1;
        next.set(m.stream, seq);
        const data = Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength);
        this.stmts.insert.run(m.stream, seq, m.subject, data, JSON.stringify(m.headers), m.ts, m.msgId ?? null);
        if (m.msgId !== undefined) this.stmts.rememberId.run(m.stream, m.msgId, seq, m.ts);
        return { seq, duplicate: false };
      }),
    )();
    // Only once committed: a failed transaction leaves the counters as they were.
    for (const [stream, seq] of next) this.lastSeq.set(stream, seq);
    return results;
  }

  registerConsumer(stream: string, durable: string, filter: string): void {
    this.stmts.upsertConsumer.run(stream, durable, filter);
    this.filters.set(`${stream}\u0000${durable}`, filter);
  }

  floor(stream: string, durable: string): number {
    return (this.stmts.floorOf.get(stream, durable) as { floor: number } | undefined)?.floor ?? 0;
  }

  fetch(stream: string, durable: string, afterSeq: number, limit: number, minTs: number): StoredMessage[] {
    const filter = this.filters.get(`${stream}\u0000${durable}`) ?? '>';
    const out: StoredMessage[] = [];
    let cursor = afterSeq;
    for (;;) {
      const rows = this.stmts.unacked.all(stream, cursor, minTs, durable) as MessageRow[];
      for (const r of rows) {
        cursor = r.seq;
        if (!subjectMatches(filter, r.subject)) continue;
        out.push({ stream, seq: r.seq, subject: r.subject, data: r.data, headers: JSON.parse(r.headers) as Headers, ts: r.ts });
        if (out.length === limit) return out;
      }
      if (rows.length < PAGE) return out;
    }
  }

  ack(stream: string, durable: string, seq: number): void {
    this.pendingAcks.push([stream, durable, seq]);
    this.ackFlush ??= setImmediate(() => this.flushAcks());
  }

  private flushAcks(): void {
    if (this.ackFlush) clearImmediate(this.ackFlush);
    this.ackFlush = undefined;
    if (this.pendingAcks.length === 0) return;
    const acks = this.pendingAcks;
    this.pendingAcks = [];
    this.db.transaction(() => {
      for (const [stream, durable, seq] of acks) this.stmts.ack.run(stream, durable, seq);
    })();
  }

  compact(stream: string, now: number, olderThanTs: number | undefined): void {
    this.flushAcks();
    this.db.transaction(() => {
      const last = this.last(stream);
      this.stmts.saveLastSeq.run(stream, last);
      const consumers = this.stmts.consumers.all(stream) as Array<{ durable: string; filter: string; floor: number }>;
      let doneUpTo = Infinity;
      for (const c of consumers) {
        const floor = this.advanceFloor(stream, c, last);
        if (floor !== c.floor) {
          this.stmts.setFloor.run(floor, stream, c.durable);
          this.stmts.dropAcks.run(stream, c.durable, floor);
        }
        doneUpTo = Math.min(doneUpTo, floor);
      }
      if (consumers.length > 0) this.stmts.dropUpTo.run(stream, doneUpTo);
      else this.stmts.dropOlder.run(stream, now - UNCLAIMED_GRACE_MS);
      if (olderThanTs !== undefined) this.stmts.dropOlder.run(stream, olderThanTs);
      this.stmts.forgetIds.run(stream, now - DUPLICATE_WINDOW_MS);
    })();
  }

  /** The highest seq below the first message the consumer still wants. */
  private advanceFloor(stream: string, c: { durable: string; filter: string; floor: number }, last: number): number {
    let floor = c.floor;
    for (;;) {
      const rows = this.stmts.walk.all(c.durable, stream, floor) as Array<{ seq: number; subject: string; acked: number }>;
      for (const r of rows) {
        if (!r.acked && subjectMatches(c.filter, r.subject)) return floor;
        floor = r.seq;
      }
      if (rows.length < PAGE) return last;
    }
  }

  close(): void {
    this.flushAcks();
    this.db.close();
  }
}
