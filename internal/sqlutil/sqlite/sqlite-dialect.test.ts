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
