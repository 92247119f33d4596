/**
 * The clocks of peeking, in one place because two components keep them in step: federationapi
 * (MSC2444: how often peeking servers must renew, when unrenewed peeks are evicted, when our own
 * outbound peeks are renewed) and syncapi (MSC2753: when a peeking device stops counting as one).
 *
 * Components read these when they start their timers and on each check, so a test may shorten
 * them before it starts its servers (the values are shared by every server in the process).
 */
export interface PeekTiming {
  /** The renewal_interval we answer to a peeking server: it must PUT /peek again within it. */
  inboundRenewalIntervalMs: number;
  /** How long past its interval an unrenewed inbound peek lives (a renewal that is merely late). */
  inboundEvictionGraceMs: number;
  /** How often unrenewed inbound peeks are looked for and evicted. */
  inboundSweepMs: number;
  /** Our outbound peeks are renewed once this fraction of their interval has passed. */
  outboundRenewAtFraction: number;
  /** How often our outbound peeks are looked at for renewal. */
  outboundCheckMs: number;
  /**
   * A device that has not called /sync for this long no longer counts as peeking: when no device
   * peeking a room counts, syncapi tells the roomserver, and federation stops renewing the room's
   * remote peek. Well above any /sync long-poll (at most 60 s here), so only a client that went
   * away trips it. The device's peek itself stays: its next /sync peeks the room again.
   */
  idlePeekerMs: number;
  /** How often syncapi looks for rooms whose peeking devices all went idle. */
  idleSweepMs: number;
}

export const DEFAULT_PEEK_TIMING: Readonly<PeekTiming> = Object.freeze({
  inboundRenewalIntervalMs: 60 * 60_000,
  inboundEvictionGraceMs: 5 * 60_000,
  inboundSweepMs: 60_000,
  outboundRenewAtFraction: 0.5,
  outboundCheckMs: 60_000,
  idlePeekerMs: 15 * 60_000,
  idleSweepMs: 60_000,
});

/** The timing in force; tests assign to it (and restore DEFAULT_PEEK_TIMING after). */
export const peekTiming: PeekTiming = { ...DEFAULT_PEEK_TIMING };
