/**
 * The internal API of the syncapi component: the only door other components may use.
 * In a monolith it is a direct call; in a polylith, NATS request/reply generated from
 * `syncapiInternalAPIMethods`. Every method takes one JSON request and returns JSON.
 */
import type { StatusAPI } from '../../internal/componentapi.js';

export type SyncInternalAPI = StatusAPI;

export const syncapiInternalAPIMethods = ['queryComponentStatus'] as const satisfies ReadonlyArray<keyof SyncInternalAPI>;
