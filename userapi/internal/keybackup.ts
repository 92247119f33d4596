/**
 * Key backup rules ("Server-side key backups"): uploads go to the current version only; a
 * session's key is replaced only by a better one (verified beats unverified, then the lower
 * first message index, then the lower forwarded count); the etag changes with the keys.
 */
import type {
  BackupKeys,
  KeyBackupAPI,
  KeyBackupCountResponse,
  KeyBackupResultResponse,
  KeyBackupSession,
  KeyBackupVersionRequest,
  PerformKeyBackupDeletionRequest,
  PerformKeyBackupUploadRequest,
  PerformKeyBackupVersionCreationRequest,
  PerformKeyBackupVersionCreationResponse,
  PerformKeyBackupVersionUpdateRequest,
  QueryKeyBackupRequest,
  QueryKeyBackupResponse,
  QueryKeyBackupVersionRequest,
  QueryKeyBackupVersionResponse,
} from '../api/keybackup.js';
import type { BackupKeyRow, KeyBackupStore } from '../storage/keybackup.js';

/** Versions are decimal integers; anything else names no version. */
function parseVersion(v: string | undefined): number | undefined {
  if (v === undefined || !/^[1-9][0-9]{0,15}$/.test(v)) return undefined;
  return Number(v);
}

/** Whether `candidate` should replace `existing`. */
export function isBetterKey(candidate: KeyBackupSession, existing: KeyBackupSession): boolean {
  if (candidate.is_verified !== existing.is_verified) return candidate.is_verified;
  if (candidate.first_message_index !== existing.first_message_index) return candidate.first_message_index < existing.first_message_index;
  return candidate.forwarded_count < existing.forwarded_count;
}

export class KeyBackupAPIImpl implements KeyBackupAPI {
  constructor(private readonly store: KeyBackupStore) {}

  async performKeyBackupVersionCreation(req: PerformKeyBackupVersionCreationRequest): Promise<PerformKeyBackupVersionCreationResponse> {
    return { version: String(await this.store.createVersion(req.userId, req.algorithm, JSON.stringify(req.authData))) };
  }

  async queryKeyBackupVersion(req: QueryKeyBackupVersionRequest): Promise<QueryKeyBackupVersionResponse> {
    const number = req.version === undefined ? undefined : parseVersion(req.version);
    if (req.version !== undefined && number === undefined) return {};
    const v = await this.store.version(req.userId, number);
    if (!v || v.deleted) return {};
    return { info: { version: String(v.version), algorithm: v.algorithm, auth_data: JSON.parse(v.authData) as unknown, count: await this.store.count(req.userId, v.version), etag: String(v.etag) } };
  }

  async performKeyBackupVersionUpdate(req: PerformKeyBackupVersionUpdateRequest): Promise<KeyBackupResultResponse> {
    const number = parseVersion(req.version);
    const v = number === undefined ? undefined : await this.store.version(req.userId, number);
    if (!v || v.deleted) return { error: 'not_found' };
    if (v.algorithm !== req.algorithm) return { error: 'algorithm_mismatch' };
    await this.store.updateVersion(req.userId, v.version, JSON.stringify(req.authData));
    return {};
  }

  async performKeyBackupVersionDeletion(req: KeyBackupVersionRequest): Promise<KeyBackupResultResponse> {
    const number = parseVersion(req.version);
    if (number === undefined || !(await this.store.deleteVersion(req.userId, number))) return { error: 'not_found' };
    return {};
  }

  private async countAndEtag(userId: string, version: number): Promise<KeyBackupCountResponse> {
    const v = await this.store.version(userId, version);
    return { count: await this.store.count(userId, version), etag: String(v?.etag ?? 0) };
  }

  async performKeyBackupUpload(req: PerformKeyBackupUploadRequest): Promise<KeyBackupCountResponse> {
    const number = parseVersion(req.version);
    const v = number === undefined ? undefined : await this.store.version(req.userId, number);
    if (!v || v.deleted) return { error: 'not_found' };
    const current = await this.store.version(req.userId);
    if (current?.version !== v.version) return { error: 'wrong_version', ...(current ? { currentVersion: String(current.version) } : {}) };

    const better: BackupKeyRow[] = [];
    for (const [roomId, sessions] of Object.entries(req.keys)) {
      const existing = new Map((await this.store.keys(req.userId, v.version, roomId)).map((k) => [k.sessionId, k.key]));
      for (const [sessionId, key] of Object.entries(sessions)) {
        const old = existing.get(sessionId);
        if (old === undefined || isBetterKey(key, old)) better.push({ roomId, sessionId, key });
      }
    }
    await this.store.putKeys(req.userId, v.version, better);
    return this.countAndEtag(req.userId, v.version);
  }

  async queryKeyBackup(req: QueryKeyBackupRequest): Promise<QueryKeyBackupResponse> {
    const number = parseVersion(req.version);
    const v = number === undefined ? undefined : await this.store.version(req.userId, number);
    if (!v || v.deleted) return { error: 'not_found' };
    const keys: BackupKeys = {};
    for (const k of await this.store.keys(req.userId, v.version, req.roomId, req.sessionId)) {
      keys[k.roomId] = { ...keys[k.roomId], [k.sessionId]: k.key };
    }
    return { keys };
  }

  async performKeyBackupDeletion(req: PerformKeyBackupDeletionRequest): Promise<KeyBackupCountResponse> {
    const number = parseVersion(req.version);
    const v = number === undefined ? undefined : await this.store.version(req.userId, number);
    if (!v || v.deleted) return { error: 'not_found' };
    await this.store.deleteKeys(req.userId, v.version, req.roomId, req.sessionId);
    return this.countAndEtag(req.userId, v.version);
  }
}
