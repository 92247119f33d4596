/**
 * The internal API of the userapi component: the only door other components may use.
 * In a monolith it is a direct call; in a polylith, NATS request/reply generated from
 * `userapiInternalAPIMethods`. Every method takes one JSON request and returns JSON.
 */
import type { StatusAPI } from '../../internal/componentapi.js';

export type UserInternalAPI = StatusAPI;

export const userapiInternalAPIMethods = ['queryComponentStatus'] as const satisfies ReadonlyArray<keyof UserInternalAPI>;
