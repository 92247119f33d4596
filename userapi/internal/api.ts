import { randomBytes } from 'node:crypto';
import bcrypt from 'bcrypt';
import type { ComponentStatus, EmptyRequest } from '../../internal/componentapi.js';
import {
  LOCALPART_PATTERN,
  REGISTRATION_TOKEN_PATTERN,
  type PerformLoginTokenCreationRequest,
  type PerformLoginTokenCreationResponse,
  type PerformLoginTokenUseRequest,
  type PerformLoginTokenUseResponse,
  type RegistrationToken,
  type PerformRegistrationTokenCreationRequest,
  type PerformRegistrationTokenCreationResponse,
  type QueryRegistrationTokensRequest,
  type QueryRegistrationTokensResponse,
  type RegistrationTokenRequest,
  type RegistrationTokenResponse,
  type PerformRegistrationTokenUpdateRequest,
  type RegistrationTokenUseResponse,
  type PerformAccountCreationRequest,
  type PerformAccountCreationResponse,
  type PerformDeviceCreationRequest,
  type PerformDeviceCreationResponse,
  type PerformDeviceDeletionRequest,
  type PerformDeviceDeletionResponse,
  type PerformDeviceUpdateRequest,
  type PerformFilterCreationRequest,
  type PerformPasswordUpdateRequest,
  type PerformAccountDeactivationRequest,
  type OutputClientData,
  type PerformOpenIDTokenCreationRequest,
  type PerformOpenIDTokenCreationResponse,
  type QueryOpenIDTokenRequest,
  type QueryOpenIDTokenResponse,
  type PerformAccountDataUpdateRequest,
  type PerformAccountDataUpdateResponse,
  type QueryAccountDataRequest,
  type QueryAccountDataResponse,
  type PerformAccountDeactivationResponse,
  type PerformPasswordUpdateResponse,
  type PerformFilterCreationResponse,
  type QueryFilterRequest,
  type QueryFilterResponse,
  type PerformDeviceUpdateResponse,
  type PerformProfileUpdateRequest,
  type PerformProfileUpdateResponse,
  type QueryDevicesRequest,
  type QueryDevicesResponse,
  type QueryProfileRequest,
  type QueryProfileResponse,
  type QuerySearchProfilesRequest,
  type QuerySearchProfilesResponse,
  type PerformPasswordCheckRequest,
  type PerformPasswordCheckResponse,
  type QueryAccessTokenRequest,
  type QueryAccessTokenResponse,
  type PerformTokenRefreshRequest,
  type PerformTokenRefreshResponse,
  type QueryAccountAvailabilityRequest,
  type PerformGuestUpgradeRequest,
  type QueryGuestsRequest,
  type QueryGuestsResponse,
  type PerformGuestUpgradeResponse,
  type QueryAccountAvailabilityResponse,
  type UserInternalAPI,
  type KeyServerAPI,
  type KeyBackupAPI,
  type PushAPI,
  type ThreePidAPI,
} from '../api/index.js';
import { RegistrationTokenStore, isUsable, type RegistrationTokenRow } from '../storage/registrationtokens.js';
import type { UserStore } from '../storage/userstore.js';
import { hashAccessToken, newAccessToken, newDeviceId, newLoginToken, newRefreshToken } from './tokens.js';

const LAST_SEEN_RESOLUTION_MS = 60_000;

function tokenJson(t: RegistrationTokenRow): RegistrationToken {
  return { token: t.token, uses_allowed: t.usesAllowed, pending: t.pending, completed: t.completed, expiry_time: t.expiryTime };
}

function newRegistrationToken(length: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  let out = '';
  for (const b of randomBytes(length)) out += alphabet[b % alphabet.length];
  return out;
}

/** What the key server must hear about device changes made here. */
export interface DeviceHooks {
  /** A new device (a login): the user's device list changed. */
  deviceCreated?(userId: string, deviceId: string, displayName: string | null): Promise<void>;
  /** Devices went (logout, deletion, password change, deactivation): `removed` are those that did. */
  devicesRemoved(userId: string, remainingDeviceIds: readonly string[], removedDeviceIds: readonly string[]): Promise<void>;
  deviceRenamed(userId: string, deviceId: string, displayName: string | null): Promise<void>;
}
const noDeviceHooks: DeviceHooks = { devicesRemoved: async () => {}, deviceRenamed: async () => {} };

/** Everything but the key server (internal/keys.ts), which userapi.ts joins to it. */
export class UserInternalAPIImpl implements Omit<UserInternalAPI, keyof KeyServerAPI | keyof KeyBackupAPI | keyof PushAPI | keyof ThreePidAPI> {
  private readonly startedAt = Date.now();
  /** Checked against when an account does not exist, so that its absence does not answer faster. */
  private dummyHash: Promise<string> | undefined;

  constructor(
    private readonly serverName: string,
    private readonly store: UserStore,
    private readonly bcryptCost: number,
    /** Tells syncapi about account data changes (OutputClientData). */
    private readonly publishClientData: (msg: OutputClientData) => Promise<void>,
    private readonly openIDTokenLifetimeMs: number = 3_600_000,
    private readonly deviceHooks: DeviceHooks = noDeviceHooks,
    private readonly refreshableTokenLifetimeMs: number = 300_000,
  ) {
    this.registrationTokens = new RegistrationTokenStore(store.database);
  }

  private readonly registrationTokens: RegistrationTokenStore;

  private async deviceIds(localpart: string): Promise<string[]> {
    return (await this.store.devices(localpart)).map((d) => d.deviceId);
  }

  /** Tells the key server which devices went (of those there were `before`) and which remain. */
  private async devicesRemoved(localpart: string, before: readonly string[]): Promise<void> {
    const remaining = await this.deviceIds(localpart);
    const left = new Set(remaining);
    await this.deviceHooks.devicesRemoved(this.userId(localpart), remaining, before.filter((d) => !left.has(d)));
  }

  private userId(localpart: string): string {
    return `@${localpart}:${this.serverName}`;
  }

  private localpartOf(userId: string): string | undefined {
    const m = /^@([^:]+):(.+)$/.exec(userId);
    return m && m[2] === this.serverName ? m[1] : undefined;
  }

  async queryComponentStatus(_req: EmptyRequest): Promise<ComponentStatus> {
    return { component: 'userapi', serverName: this.serverName, pid: process.pid, startedAt: this.startedAt };
  }

  private validLocalpart(localpart: string): string | undefined {
    if (!LOCALPART_PATTERN.test(localpart)) return 'User ID can only contain characters a-z, 0-9, or ._=-/+';
    if (localpart.startsWith('_')) return 'User ID may not begin with _';
    if (this.userId(localpart).length > 255) return 'User ID is longer than 255 characters';
    return undefined;
  }

  async performAccountCreation(req: PerformAccountCreationRequest): Promise<PerformAccountCreationResponse> {
    const problem = this.validLocalpart(req.localpart);
    if (problem) return { created: false, error: 'invalid_username', message: problem };
    const hash = req.password === undefined ? null : await bcrypt.hash(req.password, this.bcryptCost);
    const created = await this.store.createAccount(req.localpart, hash, { isGuest: req.isGuest ?? false, isAdmin: req.isAdmin ?? false }, Date.now());
    if (!created) return { created: false, error: 'user_in_use', message: 'Desired user ID is already taken.' };
    return { created: true, userId: this.userId(req.localpart) };
  }

  async queryGuests(req: QueryGuestsRequest): Promise<QueryGuestsResponse> {
    const byLocalpart = new Map<string, string>();
    for (const u of req.userIds) {
      const l = this.localpartOf(u);
      if (l) byLocalpart.set(l, u);
    }
    return { guests: (await this.store.guests([...byLocalpart.keys()])).map((l) => byLocalpart.get(l)!) };
  }

  async performGuestUpgrade(req: PerformGuestUpgradeRequest): Promise<PerformGuestUpgradeResponse> {
    const hash = req.password === undefined ? null : await bcrypt.hash(req.password, this.bcryptCost);
    return { upgraded: await this.store.upgradeGuest(req.localpart, hash) };
  }

  async queryAccountAvailability(req: QueryAccountAvailabilityRequest): Promise<QueryAccountAvailabilityResponse> {
    return { available: (await this.store.account(req.localpart)) === undefined };
  }

  async performPasswordCheck(req: PerformPasswordCheckRequest): Promise<PerformPasswordCheckResponse> {
    const account = await this.store.account(req.localpart);
    const usable = account !== undefined && !account.deactivated && account.passwordHash !== null;
    this.dummyHash ??= bcrypt.hash(newAccessToken(), this.bcryptCost);
    const hash = usable ? account.passwordHash! : await this.dummyHash;
    const matches = await bcrypt.compare(req.password, hash);
    return { ok: usable && matches };
  }

  async performDeviceCreation(req: PerformDeviceCreationRequest): Promise<PerformDeviceCreationResponse> {
    const deviceId = req.deviceId ?? newDeviceId();
    const accessToken = newAccessToken();
    const now = Date.now();
    const refreshToken = req.refreshable ? newRefreshToken() : undefined;
    await this.store.upsertDevice({
      ...(refreshToken !== undefined ? { refreshTokenHash: hashAccessToken(refreshToken), accessTokenExpiresTs: now + this.refreshableTokenLifetimeMs } : {}),
      localpart: req.localpart,
      deviceId,
      tokenHash: hashAccessToken(accessToken),
      displayName: req.displayName ?? null,
      now: Date.now(),
      ip: req.ip ?? null,
      userAgent: req.userAgent ?? null,
    });
    const device = { userId: this.userId(req.localpart), deviceId, displayName: req.displayName ?? null };
    await this.deviceHooks.deviceCreated?.(device.userId, deviceId, device.displayName);
    return refreshToken !== undefined ? { device, accessToken, refreshToken, expiresInMs: this.refreshableTokenLifetimeMs } : { device, accessToken };
  }

  async queryAccessToken(req: QueryAccessTokenRequest): Promise<QueryAccessTokenResponse> {
    const d = await this.store.deviceByTokenHash(hashAccessToken(req.accessToken));
    if (!d) return {};
    if (d.accessTokenExpiresTs !== null && Date.now() >= d.accessTokenExpiresTs) return { expired: true };
    if (d.hasPrevRefreshToken) await this.store.forgetPrevRefreshToken(d.localpart, d.deviceId);
    // Last seen is kept to the minute: a write per request would cost more than the request.
    const now = Date.now();
    const moved = (req.ip !== undefined && req.ip !== d.lastSeenIp) || (req.userAgent !== undefined && req.userAgent !== d.lastSeenUserAgent);
    if (now - d.lastSeenTs >= LAST_SEEN_RESOLUTION_MS || moved) {
      await this.store.touchDevice(d.localpart, d.deviceId, now, req.ip ?? d.lastSeenIp, req.userAgent);
    }
    return { device: { userId: this.userId(d.localpart), deviceId: d.deviceId, displayName: d.displayName, isGuest: d.isGuest, isAdmin: d.isAdmin } };
  }

  async performLoginTokenCreation(req: PerformLoginTokenCreationRequest): Promise<PerformLoginTokenCreationResponse> {
    const localpart = this.localpartOf(req.userId);
    if (!localpart) throw new Error(`${req.userId} is not a local user`);
    const token = newLoginToken();
    await this.store.putLoginToken(hashAccessToken(token), localpart, Date.now() + req.lifetimeMs);
    return { token };
  }

  async performLoginTokenUse(req: PerformLoginTokenUseRequest): Promise<PerformLoginTokenUseResponse> {
    const localpart = await this.store.takeLoginToken(hashAccessToken(req.token), Date.now());
    if (localpart === undefined) return {};
    const account = await this.store.account(localpart);
    return account && !account.deactivated ? { localpart } : {};
  }

  // -------------------------------------------------------------------------------------------
  // Registration tokens

  async performRegistrationTokenCreation(req: PerformRegistrationTokenCreationRequest): Promise<PerformRegistrationTokenCreationResponse> {
    const token = req.token ?? newRegistrationToken(req.length ?? 16);
    if (!REGISTRATION_TOKEN_PATTERN.test(token)) return { error: 'invalid', message: 'token must be 1-64 characters of [A-Za-z0-9._~-]' };
    if (!(await this.registrationTokens.create(token, req.usesAllowed, req.expiryTime))) return { error: 'exists', message: `token ${token} already exists` };
    return { created: tokenJson((await this.registrationTokens.get(token))!) };
  }

  async queryRegistrationTokens(req: QueryRegistrationTokensRequest): Promise<QueryRegistrationTokensResponse> {
    return { tokens: (await this.registrationTokens.list(req.valid, Date.now())).map(tokenJson) };
  }

  async queryRegistrationToken(req: RegistrationTokenRequest): Promise<RegistrationTokenResponse> {
    const t = await this.registrationTokens.get(req.token);
    return t ? { token: tokenJson(t) } : {};
  }

  async performRegistrationTokenUpdate(req: PerformRegistrationTokenUpdateRequest): Promise<RegistrationTokenResponse> {
    const t = await this.registrationTokens.update(req.token, {
      ...(req.usesAllowed !== undefined ? { usesAllowed: req.usesAllowed } : {}),
      ...(req.expiryTime !== undefined ? { expiryTime: req.expiryTime } : {}),
    });
    return t ? { token: tokenJson(t) } : {};
  }

  async performRegistrationTokenDeletion(req: RegistrationTokenRequest): Promise<RegistrationTokenUseResponse> {
    return { ok: await this.registrationTokens.delete(req.token) };
  }

  async performRegistrationTokenUse(req: RegistrationTokenRequest): Promise<RegistrationTokenUseResponse> {
    return { ok: await this.registrationTokens.use(req.token, Date.now()) };
  }

  async queryRegistrationTokenValidity(req: RegistrationTokenRequest): Promise<RegistrationTokenUseResponse> {
    const t = await this.registrationTokens.get(req.token);
    return { ok: t !== undefined && isUsable(t, Date.now()) };
  }

  async performTokenRefresh(req: PerformTokenRefreshRequest): Promise<PerformTokenRefreshResponse> {
    const accessToken = newAccessToken();
    const refreshToken = newRefreshToken();
    const d = await this.store.refreshTokens(hashAccessToken(req.refreshToken), {
      accessHash: hashAccessToken(accessToken),
      refreshHash: hashAccessToken(refreshToken),
      expiresTs: Date.now() + this.refreshableTokenLifetimeMs,
    });
    return d ? { refreshed: true, accessToken, refreshToken, expiresInMs: this.refreshableTokenLifetimeMs } : { refreshed: false };
  }

  async performDeviceDeletion(req: PerformDeviceDeletionRequest): Promise<PerformDeviceDeletionResponse> {
    const localpart = this.localpartOf(req.userId);
    if (!localpart) return { deleted: 0 };
    const before = await this.deviceIds(localpart);
    if (req.deviceIds === undefined) {
      const deleted = await this.store.deleteAllDevices(localpart);
      await this.devicesRemoved(localpart, before);
      return { deleted };
    }
    for (const id of req.deviceIds) await this.store.deleteDevice(localpart, id);
    await this.devicesRemoved(localpart, before);
    return { deleted: req.deviceIds.length };
  }

  async queryDevices(req: QueryDevicesRequest): Promise<QueryDevicesResponse> {
    const localpart = this.localpartOf(req.userId);
    if (!localpart) return { devices: [] };
    const rows = await this.store.devices(localpart);
    return {
      devices: rows.map((d) => ({ userId: req.userId, deviceId: d.deviceId, displayName: d.displayName, lastSeenTs: d.lastSeenTs, lastSeenIp: d.lastSeenIp, lastSeenUserAgent: d.lastSeenUserAgent ?? null })),
    };
  }

  async performDeviceUpdate(req: PerformDeviceUpdateRequest): Promise<PerformDeviceUpdateResponse> {
    const localpart = this.localpartOf(req.userId);
    const found = localpart !== undefined && (await this.store.updateDeviceName(localpart, req.deviceId, req.displayName));
    if (found) await this.deviceHooks.deviceRenamed(req.userId, req.deviceId, req.displayName);
    return { found };
  }

  async queryProfile(req: QueryProfileRequest): Promise<QueryProfileResponse> {
    const localpart = this.localpartOf(req.userId);
    const profile = localpart === undefined ? undefined : await this.store.profile(localpart);
    return profile ? { profile } : {};
  }

  async querySearchProfiles(req: QuerySearchProfilesRequest): Promise<QuerySearchProfilesResponse> {
    const rows = await this.store.searchProfiles(req.searchTerm, req.limit);
    return { profiles: rows.map((r) => ({ userId: this.userId(r.localpart), displayName: r.displayName, avatarUrl: r.avatarUrl })) };
  }

  async performProfileUpdate(req: PerformProfileUpdateRequest): Promise<PerformProfileUpdateResponse> {
    const localpart = this.localpartOf(req.userId);
    if (!localpart) return { updated: false };
    const fields = {
      ...(req.displayName !== undefined ? { displayName: req.displayName } : {}),
      ...(req.avatarUrl !== undefined ? { avatarUrl: req.avatarUrl } : {}),
    };
    return { updated: await this.store.updateProfile(localpart, fields) };
  }

  async performFilterCreation(req: PerformFilterCreationRequest): Promise<PerformFilterCreationResponse> {
    const localpart = this.localpartOf(req.userId);
    if (!localpart) throw Object.assign(new Error(`${req.userId} is not a local user`), { code: 'forbidden' });
    return { filterId: String(await this.store.putFilter(localpart, JSON.stringify(req.filter))) };
  }

  async queryFilter(req: QueryFilterRequest): Promise<QueryFilterResponse> {
    const localpart = this.localpartOf(req.userId);
    if (!localpart || !/^\d{1,15}$/.test(req.filterId)) return {};
    const text = await this.store.filter(localpart, Number(req.filterId));
    return text === undefined ? {} : { filter: JSON.parse(text) as Record<string, unknown> };
  }

  async performPasswordUpdate(req: PerformPasswordUpdateRequest): Promise<PerformPasswordUpdateResponse> {
    const localpart = this.localpartOf(req.userId);
    if (!localpart) return { updated: false };
    const updated = await this.store.setPasswordHash(localpart, await bcrypt.hash(req.password, this.bcryptCost));
    if (updated && req.logoutDevices) {
      const before = await this.deviceIds(localpart);
      await this.store.deleteDevicesExcept(localpart, req.exceptDeviceId);
      await this.devicesRemoved(localpart, before);
    }
    return { updated };
  }

  /** The account stays (its ID may never be reused) but can no longer log in. Leaving rooms is roomserver's part (#4). */
  async performAccountDeactivation(req: PerformAccountDeactivationRequest): Promise<PerformAccountDeactivationResponse> {
    const localpart = this.localpartOf(req.userId);
    const before = localpart === undefined ? [] : await this.deviceIds(localpart);
    const deactivated = localpart !== undefined && (await this.store.deactivate(localpart));
    if (deactivated) {
      await this.devicesRemoved(localpart!, before);
      if (req.erase) await this.store.updateProfile(localpart!, { displayName: null, avatarUrl: null });
    }
    return { deactivated };
  }

  async performAccountDataUpdate(req: PerformAccountDataUpdateRequest): Promise<PerformAccountDataUpdateResponse> {
    const localpart = this.localpartOf(req.userId);
    if (!localpart) return { updated: false };
    const roomId = req.roomId ?? '';
    await this.store.putAccountData(localpart, roomId, req.type, JSON.stringify(req.content));
    await this.publishClientData({ user_id: req.userId, room_id: roomId, type: req.type });
    return { updated: true };
  }

  async queryAccountData(req: QueryAccountDataRequest): Promise<QueryAccountDataResponse> {
    const localpart = this.localpartOf(req.userId);
    if (!localpart) return {};
    const text = await this.store.accountData(localpart, req.roomId ?? '', req.type);
    return text === undefined ? {} : { content: JSON.parse(text) as Record<string, unknown> };
  }

  async performOpenIDTokenCreation(req: PerformOpenIDTokenCreationRequest): Promise<PerformOpenIDTokenCreationResponse> {
    const localpart = this.localpartOf(req.userId);
    if (!localpart) throw Object.assign(new Error(`${req.userId} is not a local user`), { code: 'forbidden' });
    const token = newAccessToken();
    await this.store.putOpenIDToken(hashAccessToken(token), localpart, Date.now() + this.openIDTokenLifetimeMs);
    return { token, expiresInMs: this.openIDTokenLifetimeMs };
  }

  async queryOpenIDToken(req: QueryOpenIDTokenRequest): Promise<QueryOpenIDTokenResponse> {
    const t = await this.store.openIDToken(hashAccessToken(req.token));
    return t && t.expiresTs > Date.now() ? { userId: this.userId(t.localpart) } : {};
  }
}
