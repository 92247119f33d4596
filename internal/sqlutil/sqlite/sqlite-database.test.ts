import Sqlite from 'better-sqlite3';
import { expect, it } from 'vitest';
import { withStatementCache } from './sqlite-database.js';

it('reuses prepared statements, which keep working across schema changes, and passes everything else through', () => {
  const raw = new Sqlite(':memory:');
  const db = withStatementCache(raw);
  db.exec('create table t (a integer)');
  const insert = db.prepare('insert into t (a) values (?)');
  expect(db.prepare('insert into t (a) values (?)')).toBe(insert);
  insert.run(1);
  db.prepare('insert into t (a) values (?)').run(2);
  db.exec('alter table t add column b text');
  db.prepare('insert into t (a) values (?)').run(3);
  expect(db.prepare('select a from t order by a').all()).toEqual([{ a: 1 }, { a: 2 }, { a: 3 }]);
  expect(db.open).toBe(true);
  // Bounded: old statements are dropped, new ones still prepared.
  for (let i = 0; i < 600; i++) db.prepare(`select ${i} as n`).get();
  expect(db.prepare('insert into t (a) values (?)')).not.toBe(insert);
  db.close();
  expect(raw.open).toBe(false);
});
