/**
 * The key server's part of the userapi interface (Dendrite merged its keyserver into userapi):
 * device keys, one-time and fallback keys, cross-signing keys and signatures, and the stream
 * of device list changes. Key objects travel as the JSON clients upload; the server checks
 * their shape and the signatures it is responsible for, and otherwise passes them through.
 */

export type KeyObject = Record<string, unknown>;
/** user ID -> device ID (or cross-signing key ID) -> value. */
export type ByUserByKey<T> = Record<string, Record<string, T>>;

/** Why a key request failed, for clientapi to turn into a Matrix error. */
export interface KeyError {
  errcode: 'M_INVALID_PARAM' | 'M_BAD_JSON' | 'M_FORBIDDEN' | 'M_INVALID_SIGNATURE' | 'M_MISSING_PARAM' | 'M_NOT_FOUND' | 'M_UNKNOWN';
  message: string;
}

export interface PerformUploadKeysRequest {
  userId: string;
  deviceId: string;
  deviceKeys?: KeyObject;
  /** key ID ("algorithm:id") -> key. */
  oneTimeKeys?: Record<string, unknown>;
  fallbackKeys?: Record<string, unknown>;
}
export interface PerformUploadKeysResponse {
  error?: KeyError;
  oneTimeKeyCounts: Record<string, number>;
}

export interface QueryOneTimeKeyCountsRequest {
  userId: string;
  deviceId: string;
}
export interface QueryOneTimeKeyCountsResponse {
  /** algorithm -> unclaimed one-time keys. */
  oneTimeKeyCounts: Record<string, number>;
  /** Algorithms with a fallback key not yet handed out (sync's device_unused_fallback_key_types). */
  unusedFallbackKeyTypes: string[];
}

export interface QueryKeysRequest {
  /** The user asking: they alone may see their own user-signing key. */
  userId: string;
  /** user ID -> device IDs; an empty list means every device. */
  userToDevices: Record<string, string[]>;
  timeoutMs?: number;
}
export interface QueryKeysResponse {
  deviceKeys: ByUserByKey<KeyObject>;
  masterKeys: Record<string, KeyObject>;
  selfSigningKeys: Record<string, KeyObject>;
  userSigningKeys: Record<string, KeyObject>;
  /** server name -> what went wrong asking it. */
  failures: Record<string, Record<string, unknown>>;
}

export interface PerformClaimKeysRequest {
  /** user ID -> device ID -> algorithm. */
  oneTimeKeys: ByUserByKey<string>;
  timeoutMs?: number;
}
export interface PerformClaimKeysResponse {
  /** user ID -> device ID -> { key ID: key }. */
  oneTimeKeys: ByUserByKey<Record<string, unknown>>;
  failures: Record<string, Record<string, unknown>>;
}

export interface QueryKeyChangesRequest {
  /** Exclusive. */
  fromOffset: number;
  /** Inclusive; the latest position when absent. */
  toOffset?: number;
}
export interface QueryKeyChangesResponse {
  userIds: string[];
  /** Changes only `visibleTo` may learn of (user-signing keys and signatures made with them). */
  privateChanges?: Array<{ userId: string; visibleTo: string }>;
  /** The position the answer is complete up to. */
  offset: number;
}

export interface QueryCrossSigningStatusRequest {
  userId: string;
}
export interface QueryCrossSigningStatusResponse {
  hasMasterKey: boolean;
}

export interface PerformUploadDeviceSigningKeysRequest {
  userId: string;
  masterKey?: KeyObject;
  selfSigningKey?: KeyObject;
  userSigningKey?: KeyObject;
}
export interface PerformUploadDeviceSigningKeysResponse {
  error?: KeyError;
}

export interface PerformUploadDeviceSignaturesRequest {
  userId: string;
  /** user ID -> key ID (device ID or cross-signing public key) -> the signed object. */
  signatures: ByUserByKey<KeyObject>;
}
export interface PerformUploadDeviceSignaturesResponse {
  /** user ID -> key ID -> { errcode, error }. */
  failures: ByUserByKey<{ errcode: string; error: string }>;
}

/**
 * Published on OutputKeyChangeEvent (subject per user) whenever a local user's device list or
 * cross-signing keys change: syncapi adds the user to `device_lists.changed`, federationapi
 * sends `m.device_list_update` / `m.signing_key_update`.
 */
export interface OutputKeyChangeEvent {
  /** Position in the key change stream (what keys/changes and sync tokens count). */
  offset: number;
  type: 'device_keys' | 'cross_signing';
  user_id: string;
  device_id?: string;
  /** Per-user device list version, for m.device_list_update's stream_id. */
  stream_id?: number;
  /**
   * The user's device list version before this change (m.device_list_update's prev_id);
   * absent for the first. Versions count device changes only, one apart.
   */
  prev_stream_id?: number;
  display_name?: string | null;
  /** Absent when the device was deleted. */
  keys?: KeyObject;
  deleted?: boolean;
  master_key?: KeyObject;
  self_signing_key?: KeyObject;
  /**
   * The only user who may learn of this change (a new user-signing key; a signature made with
   * one, about its target): nothing goes to other users or servers.
   */
  visible_to?: string;
}

export interface KeyServerAPI {
  performUploadKeys(req: PerformUploadKeysRequest): Promise<PerformUploadKeysResponse>;
  queryOneTimeKeyCounts(req: QueryOneTimeKeyCountsRequest): Promise<QueryOneTimeKeyCountsResponse>;
  queryKeys(req: QueryKeysRequest): Promise<QueryKeysResponse>;
  performClaimKeys(req: PerformClaimKeysRequest): Promise<PerformClaimKeysResponse>;
  queryKeyChanges(req: QueryKeyChangesRequest): Promise<QueryKeyChangesResponse>;
  queryCrossSigningStatus(req: QueryCrossSigningStatusRequest): Promise<QueryCrossSigningStatusResponse>;
  performUploadDeviceSigningKeys(req: PerformUploadDeviceSigningKeysRequest): Promise<PerformUploadDeviceSigningKeysResponse>;
  performUploadDeviceSignatures(req: PerformUploadDeviceSignaturesRequest): Promise<PerformUploadDeviceSignaturesResponse>;
  /**
   * Another server told us (m.device_list_update, m.signing_key_update) that a user of theirs
   * changed their keys. With the EDU given, the copy of the user's device list we follow is
   * updated (or marked stale and fetched again in the background when an update is missing);
   * each change counts as a key change, so that /sync and /keys/changes tell our users.
   */
  performRemoteKeyChange(req: PerformRemoteKeyChangeRequest): Promise<PerformRemoteKeyChangeResponse>;
  /**
   * Dendrite's admin refreshDevices: marks another server's user's device list stale and
   * fetches it again (waiting a few seconds for it; it goes on in the background after).
   */
  performRefreshRemoteDevices(req: PerformRefreshRemoteDevicesRequest): Promise<PerformRefreshRemoteDevicesResponse>;
  /** The version of a local user's device list (GET /user/devices' stream_id). */
  queryDeviceListVersion(req: QueryDeviceListVersionRequest): Promise<QueryDeviceListVersionResponse>;
}

export interface PerformRefreshRemoteDevicesRequest {
  userId: string;
}
export interface PerformRefreshRemoteDevicesResponse {
  error?: KeyError;
}

export interface QueryDeviceListVersionRequest {
  userId: string;
}
export interface QueryDeviceListVersionResponse {
  /** 0 when the user's devices never changed. */
  streamId: number;
}

export interface PerformRemoteKeyChangeRequest {
  userId: string;
  /** The server that said so: it must be the user's. */
  origin: string;
  /** The EDU itself; without it the change is only announced to our users. */
  edu?: { type: 'm.device_list_update' | 'm.signing_key_update'; content: Record<string, unknown> };
}
export interface PerformRemoteKeyChangeResponse {
  error?: string;
}

export const keyServerAPIMethods = [
  'performUploadKeys',
  'queryOneTimeKeyCounts',
  'queryKeys',
  'performClaimKeys',
  'queryKeyChanges',
  'queryCrossSigningStatus',
  'performUploadDeviceSigningKeys',
  'performUploadDeviceSignatures',
  'performRemoteKeyChange',
  'performRefreshRemoteDevices',
  'queryDeviceListVersion',
] as const satisfies ReadonlyArray<keyof KeyServerAPI>;

/**
 * What the key server needs of federationapi for remote users. Without it (federation
 * disabled) remote users are reported in `failures`.
 */
export interface FederationKeyClient {
  queryKeys(serverName: string, userToDevices: Record<string, string[]>, timeoutMs: number): Promise<{
    deviceKeys: ByUserByKey<KeyObject>;
    masterKeys: Record<string, KeyObject>;
    selfSigningKeys: Record<string, KeyObject>;
  }>;
  claimKeys(serverName: string, oneTimeKeys: ByUserByKey<string>, timeoutMs: number): Promise<ByUserByKey<Record<string, unknown>>>;
  /**
   * GET /user/devices/{userId} on the user's server, unchecked. `unreachable`: no answer (or a
   * 5xx or 429), worth trying later; otherwise the server refused.
   */
  userDevices?(userId: string, timeoutMs: number): Promise<{ body: Record<string, unknown> } | { error: string; unreachable: boolean }>;
}
