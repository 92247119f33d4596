import { sql, type ColumnType, type Generated, type Kysely } from 'kysely';
import { describe, expect, it } from 'vitest';
import { DatabaseConfigError, checkConnection, openDatabase, parseConnectionString } from './connection.js';
import { addAutoIdColumn, bigintType, boolType, dbBool, fromDbBool, inChunks, jsonTextType } from './dialect.js';
import { DatabaseHandles } from './handles.js';
import { MigrationError, runMigrations, type ComponentMigration } from './migrations.js';
import { createTestDatabase, describeEachDatabase } from './testing.js';

describe('parseConnectionString', () => {
  it.each([
    ['postgresql://postgres:@/sytest_hs0?sslmode=disable', { dialect: 'postgres', host: '127.0.0.1', port: 5432, user: 'postgres', password: '', database: 'sytest_hs0', ssl: false }],
    ['postgres://u:p%40ss@db.example:6543/dendrite', { dialect: 'postgres', host: 'db.example', port: 6543, user: 'u', password: 'p@ss', database: 'dendrite', ssl: true }],
    ['postgresql:///x?host=10.0.0.5&user=bob&sslmode=disable', { dialect: 'postgres', host: '10.0.0.5', port: 5432, user: 'bob', password: '', database: 'x', ssl: false }],
    ['file:dendrite.db', { dialect: 'sqlite', file: '/base/dendrite.db' }],
    ['file:/var/lib/d.db', { dialect: 'sqlite', file: '/var/lib/d.db' }],
    ['file:///var/lib/d.db', { dialect: 'sqlite', file: '/var/lib/d.db' }],
    ['file::memory:', { dialect: 'sqlite', file: ':memory:' }],
  ])('%s', (conn, expected) => {
    expect(parseConnectionString(conn, '/base')).toEqual(expected);
  });

  it.each(['mysql://x/y', 'dendrite.db', 'file:'])('refuses %j naming the problem', (conn) => {
    expect(() => parseConnectionString(conn)).toThrow(DatabaseConfigError);
  });

  it('hides passwords in errors', () => {
    expect(() => parseConnectionString('mysql://me:secret@host/db')).toThrow(/me:\*\*\*@host/);
  });
});

describe('connection failures', () => {
  it('names the unreachable PostgreSQL server', async () => {
    const opened = openDatabase('postgresql://postgres:@127.0.0.1:1/nowhere?sslmode=disable');
    await expect(checkConnection(opened)).rejects.toThrow(/cannot connect to PostgreSQL at 127.0.0.1:1\/nowhere: .*ECONNREFUSED/);
    await opened.close();
  });
  it('names a missing PostgreSQL database', async () => {
    const opened = openDatabase('postgresql://postgres:@/no_such_db_here?sslmode=disable');
    await expect(checkConnection(opened)).rejects.toThrow(/no_such_db_here.*does not exist/);
    await opened.close();
  });
});

describe('DatabaseHandles', () => {
  it('shares one handle per connection string and closes them all', async () => {
    const t = await createTestDatabase('sqlite');
    const handles = new DatabaseHandles();
    const [a, b] = await Promise.all([handles.get(t.connectionString), handles.get(t.connectionString)]);
    expect(a).toBe(b);
    await handles.closeAll();
    await expect(sql`SELECT 1`.execute(a.db)).rejects.toThrow();
    await t.drop();
  });
});

type WithDefault<T> = ColumnType<T, T | undefined, T>;
interface Items {
  testc_items: { id: Generated<number>; name: string; big: WithDefault<number>; doc: WithDefault<string>; flag: WithDefault<number> };
}

const itemMigrations: ComponentMigration[] = [
  {
    version: 1,
    name: 'items',
    up: async (db, dialect) => {
      await addAutoIdColumn(db.schema.createTable('testc_items'), dialect, 'id')
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('big', bigintType, (c) => c.notNull().defaultTo(0))
        .addColumn('doc', jsonTextType, (c) => c.notNull().defaultTo('{}'))
        .addColumn('flag', boolType, (c) => c.notNull().defaultTo(0))
        .execute();
    },
  },
  {
    version: 2,
    name: 'items_index',
    up: async (db) => {
      await db.schema.createIndex('testc_items_big').on('testc_items').column('big').execute();
    },
  },
];

describeEachDatabase('migrations and dialect helpers', (ctx) => {
  const db = (): Kysely<Items> => ctx.db() as unknown as Kysely<Items>;
  const items = db;

  it('applies each migration once, in order, and is idempotent', async () => {
    const first = await runMigrations(ctx.db(), ctx.dialect, 'testc', itemMigrations);
    expect(first.applied).toEqual(['000001_items', '000002_items_index']);
    const second = await runMigrations(ctx.db(), ctx.dialect, 'testc', itemMigrations);
    expect(second.applied).toEqual([]);
    const more = await runMigrations(ctx.db(), ctx.dialect, 'testc', [
      ...itemMigrations,
      { version: 3, name: 'extra', up: async (d) => void (await d.schema.alterTable('testc_items').addColumn('extra', 'text').execute()) },
    ]);
    expect(more.applied).toEqual(['000003_extra']);
  });

  it('reports a failing migration by name and leaves earlier ones applied', async () => {
    const bad: ComponentMigration[] = [
      { version: 1, name: 'ok', up: async (d) => void (await d.schema.createTable('testbad_ok').addColumn('x', 'integer').execute()) },
      { version: 2, name: 'broken', up: async (d) => void (await sql`CREATE TABLE testbad_ok (x integer)`.execute(d)) },
    ];
    await expect(runMigrations(ctx.db(), ctx.dialect, 'testbad', bad)).rejects.toThrow(MigrationError);
    await expect(runMigrations(ctx.db(), ctx.dialect, 'testbad', bad)).rejects.toThrow(/testbad: migration 000002_broken failed/);
  });

  it('upserts, ignores conflicts and returns rows', async () => {
    const inserted = await items().insertInto('testc_items').values({ name: 'a', big: 2 ** 40 + 7, doc: '{"k":1}', flag: dbBool(true) }).returning(['id', 'big']).executeTakeFirstOrThrow();
    expect(inserted.big).toBe(2 ** 40 + 7);
    expect(typeof inserted.id).toBe('number');
    const ignored = await items().insertInto('testc_items').values({ name: 'a', big: 1 }).onConflict((oc) => oc.column('name').doNothing()).returning('id').execute();
    expect(ignored).toEqual([]);
    await items().insertInto('testc_items').values({ name: 'a', big: 5 }).onConflict((oc) => oc.column('name').doUpdateSet({ big: 5 })).execute();
    const row = await items().selectFrom('testc_items').selectAll().where('name', '=', 'a').executeTakeFirstOrThrow();
    expect(row).toMatchObject({ big: 5, doc: '{"k":1}' });
    expect(fromDbBool(row.flag)).toBe(true);
  });

  it('rolls back a failed transaction', async () => {
    await expect(
      db().transaction().execute(async (tx) => {
        await tx.insertInto('testc_items').values({ name: 'tx', big: 1 }).execute();
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    expect(await items().selectFrom('testc_items').select('id').where('name', '=', 'tx').execute()).toEqual([]);
  });

  it('queries huge IN lists in chunks', async () => {
    const names = [...Array.from({ length: 99_999 }, (_, i) => `n${i}`), 'a'];
    const rows = await inChunks(names, (chunk) => items().selectFrom('testc_items').select('name').where('name', 'in', chunk).execute());
    expect(rows.map((r) => r.name)).toEqual(['a']);
  });
});

describe('concurrent migrations on PostgreSQL', () => {
  it('two runners at once apply each migration exactly once', async () => {
    const t = await createTestDatabase('postgres');
    const [a, b] = [openDatabase(t.connectionString), openDatabase(t.connectionString)];
    try {
      let calls = 0;
      const counted: ComponentMigration[] = [
        {
          version: 1,
          name: 'slow',
          up: async (d) => {
            calls++;
            await sql`SELECT pg_sleep(0.2)`.execute(d);
            await d.schema.createTable('race_t').addColumn('x', 'integer').execute();
          },
        },
      ];
      const results = await Promise.all([runMigrations(a.db, 'postgres', 'race', counted), runMigrations(b.db, 'postgres', 'race', counted)]);
      expect(calls).toBe(1);
      expect(results.map((r) => r.applied.length).sort()).toEqual([0, 1]);
    } finally {
      await a.close();
      await b.close();
      await t.drop();
    }
  });
});
