/**
 * Polylith: this process runs some components; the others run elsewhere and are reached
 * through NATS request/reply. That only works with a shared NATS JetStream and a database
 * every process can reach, so both are required up front.
 */
import { isComponentName, type ComponentName } from '../internal/componentapi.js';
import { databaseFor, type Config, type DatabaseComponent } from './config/config.js';
import { startServer, type RunningServer, type ServerOptions } from './server.js';

export class PolylithConfigError extends Error {}

export function parseComponentList(text: string): ComponentName[] {
  const names = text.split(',').map((s) => s.trim()).filter(Boolean);
  if (names.length === 0) throw new PolylithConfigError('--components needs at least one component name');
  for (const n of names) {
    if (!isComponentName(n)) {
      throw new PolylithConfigError(`--components: unknown component "${n}" (known: roomserver, userapi, syncapi, federationapi, mediaapi, clientapi)`);
    }
  }
  return [...new Set(names)] as ComponentName[];
}

const databaseOwners: readonly DatabaseComponent[] = ['roomserver', 'userapi', 'syncapi', 'federationapi', 'mediaapi'];

export function checkPolylithConfig(cfg: Config): void {
  if (cfg.global.jetstream.addresses.length === 0) {
    throw new PolylithConfigError('polylith mode needs an external NATS JetStream: set global.jetstream.addresses');
  }
  if (cfg.global.jetstream.inMemory) {
    throw new PolylithConfigError('polylith mode cannot use global.jetstream.in_memory: processes must share NATS');
  }
  for (const c of databaseOwners) {
    const conn = databaseFor(cfg, c).connectionString;
    if (!/^postgres(ql)?:/i.test(conn)) {
      throw new PolylithConfigError(`polylith mode needs PostgreSQL: the ${c} database is "${conn.split('?')[0]}"`);
    }
  }
}

export async function startPolylith(opts: ServerOptions & { components: readonly ComponentName[] }): Promise<RunningServer> {
  checkPolylithConfig(opts.cfg);
  return startServer(opts);
}
