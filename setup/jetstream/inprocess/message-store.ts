/**
 * Where the in-process bus keeps its streams and each durable consumer's progress:
 * `MemoryStore` (in-memory mode, and the memory streams) or `SqliteStore` (durable streams).
 *
 * A durable's progress is a floor (every message at or below it is done) plus the acked
 * sequence numbers above it, so that acks out of order (subjects handled in parallel) are
 * exact. Compaction moves floors up and deletes what no durable still wants.
 */
import type { Headers } from '../bus.js';

export interface NewMessage {
  stream: string;
  subject: string;
  data: Uint8Array;
  headers: Headers;
  /** Milliseconds since the epoch. */
  ts: number;
  msgId?: string;
}

export interface StoredMessage {
  stream: string;
  seq: number;
  subject: string;
  data: Uint8Array;
  headers: Headers;
  ts: number;
}

export interface AppendResult {
  seq: number;
  /** The msgId was seen within the duplicate window; seq is the original's. */
  duplicate: boolean;
}

export interface MessageStore {
  /** Stores the messages in order, all or none. */
  append(msgs: readonly NewMessage[]): AppendResult[];
  registerConsumer(stream: string, durable: string, filter: string): void;
  /** Every message at or below this is done for the durable. */
  floor(stream: string, durable: string): number;
  /** Up to `limit` messages after `afterSeq`, stored at or after `minTs`, that the durable wants and has not acked, in order. */
  fetch(stream: string, durable: string, afterSeq: number, limit: number, minTs: number): StoredMessage[];
  ack(stream: string, durable: string, seq: number): void;
  /** Moves floors up; deletes what every durable has done, what is older than `olderThanTs`, and unwanted messages past the grace period. */
  compact(stream: string, now: number, olderThanTs: number | undefined): void;
  close(): void;
}

/** JetStream's default duplicate window. */
export const DUPLICATE_WINDOW_MS = 120_000;

/**
 * How long a message is kept when no durable of its stream exists: long enough for a
 * consumer being set up at start-up to see it. (NATS drops such messages at once.)
 */
export const UNCLAIMED_GRACE_MS = 10_000;
