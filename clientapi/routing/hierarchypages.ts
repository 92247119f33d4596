/**
 * Where a paged walk of a space hierarchy (GET /hierarchy) stands between two pages: the rooms
 * still to visit and those visited, kept in memory under a random token (the `next_batch`
 * handed to the client), as Synapse keeps them in a session table.
 *
 * Tokens are opaque (128 random bits) and stable: a walk saved is never changed, every use of a
 * token gets a copy, so asking for the same page twice gives the same answer. They expire
 * TTL_MS after they were made (Synapse: 5 minutes) and the oldest go first when MAX_SESSIONS
 * are held; an unknown or expired token is the client's 400. clientapi has no storage, so a
 * restart forgets them: clients start the walk again, as they must after expiry anyway.
 */
import { randomBytes } from 'node:crypto';
import type { RoomSummary } from '../../roomserver/api/index.js';

export interface HierarchyQueueEntry {
  room_id: string;
  /** Servers that may know the room (the `via` of the event naming it). */
  via: string[];
  depth: number;
  /** The room's summary as the parent's server gave it, when the parent was another server's. */
  remote?: RoomSummary;
}

export interface HierarchyWalk {
  user_id: string;
  room_id: string;
  suggested_only: boolean;
  max_depth: number | undefined;
  /** Rooms to visit, the next one last (a stack: the walk is depth first). */
  queue: HierarchyQueueEntry[];
  processed: string[];
}

const TTL_MS = 5 * 60_000;
const MAX_SESSIONS = 10_000;

export class HierarchyPages {
  private readonly walks = new Map<string, { until: number; walk: HierarchyWalk }>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Keeps the walk; the token to resume it with. */
  save(walk: HierarchyWalk): string {
    this.expire();
    const token = randomBytes(16).toString('base64url');
    this.walks.set(token, { until: this.now() + TTL_MS, walk: structuredClone(walk) });
    return token;
  }

  /** A copy of the walk a token stands for; undefined when unknown or expired. */
  load(token: string): HierarchyWalk | undefined {
    const hit = this.walks.get(token);
    if (!hit || hit.until <= this.now()) return undefined;
    return structuredClone(hit.walk);
  }

  private expire(): void {
    const now = this.now();
    // A Map iterates in insertion order, which is expiry order here.
    for (const [token, { until }] of this.walks) {
      if (until > now && this.walks.size < MAX_SESSIONS) break;
      this.walks.delete(token);
    }
  }
}
