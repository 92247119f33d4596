/**
 * Who is typing in each room, in memory (typing outlives no restart, as in Dendrite). Each
 * change, including a timeout running out, takes the next position of the typing stream and
 * records it for the room, so /sync tells which rooms changed since a token.
 */

const MAX_TIMEOUT_MS = 120_000;

export class TypingCache {
  /** room -> user -> expiry (ms since epoch). */
  private readonly typing = new Map<string, Map<string, number>>();
  /** room -> position of its last change. */
  private readonly changedAt = new Map<string, number>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private pos = 0;

  /** `onChange(roomId, pos)` runs after every change, timeouts included. */
  constructor(private readonly onChange: (roomId: string, pos: number) => void) {}

  get position(): number {
    return this.pos;
  }

  /** Starts (with a timeout) or stops a user's typing; no change, no new position. */
  set(roomId: string, userId: string, typing: boolean, timeoutMs = 30_000): void {
    let users = this.typing.get(roomId);
    const key = `${roomId}\u0000${userId}`;
    clearTimeout(this.timers.get(key));
    this.timers.delete(key);
    if (typing) {
      const ms = Math.max(0, Math.min(timeoutMs, MAX_TIMEOUT_MS));
      if (!users) this.typing.set(roomId, (users = new Map()));
      const wasTyping = users.has(userId);
      users.set(userId, Date.now() + ms);
      const timer = setTimeout(() => this.set(roomId, userId, false), ms);
      timer.unref();
      this.timers.set(key, timer);
      // Renewing the timeout changes nothing a client sees.
      if (!wasTyping) this.bump(roomId);
      return;
    }
    if (users?.delete(userId)) {
      if (users.size === 0) this.typing.delete(roomId);
      this.bump(roomId);
    }
  }

  /** The users typing in a room now. */
  usersTyping(roomId: string): string[] {
    return [...(this.typing.get(roomId)?.keys() ?? [])];
  }

  /** Whether the room's typing changed after position `since` (up to now). */
  changedSince(roomId: string, since: number): boolean {
    return (this.changedAt.get(roomId) ?? 0) > since;
  }

  /** Stops the timers (on shutdown). */
  close(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  private bump(roomId: string): void {
    this.pos += 1;
    this.changedAt.set(roomId, this.pos);
    this.onChange(roomId, this.pos);
  }
}
