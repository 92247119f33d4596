/**
 * Presence as syncapi keeps it: a user's state, status message and last activity. Writes go
 * to syncapi's table (so a read right after a write sees it), wake the user's room-mates'
 * syncs, and are published on OutputPresenceEvent for the other components (federation).
 * When outbound presence is disabled in the config, writes are accepted and dropped, and every
 * user reads as offline, as Dendrite does.
 */
import type { JsonObject } from '../../internal/matrix/index.js';
import type { OutputPresenceEvent } from '../api/index.js';
import { roomMates } from '../consumers/ephemeral.js';
import type { EphemeralStore, Presence } from '../storage/ephemeral.js';
import type { SyncStore } from '../storage/syncstore.js';
import type { Notifier } from './notifier.js';

export type PresenceState = OutputPresenceEvent['presence'];
export const PRESENCE_STATES: readonly PresenceState[] = ['online', 'offline', 'unavailable'];

/** A user counts as currently active for this long after their last activity while online. */
const CURRENTLY_ACTIVE_MS = 60_000;
/** Syncing marks a user online; while they stay online, at most this often is it written. */
const SYNC_REFRESH_MS = 60_000;

export class PresenceService {
  constructor(
    private readonly deps: {
      enabled: boolean;
      store: SyncStore;
      ephemeral: EphemeralStore;
      notifier: Notifier;
      publish: (e: OutputPresenceEvent) => Promise<void>;
    },
  ) {}

  get enabled(): boolean {
    return this.deps.enabled;
  }

  /**
   * `wake`: whether room-mates' waiting syncs are woken for it. A refresh that changes only the
   * last-active time wakes no one: it goes out with their next sync (with 1,000 long-polling
   * devices, waking them for every user's refresh each minute was most of the server's work).
   */
  async set(userId: string, presence: PresenceState, statusMsg: string | null | undefined, wake = true): Promise<void> {
    if (!this.deps.enabled) return;
    const known = await this.deps.ephemeral.presence(userId);
    // An absent status message keeps the one set before.
    const msg = statusMsg === undefined ? (known?.statusMsg ?? null) : statusMsg;
    const now = Date.now();
    const pos = await this.deps.ephemeral.setPresence({ userId, presence, statusMsg: msg, lastActiveTs: now });
    this.deps.notifier.advance('presence', pos, wake ? await roomMates(this.deps.store, userId) : []);
    await this.deps.publish({ user_id: userId, presence, ...(msg !== null ? { status_msg: msg } : {}), last_active_ts: now });
  }

  /** What a /sync with `set_presence` does: mark the user so, unless nothing would change. */
  async touchFromSync(userId: string, presence: PresenceState): Promise<void> {
    if (!this.deps.enabled || presence === 'offline') return;
    const known = await this.deps.ephemeral.presence(userId);
    if (known && known.presence === presence && Date.now() - known.lastActiveTs < SYNC_REFRESH_MS) return;
    await this.set(userId, presence, undefined, !(known && known.presence === presence));
  }

  /** The content of a user's m.presence event, or the GET /presence answer. */
  async content(userId: string): Promise<JsonObject> {
    const p = this.deps.enabled ? await this.deps.ephemeral.presence(userId) : undefined;
    return p ? presenceContent(p) : { presence: 'offline' };
  }
}

export function presenceContent(p: Presence): JsonObject {
  const ago = Math.max(0, Date.now() - p.lastActiveTs);
  const out: JsonObject = { presence: p.presence, last_active_ago: ago, currently_active: p.presence === 'online' && ago < CURRENTLY_ACTIVE_MS };
  if (p.statusMsg !== null) out['status_msg'] = p.statusMsg;
  return out;
}
