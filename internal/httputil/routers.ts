/**
 * The public HTTP surface, split by path prefix the way Dendrite's `httputil.Routers` is.
 * Components add their routes to these sub-apps; setup mounts them on every listener.
 */
import { Hono } from 'hono';

export interface PublicRouters {
  /** /_matrix/client */
  client: Hono;
  /** /_matrix/federation */
  federation: Hono;
  /** /_matrix/key */
  key: Hono;
  /** /_matrix/media */
  media: Hono;
  /** /.well-known/matrix */
  wellKnown: Hono;
  /** /_dendrite (admin and operational routes) */
  dendriteAdmin: Hono;
  /** /_synapse (Synapse-compatible admin routes, e.g. shared-secret registration) */
  synapseAdmin: Hono;
}

export const routerPrefixes: Readonly<Record<keyof PublicRouters, string>> = {
  client: '/_matrix/client',
  federation: '/_matrix/federation',
  key: '/_matrix/key',
  media: '/_matrix/media',
  wellKnown: '/.well-known/matrix',
  dendriteAdmin: '/_dendrite',
  synapseAdmin: '/_synapse',
};

export function newPublicRouters(): PublicRouters {
  return {
    client: new Hono(),
    federation: new Hono(),
    key: new Hono(),
    media: new Hono(),
    wellKnown: new Hono(),
    dendriteAdmin: new Hono(),
    synapseAdmin: new Hono(),
  };
}
