/**
 * The internal API of the federationapi component: the only door other components may use.
 * In a monolith it is a direct call; in a polylith, NATS request/reply generated from
 * `federationapiInternalAPIMethods`. Every method takes one JSON request and returns JSON.
 */
import type { StatusAPI } from '../../internal/componentapi.js';

export type FederationInternalAPI = StatusAPI;

export const federationapiInternalAPIMethods = ['queryComponentStatus'] as const satisfies ReadonlyArray<keyof FederationInternalAPI>;
