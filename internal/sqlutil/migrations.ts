/**
 * Per-component, versioned schema migrations, run at start-up. Each component owns its
 * tables (prefix `<component>_`) and its migration history table `<component>_migrations`.
 * Kysely's Migrator takes a lock in `<component>_migrations_lock` (a row lock on PostgreSQL),
 * so two polylith processes starting at once apply each migration exactly once.
 */
import type { Kysely } from 'kysely';
import { Migrator, type Migration, type MigrationProvider } from 'kysely/migration';
import type { DialectName } from './connection.js';

export interface ComponentMigration {
  /** Increasing; applied in this order. */
  version: number;
  name: string;
  up(db: Kysely<unknown>, dialect: DialectName): Promise<void>;
}

export class MigrationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MigrationError';
  }
}

function migrationName(m: ComponentMigration): string {
  // Zero-padded so that Kysely's name order is version order.
  return `${String(m.version).padStart(6, '0')}_${m.name}`;
}

export async function runMigrations(
  db: Kysely<unknown>,
  dialect: DialectName,
  component: string,
  migrations: readonly ComponentMigration[],
): Promise<{ applied: string[] }> {
  if (!/^[a-z][a-z0-9_]*$/.test(component)) throw new MigrationError(`invalid component name "${component}"`);
  const seen = new Set<number>();
  for (const m of migrations) {
    if (seen.has(m.version)) throw new MigrationError(`${component}: migration version ${m.version} appears twice`);
    seen.add(m.version);
  }
  const provider: MigrationProvider = {
    getMigrations: async () => {
      const out: Record<string, Migration> = {};
      for (const m of migrations) out[migrationName(m)] = { up: (d) => m.up(d, dialect) };
      return out;
    },
  };
  const migrator = new Migrator({
    db,
    provider,
    migrationTableName: `${component}_migrations`,
    migrationLockTableName: `${component}_migrations_lock`,
  });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error || failed) {
    const why = error instanceof Error ? error.message : String(error ?? 'unknown error');
    throw new MigrationError(`${component}: migration ${failed?.migrationName ?? ''} failed: ${why}`.replace('  ', ' '));
  }
  return { applied: (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName) };
}
