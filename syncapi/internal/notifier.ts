/**
 * Wakes waiting /sync requests: each waits for its user; a change names the users it
 * concerns (a room's members, an account's owner), and only their requests wake.
 *
 * Each user has a change counter. A request reads it before it looks for news and waits
 * "for changes after that count": a change that lands between the look and the wait is not
 * lost (it would otherwise sleep until its timeout).
 */
import type { StreamPositions } from './token.js';

/**
 * Rooms remembered per user with a recent change of unread counts. A user whose counts changed
 * in more rooms than this since their last sync sees the oldest of them at their next change.
 */
const MAX_COUNT_CHANGES_PER_USER = 1000;

export class Notifier {
  private readonly waiting = new Map<string, Set<() => void>>();
  private readonly changes = new Map<string, number>();
  /** Per user, room → `notification` position of its last change of unread counts, oldest first. */
  private readonly countChanges = new Map<string, Map<string, number>>();

  constructor(readonly current: StreamPositions) {}

  /** How many changes the user has had (to pass to `wait`). */
  changeCount(userId: string): number {
    return this.changes.get(userId) ?? 0;
  }

  /** Moves a stream forward and wakes the users the change concerns. */
  advance(stream: keyof StreamPositions, pos: number, userIds: Iterable<string>): void {
    if (pos > this.current[stream]) this.current[stream] = pos;
    for (const u of userIds) {
      this.changes.set(u, (this.changes.get(u) ?? 0) + 1);
      const set = this.waiting.get(u);
      if (!set) continue;
      this.waiting.delete(u);
      for (const wake of set) wake();
    }
  }

  /**
   * A user's unread counts in a room changed (userapi says so): their syncs wake, and an
   * incremental sync from before the change shows the room with its new counts even when
   * nothing else happened in it (a receipt from another device, say).
   */
  countsChanged(userId: string, roomId: string): void {
    const pos = this.current.notification + 1;
    let rooms = this.countChanges.get(userId);
    if (!rooms) this.countChanges.set(userId, (rooms = new Map()));
    rooms.delete(roomId);
    rooms.set(roomId, pos);
    if (rooms.size > MAX_COUNT_CHANGES_PER_USER) rooms.delete(rooms.keys().next().value!);
    this.advance('notification', pos, [userId]);
  }

  /** The rooms whose unread counts changed for the user after `notification` position `since`. */
  roomsWithCountChanges(userId: string, since: number): Set<string> {
    const out = new Set<string>();
    for (const [roomId, pos] of this.countChanges.get(userId) ?? []) if (pos > since) out.add(roomId);
    return out;
  }

  /**
   * Resolves when a change for the user arrives or after `timeoutMs`, whichever is first; at
   * once when the user has had changes since `seen` (a `changeCount` read earlier).
   */
  wait(userId: string, timeoutMs: number, signal?: AbortSignal, seen?: number): Promise<void> {
    if (seen !== undefined && this.changeCount(userId) > seen) return Promise.resolve();
    return new Promise((resolve) => {
      let set = this.waiting.get(userId);
      if (!set) this.waiting.set(userId, (set = new Set()));
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        const s = this.waiting.get(userId);
        s?.delete(done);
        if (s && s.size === 0) this.waiting.delete(userId);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      signal?.addEventListener('abort', done);
      set.add(done);
    });
  }

  /** How many requests are waiting (for metrics and tests). */
  get waitingCount(): number {
    let n = 0;
    for (const s of this.waiting.values()) n += s.size;
    return n;
  }
}
