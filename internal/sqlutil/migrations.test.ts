import { sql, type Kysely } from 'kysely';
import { Migrator, type Migration } from 'kysely/migration';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type OpenedDatabase } from './connection.js';
import { MigrationError } from './errors.js';
import { migrationKey, runMigrations, type ComponentMigration } from './migrations.js';
import { createTestDatabase, describeEachDatabase, type TestDatabase } from './testing.js';

const createTable = (table: string): ComponentMigration['up'] => async (db) => {
  await db.schema.createTable(table).addColumn('x', 'integer').execute();
};

async function tableNames(db: Kysely<unknown>): Promise<string[]> {
  return (await db.introspection.getTables()).map((t) => t.name).sort();
}

async function history(db: Kysely<unknown>, component: string): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`SELECT name FROM ${sql.table(`${component}_migrations`)} ORDER BY name`.execute(db);
  return rows.map((r) => r.name);
}

describe('migrationKey', () => {
  it('pads numbers so that keys sort as versions, and keeps strings', () => {
    expect(migrationKey({ version: 2, name: 'b' })).toBe('000002_b');
    expect(migrationKey({ version: 10, name: 'b' })).toBe('000010_b');
    expect(migrationKey({ version: '2024.1', name: 'c' })).toBe('2024.1_c');
  });
});

describeEachDatabase('runMigrations', (ctx) => {
  it('creates the history table in an empty database, applies in order, and is idempotent', async () => {
    const order: string[] = [];
    const ms: ComponentMigration[] = [
      { version: 1, name: 'first', up: async (db, dialect) => (order.push(`first:${dialect}`), createTable('ma_one')(db, dialect)) },
      { version: 2, name: 'second', up: async (db, dialect) => (order.push('second'), createTable('ma_two')(db, dialect)) },
    ];
    expect(await runMigrations(ctx.db(), 'ma', ms)).toEqual({ applied: ['000001_first', '000002_second'] });
    expect(order).toEqual([`first:${ctx.dialect}`, 'second']);
    expect(await runMigrations(ctx.db(), 'ma', ms)).toEqual({ applied: [] });
    expect(order).toHaveLength(2);
    // A later build adds a migration: only it runs.
    const more = [...ms, { version: 3, name: 'third', up: createTable('ma_three') }];
    expect(await runMigrations(ctx.db(), 'ma', more)).toEqual({ applied: ['000003_third'] });
    expect(await history(ctx.db(), 'ma')).toEqual(['000001_first', '000002_second', '000003_third']);
    expect(await tableNames(ctx.db())).toEqual(expect.arrayContaining(['ma_migrations', 'ma_one', 'ma_two', 'ma_three']));
  });

  it('keeps components apart: each has its own history table', async () => {
    await runMigrations(ctx.db(), 'mb', [{ version: 1, name: 'init', up: createTable('mb_t') }]);
    await runMigrations(ctx.db(), 'mc', [{ version: 1, name: 'init', up: createTable('mc_t') }]);
    expect(await history(ctx.db(), 'mb')).toEqual(['000001_init']);
    expect(await history(ctx.db(), 'mc')).toEqual(['000001_init']);
  });

  it('rolls back the whole run when a migration fails, and names it', async () => {
    const ms: ComponentMigration[] = [
      { version: 1, name: 'ok', up: createTable('md_ok') },
      {
        version: 2,
        name: 'broken',
        up: async (db) => {
          await db.schema.createTable('md_half').addColumn('x', 'integer').execute();
          await sql`INSERT INTO md_missing VALUES (1)`.execute(db);
        },
      },
    ];
    const err = await runMigrations(ctx.db(), 'md', ms).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MigrationError);
    expect((err as MigrationError).migration).toBe('000002_broken');
    expect((err as MigrationError).component).toBe('md');
    expect((err as Error).message).toMatch(/^md migrations: migration 000002_broken failed, and this run was rolled back: .*md_missing/);
    // Nothing of the run stays: neither the first migration nor the broken one's first statement.
    const tables = await tableNames(ctx.db());
    expect(tables).not.toContain('md_ok');
    expect(tables).not.toContain('md_half');
    // Fixed in a later build, the run then succeeds from the start.
    ms[1] = { version: 2, name: 'broken', up: createTable('md_half') };
    expect(await runMigrations(ctx.db(), 'md', ms)).toEqual({ applied: ['000001_ok', '000002_broken'] });
  });

  it('refuses a database that has migrations this build does not know', async () => {
    await runMigrations(ctx.db(), 'me', [
      { version: 1, name: 'a', up: async () => {} },
      { version: 2, name: 'from_the_future', up: async () => {} },
    ]);
    await expect(runMigrations(ctx.db(), 'me', [{ version: 1, name: 'a', up: async () => {} }])).rejects.toThrow(
      'me migrations: the database has migration(s) 000002_from_the_future that this build does not know: was it used by a newer version?',
    );
  });

  it('refuses a migration inserted before one already applied', async () => {
    await runMigrations(ctx.db(), 'mf', [{ version: 2, name: 'b', up: async () => {} }]);
    await expect(
      runMigrations(ctx.db(), 'mf', [
        { version: 1, name: 'a', up: async () => {} },
        { version: 2, name: 'b', up: async () => {} },
      ]),
    ).rejects.toThrow('mf migrations: migration(s) 000001_a come before the applied 000002_b but were never applied');
  });

  it('accepts string versions, in list order', async () => {
    const r = await runMigrations(ctx.db(), 'mg', [
      { version: '2024.10', name: 'x', up: async () => {} },
      { version: '2024.9', name: 'y', up: async () => {} },
    ]);
    expect(r.applied).toEqual(['2024.10_x', '2024.9_y']);
  });

  it('takes the dialect argument of the older form, and checks it', async () => {
    const other = ctx.dialect === 'postgres' ? 'sqlite' : 'postgres';
    expect(await runMigrations(ctx.db(), ctx.dialect, 'mh', [{ version: 1, name: 'a', up: async () => {} }])).toEqual({ applied: ['000001_a'] });
    await expect(runMigrations(ctx.db(), other, 'mh', [])).rejects.toThrow(`mh migrations: called for ${other}, but the database is ${ctx.dialect}`);
  });

  it('runs inside a transaction the caller holds', async () => {
    await expect(
      ctx.db().transaction().execute(async (tx) => {
        await runMigrations(tx, 'mi', [{ version: 1, name: 'a', up: createTable('mi_t') }]);
        throw new Error('caller aborts');
      }),
    ).rejects.toThrow('caller aborts');
    expect(await tableNames(ctx.db())).not.toContain('mi_t');
  });

  it('carries on from a history written by Kysely’s Migrator (earlier builds)', async () => {
    const provider = { getMigrations: async (): Promise<Record<string, Migration>> => ({ '000001_items': { up: createTable('mj_items') as Migration['up'] } }) };
    const migrator = new Migrator({ db: ctx.db(), provider, migrationTableName: 'mj_migrations', migrationLockTableName: 'mj_migrations_lock' });
    expect((await migrator.migrateToLatest()).error).toBeUndefined();
    const r = await runMigrations(ctx.db(), 'mj', [
      { version: 1, name: 'items', up: createTable('mj_items') },
      { version: 2, name: 'more', up: createTable('mj_more') },
    ]);
    expect(r.applied).toEqual(['000002_more']);
  });

  it.each([
    ['Bad-Name', [], /the component name must be lower-case/],
    ['mk', [{ version: 1, name: 'a' }, { version: 1, name: 'b' }], /version 1 \("b"\) comes after version 1/],
    ['mk', [{ version: 2, name: 'a' }, { version: 1, name: 'b' }], /version 1 \("b"\) comes after version 2: list migrations in version order/],
    ['mk', [{ version: 'v1', name: 'a' }, { version: 'v1', name: 'b' }], /version v1 appears twice/],
    ['mk', [{ version: 0, name: 'a' }], /version 0 of "a" is not a positive integer/],
    ['mk', [{ version: 1.5, name: 'a' }], /version 1.5 of "a" is not a positive integer/],
    ['mk', [{ version: 'a_b', name: 'a' }], /version "a_b" of "a" must be letters, digits/],
    ['mk', [{ version: 1, name: '' }], /migration 1 has no name/],
  ])('refuses invalid input (%s %j) before touching the database', async (component, list, why) => {
    const ms = (list as Array<Pick<ComponentMigration, 'version' | 'name'>>).map((m) => ({ ...m, up: async () => {} }));
    await expect(runMigrations(ctx.db(), component, ms)).rejects.toThrow(why);
    expect(await tableNames(ctx.db())).not.toContain(`${component}_migrations`);
  });
});

describe('runMigrations: two processes starting at once on PostgreSQL', () => {
  let t: TestDatabase;
  let a: OpenedDatabase<unknown>;
  let b: OpenedDatabase<unknown>;
  beforeAll(async () => {
    t = await createTestDatabase('postgres');
    // Two pools, as two polylith processes would have.
    [a, b] = [openDatabase(t.connectionString), openDatabase(t.connectionString)];
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await t?.drop();
  });

  it('apply each migration exactly once, the second waiting for the first', async () => {
    const calls: string[] = [];
    const slow = (key: string, table: string): ComponentMigration['up'] => async (db) => {
      calls.push(key);
      await sql`SELECT pg_sleep(0.15)`.execute(db);
      await db.schema.createTable(table).addColumn('x', 'integer').execute();
    };
    const ms: ComponentMigration[] = [
      { version: 1, name: 'one', up: slow('one', 'race_one') },
      { version: 2, name: 'two', up: slow('two', 'race_two') },
    ];
    const results = await Promise.all([runMigrations(a.db, 'race', ms), runMigrations(b.db, 'race', ms)]);
    expect(calls).toEqual(['one', 'two']);
    expect(results.map((r) => r.applied).sort()).toEqual([[], ['000001_one', '000002_two']]);
  });

  it('different components migrate side by side', async () => {
    const results = await Promise.all(
      ['racea', 'raceb', 'racec'].map((c, i) => runMigrations(i % 2 ? a.db : b.db, c, [{ version: 1, name: 'init', up: createTable(`${c}_t`) }])),
    );
    expect(results.map((r) => r.applied)).toEqual([['000001_init'], ['000001_init'], ['000001_init']]);
  });
});
