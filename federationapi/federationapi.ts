/**
 * federationapi: the Server-Server routes, server keys, the key ring, the outbound sender
 * (queues per destination) and the operations other components ask of other servers (joins).
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { runMigrations, type OpenedDatabase } from '../internal/sqlutil/index.js';
import type { Config } from '../setup/config/config.js';
import type { PublicRouters } from '../internal/httputil/index.js';
import type { SigningIdentity } from '../internal/signingidentity.js';
import type { RoomserverInternalAPI } from '../roomserver/api/index.js';
import type { Bus } from '../setup/jetstream/index.js';
import { busEphemeralProducer } from '../syncapi/api/producer.js';
import type { FederationInternalAPI } from './api/index.js';
import { FederationClient, encodePathSegment } from './client/index.js';
import { FederationStreamClient } from './client/stream.js';
import { startRoomserverConsumer } from './consumers/roomserver.js';
import { startEDUConsumers } from './consumers/edus.js';
import { FederationInternalAPIImpl } from './internal/api.js';
import { KeyRing } from './internal/keyring.js';
import { Joiner } from './internal/perform/join.js';
import { Inviter } from './internal/perform/invite.js';
import { ThirdPartyInviteExchanger } from './internal/perform/thirdpartyinvite.js';
import { addThirdPartyInviteRoutes } from './routing/thirdparty.js';
import { IdentityServerClient } from '../internal/identityserver/index.js';
import { OutboundSender } from './internal/sender.js';
import { addEventRoutes, RoomReader } from './routing/events.js';
import { addHierarchyRoute } from './routing/hierarchy.js';
import { addTimestampRoute } from './routing/timestamp.js';
import { SpaceHierarchyFetcher } from './internal/perform/hierarchy.js';
import { TimestampFetcher } from './internal/perform/timestamp.js';
import { Backfiller } from './internal/perform/backfill.js';
import { FederationAuth } from './routing/fedauth.js';
import { addJoinRoutes } from './routing/join.js';
import { addInviteRoutes } from './routing/invite.js';
import { addServerKeyRoutes } from './routing/keys.js';
import { addNotaryRoutes } from './routing/notary.js';
import { addVersionRoute } from './routing/version.js';
import { addOpenIDUserInfoRoute } from './routing/openid.js';
import { addSendRoute } from './routing/send.js';
import { addPeekRoutes } from './routing/peek.js';
import { InboundPeeks } from './internal/peekinbound.js';
import { OutboundPeeker } from './internal/peekoutbound.js';
import { FederationPeekStore, type FederationapiPeeksDatabase } from './storage/peeks.js';
import { addQueryRoutes } from './routing/query.js';
import type { ClientUserAPI, FederationUserAPI } from '../userapi/api/index.js';
import type { MediaFederation } from '../mediaapi/api/index.js';
import { MatrixError } from '../internal/httputil/index.js';
import { MatrixProtocolError, isValidServerName, parseXMatrixHeader, verifyRequest } from '../internal/matrix/index.js';
import { NetworkPolicy } from '../internal/netpolicy/index.js';
import { federationapiMigrations } from './storage/migrations.js';
import { OutboundQueueStore, type FederationapiQueueDatabase } from './storage/queue.js';
import { ServerKeyStore, type FederationapiServerKeysDatabase } from './storage/serverkeys.js';

export interface FederationapiDeps {
  identity: SigningIdentity;
  bus: Bus;
  rsAPI: RoomserverInternalAPI;
  userAPI: FederationUserAPI & Pick<ClientUserAPI, 'queryDevices' | 'queryProfile' | 'queryKeys' | 'performClaimKeys' | 'performRemoteKeyChange' | 'queryDeviceListVersion'>;
  log: Logger;
  /** Where the federation routes go once the routers exist. */
  onRoutes: (install: (routers: PublicRouters) => void) => void;
  /** Registers what to stop at shutdown (timers). */
  onShutdown?: (name: string, run: () => void | Promise<void>) => void;
}

/** A federation client and a key ring that fetches through it, as the config sets them up. */
function newClientAndKeyRing(cfg: Config, db: OpenedDatabase<unknown>, identity: SigningIdentity, log: Logger): { client: FederationClient; keyRing: KeyRing } {
  const fed = cfg.federationApi;
  const client = new FederationClient({
    serverName: identity.serverName,
    keyId: identity.keyId,
    sign: (req) => identity.signRequest(req),
    disableTlsValidation: fed.disableTlsValidation,
    denyNetworks: fed.denyNetworks,
    allowNetworks: fed.allowNetworks,
    disableHttpKeepalives: fed.disableHttpKeepalives,
  });
  const keyRing = new KeyRing({
    store: new ServerKeyStore(db.db as unknown as Kysely<FederationapiServerKeysDatabase>),
    fetcher: { fetchServerKeys: (server) => client.getServerKeys(server), queryNotary: (notary, body) => client.queryKeys(notary, body) },
    identity,
    perspectives: fed.keyPerspectives,
    preferDirectFetch: fed.preferDirectFetch,
    log,
  });
  return { client, keyRing };
}

export async function newInternalAPI(cfg: Config, db: OpenedDatabase<unknown>, deps?: FederationapiDeps): Promise<FederationInternalAPI> {
  await runMigrations(db.db, db.dialect, 'federationapi', federationapiMigrations);
  if (!deps) return new FederationInternalAPIImpl(cfg.global.serverName);
  const { identity, rsAPI } = deps;
  const log = deps.log.child({ component: 'federationapi' });
  const fed = cfg.federationApi;
  const { client, keyRing } = newClientAndKeyRing(cfg, db, identity, log);
  const prefix = cfg.global.jetstream.topicPrefix;
  const sender = new OutboundSender({ serverName: identity.serverName, queue: new OutboundQueueStore(db.db as unknown as Kysely<FederationapiQueueDatabase>), client, log });
  const joiner = new Joiner({ identity, client, keys: keyRing, rsAPI, log });
  const inviter = new Inviter({ identity, client, keys: keyRing, rsAPI, log });
  // Identity servers are reached under the same network rules as other servers.
  const thirdParty = new ThirdPartyInviteExchanger({
    serverName: identity.serverName,
    rsAPI,
    invite: (req) => inviter.invite(req),
    ...(cfg.global.disableFederation ? {} : { client }),
    identityServers: new IdentityServerClient({ policy: new NetworkPolicy({ denyNetworks: fed.denyNetworks, allowNetworks: fed.allowNetworks }), rejectUnauthorized: !fed.disableTlsValidation }),
    log,
  });
  // Peeks over federation (MSC2444), both ways.
  const federatedPeeks = cfg.mscs.mscs.includes('msc2444') && !cfg.global.disableFederation;
  const peekStore = new FederationPeekStore(db.db as unknown as Kysely<FederationapiPeeksDatabase>);
  const inboundPeeks = new InboundPeeks(peekStore, log);
  const outboundPeeker = new OutboundPeeker({ serverName: identity.serverName, client, keys: keyRing, rsAPI, store: peekStore, log });
  if (federatedPeeks) {
    const stops = [inboundPeeks.start(), outboundPeeker.start()];
    deps.onShutdown?.('federationapi peeks', () => stops.forEach((stop) => stop()));
  }
  // With federation off, nothing is asked of other servers.
  const lookups = cfg.global.disableFederation
    ? {}
    : {
        hierarchy: new SpaceHierarchyFetcher({ serverName: identity.serverName, client, log }),
        timestamps: new TimestampFetcher({ serverName: identity.serverName, client, keys: keyRing, rsAPI, log }),
        backfill: new Backfiller({ serverName: identity.serverName, client, keys: keyRing, rsAPI, log }),
      };

  if (!cfg.global.disableFederation) {
    await startRoomserverConsumer({ bus: deps.bus, prefix, serverName: identity.serverName, rsAPI, sender, log, ...(federatedPeeks ? { peeks: inboundPeeks } : {}) });
    await startEDUConsumers({ bus: deps.bus, prefix, serverName: identity.serverName, rsAPI, userAPI: deps.userAPI, sender, presenceOutbound: cfg.global.presence.enableOutbound, log });
    await sender.resume();
    const auth = new FederationAuth(identity.serverName, keyRing.requestKeyLookup);
    const reader = new RoomReader(identity.serverName, rsAPI);
    deps.onRoutes((routers) => {
      addQueryRoutes(routers.federation, auth, { serverName: identity.serverName, rsAPI, userAPI: deps.userAPI });
      addNotaryRoutes(routers.key, keyRing, identity);
      addEventRoutes(routers.federation, auth, reader);
      addHierarchyRoute(routers.federation, auth, rsAPI);
      addTimestampRoute(routers.federation, auth, reader, rsAPI);
      addJoinRoutes(routers.federation, auth, reader, identity, keyRing);
      addInviteRoutes(routers.federation, auth, identity, keyRing, rsAPI, log);
      addThirdPartyInviteRoutes(routers.federation, auth, { serverName: identity.serverName, exchanger: thirdParty, log });
      addPeekRoutes(routers.federation, auth, { enabled: federatedPeeks, reader, rsAPI, store: peekStore });
      addSendRoute(routers.federation, auth, {
        reader,
        keys: keyRing,
        producer: busEphemeralProducer(deps.bus, prefix),
        userAPI: deps.userAPI,
        fetcher: {
          getMissingEvents: (dest, roomId, req) => client.getMissingEvents(dest, roomId, req),
          getEvent: (dest, eventId) => client.getEvent(dest, eventId),
          stateIds: (dest, roomId, eventId) => client.stateIds(dest, roomId, eventId),
          eventAuth: async (dest, roomId, eventId) => {
            const res = await client.request(dest, 'GET', `/_matrix/federation/v1/event_auth/${encodePathSegment(roomId)}/${encodePathSegment(eventId)}`);
            const chain = (res.body as { auth_chain?: unknown } | undefined)?.auth_chain;
            if (res.status !== 200 || !Array.isArray(chain)) throw new Error(`${dest} answered event_auth with ${res.status}`);
            return { auth_chain: chain };
          },
        },
        presenceInbound: cfg.global.presence.enableInbound,
        log,
      });
    });
  }
  return new FederationInternalAPIImpl(cfg.global.serverName, joiner, inviter, client, lookups, federatedPeeks ? outboundPeeker : undefined, thirdParty);
}

export function addPublicRoutes(routers: PublicRouters, cfg: Config, identity: SigningIdentity, userAPI: FederationUserAPI): void {
  // Keys are served even with federation disabled: clients and tools verify with them.
  addServerKeyRoutes(routers.key, identity);
  if (cfg.global.disableFederation) return;
  addVersionRoute(routers.federation);
  addOpenIDUserInfoRoute(routers.federation, userAPI);
}

/**
 * Federation for mediaapi, which setup passes in mediaapi's deps: signed, streaming GETs to
 * other servers (remote media) and the X-Matrix check of inbound /_matrix/federation/v1/media
 * requests. It has its own clients and key ring (a polylith may run mediaapi without
 * federationapi); the key ring reads and fills federationapi's server key table, so keys
 * either one learns are shared.
 */
export async function newMediaFederation(cfg: Config, db: OpenedDatabase<unknown>, identity: SigningIdentity, log: Logger): Promise<MediaFederation & { close(): void }> {
  await runMigrations(db.db, db.dialect, 'federationapi', federationapiMigrations);
  const fed = cfg.federationApi;
  const sign = (req: Parameters<SigningIdentity['signRequest']>[0]): string => identity.signRequest(req);
  const { client, keyRing } = newClientAndKeyRing(cfg, db, identity, log.child({ component: 'federationapi' }));
  const stream = new FederationStreamClient({
    serverName: identity.serverName,
    sign,
    resolver: client.resolver,
    policy: new NetworkPolicy({ denyNetworks: fed.denyNetworks, allowNetworks: fed.allowNetworks }),
    rejectUnauthorized: !fed.disableTlsValidation,
    keepAlive: !fed.disableHttpKeepalives,
  });
  return {
    client: { get: (server, path, signal) => stream.get(server, path, signal) },
    verifier: {
      verify: async (req) => {
        try {
          if (!isValidServerName(parseXMatrixHeader(req.authorization ?? '').origin)) throw new MatrixError(400, 'M_INVALID_PARAM', 'The X-Matrix origin is not a server name');
        } catch (e) {
          if (e instanceof MatrixError) throw e;
        }
        try {
          return (await verifyRequest(req, identity.serverName, keyRing.requestKeyLookup)).origin;
        } catch (e) {
          if (e instanceof MatrixProtocolError) throw new MatrixError(401, 'M_UNAUTHORIZED', e.message);
          throw e;
        }
      },
    },
    close: () => {
      client.close();
      stream.close();
    },
  };
}
