import { sql, type ColumnType, type Generated, type Kysely } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  addAutoIdColumn,
  bigintType,
  boolType,
  bytesType,
  chunks,
  dbBool,
  dialectOf,
  fromDbBool,
  inChunks,
  isUniqueViolation,
  jsonTextType,
  IN_LIST_CHUNK,
} from './dialect.js';
import { runMigrations } from './migrations.js';
import { describeEachDatabase } from './testing.js';

/** A column with a default: optional on insert. */
type Defaulted<T> = ColumnType<T, T | undefined, T>;
interface Tables {
  dt_items: { id: Generated<number>; name: string; big: number; doc: Defaulted<string>; flag: Defaulted<number>; data: Buffer | null };
  dt_ids: { id: number };
}

describe('chunks', () => {
  it('splits into slices of at most the size', () => {
    expect(chunks([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
    expect(chunks([], 2)).toEqual([]);
    expect(chunks(Array.from({ length: 12_001 }, (_, i) => i)).map((c) => c.length)).toEqual([IN_LIST_CHUNK, IN_LIST_CHUNK, 2001]);
  });
  it.each([0, -1, 1.5, Number.NaN])('refuses size %d', (size) => {
    expect(() => chunks([1], size)).toThrow(RangeError);
  });
});

describe('booleans', () => {
  it('are 0/1 in, true/false out', () => {
    expect([dbBool(true), dbBool(false)]).toEqual([1, 0]);
    expect([1, true, '1', 0, false, '0', null].map(fromDbBool)).toEqual([true, true, true, false, false, false, false]);
  });
});

describeEachDatabase<Tables>('dialect helpers', (ctx) => {
  const db = (): Kysely<Tables> => ctx.db();

  beforeAll(async () => {
    await runMigrations(ctx.db(), 'dt', [
      {
        version: 1,
        name: 'tables',
        up: async (d, dialect) => {
          await addAutoIdColumn(d.schema.createTable('dt_items'), dialect, 'id')
            .addColumn('name', 'text', (c) => c.notNull().unique())
            .addColumn('big', bigintType, (c) => c.notNull())
            .addColumn('doc', jsonTextType, (c) => c.notNull().defaultTo('{}'))
            .addColumn('flag', boolType, (c) => c.notNull().defaultTo(0))
            .addColumn('data', bytesType(dialect))
            .execute();
          await d.schema.createTable('dt_ids').addColumn('id', bigintType, (c) => c.primaryKey()).execute();
        },
      },
    ]);
  });

  it('knows its dialect, in a transaction too', async () => {
    expect(dialectOf(db())).toBe(ctx.dialect);
    await db().transaction().execute(async (tx) => expect(dialectOf(tx)).toBe(ctx.dialect));
  });

  it('returns rows from insert, update and delete', async () => {
    const ins = await db().insertInto('dt_items').values({ name: 'ret', big: 1 }).returning(['id', 'name', 'doc', 'flag']).executeTakeFirstOrThrow();
    expect(ins).toEqual({ id: expect.any(Number), name: 'ret', doc: '{}', flag: 0 });
    const upd = await db().updateTable('dt_items').set({ big: 2 }).where('id', '=', ins.id).returning(['id', 'big']).execute();
    expect(upd).toEqual([{ id: ins.id, big: 2 }]);
    const del = await db().deleteFrom('dt_items').where('id', '=', ins.id).returning('name').execute();
    expect(del).toEqual([{ name: 'ret' }]);
  });

  it('upserts with the proposed row (excluded)', async () => {
    const upsert = (big: number, doc: string): Promise<{ id: number; big: number }> =>
      db()
        .insertInto('dt_items')
        .values({ name: 'up', big, doc })
        .onConflict((oc) => oc.column('name').doUpdateSet((eb) => ({ big: eb.ref('excluded.big'), doc: eb.ref('excluded.doc') })))
        .returning(['id', 'big'])
        .executeTakeFirstOrThrow();
    const first = await upsert(1, '{"v":1}');
    const second = await upsert(7, '{"v":2}');
    expect(second).toEqual({ id: first.id, big: 7 });
    expect(await db().selectFrom('dt_items').select(['big', 'doc']).where('name', '=', 'up').execute()).toEqual([{ big: 7, doc: '{"v":2}' }]);
  });

  it('inserts or ignores, with or without a conflict target', async () => {
    const first = await db().insertInto('dt_items').values({ name: 'ign', big: 1 }).onConflict((oc) => oc.column('name').doNothing()).returning('id').execute();
    expect(first).toHaveLength(1);
    const again = await db().insertInto('dt_items').values({ name: 'ign', big: 2 }).onConflict((oc) => oc.column('name').doNothing()).returning('id').execute();
    expect(again).toEqual([]);
    const anyConflict = await db().insertInto('dt_items').values({ name: 'ign', big: 3 }).onConflict((oc) => oc.doNothing()).executeTakeFirst();
    expect(anyConflict.numInsertedOrUpdatedRows).toBe(0n);
    expect(await db().selectFrom('dt_items').select('big').where('name', '=', 'ign').execute()).toEqual([{ big: 1 }]);
  });

  it('recognises unique violations on both dialects', async () => {
    await db().insertInto('dt_items').values({ name: 'dup', big: 1 }).execute();
    const dup = await db().insertInto('dt_items').values({ name: 'dup', big: 1 }).execute().catch((e: unknown) => e);
    expect(isUniqueViolation(dup)).toBe(true);
    const pk = await db().insertInto('dt_ids').values([{ id: -5 }, { id: -5 }]).execute().catch((e: unknown) => e);
    expect(isUniqueViolation(pk)).toBe(true);
    const other = await sql`SELECT * FROM dt_nothing`.execute(db()).catch((e: unknown) => e);
    expect(other).toBeInstanceOf(Error);
    expect(isUniqueViolation(other)).toBe(false);
    expect(isUniqueViolation(undefined)).toBe(false);
  });

  it('round-trips bigints beyond 2^32 as numbers, aggregates included', async () => {
    const values = [2 ** 40 + 7, -(2 ** 50) - 3, Number.MAX_SAFE_INTEGER];
    await db().insertInto('dt_items').values(values.map((big, i) => ({ name: `big${i}`, big }))).execute();
    const rows = await db().selectFrom('dt_items').select('big').where('name', 'like', 'big%').orderBy('name').execute();
    expect(rows.map((r) => r.big)).toEqual(values);
    const agg = await db()
      .selectFrom('dt_items')
      .select((eb) => [eb.fn.max('big').as('max'), eb.fn.countAll().as('n')])
      .where('name', 'like', 'big%')
      .executeTakeFirstOrThrow();
    expect(agg).toEqual({ max: Number.MAX_SAFE_INTEGER, n: 3 });
  });

  it('round-trips bytes and booleans', async () => {
    const data = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    await db().insertInto('dt_items').values({ name: 'bytes', big: 0, data, flag: dbBool(true) }).execute();
    const row = await db().selectFrom('dt_items').select(['data', 'flag']).where('name', '=', 'bytes').executeTakeFirstOrThrow();
    expect(Buffer.isBuffer(row.data)).toBe(true);
    expect(row.data?.equals(data)).toBe(true);
    expect(fromDbBool(row.flag)).toBe(true);
  });

  it('never reuses an auto-increment ID, even after deleting the last row', async () => {
    const id = async (name: string): Promise<number> =>
      (await db().insertInto('dt_items').values({ name, big: 0 }).returning('id').executeTakeFirstOrThrow()).id;
    const last = await id('auto1');
    await db().deleteFrom('dt_items').where('id', '=', last).execute();
    expect(await id('auto2')).toBeGreaterThan(last);
  });

  it('commits and rolls back transactions', async () => {
    await expect(
      db().transaction().execute(async (tx) => {
        await tx.insertInto('dt_items').values({ name: 'tx-rolled-back', big: 1 }).execute();
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    const committed = await db().transaction().execute(async (tx) =>
      tx.insertInto('dt_items').values({ name: 'tx-committed', big: 1 }).returning('name').executeTakeFirstOrThrow(),
    );
    expect(committed.name).toBe('tx-committed');
    const names = await db().selectFrom('dt_items').select('name').where('name', 'like', 'tx-%').execute();
    expect(names).toEqual([{ name: 'tx-committed' }]);
  });

  describe('IN lists of 100,000 ids', () => {
    const wanted = Array.from({ length: 100_000 }, (_, i) => i);
    const stored = Array.from({ length: 3000 }, (_, i) => i * 37); // 2703 of them are below 100,000

    beforeAll(async () => {
      for (const slice of chunks(stored, 1000)) await db().insertInto('dt_ids').values(slice.map((id) => ({ id }))).execute();
    });

    it('are refused by both databases in one statement', async () => {
      const err = await db().selectFrom('dt_ids').select('id').where('id', 'in', wanted).execute().catch((e: unknown) => e);
      expect(String(err)).toMatch(ctx.dialect === 'sqlite' ? /too many SQL variables/ : /bind message has \d+ parameter formats/);
    });

    it('work in chunks', async () => {
      const rows = await inChunks(wanted, (chunk) => db().selectFrom('dt_ids').select('id').where('id', 'in', chunk).execute());
      expect(rows.map((r) => r.id).sort((x, y) => x - y)).toEqual(stored.filter((id) => id < 100_000));
    });
  });
});
