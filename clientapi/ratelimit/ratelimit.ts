/**
 * Per-caller request slots, as Dendrite's `client_api.rate_limiting` works: each caller has
 * `threshold` slots; a request takes one, and it is given back `cooloffMs` after the request
 * started. A request that finds every slot busy is refused with the time until the earliest
 * slot frees (the spec's 429 M_LIMIT_EXCEEDED `retry_after_ms`).
 *
 * No timers: a caller's state is the start times of its busy slots, oldest first, compared
 * with the clock when a request arrives. A caller whose slots have all freed holds no state.
 * The map of callers is kept in order of each caller's newest slot (a caller that takes a slot
 * is moved to the end), so the idle callers are always at its front and each arrival evicts
 * them in amortised O(1). Memory is therefore O(threshold) per caller that made a request in
 * the last `cooloffMs`, whatever the number of idle devices.
 */

export interface RateLimiterOptions {
  /** Slots per caller (at least 1). */
  threshold: number;
  /** How long after a request started its slot stays taken. */
  cooloffMs: number;
  /** Users who are never limited (full user IDs). */
  exemptUserIds?: Iterable<string>;
  /** A non-decreasing clock in milliseconds; monotonic by default so wall-clock jumps don't matter. */
  now?: () => number;
}

export type TakeResult = { allowed: true } | { allowed: false; retryAfterMs: number };

export class RateLimiter {
  private readonly threshold: number;
  private readonly cooloffMs: number;
  private readonly exempt: ReadonlySet<string>;
  private readonly now: () => number;
  /** Caller → start times of its busy slots, oldest first. Ordered by each caller's newest slot. */
  private readonly callers = new Map<string, number[]>();

  constructor(opts: RateLimiterOptions) {
    if (!Number.isInteger(opts.threshold) || opts.threshold < 1) throw new Error(`rate limiter threshold must be an integer of at least 1, not ${opts.threshold}`);
    if (!(opts.cooloffMs >= 0)) throw new Error(`rate limiter cooloff must be at least 0 ms, not ${opts.cooloffMs}`);
    this.threshold = opts.threshold;
    this.cooloffMs = opts.cooloffMs;
    this.exempt = new Set(opts.exemptUserIds ?? []);
    this.now = opts.now ?? (() => performance.now());
  }

  isExempt(userId: string): boolean {
    return this.exempt.has(userId);
  }

  /** Takes one of the caller's slots, or says how long until one frees. */
  take(caller: string): TakeResult {
    const now = this.now();
    this.evictIdle(now);
    let slots = this.callers.get(caller);
    if (slots) {
      let freed = 0;
      while (freed < slots.length && slots[freed]! + this.cooloffMs <= now) freed++;
      if (freed > 0) slots.splice(0, freed);
      if (slots.length >= this.threshold) {
        // Refused requests take no slot, so the caller's place in the map does not change.
        return { allowed: false, retryAfterMs: Math.max(1, Math.ceil(slots[0]! + this.cooloffMs - now)) };
      }
      // Re-inserted below so that the map stays ordered by newest slot.
      this.callers.delete(caller);
    } else {
      slots = [];
    }
    slots.push(now);
    this.callers.set(caller, slots);
    return { allowed: true };
  }

  /** Callers holding state (at least one slot busy, or idle since the last arrival). */
  get size(): number {
    return this.callers.size;
  }

  /** Drops the callers whose newest slot has freed; they are all at the front of the map. */
  private evictIdle(now: number): void {
    for (const [caller, slots] of this.callers) {
      if (slots[slots.length - 1]! + this.cooloffMs > now) break;
      this.callers.delete(caller);
    }
  }
}
