/**
 * One database handle per database, shared by every component configured with it (Dendrite's
 * global database pool): a monolith on one PostgreSQL database opens one pool, and components
 * on one SQLite file share its one connection (SQLite has a single writer anyway).
 * Connection strings are compared by what they name, not by spelling (see targetKey).
 */
import { connectTarget, type OpenedDatabase, type OpenOptions } from './connection.js';
import { parseConnectionString, targetKey, type DatabaseTarget } from './connection-string.js';

export class DatabaseHandles {
  private readonly open = new Map<string, Promise<OpenedDatabase<unknown>>>();
  private closed = false;

  /** Options for every handle; `get`'s own options add to them. */
  constructor(private readonly defaults: OpenOptions = {}) {}

  /**
   * Opens the database (once) and checks that it answers; later calls naming the same database
   * get the same handle, and the options of the first call (the pool size) stay. A failed open
   * is forgotten, so a later call tries again. Do not close the handle: closeAll does.
   */
  get<DB>(conn: string, opts: OpenOptions = {}): Promise<OpenedDatabase<DB>> {
    if (this.closed) return Promise.reject(new Error('database handles are closed (the server is shutting down)'));
    const merged = { ...this.defaults, ...opts };
    let target: DatabaseTarget;
    try {
      target = parseConnectionString(conn, merged.baseDir);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    const key = targetKey(target);
    let handle = this.open.get(key);
    if (!handle) {
      handle = connectTarget<unknown>(target, merged);
      this.open.set(key, handle);
      handle.catch(() => {
        if (this.open.get(key) === handle) this.open.delete(key);
      });
    }
    return handle as Promise<OpenedDatabase<DB>>;
  }

  /** Closes every handle (after any still opening have settled); later gets are refused. */
  async closeAll(): Promise<void> {
    this.closed = true;
    const all = [...this.open.values()];
    this.open.clear();
    await Promise.all(all.map(async (p) => (await p.catch(() => undefined))?.close()));
  }
}
