/**
 * keys/query for other servers' users, from the device lists we follow:
 *
 * - a followed, fresh list answers at once, without asking anyone;
 * - a stale list, or a user we do not follow yet but who shares a room with one of ours, is
 *   fetched first (GET /user/devices, kept and followed from then on);
 * - when their server does not answer, a list we had is answered as it was (no failure);
 *   with nothing to answer from, the server is in `failures`;
 * - everyone else (no shared room, a server that will not give the list, more users than one
 *   query fetches) is left for the caller to ask with keys/query, as before.
 */
import type { KeyObject, QueryKeysResponse } from '../api/keys.js';
import type { RemoteDeviceListState, RemoteDeviceListStore } from '../storage/devicelists.js';
import type { DeviceListUpdater, RefreshResult } from './devicelist.js';

/** Lists fetched for one query at most, and at once. */
const MAX_FETCHES_PER_QUERY = 20;
const FETCHES_AT_ONCE = 8;

export interface RemoteKeyCacheDeps {
  store: RemoteDeviceListStore;
  updater: Pick<DeviceListUpdater, 'refresh' | 'inBackoff' | 'refusedRecently' | 'trackStale'>;
  sharesRoom: (userId: string) => Promise<boolean>;
}

export interface RemoteAnswer {
  /** Users to ask their server about with keys/query: user -> device IDs. */
  ask: Record<string, string[]>;
  /** Set when the server did not answer and some user had nothing to answer from. */
  failure?: string;
}

async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export class RemoteKeyCache {
  constructor(private readonly d: RemoteKeyCacheDeps) {}

  /** Answers what it can about the users of `server` into `out`. */
  async answer(server: string, userToDevices: Record<string, string[]>, timeoutMs: number, out: QueryKeysResponse): Promise<RemoteAnswer> {
    const users = Object.keys(userToDevices);
    const lists = await this.d.store.lists(users);
    const serve: string[] = [];
    const ask: Record<string, string[]> = {};
    const toFetch: string[] = [];
    let failure: string | undefined;
    const backingOff = this.d.updater.inBackoff(server);
    const hasCopy = (s: RemoteDeviceListState | undefined): boolean => s?.fetched === true;

    const candidates: string[] = [];
    for (const u of users) {
      const state = lists.get(u);
      if (state && !state.stale) serve.push(u);
      else if (backingOff) {
        // The server is not answering: what we had, or a failure.
        if (hasCopy(state)) serve.push(u);
        else failure = `${server} is not answering; trying again later`;
      } else if (state) toFetch.push(u);
      else if (this.d.updater.refusedRecently(u)) ask[u] = userToDevices[u]!;
      else candidates.push(u);
    }
    // Users we do not follow: only those sharing a room with one of ours are worth following.
    await eachLimited(candidates, FETCHES_AT_ONCE, async (u) => {
      if (await this.d.sharesRoom(u)) toFetch.push(u);
      else ask[u] = userToDevices[u]!;
    });
    // One query fetches a bounded number of lists; the rest are answered as they are or asked.
    for (const u of toFetch.splice(MAX_FETCHES_PER_QUERY)) {
      if (hasCopy(lists.get(u))) serve.push(u);
      else ask[u] = userToDevices[u]!;
    }

    const results = new Map<string, RefreshResult>();
    await eachLimited(toFetch, FETCHES_AT_ONCE, async (u) => {
      results.set(u, await this.d.updater.refresh(u, timeoutMs));
    });
    for (const [u, r] of results) {
      if (r.ok) serve.push(u);
      else if (r.unreachable) {
        if (hasCopy(lists.get(u))) serve.push(u);
        else failure = r.error;
        // Followed from now on: the background fetches the list when the server is back.
        if (!lists.has(u)) await this.d.updater.trackStale(u);
      } else ask[u] = userToDevices[u]!;
    }

    if (serve.length > 0) await this.fromCopy(serve, userToDevices, out);
    return { ask, ...(failure !== undefined ? { failure } : {}) };
  }

  private async fromCopy(users: readonly string[], userToDevices: Record<string, string[]>, out: QueryKeysResponse): Promise<void> {
    const [devices, crossSigning] = await Promise.all([this.d.store.devices(users), this.d.store.crossSigningKeys(users)]);
    for (const u of users) out.deviceKeys[u] = {};
    for (const dev of devices) {
      if (dev.keyJson === null) continue;
      const wanted = userToDevices[dev.userId] ?? [];
      if (wanted.length > 0 && !wanted.includes(dev.deviceId)) continue;
      const key = JSON.parse(dev.keyJson) as KeyObject;
      out.deviceKeys[dev.userId]![dev.deviceId] = dev.displayName !== null ? { ...key, unsigned: { device_display_name: dev.displayName } } : key;
    }
    for (const [u, keys] of crossSigning) {
      const master = keys.get('master');
      const self = keys.get('self_signing');
      if (master !== undefined) out.masterKeys[u] = JSON.parse(master) as KeyObject;
      if (self !== undefined) out.selfSigningKeys[u] = JSON.parse(self) as KeyObject;
    }
  }
}
