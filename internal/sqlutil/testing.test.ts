import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { sql, type Kysely } from 'kysely';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { DialectName } from './dialect.js';
import { createTestDatabase, describeEachDatabase, TEST_POSTGRES, withAllDatabases } from './testing.js';

async function postgresDatabaseExists(name: string): Promise<boolean> {
  const client = new pg.Client({ ...TEST_POSTGRES, database: 'postgres' });
  await client.connect();
  try {
    return (await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1;
  } finally {
    await client.end();
  }
}

const dbName = (conn: string): string => new URL(conn.replace(/^postgresql:/, 'http:')).pathname.slice(1);

describe('createTestDatabase', () => {
  it('makes uniquely named PostgreSQL databases and drops them', async () => {
    const [a, b] = await Promise.all([createTestDatabase('postgres'), createTestDatabase('postgres')]);
    expect(dbName(a.connectionString)).not.toBe(dbName(b.connectionString));
    expect(await postgresDatabaseExists(dbName(a.connectionString))).toBe(true);
    await Promise.all([a.drop(), b.drop()]);
    expect(await postgresDatabaseExists(dbName(a.connectionString))).toBe(false);
  });

  it('makes SQLite files in a temporary directory and removes it', async () => {
    const t = await createTestDatabase('sqlite');
    const file = fileURLToPath(t.connectionString.replace(/^file:/, 'file://'));
    expect(existsSync(file)).toBe(false);
    await t.drop();
    expect(existsSync(file.replace(/\/test\.db$/, ''))).toBe(false);
  });
});

describe('withAllDatabases', () => {
  it('runs on each dialect with an empty database, then cleans up', async () => {
    const seen: Array<[DialectName, number]> = [];
    let pgName = '';
    await withAllDatabases(async (db, dialect) => {
      seen.push([dialect, (await db.introspection.getTables()).length]);
      await sql`CREATE TABLE leftover (x integer)`.execute(db);
      if (dialect === 'postgres') pgName = (await sql<{ d: string }>`SELECT current_database() AS d`.execute(db)).rows[0]?.d ?? '';
    });
    expect(seen).toEqual([
      ['sqlite', 0],
      ['postgres', 0],
    ]);
    expect(pgName).toMatch(/^test_\d+_[0-9a-f]{12}$/);
    expect(await postgresDatabaseExists(pgName)).toBe(false);
  });

  it('cleans up when the function fails', async () => {
    let pgName = '';
    await expect(
      withAllDatabases(
        async (db) => {
          pgName = (await sql<{ d: string }>`SELECT current_database() AS d`.execute(db)).rows[0]?.d ?? '';
          throw new Error('test body failed');
        },
        ['postgres'],
      ),
    ).rejects.toThrow('test body failed');
    expect(await postgresDatabaseExists(pgName)).toBe(false);
  });
});

const tooEarly: unknown[] = [];
describeEachDatabase('describeEachDatabase', (ctx) => {
  try {
    ctx.db();
  } catch (err) {
    tooEarly.push(err);
  }

  it('opens a fresh database of the block’s dialect', async () => {
    const db: Kysely<unknown> = ctx.db();
    expect(ctx.opened().dialect).toBe(ctx.dialect);
    expect(ctx.connectionString).toMatch(ctx.dialect === 'postgres' ? /^postgresql:\/\// : /^file:/);
    expect(await db.introspection.getTables()).toEqual([]);
  });

  it('refuses db() outside tests and hooks', () => {
    expect(tooEarly).toHaveLength(2);
    expect(String(tooEarly[0])).toContain('the test database is not open yet');
  });
});
