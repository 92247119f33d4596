import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Sqlite from 'better-sqlite3';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type OpenedDatabase } from '../connection.js';

describe('SQLite transactions', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sqlutil-immediate-'));
  const file = path.join(dir, 'd.db');
  let opened: OpenedDatabase<unknown>;
  // Another connection to the same file, as another process would have; it does not wait.
  let other: Sqlite.Database;

  beforeAll(async () => {
    opened = openDatabase(`file:${file}`);
    await sql`CREATE TABLE t (x integer)`.execute(opened.db);
    other = new Sqlite(file);
    other.pragma('busy_timeout = 0');
  });
  afterAll(async () => {
    other?.close();
    await opened?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const otherCanWrite = (): boolean => {
    try {
      other.exec('BEGIN IMMEDIATE');
      other.exec('ROLLBACK');
      return true;
    } catch (err) {
      expect((err as { code?: string }).code).toBe('SQLITE_BUSY');
      return false;
    }
  };

  it('take the write lock at BEGIN, before their first write', async () => {
    expect(otherCanWrite()).toBe(true);
    await opened.db.transaction().execute(async (tx) => {
      await sql`SELECT count(*) FROM t`.execute(tx);
      expect(otherCanWrite()).toBe(false);
    });
    expect(otherCanWrite()).toBe(true);
  });

  it('stay deferred when read-only', async () => {
    await opened.db
      .transaction()
      .setAccessMode('read only')
      .execute(async (tx) => {
        await sql`SELECT count(*) FROM t`.execute(tx);
        expect(otherCanWrite()).toBe(true);
      });
  });
});

describe('SQLite connection queue', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sqlutil-fifo-'));
  let opened: OpenedDatabase<unknown>;
  beforeAll(async () => {
    opened = openDatabase(`file:${path.join(dir, 'q.db')}`);
    await sql`CREATE TABLE q (n integer)`.execute(opened.db);
  });
  afterAll(async () => {
    await opened?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves waiting queries in arrival order, and keeps a transaction to itself until it ends', async () => {
    const db = opened.db;
    const order: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    // A transaction holds the connection across an await: queries arriving meanwhile wait.
    const tx = db.transaction().execute(async (t) => {
      await sql`INSERT INTO q (n) VALUES (0)`.execute(t);
      order.push('tx-start');
      await gate;
      await sql`INSERT INTO q (n) VALUES (1)`.execute(t);
      order.push('tx-end');
    });
    await new Promise((r) => setTimeout(r, 10));
    const waiting = Array.from({ length: 50 }, (_, i) =>
      sql<{ c: number }>`SELECT count(*) AS c FROM q`.execute(db).then((r) => {
        order.push(`q${i}`);
        return r.rows[0]!.c;
      }),
    );
    await new Promise((r) => setTimeout(r, 10));
    expect(order).toEqual(['tx-start']);
    release();
    await tx;
    const counts = await Promise.all(waiting);
    // Every waiting query ran after the transaction committed, in the order they came.
    expect(order).toEqual(['tx-start', 'tx-end', ...Array.from({ length: 50 }, (_, i) => `q${i}`)]);
    expect(new Set(counts)).toEqual(new Set([2]));
  });
});
