/**
 * The one place that knows every component: their factories, their internal API types and
 * the method lists that polylith turns into NATS request/reply.
 */
import { clientapiInternalAPIMethods, type ClientInternalAPI } from '../clientapi/api/index.js';
import { federationapiInternalAPIMethods, type FederationInternalAPI } from '../federationapi/api/index.js';
import { mediaapiInternalAPIMethods, type MediaInternalAPI } from '../mediaapi/api/index.js';
import { roomserverInternalAPIMethods, type RoomserverInternalAPI } from '../roomserver/api/index.js';
import { syncapiInternalAPIMethods, type SyncInternalAPI } from '../syncapi/api/index.js';
import { userapiInternalAPIMethods, type UserInternalAPI } from '../userapi/api/index.js';
import type { ComponentName } from '../internal/componentapi.js';

export interface ComponentAPIs {
  roomserver: RoomserverInternalAPI;
  userapi: UserInternalAPI;
  syncapi: SyncInternalAPI;
  federationapi: FederationInternalAPI;
  mediaapi: MediaInternalAPI;
  clientapi: ClientInternalAPI;
}

export const componentAPIMethods: { readonly [C in ComponentName]: ReadonlyArray<keyof ComponentAPIs[C] & string> } = {
  roomserver: roomserverInternalAPIMethods,
  userapi: userapiInternalAPIMethods,
  syncapi: syncapiInternalAPIMethods,
  federationapi: federationapiInternalAPIMethods,
  mediaapi: mediaapiInternalAPIMethods,
  clientapi: clientapiInternalAPIMethods,
};
