/**
 * The internal API of userapi: the only door other components may use. In a monolith it is a
 * direct call; in a polylith, NATS request/reply generated from `userapiInternalAPIMethods`.
 * Every method takes one JSON request and returns JSON.
 */
import type { StatusAPI } from '../../internal/componentapi.js';
import { keyBackupAPIMethods, type KeyBackupAPI } from './keybackup.js';
import { keyServerAPIMethods, type KeyServerAPI } from './keys.js';
import { pushAPIMethods, type PushAPI } from './push.js';
import { threePidAPIMethods, type ThreePidAPI } from './threepid.js';

export * from './keybackup.js';
export * from './keys.js';
export * from './push.js';
export * from './threepid.js';

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

/** Which of these users are guests of this server. */
export interface QueryGuestsRequest {
  userIds: string[];
}
export interface QueryGuestsResponse {
  guests: string[];
}

/** A guest becomes a full account (POST /register with `guest_access_token`), keeping its user ID. */
export interface PerformGuestUpgradeRequest {
  localpart: string;
  password?: string;
}
export interface PerformGuestUpgradeResponse {
  /** False when the account is not a guest's (or is gone). */
  upgraded: boolean;
}

export interface PerformDeviceCreationRequest {
  localpart: string;
  /** A new ID is made when absent; an existing device of the user gets a new token. */
  deviceId?: string;
  displayName?: string;
  ip?: string;
  userAgent?: string;
  /** The client asked for a refresh token: the access token then expires. */
  refreshable?: boolean;
}
export interface PerformDeviceCreationResponse {
  device: Device;
  accessToken: string;
  /** For refreshable logins. */
  refreshToken?: string;
  expiresInMs?: number;
}

export interface PerformTokenRefreshRequest {
  refreshToken: string;
}
export type PerformTokenRefreshResponse = { refreshed: true; accessToken: string; refreshToken: string; expiresInMs: number } | { refreshed: false };

export interface PerformPasswordCheckRequest {
  localpart: string;
  password: string;
}
export interface PerformPasswordCheckResponse {
  ok: boolean;
}

export interface QueryAccessTokenRequest {
  accessToken: string;
  /** Where the request came from, for the device's last-seen record. */
  ip?: string;
  userAgent?: string;
}
/** The device behind an access token, with what routes decide access by. */
export interface AuthenticatedDevice extends Device {
  isGuest: boolean;
  isAdmin: boolean;
}
export interface QueryAccessTokenResponse {
  device?: AuthenticatedDevice;
  /** The token was valid but has expired: the client should refresh (soft logout). */
  expired?: boolean;
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

export interface DeviceInfo extends Device {
  lastSeenTs: number;
  lastSeenIp: string | null;
  /** The User-Agent of its last seen request (admin whois). */
  lastSeenUserAgent: string | null;
}

export interface QueryDevicesRequest {
  userId: string;
}
export interface QueryDevicesResponse {
  devices: DeviceInfo[];
}

export interface PerformDeviceUpdateRequest {
  userId: string;
  deviceId: string;
  displayName: string | null;
}
export interface PerformDeviceUpdateResponse {
  found: boolean;
}

export interface Profile {
  displayName: string | null;
  avatarUrl: string | null;
}
export interface QueryProfileRequest {
  userId: string;
}
export interface QueryProfileResponse {
  /** Absent when the user does not exist here. */
  profile?: Profile;
}
export interface QuerySearchProfilesRequest {
  searchTerm: string;
  limit: number;
}
export interface QuerySearchProfilesResponse {
  profiles: Array<Profile & { userId: string }>;
}
export interface PerformProfileUpdateRequest {
  userId: string;
  displayName?: string | null;
  avatarUrl?: string | null;
}
export interface PerformProfileUpdateResponse {
  updated: boolean;
}

export interface PerformFilterCreationRequest {
  userId: string;
  /** Already validated by the caller. */
  filter: Record<string, unknown>;
}
export interface PerformFilterCreationResponse {
  filterId: string;
}
export interface QueryFilterRequest {
  userId: string;
  filterId: string;
}
export interface QueryFilterResponse {
  filter?: Record<string, unknown>;
}

export interface PerformPasswordUpdateRequest {
  userId: string;
  password: string;
  /** Log out every other device (the spec's default). */
  logoutDevices: boolean;
  /** The device making the change, which stays logged in. */
  exceptDeviceId?: string;
}
export interface PerformPasswordUpdateResponse {
  updated: boolean;
}

export interface PerformAccountDeactivationRequest {
  userId: string;
  /** The user asked to be forgotten (GDPR erasure): their profile is cleared too. */
  erase?: boolean;
}
export interface PerformAccountDeactivationResponse {
  deactivated: boolean;
}

export interface PerformAccountDataUpdateRequest {
  userId: string;
  /** Absent for global account data. */
  roomId?: string;
  type: string;
  content: Record<string, unknown>;
}
export interface PerformAccountDataUpdateResponse {
  updated: boolean;
}
export interface QueryAccountDataRequest {
  userId: string;
  roomId?: string;
  type: string;
}
export interface QueryAccountDataResponse {
  content?: Record<string, unknown>;
}

export interface PerformLoginTokenCreationRequest {
  userId: string;
  lifetimeMs: number;
}
export interface PerformLoginTokenCreationResponse {
  token: string;
}
export interface PerformLoginTokenUseRequest {
  token: string;
}
export interface PerformLoginTokenUseResponse {
  /** The account the token logs in, when it was valid (it is now used up). */
  localpart?: string;
}

/** A registration token as the admin API shows it (Synapse's and Dendrite's field names). */
export interface RegistrationToken {
  token: string;
  uses_allowed: number | null;
  pending: number;
  completed: number;
  expiry_time: number | null;
}
export interface PerformRegistrationTokenCreationRequest {
  /** Generated when absent, of `length` characters. */
  token?: string;
  length?: number;
  usesAllowed: number | null;
  expiryTime: number | null;
}
export type PerformRegistrationTokenCreationResponse = { created: RegistrationToken } | { error: 'exists' | 'invalid'; message: string };
export interface QueryRegistrationTokensRequest {
  /** Only usable tokens (true), only used-up or expired ones (false), or all. */
  valid?: boolean;
}
export interface QueryRegistrationTokensResponse {
  tokens: RegistrationToken[];
}
export interface RegistrationTokenRequest {
  token: string;
}
export interface RegistrationTokenResponse {
  token?: RegistrationToken;
}
export interface PerformRegistrationTokenUpdateRequest {
  token: string;
  usesAllowed?: number | null;
  expiryTime?: number | null;
}
export interface RegistrationTokenUseResponse {
  /** performRegistrationTokenUse: a use was counted; queryRegistrationTokenValidity: the token is usable. */
  ok: boolean;
}

/** Published on OutputClientData (subject per user) when account data changes, for syncapi. */
export interface OutputClientData {
  user_id: string;
  /** '' for global account data. */
  room_id: string;
  type: string;
}

export interface PerformOpenIDTokenCreationRequest {
  userId: string;
}
export interface PerformOpenIDTokenCreationResponse {
  token: string;
  expiresInMs: number;
}
export interface QueryOpenIDTokenRequest {
  token: string;
}
export interface QueryOpenIDTokenResponse {
  /** The user the token was issued to, when it is valid and unexpired. */
  userId?: string;
}

/** What federationapi calls. */
export interface FederationUserAPI {
  queryOpenIDToken(req: QueryOpenIDTokenRequest): Promise<QueryOpenIDTokenResponse>;
}

/** What clientapi calls: registration, login, tokens, devices, profiles, filters, account data and keys. */
export interface ClientUserAPI extends KeyServerAPI, KeyBackupAPI, PushAPI, ThreePidAPI {
  performAccountCreation(req: PerformAccountCreationRequest): Promise<PerformAccountCreationResponse>;
  queryAccountAvailability(req: QueryAccountAvailabilityRequest): Promise<QueryAccountAvailabilityResponse>;
  performGuestUpgrade(req: PerformGuestUpgradeRequest): Promise<PerformGuestUpgradeResponse>;
  queryGuests(req: QueryGuestsRequest): Promise<QueryGuestsResponse>;
  performPasswordCheck(req: PerformPasswordCheckRequest): Promise<PerformPasswordCheckResponse>;
  performDeviceCreation(req: PerformDeviceCreationRequest): Promise<PerformDeviceCreationResponse>;
  queryAccessToken(req: QueryAccessTokenRequest): Promise<QueryAccessTokenResponse>;
  performTokenRefresh(req: PerformTokenRefreshRequest): Promise<PerformTokenRefreshResponse>;
  performDeviceDeletion(req: PerformDeviceDeletionRequest): Promise<PerformDeviceDeletionResponse>;
  queryDevices(req: QueryDevicesRequest): Promise<QueryDevicesResponse>;
  performDeviceUpdate(req: PerformDeviceUpdateRequest): Promise<PerformDeviceUpdateResponse>;
  queryProfile(req: QueryProfileRequest): Promise<QueryProfileResponse>;
  querySearchProfiles(req: QuerySearchProfilesRequest): Promise<QuerySearchProfilesResponse>;
  performProfileUpdate(req: PerformProfileUpdateRequest): Promise<PerformProfileUpdateResponse>;
  performFilterCreation(req: PerformFilterCreationRequest): Promise<PerformFilterCreationResponse>;
  queryFilter(req: QueryFilterRequest): Promise<QueryFilterResponse>;
  performPasswordUpdate(req: PerformPasswordUpdateRequest): Promise<PerformPasswordUpdateResponse>;
  performAccountDeactivation(req: PerformAccountDeactivationRequest): Promise<PerformAccountDeactivationResponse>;
  performAccountDataUpdate(req: PerformAccountDataUpdateRequest): Promise<PerformAccountDataUpdateResponse>;
  queryAccountData(req: QueryAccountDataRequest): Promise<QueryAccountDataResponse>;
  performOpenIDTokenCreation(req: PerformOpenIDTokenCreationRequest): Promise<PerformOpenIDTokenCreationResponse>;
  performLoginTokenCreation(req: PerformLoginTokenCreationRequest): Promise<PerformLoginTokenCreationResponse>;
  performLoginTokenUse(req: PerformLoginTokenUseRequest): Promise<PerformLoginTokenUseResponse>;
  performRegistrationTokenCreation(req: PerformRegistrationTokenCreationRequest): Promise<PerformRegistrationTokenCreationResponse>;
  queryRegistrationTokens(req: QueryRegistrationTokensRequest): Promise<QueryRegistrationTokensResponse>;
  queryRegistrationToken(req: RegistrationTokenRequest): Promise<RegistrationTokenResponse>;
  performRegistrationTokenUpdate(req: PerformRegistrationTokenUpdateRequest): Promise<RegistrationTokenResponse>;
  performRegistrationTokenDeletion(req: RegistrationTokenRequest): Promise<RegistrationTokenUseResponse>;
  performRegistrationTokenUse(req: RegistrationTokenRequest): Promise<RegistrationTokenUseResponse>;
  queryRegistrationTokenValidity(req: RegistrationTokenRequest): Promise<RegistrationTokenUseResponse>;
}

export interface UserInternalAPI extends StatusAPI, ClientUserAPI, FederationUserAPI {}

export const userapiInternalAPIMethods = [
  'queryComponentStatus',
  'performAccountCreation',
  'queryAccountAvailability',
  'performGuestUpgrade',
  'queryGuests',
  'performPasswordCheck',
  'performDeviceCreation',
  'queryAccessToken',
  'performTokenRefresh',
  'performDeviceDeletion',
  'queryDevices',
  'performDeviceUpdate',
  'queryProfile',
  'querySearchProfiles',
  'performProfileUpdate',
  'performFilterCreation',
  'queryFilter',
  'performPasswordUpdate',
  'performAccountDeactivation',
  'performAccountDataUpdate',
  'queryAccountData',
  'performOpenIDTokenCreation',
  'queryOpenIDToken',
  'performLoginTokenCreation',
  'performLoginTokenUse',
  'performRegistrationTokenCreation',
  'queryRegistrationTokens',
  'queryRegistrationToken',
  'performRegistrationTokenUpdate',
  'performRegistrationTokenDeletion',
  'performRegistrationTokenUse',
  'queryRegistrationTokenValidity',
  ...keyServerAPIMethods,
  ...keyBackupAPIMethods,
  ...pushAPIMethods,
  ...threePidAPIMethods,
] as const satisfies ReadonlyArray<keyof UserInternalAPI>;

/** Registration tokens: the spec's grammar. */
export const REGISTRATION_TOKEN_PATTERN = /^[A-Za-z0-9._~-]{1,64}$/;

/** Localparts: the spec's historical user ID grammar, lower case, not `_`-prefixed (reserved). */
export const LOCALPART_PATTERN = /^[a-z0-9._=\-/+]+$/;
