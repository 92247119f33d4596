/**
 * Follows other servers' users' device lists (Server-Server API, "Device Management"), as
 * Dendrite's DeviceListUpdater does:
 *
 * - An m.device_list_update whose prev_id is the version we hold (or empty, onto a list at
 *   version 0) is applied to our copy at once. One that refers to an update we never saw
 *   marks the list stale: we may have missed a change, so the whole list is fetched again
 *   (GET /user/devices) in the background; /send never waits for it. Updates older than our
 *   version are ignored; those that arrive while a list is stale are kept (a few per user, in
 *   memory) and applied on top of the fetched list when they follow on from it.
 * - Fetches run per server, one request at a time to each and a few servers at once; a server
 *   that does not answer is left alone for a while (5 s, doubling to an hour). Stale lists
 *   are fetched again after a restart.
 * - We follow a user while one of our users shares a joined room with them (their server
 *   tells us of changes only then): leaving rooms ends it (devicelistrooms.ts), and an hourly
 *   sweep catches what that missed.
 * - Every change applied is announced (OutputKeyChangeEvent) for /sync and /keys/changes.
 *
 * Each user's list is changed under a lock of its own, in this process (the key server runs in
 * one process, monolith or polylith).
 */
import type { Logger } from 'pino';
import type { OutputKeyChangeEvent } from '../api/keys.js';
import type { RemoteDeviceEntry, RemoteDeviceListStore } from '../storage/devicelists.js';
import { parseCrossSigning, parseDeviceListUpdate, parseUserDevices, type DeviceListUpdate } from './devicelistparse.js';

export const deviceListTiming = {
  /** After start-up, before stale lists are fetched again (let the server settle first). */
  startupDelayMs: 5_000,
  /** One GET /user/devices in the background. */
  requestTimeoutMs: 30_000,
  firstBackoffMs: 5_000,
  maxBackoffMs: 60 * 60_000,
  /** How long a server's refusal (4xx, a bad answer) to give a user's list stands. */
  refusalMs: 60 * 60_000,
  cleanupIntervalMs: 60 * 60_000,
  maxServersAtOnce: 4,
  usersPerRound: 50,
};

/** Updates kept per stale list, and stale lists with kept updates. */
const MAX_KEPT_PER_USER = 20;
const MAX_KEPT_USERS = 10_000;

export type RefreshResult = { ok: true } | { ok: false; unreachable: boolean; error: string };

export interface DeviceListUpdaterDeps {
  serverName: string;
  store: RemoteDeviceListStore;
  /** GET /user/devices/{userId} on the user's server. */
  fetchDevices: (userId: string, timeoutMs: number) => Promise<{ body: Record<string, unknown> } | { error: string; unreachable: boolean }>;
  /** Records and publishes a change of a remote user's keys. */
  announce: (change: Omit<OutputKeyChangeEvent, 'offset'>) => Promise<void>;
  /** Whether one of our users shares a joined room with the user. */
  sharesRoom: (userId: string) => Promise<boolean>;
  log: Logger;
}

function serverOf(userId: string): string {
  const i = userId.indexOf(':');
  return i < 0 ? '' : userId.slice(i + 1);
}

/** An update follows on from a list at `streamId` when it names exactly that version (or none, onto version 0). */
function followsOn(prevIds: readonly number[], streamId: number): boolean {
  return prevIds.length === 0 ? streamId === 0 : prevIds.every((p) => p === streamId);
}

function entryOf(u: DeviceListUpdate): RemoteDeviceEntry | { deviceId: string; deleted: true } {
  return u.deleted ? { deviceId: u.deviceId, deleted: true } : { deviceId: u.deviceId, displayName: u.displayName, keyJson: u.keyJson };
}

function sameDevices(a: readonly RemoteDeviceEntry[], b: readonly RemoteDeviceEntry[]): boolean {
  if (a.length !== b.length) return false;
  const byId = new Map(a.map((d) => [d.deviceId, d]));
  return b.every((d) => {
    const o = byId.get(d.deviceId);
    return o !== undefined && o.displayName === d.displayName && o.keyJson === d.keyJson;
  });
}

function sameKeys(a: ReadonlyMap<string, string> | undefined, b: ReadonlyMap<string, string>): boolean {
  return (a?.size ?? 0) === b.size && [...b].every(([k, v]) => a?.get(k) === v);
}

export class DeviceListUpdater {
  private readonly locks = new Map<string, Promise<void>>();
  private readonly inflight = new Map<string, Promise<RefreshResult>>();
  /** Updates that came while a list was stale (or not yet fetched), by user. */
  private readonly kept = new Map<string, DeviceListUpdate[]>();
  private readonly backoff = new Map<string, { until: number; delayMs: number }>();
  private readonly refused = new Map<string, number>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly running = new Set<string>();
  private readonly waiting: string[] = [];
  private readonly again = new Set<string>();
  private readonly loops: NodeJS.Timeout[] = [];
  private stopped = false;

  constructor(private readonly d: DeviceListUpdaterDeps) {}

  /** Fetches stale lists again after a restart, and starts the hourly sweep. */
  start(): void {
    const first = setTimeout(() => {
      void this.d.store.staleServers().then(
        (servers) => servers.forEach((s, i) => this.schedule(s, i * 200)),
        (err: unknown) => this.d.log.warn({ err }, 'device lists: stale lists not loaded'),
      );
      void this.cleanup();
    }, deviceListTiming.startupDelayMs);
    const sweep = setInterval(() => void this.cleanup(), deviceListTiming.cleanupIntervalMs);
    for (const t of [first, sweep]) {
      t.unref();
      this.loops.push(t);
    }
  }

  /** Stops the background work; resolves once fetches under way are done. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of [...this.loops, ...this.timers.values()]) clearTimeout(t);
    this.timers.clear();
    this.waiting.length = 0;
    while (this.inflight.size > 0 || this.running.size > 0) {
      await Promise.all([...this.inflight.values()]);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** True while the server is left alone after failing to answer. */
  inBackoff(serverName: string): boolean {
    return (this.backoff.get(serverName)?.until ?? 0) > Date.now();
  }

  /** True when the user's server recently refused to give their list (ask it with keys/query instead). */
  refusedRecently(userId: string): boolean {
    return (this.refused.get(userId) ?? 0) > Date.now();
  }

  // -------------------------------------------------------------------------------------------
  // Inbound EDUs

  async onDeviceListUpdate(origin: string, content: Record<string, unknown>): Promise<{ error?: string }> {
    const u = parseDeviceListUpdate(content);
    if ('error' in u) {
      // A garbled update of a user we follow may hide a change: fetch the list again.
      const userId = content['user_id'];
      if (typeof userId === 'string' && serverOf(userId) === origin && (await this.d.store.markStale(userId, true))) this.schedule(origin);
      return { error: u.error };
    }
    if (serverOf(u.userId) !== origin || origin === this.d.serverName) return { error: 'not a user of the sending server' };
    let fetchAgain = false;
    await this.locked(u.userId, async () => {
      const state = (await this.d.store.lists([u.userId])).get(u.userId);
      if (!state) {
        // Not followed: our users learn to query them again, and we follow them from now on
        // when they share a room with one of ours (the first query or the fetch gets the list).
        await this.d.announce(this.changeOf(u));
        if (await this.d.sharesRoom(u.userId)) {
          this.keep(u);
          fetchAgain = await this.d.store.track(u.userId, origin);
        }
        return;
      }
      if (state.stale) {
        this.keep(u);
        fetchAgain = true;
        return;
      }
      if (u.streamId <= state.streamId) return;
      if (!followsOn(u.prevIds, state.streamId)) {
        this.d.log.debug({ userId: u.userId, streamId: u.streamId, prevIds: u.prevIds, have: state.streamId }, 'device lists: missed an update, fetching the list again');
        await this.d.store.markStale(u.userId, true);
        this.keep(u);
        fetchAgain = true;
        return;
      }
      const before = (await this.d.store.devices([u.userId])).find((x) => x.deviceId === u.deviceId);
      await this.d.store.applyUpdate(u.userId, u.streamId, entryOf(u));
      const unchanged = u.deleted ? before === undefined : before !== undefined && before.displayName === u.displayName && before.keyJson === u.keyJson;
      if (!unchanged) await this.d.announce(this.changeOf(u));
    });
    if (fetchAgain) this.schedule(origin);
    return {};
  }

  async onSigningKeyUpdate(origin: string, content: Record<string, unknown>): Promise<{ error?: string }> {
    const userId = content['user_id'];
    if (typeof userId !== 'string' || serverOf(userId) !== origin || origin === this.d.serverName) return { error: 'not a user of the sending server' };
    const keys = parseCrossSigning(userId, content);
    if (keys.size === 0) return { error: 'no usable master or self-signing key' };
    await this.locked(userId, async () => {
      if ((await this.d.store.lists([userId])).has(userId)) {
        const old = (await this.d.store.crossSigningKeys([userId])).get(userId);
        if ([...keys].every(([type, json]) => old?.get(type) === json)) return;
        await this.d.store.putCrossSigningKeys(userId, keys);
      }
      const master = keys.get('master');
      const self = keys.get('self_signing');
      await this.d.announce({
        type: 'cross_signing',
        user_id: userId,
        ...(master !== undefined ? { master_key: JSON.parse(master) as Record<string, unknown> } : {}),
        ...(self !== undefined ? { self_signing_key: JSON.parse(self) as Record<string, unknown> } : {}),
      });
    });
    return {};
  }

  private changeOf(u: DeviceListUpdate): Omit<OutputKeyChangeEvent, 'offset'> {
    return {
      type: 'device_keys',
      user_id: u.userId,
      device_id: u.deviceId,
      ...(u.deleted ? { deleted: true } : { display_name: u.displayName }),
      ...(u.keyJson !== null ? { keys: JSON.parse(u.keyJson) as Record<string, unknown> } : {}),
    };
  }

  private keep(u: DeviceListUpdate): void {
    let list = this.kept.get(u.userId);
    if (!list) {
      if (this.kept.size >= MAX_KEPT_USERS) this.kept.delete(this.kept.keys().next().value!);
      this.kept.set(u.userId, (list = []));
    }
    list.push(u);
    if (list.length > MAX_KEPT_PER_USER) list.shift();
  }

  // -------------------------------------------------------------------------------------------
  // Fetching whole lists

  /**
   * Fetches the user's list from their server and keeps it (one fetch per user at a time:
   * callers share it). Starts following the user if we did not.
   */
  refresh(userId: string, timeoutMs = deviceListTiming.requestTimeoutMs): Promise<RefreshResult> {
    const running = this.inflight.get(userId);
    if (running) return running;
    const p = this.fetchAndStore(userId, timeoutMs)
      .catch((err: unknown): RefreshResult => ({ ok: false, unreachable: false, error: err instanceof Error ? err.message : String(err) }))
      .finally(() => this.inflight.delete(userId));
    this.inflight.set(userId, p);
    return p;
  }

  /** Marks the list stale and fetches it (admin refreshDevices); waits at most `waitMs` for it. */
  async refreshNow(userId: string, waitMs: number): Promise<void> {
    const server = serverOf(userId);
    this.refused.delete(userId);
    await this.locked(userId, async () => {
      if (!(await this.d.store.markStale(userId, true))) await this.d.store.track(userId, server);
    });
    const done = this.refresh(userId).then((r) => {
      if (!r.ok) this.schedule(server);
    });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([done, new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs)))]);
    clearTimeout(timer);
  }

  /** Follows a user whose list could not be fetched now: the background tries again. */
  async trackStale(userId: string): Promise<void> {
    const server = serverOf(userId);
    if (await this.d.store.track(userId, server)) this.schedule(server);
  }

  private async fetchAndStore(userId: string, timeoutMs: number): Promise<RefreshResult> {
    const server = serverOf(userId);
    const got = await this.d.fetchDevices(userId, timeoutMs);
    if ('error' in got) {
      if (got.unreachable) this.failed(server);
      else this.refuse(userId);
      return { ok: false, unreachable: got.unreachable, error: got.error };
    }
    const list = parseUserDevices(userId, got.body);
    if ('error' in list) {
      this.refuse(userId);
      return { ok: false, unreachable: false, error: list.error };
    }
    this.backoff.delete(server);
    let fetchAgain = false;
    await this.locked(userId, async () => {
      const [before, beforeKeys] = await Promise.all([this.d.store.devices([userId]), this.d.store.crossSigningKeys([userId])]);
      // Updates that came meanwhile go on top when they follow on; one that is newer but does
      // not means the answer was already behind: fetch once more.
      let streamId = list.streamId;
      const after = new Map(list.devices.map((d) => [d.deviceId, d]));
      const kept = (this.kept.get(userId) ?? []).sort((a, b) => a.streamId - b.streamId);
      this.kept.delete(userId);
      for (const u of kept) {
        if (u.streamId <= streamId) continue;
        if (!followsOn(u.prevIds, streamId)) {
          fetchAgain = true;
          break;
        }
        if (u.deleted) after.delete(u.deviceId);
        else after.set(u.deviceId, { deviceId: u.deviceId, displayName: u.displayName, keyJson: u.keyJson });
        streamId = u.streamId;
      }
      await this.d.store.replaceList(userId, server, streamId, [...after.values()], list.crossSigning, fetchAgain);
      if (!sameDevices(before, [...after.values()])) await this.d.announce({ type: 'device_keys', user_id: userId });
      if (!sameKeys(beforeKeys.get(userId), list.crossSigning)) {
        const master = list.crossSigning.get('master');
        const self = list.crossSigning.get('self_signing');
        await this.d.announce({
          type: 'cross_signing',
          user_id: userId,
          ...(master !== undefined ? { master_key: JSON.parse(master) as Record<string, unknown> } : {}),
          ...(self !== undefined ? { self_signing_key: JSON.parse(self) as Record<string, unknown> } : {}),
        });
      }
    });
    if (fetchAgain) this.schedule(server);
    return { ok: true };
  }

  private failed(server: string): void {
    const prev = this.backoff.get(server);
    const delayMs = prev ? Math.min(prev.delayMs * 2, deviceListTiming.maxBackoffMs) : deviceListTiming.firstBackoffMs;
    this.backoff.set(server, { until: Date.now() + delayMs, delayMs });
  }

  /** The server will not give this user's list: stop following it (queries ask with keys/query). */
  private refuse(userId: string): void {
    this.refused.set(userId, Date.now() + deviceListTiming.refusalMs);
    if (this.refused.size > MAX_KEPT_USERS) this.refused.delete(this.refused.keys().next().value!);
    void this.d.store.untrack([userId]).catch((err: unknown) => this.d.log.warn({ err, userId }, 'device lists: not dropped'));
  }

  // -------------------------------------------------------------------------------------------
  // The background queue: one request at a time per server, a few servers at once

  /** Fetches the server's stale lists, after `delayMs` or the server's backoff. */
  schedule(server: string, delayMs = 0): void {
    if (this.stopped) return;
    if (this.running.has(server)) {
      this.again.add(server);
      return;
    }
    if (this.timers.has(server) || this.waiting.includes(server)) return;
    const wait = Math.max(delayMs, (this.backoff.get(server)?.until ?? 0) - Date.now());
    const t = setTimeout(() => {
      this.timers.delete(server);
      this.enqueue(server);
    }, wait);
    t.unref();
    this.timers.set(server, t);
  }

  private enqueue(server: string): void {
    if (this.stopped) return;
    if (this.running.size >= deviceListTiming.maxServersAtOnce) {
      if (!this.waiting.includes(server)) this.waiting.push(server);
      return;
    }
    void this.runServer(server);
  }

  private async runServer(server: string): Promise<void> {
    this.running.add(server);
    let more = false;
    try {
      const users = await this.d.store.staleUsers(server, deviceListTiming.usersPerRound);
      let failed = false;
      for (const userId of users) {
        if (this.stopped) break;
        const r = await this.refresh(userId);
        // A server that does not answer is left for later; a refused user is dropped.
        if (!r.ok && r.unreachable) {
          failed = true;
          break;
        }
      }
      if (failed) this.again.add(server);
      else more = users.length === deviceListTiming.usersPerRound;
    } catch (err) {
      this.d.log.warn({ err, server }, 'device lists: fetching stale lists failed');
      this.failed(server);
      this.again.add(server);
    } finally {
      this.running.delete(server);
      if (this.again.delete(server) || more) this.schedule(server);
      const next = this.waiting.shift();
      if (next !== undefined) this.enqueue(next);
    }
  }

  /** Stops following users no one of ours shares a room with. */
  private async cleanup(): Promise<void> {
    if (this.stopped) return;
    try {
      let after = '';
      for (;;) {
        const page = await this.d.store.trackedUsers(after, 200);
        if (page.length === 0) break;
        const gone: string[] = [];
        for (const userId of page) if (!(await this.d.sharesRoom(userId))) gone.push(userId);
        await this.d.store.untrack(gone);
        after = page[page.length - 1]!;
      }
    } catch (err) {
      this.d.log.warn({ err }, 'device lists: sweep failed');
    }
  }

  private async locked<T>(userId: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(userId) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const chained = prev.then(() => mine);
    this.locks.set(userId, chained);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.locks.get(userId) === chained) this.locks.delete(userId);
    }
  }
}

