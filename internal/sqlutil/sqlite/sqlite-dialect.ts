/**
 * Kysely's SqliteDialect, except that a read-write transaction starts with BEGIN IMMEDIATE.
 *
 * Kysely begins with a plain BEGIN (DEFERRED): the write lock is taken at the first write. A
 * deferred transaction that reads and then writes, while another connection to the same file
 * has written meanwhile, fails at once with SQLITE_BUSY; busy_timeout cannot help, because
 * its snapshot is stale. IMMEDIATE takes the write lock at BEGIN, where busy_timeout does wait.
 * Within one process nothing changes: Kysely already serialises everything through the single
 * connection (a mutex), and SQLite has one writer anyway. It matters when a second process
 * (a migration at start-up, an admin tool) opens the same file.
 * `db.transaction().setAccessMode('read only')` keeps a deferred BEGIN.
 */
import { CompiledQuery, SqliteDialect, SqliteDriver } from 'kysely';
import type { DatabaseConnection, Driver, SqliteDialectConfig, TransactionSettings } from 'kysely';

class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection, settings?: TransactionSettings): Promise<void> {
    const begin = settings?.accessMode === 'read only' ? 'begin deferred' : 'begin immediate';
    await connection.executeQuery(CompiledQuery.raw(begin));
  }
}

export class ImmediateSqliteDialect extends SqliteDialect {
  readonly #config: SqliteDialectConfig;

  constructor(config: SqliteDialectConfig) {
    super(config);
    this.#config = config;
  }

  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.#config);
  }
}
