/**
 * Storage tests run on both databases (Dendrite's test.WithAllDatabases): each test file gets
 * a fresh SQLite file and a fresh, uniquely named PostgreSQL database at 127.0.0.1:5432,
 * dropped afterwards.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Kysely } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe } from 'vitest';
import { openDatabase, type DialectName, type OpenedDatabase } from './connection.js';

export const TEST_POSTGRES = { host: '127.0.0.1', port: 5432, user: 'postgres' };
const allDialects: readonly DialectName[] = ['sqlite', 'postgres'];

export interface TestDatabase {
  dialect: DialectName;
  connectionString: string;
  drop(): Promise<void>;
}

let counter = 0;

/** A new empty database of the given dialect. */
export async function createTestDatabase(dialect: DialectName): Promise<TestDatabase> {
  if (dialect === 'sqlite') {
    const dir = mkdtempSync(path.join(tmpdir(), 'sqlutil-'));
    return { dialect, connectionString: `file:${path.join(dir, 'test.db')}`, drop: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  const name = `test_${process.pid}_${Date.now().toString(36)}_${counter++}`;
  const admin = new pg.Client({ ...TEST_POSTGRES, database: 'postgres' });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  return {
    dialect,
    connectionString: `postgresql://postgres:@127.0.0.1:5432/${name}?sslmode=disable`,
    drop: async () => {
      const c = new pg.Client({ ...TEST_POSTGRES, database: 'postgres' });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

export interface DatabaseContext<DB> {
  dialect: DialectName;
  connectionString: string;
  /** The open database of this describe block (valid inside tests). */
  db(): Kysely<DB>;
}

/** Defines the same tests once per dialect, each block on its own fresh database. */
export function describeEachDatabase<DB = unknown>(name: string, body: (ctx: DatabaseContext<DB>) => void, dialects = allDialects): void {
  for (const dialect of dialects) {
    describe(`${name} [${dialect}]`, () => {
      let testDb: TestDatabase | undefined;
      let opened: OpenedDatabase<DB> | undefined;
      const ctx: DatabaseContext<DB> = {
        dialect,
        connectionString: '',
        db: () => {
          if (!opened) throw new Error('database not open yet: use ctx.db() inside a test or hook');
          return opened.db;
        },
      };
      beforeAll(async () => {
        testDb = await createTestDatabase(dialect);
        ctx.connectionString = testDb.connectionString;
        opened = openDatabase<DB>(testDb.connectionString);
      });
      afterAll(async () => {
        await opened?.close();
        await testDb?.drop();
      });
      body(ctx);
    });
  }
}
