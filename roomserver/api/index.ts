/**
 * The internal API of the roomserver component: the only door other components may use.
 * In a monolith it is a direct call; in a polylith, NATS request/reply generated from
 * `roomserverInternalAPIMethods`. Every method takes one JSON request and returns JSON.
 */
import type { StatusAPI } from '../../internal/componentapi.js';

export type RoomserverInternalAPI = StatusAPI;

export const roomserverInternalAPIMethods = ['queryComponentStatus'] as const satisfies ReadonlyArray<keyof RoomserverInternalAPI>;
