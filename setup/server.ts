/**
 * Assembles a running server from a config: the bus, the components this process runs,
 * clients for the ones it does not (polylith), the public routes, and the listeners.
 * The HTTPS listener opens last: a successful connect means the server is ready.
 */
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import * as clientapi from '../clientapi/clientapi.js';
import * as federationapi from '../federationapi/federationapi.js';
import * as mediaapi from '../mediaapi/mediaapi.js';
import * as roomserver from '../roomserver/roomserver.js';
import * as syncapi from '../syncapi/syncapi.js';
import * as userapi from '../userapi/userapi.js';
import { componentNames, type ComponentName, type ComponentStatus } from '../internal/componentapi.js';
import { jsonResponse, newPublicRouters, type PublicRouters } from '../internal/httputil/index.js';
import type { SigningIdentity } from '../internal/signingidentity.js';
import { buildListenerApp } from './base/app.js';
import { listen, type BindAddress, type Listener } from './base/listen.js';
import { addWellKnownRoutes } from './base/wellknown.js';
import { componentAPIMethods, type ComponentAPIs } from './components.js';
import { databaseFor, type Config, type DatabaseComponent } from './config/config.js';
import { DatabaseHandles, type OpenedDatabase } from '../internal/sqlutil/index.js';
import { createBus, type Bus } from './jetstream/index.js';
import { apiClient, serveApi } from './jetstream/rpc.js';
import { ProcessContext } from './process/process.js';
import { loadSigningIdentity } from './signingkey.js';

export interface ServerOptions {
  cfg: Config;
  logger: Logger;
  /** Components run in this process; the others are reached over the bus. All when absent. */
  components?: readonly ComponentName[];
  httpBind?: BindAddress;
  httpsBind?: BindAddress;
  tls?: { certFile: string; keyFile: string };
}

export interface RunningServer {
  process: ProcessContext;
  bus: Bus;
  apis: ComponentAPIs;
  http?: Listener;
  https?: Listener;
  identity: SigningIdentity;
  shutdown(reason: string): Promise<void>;
}

/** Builds a component's internal API, opening its database (shared per connection string). */
/** What a component's factory may need besides its config and database. */
interface LocalContext {
  bus: Bus;
  logger: Logger;
  identity: SigningIdentity;
  /** The APIs built so far (components are built in dependency order). */
  apis: Partial<ComponentAPIs>;
  /** Route installers of components that serve routes from their insides (syncapi). */
  routeInstallers: Array<(routers: PublicRouters) => void>;
  /** Registers a shutdown step (a component's timers). */
  onShutdown: (name: string, run: () => void | Promise<void>) => void;
}

async function localAPI<C extends ComponentName>(name: C, cfg: Config, dbs: DatabaseHandles, ctx: LocalContext): Promise<ComponentAPIs[C]> {
  const { bus, logger, identity } = ctx;
  const db = async (c: DatabaseComponent): Promise<OpenedDatabase<unknown>> => {
    const opts = databaseFor(cfg, c);
    return dbs.get(opts.connectionString, { maxOpenConns: opts.maxOpenConns, baseDir: cfg.baseDir });
  };
  const factories: { [K in ComponentName]: () => Promise<ComponentAPIs[K]> } = {
    roomserver: async () => roomserver.newInternalAPI(cfg, await db('roomserver'), bus, logger, identity, () => ctx.apis.federationapi, ctx.onShutdown),
    userapi: async () => userapi.newInternalAPI(cfg, await db('userapi'), bus, { federation: () => ctx.apis.federationapi, push: { rsAPI: ctx.apis.roomserver!, log: logger }, onShutdown: ctx.onShutdown }),
    syncapi: async () =>
      syncapi.newInternalAPI(cfg, await db('syncapi'), {
        bus,
        rsAPI: ctx.apis.roomserver!,
        userAPI: ctx.apis.userapi!,
        log: logger,
        onRoutes: (install) => ctx.routeInstallers.push(install),
        onShutdown: ctx.onShutdown,
      }),
    federationapi: async () =>
      federationapi.newInternalAPI(cfg, await db('federationapi'), {
        identity,
        bus,
        rsAPI: ctx.apis.roomserver!,
        userAPI: ctx.apis.userapi!,
        log: logger,
        onRoutes: (install) => ctx.routeInstallers.push(install),
        onShutdown: ctx.onShutdown,
      }),
    mediaapi: async () => {
      // Remote media and the federation media routes: federationapi's client and key ring, built
      // here so that mediaapi runs the same in a process of its own (polylith).
      const federation = cfg.global.disableFederation ? undefined : await federationapi.newMediaFederation(cfg, await db('federationapi'), identity, logger);
      if (federation) ctx.onShutdown('mediaapi federation client', () => federation.close());
      return mediaapi.newInternalAPI(cfg, await db('mediaapi'), {
        userAPI: ctx.apis.userapi!,
        log: logger,
        onRoutes: (install) => ctx.routeInstallers.push(install),
        ...(federation ? { federation } : {}),
      });
    },
    clientapi: () => clientapi.newInternalAPI(cfg),
  };
  return factories[name]();
}

function addRoutesFor(name: ComponentName, routers: PublicRouters, cfg: Config, identity: SigningIdentity, apis: ComponentAPIs, bus: Bus, logger: Logger): void {
  if (name === 'clientapi') clientapi.addPublicRoutes(routers, cfg, apis.userapi, apis.roomserver, apis.federationapi, clientapi.busEphemeralProducer(bus, cfg.global.jetstream.topicPrefix), logger.child({ component: 'clientapi' }), apis.syncapi, identity);
  if (name === 'federationapi') federationapi.addPublicRoutes(routers, cfg, identity, apis.userapi);
}

/** GET /_dendrite/status: each component's status through its internal API (local or remote). */
function addStatusRoute(routers: PublicRouters, apis: ComponentAPIs, logger: Logger): void {
  routers.dendriteAdmin.get('/status', async () => {
    const components: Record<string, ComponentStatus | { error: string }> = {};
    await Promise.all(
      componentNames.map(async (name) => {
        try {
          components[name] = await apis[name].queryComponentStatus({});
        } catch (err) {
          logger.warn({ component: name, err }, 'component status query failed');
          components[name] = { error: err instanceof Error ? err.message : String(err) };
        }
      }),
    );
    return jsonResponse({ components });
  });
}

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const { cfg, logger } = opts;
  const local = new Set<ComponentName>(opts.components ?? componentNames);
  const proc = new ProcessContext(logger);
  const identity = loadSigningIdentity(cfg);
  const tls = opts.tls ? { cert: readFileSync(opts.tls.certFile), key: readFileSync(opts.tls.keyFile) } : undefined;

  const bus = await createBus({
    addresses: cfg.global.jetstream.addresses,
    topicPrefix: cfg.global.jetstream.topicPrefix,
    inMemory: cfg.global.jetstream.inMemory,
    storagePath: cfg.global.jetstream.storagePath,
    logger: logger.child({ component: 'jetstream' }),
  });
  proc.onShutdown('bus', () => bus.close());
  const dbs = new DatabaseHandles();
  proc.onShutdown('databases', () => dbs.closeAll());

  try {
    const prefix = cfg.global.jetstream.topicPrefix;
    const apis = {} as Record<ComponentName, unknown>;
    const routeInstallers: Array<(routers: PublicRouters) => void> = [];
    for (const name of componentNames) {
      if (local.has(name)) {
        const impl = await localAPI(name, cfg, dbs, { bus, logger, identity, apis: apis as Partial<ComponentAPIs>, routeInstallers, onShutdown: (n, run) => proc.onShutdown(n, run) });
        apis[name] = impl;
        if (local.size < componentNames.length) {
          const sub = await serveApi(bus, prefix, name, impl as object, componentAPIMethods[name]);
          proc.onShutdown(`serve ${name}`, () => sub.unsubscribe());
        }
      } else {
        apis[name] = apiClient(bus, prefix, name, componentAPIMethods[name]);
      }
    }
    const typedApis = apis as unknown as ComponentAPIs;

    const routers = newPublicRouters();
    for (const name of local) addRoutesFor(name, routers, cfg, identity, typedApis, bus, logger);
    for (const install of routeInstallers) install(routers);
    addWellKnownRoutes(routers, cfg);
    addStatusRoute(routers, typedApis, logger);

    const listenerOpts = cfg.global.metrics.enabled
      ? { metrics: { metrics: (await import('./base/metrics.js')).newMetrics(), basicAuth: cfg.global.metrics.basicAuth } }
      : {};
    const running: RunningServer = {
      process: proc,
      bus,
      apis: typedApis,
      identity,
      shutdown: (reason) => proc.shutdown(reason),
    };
    if (opts.httpBind) {
      const l = await listen(buildListenerApp(routers, logger, listenerOpts), opts.httpBind);
      running.http = l;
      proc.onShutdown('http listener', () => l.close(2_000));
      logger.info({ address: l.address }, 'HTTP listener ready');
    }
    if (opts.httpsBind) {
      if (!tls) throw new Error('--https-bind-address needs --tls-cert and --tls-key');
      const l = await listen(buildListenerApp(routers, logger, listenerOpts), opts.httpsBind, tls);
      running.https = l;
      proc.onShutdown('https listener', () => l.close(2_000));
      logger.info({ address: l.address }, 'HTTPS listener ready');
    }
    logger.info({ serverName: cfg.global.serverName, components: [...local] }, 'server started');
    return running;
  } catch (err) {
    await proc.shutdown('start-up failed');
    throw err;
  }
}
