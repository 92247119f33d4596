/**
 * Other servers' peeks into our rooms (MSC2444), once the roomserver has answered them: the
 * peek is recorded when its `new_inbound_peek` output is consumed (in the room's event order,
 * so the events after the state the peeker was given are exactly those it is sent), live
 * peekers of a room are named for each event sent, and peeks not renewed within their interval
 * plus a grace period are evicted by a timer.
 */
import type { Logger } from 'pino';
import { peekTiming } from '../../internal/peektiming.js';
import type { OutputNewInboundPeek } from '../../roomserver/api/index.js';
import type { FederationPeekStore } from '../storage/peeks.js';

export class InboundPeeks {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: FederationPeekStore,
    private readonly log: Logger,
  ) {}

  async record(peek: OutputNewInboundPeek): Promise<void> {
    await this.store.add('inbound', peek.server_name, peek.room_id, peek.peek_id, peek.renewal_interval);
    this.log.debug({ server: peek.server_name, room_id: peek.room_id, peek_id: peek.peek_id }, 'federation: a server peeks the room');
  }

  /** Servers whose peek into the room is live. */
  liveServers(roomId: string): Promise<string[]> {
    return this.store.liveInboundServers(roomId, peekTiming.inboundEvictionGraceMs);
  }

  async evict(now = Date.now()): Promise<number> {
    const gone = await this.store.evictInbound(peekTiming.inboundEvictionGraceMs, now);
    if (gone > 0) this.log.info({ evicted: gone }, 'federation: unrenewed peeks evicted');
    return gone;
  }

  /** Starts evicting; returns what stops it. */
  start(): () => void {
    this.timer = setInterval(() => {
      this.evict().catch((err: unknown) => this.log.error({ err }, 'federation: peek eviction failed'));
    }, peekTiming.inboundSweepMs);
    this.timer.unref();
    return () => clearInterval(this.timer);
  }
}
