/**
 * federationapi: the Server-Server routes, server keys, and (later) the outbound queues.
 */
import { runMigrations, type OpenedDatabase } from '../internal/sqlutil/index.js';
import type { Config } from '../setup/config/config.js';
import type { PublicRouters } from '../internal/httputil/index.js';
import type { SigningIdentity } from '../internal/signingidentity.js';
import type { FederationInternalAPI } from './api/index.js';
import { FederationInternalAPIImpl } from './internal/api.js';
import { addServerKeyRoutes } from './routing/keys.js';
import { addVersionRoute } from './routing/version.js';
import { addOpenIDUserInfoRoute } from './routing/openid.js';
import type { FederationUserAPI } from '../userapi/api/index.js';
import { federationapiMigrations } from './storage/migrations.js';

export async function newInternalAPI(cfg: Config, db: OpenedDatabase<unknown>): Promise<FederationInternalAPI> {
  await runMigrations(db.db, db.dialect, 'federationapi', federationapiMigrations);
  return new FederationInternalAPIImpl(cfg.global.serverName);
}

export function addPublicRoutes(routers: PublicRouters, cfg: Config, identity: SigningIdentity, userAPI: FederationUserAPI): void {
  // Keys are served even with federation disabled: clients and tools verify with them.
  addServerKeyRoutes(routers.key, identity);
  if (cfg.global.disableFederation) return;
  addVersionRoute(routers.federation);
  addOpenIDUserInfoRoute(routers.federation, userAPI);
}
