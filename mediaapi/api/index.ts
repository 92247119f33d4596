/**
 * The internal API of the mediaapi component: the only door other components may use.
 * In a monolith it is a direct call; in a polylith, NATS request/reply generated from
 * `mediaapiInternalAPIMethods`. Every method takes one JSON request and returns JSON.
 */
import type { StatusAPI } from '../../internal/componentapi.js';

export type MediaInternalAPI = StatusAPI;

export const mediaapiInternalAPIMethods = ['queryComponentStatus'] as const satisfies ReadonlyArray<keyof MediaInternalAPI>;
