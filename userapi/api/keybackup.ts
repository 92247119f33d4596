/**
 * Server-side key backup (the Client-Server spec's "Server-side key backups"): versions of a
 * user's backup, and the encrypted room keys in each. The server never reads the keys; it
 * keeps the best copy of each session's key and tells clients which version is current.
 */

/** One backed-up session key, as the spec's KeyBackupData. */
export interface KeyBackupSession {
  first_message_index: number;
  forwarded_count: number;
  is_verified: boolean;
  /** Opaque to the server (an object for m.megolm_backup.v1). */
  session_data: unknown;
}

/** room ID -> session ID -> key. */
export type BackupKeys = Record<string, Record<string, KeyBackupSession>>;

export interface KeyBackupVersionInfo {
  version: string;
  algorithm: string;
  auth_data: unknown;
  count: number;
  etag: string;
}

export type KeyBackupError = 'not_found' | 'wrong_version';

export interface PerformKeyBackupVersionCreationRequest {
  userId: string;
  algorithm: string;
  authData: unknown;
}
export interface PerformKeyBackupVersionCreationResponse {
  version: string;
}

export interface QueryKeyBackupVersionRequest {
  userId: string;
  /** The current (latest, not deleted) version when absent. */
  version?: string;
}
export interface QueryKeyBackupVersionResponse {
  info?: KeyBackupVersionInfo;
}

export interface PerformKeyBackupVersionUpdateRequest {
  userId: string;
  version: string;
  algorithm: string;
  authData: unknown;
}
export interface KeyBackupResultResponse {
  error?: KeyBackupError | 'algorithm_mismatch';
}

export interface KeyBackupVersionRequest {
  userId: string;
  version: string;
}

export interface PerformKeyBackupUploadRequest {
  userId: string;
  version: string;
  keys: BackupKeys;
}
export interface KeyBackupCountResponse {
  error?: KeyBackupError;
  /** With wrong_version: the version uploads must go to. */
  currentVersion?: string;
  count?: number;
  etag?: string;
}

export interface QueryKeyBackupRequest {
  userId: string;
  version: string;
  roomId?: string;
  sessionId?: string;
}
export interface QueryKeyBackupResponse {
  error?: KeyBackupError;
  keys?: BackupKeys;
}

export interface PerformKeyBackupDeletionRequest {
  userId: string;
  version: string;
  roomId?: string;
  sessionId?: string;
}

export interface KeyBackupAPI {
  performKeyBackupVersionCreation(req: PerformKeyBackupVersionCreationRequest): Promise<PerformKeyBackupVersionCreationResponse>;
  queryKeyBackupVersion(req: QueryKeyBackupVersionRequest): Promise<QueryKeyBackupVersionResponse>;
  performKeyBackupVersionUpdate(req: PerformKeyBackupVersionUpdateRequest): Promise<KeyBackupResultResponse>;
  performKeyBackupVersionDeletion(req: KeyBackupVersionRequest): Promise<KeyBackupResultResponse>;
  performKeyBackupUpload(req: PerformKeyBackupUploadRequest): Promise<KeyBackupCountResponse>;
  queryKeyBackup(req: QueryKeyBackupRequest): Promise<QueryKeyBackupResponse>;
  performKeyBackupDeletion(req: PerformKeyBackupDeletionRequest): Promise<KeyBackupCountResponse>;
}

export const keyBackupAPIMethods = [
  'performKeyBackupVersionCreation',
  'queryKeyBackupVersion',
  'performKeyBackupVersionUpdate',
  'performKeyBackupVersionDeletion',
  'performKeyBackupUpload',
  'queryKeyBackup',
  'performKeyBackupDeletion',
] as const satisfies ReadonlyArray<keyof KeyBackupAPI>;
