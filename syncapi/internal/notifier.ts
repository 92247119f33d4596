/**
 * Wakes waiting /sync requests: each waits for its user; a change names the users it
 * concerns (a room's members, an account's owner), and only their requests wake.
 */
import type { StreamPositions } from './token.js';

export class Notifier {
  private readonly waiting = new Map<string, Set<() => void>>();

  constructor(readonly current: StreamPositions) {}

  /** Moves a stream forward and wakes the users the change concerns. */
  advance(stream: keyof StreamPositions, pos: number, userIds: Iterable<string>): void {
    if (pos > this.current[stream]) this.current[stream] = pos;
    for (const u of userIds) {
      const set = this.waiting.get(u);
      if (!set) continue;
      this.waiting.delete(u);
      for (const wake of set) wake();
    }
  }

  /** Resolves when a change for the user arrives or after `timeoutMs`, whichever is first. */
  wait(userId: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
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
