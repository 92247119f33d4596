import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { checkConnection, connectDatabase, openDatabase } from './connection.js';
import { DatabaseConnectError, UnsupportedSchemeError } from './errors.js';
import type { QueryLogger } from './query-log.js';
import { TEST_POSTGRES } from './testing.js';

const pgUrl = (db: string, params = 'sslmode=disable'): string =>
  `postgresql://${TEST_POSTGRES.user}:@${TEST_POSTGRES.host}:${TEST_POSTGRES.port}/${db}?${params}`;

const tmp = mkdtempSync(path.join(tmpdir(), 'sqlutil-conn-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function connectError(conn: string): Promise<DatabaseConnectError> {
  const err: unknown = await connectDatabase(conn).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DatabaseConnectError);
  return err as DatabaseConnectError;
}

describe('openDatabase: PostgreSQL', () => {
  it('connects with the empty-host form and returns int8 as numbers', async () => {
    const opened = await connectDatabase('postgresql://postgres:@/postgres?sslmode=disable');
    try {
      expect(opened.dialect).toBe('postgres');
      expect(opened.description).toBe('PostgreSQL at 127.0.0.1:5432/postgres');
      const { rows } = await sql<{ big: unknown; n: unknown }>`SELECT CAST(5000000000 AS bigint) AS big, count(*) AS n FROM (VALUES (1), (2)) v(x)`.execute(opened.db);
      expect(rows).toEqual([{ big: 5_000_000_000, n: 2 }]);
    } finally {
      await opened.close();
    }
  });

  it('fails at start-up naming an unreachable server', async () => {
    const err = await connectError('postgresql://postgres:@127.0.0.1:1/nowhere?sslmode=disable');
    expect(err.message).toBe('cannot connect to PostgreSQL at 127.0.0.1:1/nowhere: connect ECONNREFUSED 127.0.0.1:1');
    expect(err.target).toBe('PostgreSQL at 127.0.0.1:1/nowhere');
  });

  it('opens lazily: openDatabase does not connect, checkConnection does', async () => {
    const opened = openDatabase('postgresql://postgres:@127.0.0.1:1/nowhere?sslmode=disable');
    try {
      await expect(checkConnection(opened)).rejects.toThrow(DatabaseConnectError);
    } finally {
      await opened.close();
    }
  });

  it('names a missing database', async () => {
    const err = await connectError(pgUrl('no_such_db_here'));
    expect(err.message).toBe('cannot connect to PostgreSQL at 127.0.0.1:5432/no_such_db_here: database "no_such_db_here" does not exist');
  });

  it('says how to turn TLS off when the server has none (lib/pq defaults to sslmode=require)', async () => {
    const plain = await connectDatabase(pgUrl('postgres'));
    const { rows } = await sql<{ ssl: string }>`SHOW ssl`.execute(plain.db);
    await plain.close();
    const attempt = connectDatabase(pgUrl('postgres', 'sslmode=require'));
    if (rows[0]?.ssl === 'on') {
      await (await attempt).close();
    } else {
      await expect(attempt).rejects.toThrow(
        'cannot connect to PostgreSQL at 127.0.0.1:5432/postgres: The server does not support SSL connections (add sslmode=disable to the connection string to connect without TLS)',
      );
    }
  });

  it('leaves pg.types alone for other pg users in the process', async () => {
    const pg = (await import('pg')).default;
    const opened = await connectDatabase(pgUrl('postgres'));
    await opened.close();
    expect(pg.types.getTypeParser(20, 'text')('5000000000')).toBe('5000000000');
  });

  it('close ends the pool even if no query ran', async () => {
    const opened = openDatabase(pgUrl('postgres'));
    await opened.close();
    await expect(sql`SELECT 1`.execute(opened.db)).rejects.toThrow(/after calling end on the pool/);
  });

  it('refuses an unknown scheme before opening anything', () => {
    expect(() => openDatabase('mysql://h/d')).toThrow(UnsupportedSchemeError);
  });
});

describe('openDatabase: SQLite', () => {
  it('creates the file and its directory, in WAL mode with the server pragmas', async () => {
    const file = path.join(tmp, 'new', 'dir', 'd.db');
    const opened = await connectDatabase(`file:${file}`);
    try {
      expect(opened.dialect).toBe('sqlite');
      expect(opened.description).toBe(`SQLite at ${file}`);
      expect(statSync(file).isFile()).toBe(true);
      const pragma = async (name: string): Promise<unknown> => Object.values((await sql.raw(`PRAGMA ${name}`).execute(opened.db)).rows[0] as object)[0];
      expect(await pragma('journal_mode')).toBe('wal');
      expect(await pragma('synchronous')).toBe(1); // NORMAL
      expect(await pragma('foreign_keys')).toBe(1);
      expect(await pragma('busy_timeout')).toBe(5000);
    } finally {
      await opened.close();
    }
  });

  it('resolves a relative path against baseDir', async () => {
    const opened = await connectDatabase('file:rel/x.db', { baseDir: tmp });
    await opened.close();
    expect(statSync(path.join(tmp, 'rel', 'x.db')).isFile()).toBe(true);
  });

  it('opens private in-memory databases', async () => {
    const [a, b] = [openDatabase(':memory:'), openDatabase('file::memory:')];
    try {
      await sql`CREATE TABLE t (x integer)`.execute(a.db);
      expect(a.description).toBe('SQLite in memory');
      await expect(sql`SELECT * FROM t`.execute(b.db)).rejects.toThrow(/no such table: t/);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('names a file that is not a database', () => {
    const file = path.join(tmp, 'garbage.db');
    writeFileSync(file, 'this is not a database, it is a text file of some length '.repeat(20));
    expect(() => openDatabase(`file:${file}`)).toThrow(`cannot connect to SQLite at ${file}: file is not a database`);
  });

  it('names a path it cannot create', () => {
    const file = path.join(tmp, 'garbage.db', 'inside.db');
    expect(() => openDatabase(`file:${file}`)).toThrow(new RegExp(`^cannot connect to SQLite at ${file}: .*(ENOTDIR|EEXIST)`));
  });

  it('close releases the file even if no query ran, and is idempotent', async () => {
    const opened = openDatabase(':memory:');
    await Promise.all([opened.close(), opened.close()]);
    await opened.close();
    await expect(sql`SELECT 1`.execute(opened.db)).rejects.toThrow(/database connection is not open/);
  });
});

describe('query logging', () => {
  it('logs statements without parameters, failures at debug and slow statements at warn', async () => {
    const calls: Array<[string, Record<string, unknown>, string]> = [];
    const logger: QueryLogger = {
      trace: (o, m) => void calls.push(['trace', o as Record<string, unknown>, m]),
      debug: (o, m) => void calls.push(['debug', o as Record<string, unknown>, m]),
      warn: (o, m) => void calls.push(['warn', o as Record<string, unknown>, m]),
    };
    const opened = openDatabase(':memory:', { logger });
    const slow = openDatabase(':memory:', { logger, slowQueryMs: 0 });
    try {
      await sql`SELECT ${'secret-token'} AS x`.execute(opened.db);
      await expect(sql`SELECT * FROM missing`.execute(opened.db)).rejects.toThrow();
      await sql`SELECT 2`.execute(slow.db);
    } finally {
      await opened.close();
      await slow.close();
    }
    expect(calls.map(([level, o, msg]) => [level, o.sql, msg])).toEqual([
      ['trace', 'SELECT ? AS x', 'SQL statement'],
      ['debug', 'SELECT * FROM missing', 'SQL statement failed'],
      ['warn', 'SELECT 2', 'slow SQL statement'],
    ]);
    expect(JSON.stringify(calls.map((c) => c[1].sql))).not.toContain('secret-token');
    expect(calls[1]?.[1].err).toBeInstanceOf(Error);
  });

  it('takes a pino logger as it is', async () => {
    const opened = openDatabase(':memory:', { logger: pino({ level: 'silent' }) });
    await sql`SELECT 1`.execute(opened.db);
    await opened.close();
  });
});
