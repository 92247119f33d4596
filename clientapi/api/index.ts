/**
 * The internal API of the clientapi component: the only door other components may use.
 * In a monolith it is a direct call; in a polylith, NATS request/reply generated from
 * `clientapiInternalAPIMethods`. Every method takes one JSON request and returns JSON.
 */
import type { StatusAPI } from '../../internal/componentapi.js';

export type ClientInternalAPI = StatusAPI;

export const clientapiInternalAPIMethods = ['queryComponentStatus'] as const satisfies ReadonlyArray<keyof ClientInternalAPI>;
