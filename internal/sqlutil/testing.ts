/**
 * Storage tests run on both databases (Dendrite's test.WithAllDatabases): each describe block
 * (in practice, each test file) gets a fresh SQLite file in a temporary directory and a fresh,
 * uniquely named PostgreSQL database on the test server, dropped afterwards.
 *
 *   describeEachDatabase('userapi storage', (ctx) => {
 *     beforeAll(() => runMigrations(ctx.db(), 'userapi', userapiMigrations));
 *     it('...', async () => { await ctx.db().selectFrom(...) });
 *   });
 *
 * The PostgreSQL test server is 127.0.0.1:5432, user postgres, trust auth (design.md §6).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Kysely } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe } from 'vitest';
import { openDatabase, type OpenedDatabase } from './connection.js';
import type { DialectName } from './dialect.js';
import { describeDriverError } from './errors.js';

export const TEST_POSTGRES = { host: '127.0.0.1', port: 5432, user: 'postgres' } as const;
export const ALL_DIALECTS: readonly DialectName[] = ['sqlite', 'postgres'];

export interface TestDatabase {
  dialect: DialectName;
  connectionString: string;
  /** Deletes the database (PostgreSQL: even with connections still open). */
  drop(): Promise<void>;
}

/** Runs one statement on the `postgres` maintenance database. */
async function onMaintenanceDb(statement: string): Promise<void> {
  const client = new pg.Client({ ...TEST_POSTGRES, database: 'postgres', connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
  } catch (err) {
    throw new Error(
      `the PostgreSQL test server at ${TEST_POSTGRES.host}:${TEST_POSTGRES.port} is not reachable (${describeDriverError(err)}); ` +
        'start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start',
      { cause: err },
    );
  }
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

/** A new, empty database of the given dialect. */
export async function createTestDatabase(dialect: DialectName): Promise<TestDatabase> {
  if (dialect === 'sqlite') {
    const dir = mkdtempSync(path.join(tmpdir(), 'sqlutil-'));
    return {
      dialect,
      connectionString: `file:${path.join(dir, 'test.db')}`,
      drop: async () => rmSync(dir, { recursive: true, force: true }),
    };
  }
  // Lower case letters, digits and _ only: the name goes into SQL unquoted.
  const name = `test_${process.pid}_${randomBytes(6).toString('hex')}`;
  await onMaintenanceDb(`CREATE DATABASE ${name}`);
  return {
    dialect,
    connectionString: `postgresql://${TEST_POSTGRES.user}:@${TEST_POSTGRES.host}:${TEST_POSTGRES.port}/${name}?sslmode=disable`,
    drop: () => onMaintenanceDb(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
  };
}

/** Runs fn once per dialect, each on a fresh database opened for it, closed and dropped after. */
export async function withAllDatabases(
  fn: (db: Kysely<unknown>, dialect: DialectName) => Promise<void>,
  dialects: readonly DialectName[] = ALL_DIALECTS,
): Promise<void> {
  for (const dialect of dialects) {
    const t = await createTestDatabase(dialect);
    const opened = openDatabase<unknown>(t.connectionString);
    try {
      await fn(opened.db, dialect);
    } finally {
      await opened.close();
      await t.drop();
    }
  }
}

export interface DatabaseContext<DB> {
  dialect: DialectName;
  /** Valid inside tests and hooks, like db(). */
  connectionString: string;
  /** The open database of this describe block (valid inside tests and hooks). */
  db(): Kysely<DB>;
  /** The same, with its dialect, description and close. */
  opened(): OpenedDatabase<DB>;
}

/** Defines the same tests once per dialect, as "<name> [sqlite]" and "<name> [postgres]". */
export function describeEachDatabase<DB = unknown>(
  name: string,
  body: (ctx: DatabaseContext<DB>) => void,
  dialects: readonly DialectName[] = ALL_DIALECTS,
): void {
  for (const dialect of dialects) {
    describe(`${name} [${dialect}]`, () => {
      let testDb: TestDatabase | undefined;
      let opened: OpenedDatabase<DB> | undefined;
      const ctx: DatabaseContext<DB> = {
        dialect,
        connectionString: '',
        opened: () => {
          if (!opened) throw new Error('the test database is not open yet: use ctx.db() inside a test or hook');
          return opened;
        },
        db: () => ctx.opened().db,
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
