/**
 * One database handle per connection string, shared by every component configured with it
 * (Dendrite's global database pool): a monolith on one PostgreSQL opens one pool, and two
 * components on one SQLite file share one connection (SQLite has a single writer anyway).
 */
import { checkConnection, openDatabase, type OpenedDatabase, type OpenOptions } from './connection.js';

export class DatabaseHandles {
  private readonly open = new Map<string, Promise<OpenedDatabase<unknown>>>();

  constructor(private readonly opts: OpenOptions = {}) {}

  /** Opens (once) and checks the database; later calls with the same string share it. */
  get<DB>(conn: string, opts: OpenOptions = {}): Promise<OpenedDatabase<DB>> {
    let p = this.open.get(conn);
    if (!p) {
      p = (async () => {
        const opened = openDatabase<unknown>(conn, { ...this.opts, ...opts });
        try {
          await checkConnection(opened);
        } catch (err) {
          await opened.close().catch(() => {});
          throw err;
        }
        return opened;
      })();
      this.open.set(conn, p);
      p.catch(() => this.open.delete(conn));
    }
    return p as Promise<OpenedDatabase<DB>>;
  }

  async closeAll(): Promise<void> {
    const all = [...this.open.values()];
    this.open.clear();
    await Promise.all(all.map(async (p) => (await p.catch(() => undefined))?.close()));
  }
}
