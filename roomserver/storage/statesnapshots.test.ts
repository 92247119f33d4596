import { sql, type Kysely } from 'kysely';
import { beforeAll, expect, it } from 'vitest';
import { runMigrations } from '../../internal/sqlutil/index.js';
import { describeEachDatabase } from '../../internal/sqlutil/testing.js';
import { roomserverMigrations } from './migrations.js';
import { LEAF_MAX, StateSnapshotStore, type StateEntry } from './statesnapshots.js';
import type { RoomserverDatabase } from './tables.js';

/** A deterministic pseudo-random sequence, so failures reproduce. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

function members(n: number, eventBase = 1000): StateEntry[] {
  const out: StateEntry[] = [
    { typeNid: 1, stateKeyNid: 1, eventNid: 1 },
    { typeNid: 2, stateKeyNid: 1, eventNid: 2 },
  ];
  for (let i = 0; i < n; i++) out.push({ typeNid: 3, stateKeyNid: 10 + i, eventNid: eventBase + i });
  return out;
}

const sorted = (es: StateEntry[]) => [...es].sort((a, b) => a.typeNid - b.typeNid || a.stateKeyNid - b.stateKeyNid);

describeEachDatabase<RoomserverDatabase>('state snapshots', (ctx) => {
  let store: StateSnapshotStore;
  /** A fresh store (empty cache) over the same tables, to prove reads come from the database. */
  let fresh: () => StateSnapshotStore;
  let room = 0;
  beforeAll(async () => {
    await runMigrations(ctx.db() as unknown as Kysely<unknown>, ctx.dialect, 'roomserver', roomserverMigrations);
    store = new StateSnapshotStore(ctx.db());
    fresh = () => new StateSnapshotStore(ctx.db());
  });
  const nextRoom = () => ++room;

  const nodeBytes = async (roomNid: number): Promise<number> => {
    const r = await ctx
      .db()
      .selectFrom('roomserver_state_nodes')
      .select(sql<number>`sum(length(node)) + count(*) * 32`.as('b'))
      .where('room_nid', '=', roomNid)
      .executeTakeFirst();
    return Number(r?.b ?? 0);
  };

  it('stores and loads small and large states; the same state is the same snapshot; empty is 0', async () => {
    const r = nextRoom();
    expect(await store.store(r, [])).toBe(0);
    expect(await store.load(0)).toEqual([]);
    for (const n of [3, LEAF_MAX, LEAF_MAX + 1, 5000]) {
      const state = members(n);
      const nid = await store.store(r, state);
      expect(await fresh().load(nid)).toEqual(sorted(state));
      expect(await store.store(r, [...state].reverse())).toBe(nid);
    }
    // Another room never shares nodes (garbage collection is per room).
    const other = nextRoom();
    const a = await store.store(r, members(10));
    const b = await store.store(other, members(10));
    expect(a).not.toBe(b);
  });

  it('apply gives the same snapshot as storing the resulting state, across splits and merges', async () => {
    const r = nextRoom();
    const random = rng(42);
    let state = new Map<string, StateEntry>(members(LEAF_MAX - 4).map((e) => [`${e.typeNid}:${e.stateKeyNid}`, e]));
    let nid = await store.store(r, [...state.values()]);
    let event = 100_000;
    // Grow past the leaf size, churn, then shrink back below it.
    const steps: Array<'add' | 'replace' | 'remove'> = [
      ...Array<'add'>(300).fill('add'),
      ...Array<'replace'>(100).fill('replace'),
      ...Array<'remove'>(330).fill('remove'),
    ];
    for (let i = 0; i < steps.length; i += 7) {
      const batch = steps.slice(i, i + 7).map((kind) => {
        const keys = [...state.keys()];
        if (kind === 'add' || keys.length === 0) {
          const e = { typeNid: 3, stateKeyNid: 5000 + Math.floor(random() * 100_000), eventNid: ++event };
          return e;
        }
        const [t, k] = keys[Math.floor(random() * keys.length)]!.split(':').map(Number) as [number, number];
        return { typeNid: t, stateKeyNid: k, eventNid: kind === 'remove' ? null : ++event };
      });
      nid = await store.apply(r, nid, batch);
      for (const c of batch) {
        const key = `${c.typeNid}:${c.stateKeyNid}`;
        if (c.eventNid === null) state.delete(key);
        else state.set(key, { typeNid: c.typeNid, stateKeyNid: c.stateKeyNid, eventNid: c.eventNid });
      }
      expect(nid).toBe(await store.store(r, [...state.values()]));
    }
    expect(await fresh().load(nid)).toEqual(sorted([...state.values()]));
    state = new Map();
    expect(await store.apply(r, nid, (await store.load(nid)).map((e) => ({ ...e, eventNid: null })))).toBe(0);
  });

  it('looks up single entries without loading the whole state', async () => {
    const r = nextRoom();
    const nid = await store.store(r, members(2000));
    const got = await fresh().lookup(nid, [
      { typeNid: 1, stateKeyNid: 1 },
      { typeNid: 3, stateKeyNid: 10 + 1234 },
      { typeNid: 3, stateKeyNid: 999_999 },
    ]);
    expect([...got.entries()].sort()).toEqual(
      [
        [1 * 4294967296 + 1, 1],
        [3 * 4294967296 + 1244, 1000 + 1234],
      ].sort(),
    );
  });

  it('a membership change in a 1,000-member room writes about a kilobyte, sharing the rest', async () => {
    const r = nextRoom();
    let nid = await store.store(r, members(1000));
    const base = await nodeBytes(r);
    expect(base).toBeGreaterThan(1000 * 16);
    for (let i = 0; i < 100; i++) nid = await store.apply(r, nid, [{ typeNid: 3, stateKeyNid: 10 + i, eventNid: 50_000 + i }]);
    const perChange = ((await nodeBytes(r)) - base) / 100;
    expect(perChange).toBeLessThan(2500);
    expect((await store.load(nid)).length).toBe(1002);
  });

  it('diffs two snapshots by their differing paths only', async () => {
    const r = nextRoom();
    const a = await store.store(r, members(3000));
    const b = await store.apply(r, a, [
      { typeNid: 3, stateKeyNid: 10, eventNid: 9 },
      { typeNid: 3, stateKeyNid: 11, eventNid: null },
      { typeNid: 8, stateKeyNid: 1, eventNid: 10 },
    ]);
    expect(await store.diff(a, b)).toEqual({
      added: [
        { typeNid: 3, stateKeyNid: 10, eventNid: 9 },
        { typeNid: 8, stateKeyNid: 1, eventNid: 10 },
      ],
      removed: [
        { typeNid: 3, stateKeyNid: 10, eventNid: 1000 },
        { typeNid: 3, stateKeyNid: 11, eventNid: 1001 },
      ],
    });
    expect(await store.diff(a, a)).toEqual({ added: [], removed: [] });
    const small = await store.store(r, members(2));
    expect((await store.diff(0, small)).added.length).toBe(4);
    expect((await store.diff(small, 0)).removed.length).toBe(4);
    // A leaf against an inner node: the whole of both is compared.
    const d = await store.diff(small, a);
    expect(d.added.length).toBe(3000 - 2);
    expect(d.removed).toEqual([]);
  });

  it('collects the nodes no kept snapshot reaches, and nothing that one does', async () => {
    const r = nextRoom();
    const kept = await store.store(r, members(3000));
    const dropped = await store.apply(r, kept, [
      { typeNid: 3, stateKeyNid: 10, eventNid: 77 },
      { typeNid: 9, stateKeyNid: 9, eventNid: 78 },
    ]);
    const keptAlso = await store.store(r, members(5));
    expect(await store.collectGarbage(r, [kept, keptAlso])).toBeGreaterThan(0);
    expect(await fresh().load(kept)).toEqual(sorted(members(3000)));
    expect(await fresh().load(keptAlso)).toEqual(sorted(members(5)));
    await expect(fresh().load(dropped)).rejects.toThrow(/missing/);
    expect(await store.collectGarbage(r, [kept, keptAlso])).toBe(0);
    // Storing the collected state again rebuilds it.
    const again = await store.apply(r, kept, [
      { typeNid: 3, stateKeyNid: 10, eventNid: 77 },
      { typeNid: 9, stateKeyNid: 9, eventNid: 78 },
    ]);
    expect((await fresh().load(again)).length).toBe(3003);
    expect(await store.collectGarbage(r, [])).toBeGreaterThan(0);
    expect(await nodeBytes(r)).toBe(0);
  });

  it('a node cached by a rolled-back transaction does not stand for the node that gets its NID next (SQLite reuses it)', async () => {
    const r = nextRoom();
    let written = 0;
    await expect(
      ctx.db().transaction().execute(async (t) => {
        written = await store.inTransaction(t).store(r, members(3, 5000));
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    const other = await store.store(r, members(3, 7000));
    if (ctx.dialect === 'sqlite') expect(other).toBe(written);
    expect(await store.load(other)).toEqual(sorted(members(3, 7000)));
  });
});
