import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatabaseConnectError, UnsupportedSchemeError } from './errors.js';
import { DatabaseHandles } from './handles.js';
import { createTestDatabase, type TestDatabase } from './testing.js';

describe('DatabaseHandles', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sqlutil-handles-'));
  let pgDb: TestDatabase;
  beforeAll(async () => {
    pgDb = await createTestDatabase('postgres');
  });
  afterAll(async () => {
    await pgDb?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('shares one handle per SQLite file, however it is spelled', async () => {
    const handles = new DatabaseHandles({ baseDir: dir });
    try {
      const [a, b, c] = await Promise.all([handles.get('file:a.db'), handles.get('file:./a.db'), handles.get(`file://${dir}/a.db`)]);
      expect(b).toBe(a);
      expect(c).toBe(a);
      expect(await handles.get('file:b.db')).not.toBe(a);
    } finally {
      await handles.closeAll();
    }
  });

  it('shares one pool per PostgreSQL database', async () => {
    const handles = new DatabaseHandles();
    try {
      const name = new URL(pgDb.connectionString.replace(/^postgresql:/, 'http:')).pathname.slice(1);
      const a = await handles.get(pgDb.connectionString, { maxOpenConns: 3 });
      const b = await handles.get(`postgres://postgres@/${name}?sslmode=disable`);
      expect(b).toBe(a);
      expect(a.dialect).toBe('postgres');
      const other = await handles.get('postgresql://postgres:@/postgres?sslmode=disable');
      expect(other).not.toBe(a);
    } finally {
      await handles.closeAll();
    }
  });

  it('reports a failed open, forgets it, and succeeds once the cause is gone', async () => {
    const handles = new DatabaseHandles({ baseDir: dir });
    const blocker = path.join(dir, 'blocked');
    writeFileSync(blocker, 'a file where a directory should be');
    try {
      await expect(handles.get('file:blocked/x.db')).rejects.toThrow(DatabaseConnectError);
      rmSync(blocker);
      const opened = await handles.get('file:blocked/x.db');
      expect((await sql<{ one: number }>`SELECT 1 AS one`.execute(opened.db)).rows).toEqual([{ one: 1 }]);
    } finally {
      await handles.closeAll();
    }
  });

  it('rejects (does not throw) for a connection string it cannot read', async () => {
    const handles = new DatabaseHandles();
    const p = handles.get('mysql://h/d');
    await expect(p).rejects.toThrow(UnsupportedSchemeError);
  });

  it('closes every handle, and refuses new ones after', async () => {
    const handles = new DatabaseHandles({ baseDir: dir });
    const a = await handles.get('file:c.db');
    const b = await handles.get(pgDb.connectionString);
    await handles.closeAll();
    await expect(sql`SELECT 1`.execute(a.db)).rejects.toThrow();
    await expect(sql`SELECT 1`.execute(b.db)).rejects.toThrow();
    await expect(handles.get('file:c.db')).rejects.toThrow('database handles are closed (the server is shutting down)');
  });
});
