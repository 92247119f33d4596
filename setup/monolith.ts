/** Monolith: every component in this one process, internal API calls as direct calls. */
import { startServer, type RunningServer, type ServerOptions } from './server.js';

export async function startMonolith(opts: Omit<ServerOptions, 'components'>): Promise<RunningServer> {
  return startServer(opts);
}
