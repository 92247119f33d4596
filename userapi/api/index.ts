/**
 * The internal API of userapi: the only door other components may use. In a monolith it is a
 * direct call; in a polylith, NATS request/reply generated from `userapiInternalAPIMethods`.
 * Every method takes one JSON request and returns JSON.
 */
import type { StatusAPI } from '../../internal/componentapi.js';

/** Why an account operation failed, for the caller to turn into a Matrix error. */
export type AccountErrorCode = 'user_in_use' | 'invalid_username' | 'forbidden' | 'unknown_token';

export interface Device {
  userId: string;
  deviceId: string;
  displayName: string | null;
}

export interface PerformAccountCreationRequest {
  localpart: string;
  /** Absent for accounts that cannot log in with a password. */
  password?: string;
  isGuest?: boolean;
  isAdmin?: boolean;
}
export type PerformAccountCreationResponse = { created: true; userId: string } | { created: false; error: AccountErrorCode; message: string };

export interface PerformDeviceCreationRequest {
  localpart: string;
  /** A new ID is made when absent; an existing device of the user gets a new token. */
  deviceId?: string;
  displayName?: string;
  ip?: string;
  userAgent?: string;
}
export interface PerformDeviceCreationResponse {
  device: Device;
  accessToken: string;
}

export interface PerformPasswordCheckRequest {
  localpart: string;
  password: string;
}
export interface PerformPasswordCheckResponse {
  ok: boolean;
}

export interface QueryAccessTokenRequest {
  accessToken: string;
}
export interface QueryAccessTokenResponse {
  device?: Device;
}

export interface QueryAccountAvailabilityRequest {
  localpart: string;
}
export interface QueryAccountAvailabilityResponse {
  available: boolean;
}

export interface PerformDeviceDeletionRequest {
  userId: string;
  /** All of the user's devices when absent. */
  deviceIds?: string[];
}
export interface PerformDeviceDeletionResponse {
  deleted: number;
}

/** What clientapi calls: registration, login, and resolving access tokens. */
export interface ClientUserAPI {
  performAccountCreation(req: PerformAccountCreationRequest): Promise<PerformAccountCreationResponse>;
  queryAccountAvailability(req: QueryAccountAvailabilityRequest): Promise<QueryAccountAvailabilityResponse>;
  performPasswordCheck(req: PerformPasswordCheckRequest): Promise<PerformPasswordCheckResponse>;
  performDeviceCreation(req: PerformDeviceCreationRequest): Promise<PerformDeviceCreationResponse>;
  queryAccessToken(req: QueryAccessTokenRequest): Promise<QueryAccessTokenResponse>;
  performDeviceDeletion(req: PerformDeviceDeletionRequest): Promise<PerformDeviceDeletionResponse>;
}

export interface UserInternalAPI extends StatusAPI, ClientUserAPI {}

export const userapiInternalAPIMethods = [
  'queryComponentStatus',
  'performAccountCreation',
  'queryAccountAvailability',
  'performPasswordCheck',
  'performDeviceCreation',
  'queryAccessToken',
  'performDeviceDeletion',
] as const satisfies ReadonlyArray<keyof UserInternalAPI>;

/** Localparts: the spec's historical user ID grammar, lower case, not `_`-prefixed (reserved). */
export const LOCALPART_PATTERN = /^[a-z0-9._=\-/+]+$/;
