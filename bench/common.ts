/** What the benches share: a monolith to measure, a throwaway PostgreSQL database, env sizes and percentiles. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import pino from 'pino';
import { formatMatrixKeyPem, generateSigningKey } from '../internal/matrix/index.js';
import { connectDatabase } from '../internal/sqlutil/index.js';
import { parseConfig } from '../setup/config/config.js';
import { generateConfigDocument } from '../setup/config/generate.js';
import { startServer, type RunningServer } from '../setup/server.js';

export const BENCH_POSTGRES = 'postgresql://postgres@127.0.0.1:5432';

export type ConfigDocument = Record<string, Record<string, unknown>>;

/**
 * Runs `fn` on a monolith with a CI configuration (open registration, no rate limits) in a fresh
 * temporary folder, serving HTTP on a free loopback port; `db` (a postgres:// URL) replaces the
 * embedded SQLite databases and `configure` may change the configuration first. The server
 * stops and the folder goes afterwards, even if `fn` fails.
 */
export async function withBenchServer<T>(
  name: string,
  opts: { db?: string; configure?: (doc: ConfigDocument) => void },
  fn: (base: string, server: RunningServer) => Promise<T>,
): Promise<T> {
  const dir = mkdtempSync(path.join(tmpdir(), `bench-${name}-`));
  const doc = generateConfigDocument({ ci: true, dir, ...(opts.db ? { db: opts.db } : {}) }) as ConfigDocument;
  doc.logging = [{ type: 'std', level: 'error' }] as unknown as Record<string, unknown>;
  opts.configure?.(doc);
  const { keyId, seed } = generateSigningKey();
  writeFileSync(path.join(dir, 'matrix_key.pem'), formatMatrixKeyPem(keyId, seed));
  const server = await startServer({ cfg: parseConfig(doc, dir), logger: pino({ level: 'error' }), httpBind: { host: '127.0.0.1', port: 0 } });
  try {
    return await fn(`http://127.0.0.1:${server.http!.address.port}`, server);
  } finally {
    await server.shutdown('bench done');
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs `fn` with the URL of a fresh PostgreSQL database named after `name`, dropped afterwards even if `fn` fails. */
export async function withPostgresDatabase<T>(name: string, fn: (url: string) => Promise<T>): Promise<T> {
  // Lower case letters, digits and _ only: the name goes into SQL unquoted.
  const db = `bench_${name}_${process.pid}_${Date.now()}`;
  const admin = await connectDatabase(`${BENCH_POSTGRES}/postgres?sslmode=disable`, { baseDir: '.' });
  try {
    await sql.raw(`create database ${db}`).execute(admin.db);
    try {
      return await fn(`${BENCH_POSTGRES}/${db}?sslmode=disable`);
    } finally {
      await sql.raw(`drop database if exists ${db} with (force)`).execute(admin.db);
    }
  } finally {
    await admin.close();
  }
}

/** An integer size from the environment (at least `min`), or `dflt` when unset. */
export function envInt(name: string, dflt: number, min = 1): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer >= ${min}, not "${raw}"`);
  return n;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export const round2 = (n: number): number => Math.round(n * 100) / 100;
