/**
 * clientapi: the Client-Server routes that write. It has no storage of its own; it talks to
 * the other components through their `api/` interfaces.
 */
import type { Config } from '../setup/config/config.js';
import type { PublicRouters } from '../internal/httputil/index.js';
import type { ClientInternalAPI } from './api/index.js';
import { ClientInternalAPIImpl } from './internal/api.js';
import { addVersionsRoute } from './routing/versions.js';
import { PasswordUIA } from './auth/uia.js';
import { addAccountDataRoutes } from './routing/accountdata.js';
import { addDeviceRoutes } from './routing/devices.js';
import { addFilterRoutes } from './routing/filter.js';
import { addKeyBackupRoutes } from './routing/keybackup.js';
import { addKeyRoutes } from './routing/keys.js';
import { addPasswordRoute } from './routing/password.js';
import { addLoginRoutes } from './routing/login.js';
import { addOpenIDRoute } from './routing/openid.js';
import { addProfileRoutes } from './routing/profile.js';
import { addPushRulesRoutes } from './routing/pushrules.js';
import { addPusherRoutes } from './routing/pushers.js';
import { RegistrationRoutes } from './routing/register.js';
import { addAdminRoutes } from './routing/admin.js';
import { addAdminDeviceRoutes } from './routing/admindevices.js';
import { addWhoisRoute } from './routing/whois.js';
import { addRegistrationTokenAdminRoutes, addRegistrationTokenValidityRoute } from './routing/registrationtokens.js';
import { addThreePidRoutes } from './routing/threepid.js';
import { addUserDirectoryRoute } from './routing/userdirectory.js';
import type { ClientUserAPI } from '../userapi/api/index.js';
import type { RoomserverInternalAPI } from '../roomserver/api/index.js';
import type { FederationInternalAPI } from '../federationapi/api/index.js';
import { addCreateRoomRoute } from './routing/createroom.js';
import { addRoomStateRoutes } from './routing/roomstate.js';
import { addSendEventRoutes } from './routing/sendevent.js';
import { addMembershipRoutes } from './routing/membership.js';
import { ThirdPartyInvites } from './routing/thirdpartyinvite.js';
import { IdentityServerClient, type HomeserverSigner } from '../internal/identityserver/index.js';
import { ThreePidBinder } from './routing/threepidbind.js';
import { NetworkPolicy } from '../internal/netpolicy/index.js';
import { addKnockRoute } from './routing/knock.js';
import { addForgetRoute } from './routing/forget.js';
import { addUpgradeRoomRoute } from './routing/upgrade.js';
import { addDirectoryRoutes } from './routing/directory.js';
import { addEphemeralRoutes } from './routing/ephemeral.js';
import type { EphemeralProducer } from '../syncapi/api/producer.js';
export { busEphemeralProducer } from '../syncapi/api/producer.js';
import { addRedactRoute } from './routing/redact.js';
import { addReportRoute } from './routing/report.js';
import { addHierarchyRoute } from './routing/hierarchy.js';
import { addTimestampToEventRoute } from './routing/timestamp.js';
import { addCapabilitiesRoute } from './routing/capabilities.js';
import { addVoipRoute } from './routing/voip.js';
import { addPeekRoutes } from './routing/peek.js';
import type { SyncInternalAPI } from '../syncapi/api/index.js';
import type { Logger } from 'pino';
import { newRateLimitMiddleware } from './ratelimit/index.js';

/** clientapi owns no tables, so it takes no database. */
export async function newInternalAPI(cfg: Config): Promise<ClientInternalAPI> {
  return new ClientInternalAPIImpl(cfg.global.serverName);
}

/** `signer` signs what this server asks of identity servers on its own authority (/3pid/unbind). */
export function addPublicRoutes(
  routers: PublicRouters,
  cfg: Config,
  userAPI: ClientUserAPI,
  rsAPI: RoomserverInternalAPI,
  fedAPI: FederationInternalAPI,
  producer: EphemeralProducer,
  log: Logger,
  syncAPI: Pick<SyncInternalAPI, 'queryAnnotationExists' | 'queryEventIdForTransaction'>,
  signer: HomeserverSigner,
): void {
  // First, so that it runs ahead of every route it limits (hono runs handlers in the order added).
  if (cfg.clientApi.rateLimiting.enabled) routers.client.use('*', newRateLimitMiddleware(cfg.clientApi.rateLimiting, userAPI));
  new RegistrationRoutes(cfg, userAPI).add(routers.client, routers.synapseAdmin);
  const uia = new PasswordUIA(userAPI, cfg.global.serverName);
  addLoginRoutes(routers.client, cfg, userAPI, uia);
  addDeviceRoutes(routers.client, userAPI, uia);
  // Identity servers (3PID invites, bindings) are reached under federation's network rules.
  const identityServers = new IdentityServerClient({
    policy: new NetworkPolicy({ denyNetworks: cfg.federationApi.denyNetworks, allowNetworks: cfg.federationApi.allowNetworks }),
    rejectUnauthorized: !cfg.federationApi.disableTlsValidation,
  });
  const threePids = new ThreePidBinder({ userAPI, identityServers, signer, log });
  addPasswordRoute(routers.client, userAPI, uia, rsAPI, log, threePids);
  addProfileRoutes(routers.client, cfg.global.serverName, userAPI, rsAPI, fedAPI, log);
  addFilterRoutes(routers.client, userAPI);
  addAccountDataRoutes(routers.client, userAPI);
  addOpenIDRoute(routers.client, userAPI, cfg.global.serverName);
  addKeyRoutes(routers.client, userAPI, uia);
  addKeyBackupRoutes(routers.client, userAPI);
  addThreePidRoutes(routers.client, cfg, userAPI, uia, threePids);
  addUserDirectoryRoute(routers.client, userAPI, rsAPI);
  addPushRulesRoutes(routers.client, userAPI);
  addPusherRoutes(routers.client, userAPI);
  const thirdParty = new ThirdPartyInvites({ rsAPI, userAPI, fedAPI, identityServers, log });
  addCreateRoomRoute(routers.client, cfg, userAPI, rsAPI, fedAPI, log, thirdParty);
  addRoomStateRoutes(routers.client, userAPI, rsAPI);
  addSendEventRoutes(routers.client, cfg.global.serverName, userAPI, rsAPI, fedAPI, syncAPI, log);
  addMembershipRoutes(routers.client, cfg.global.serverName, userAPI, rsAPI, fedAPI, thirdParty);
  addKnockRoute(routers.client, userAPI, rsAPI);
  addForgetRoute(routers.client, userAPI, rsAPI);
  addUpgradeRoomRoute(routers.client, cfg.global.serverName, userAPI, rsAPI);
  addDirectoryRoutes(routers.client, cfg, userAPI, rsAPI, fedAPI);
  addEphemeralRoutes(routers.client, cfg.global.serverName, userAPI, rsAPI, producer);
  addRedactRoute(routers.client, userAPI, rsAPI, syncAPI, log);
  addReportRoute(routers.client, userAPI, rsAPI, log);
  addHierarchyRoute(routers.client, userAPI, rsAPI, fedAPI);
  addTimestampToEventRoute(routers.client, cfg.global.serverName, userAPI, rsAPI, fedAPI);
  addCapabilitiesRoute(routers.client, cfg, userAPI);
  addVoipRoute(routers.client, cfg, userAPI);
  addRegistrationTokenValidityRoute(routers.client, userAPI);
  if (cfg.mscs.mscs.includes('msc2753')) addPeekRoutes(routers.client, userAPI, rsAPI);
  addRegistrationTokenAdminRoutes(routers.dendriteAdmin, userAPI);
  addAdminRoutes(routers.dendriteAdmin, userAPI, rsAPI, cfg.global.serverName);
  addAdminDeviceRoutes(routers.dendriteAdmin, userAPI);
  addWhoisRoute(routers.client, cfg.global.serverName, userAPI);
  addVersionsRoute(routers.client, {
    'org.matrix.msc2836': cfg.mscs.mscs.includes('msc2836'),
    'org.matrix.msc2753': cfg.mscs.mscs.includes('msc2753'),
    'org.matrix.msc2444': cfg.mscs.mscs.includes('msc2444'),
  });
}
