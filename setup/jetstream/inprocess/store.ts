/**
 * Where the in-process bus keeps messages and what each durable consumer has acknowledged.
 * `MemoryStore` for in-memory mode and memory streams; `SqliteStore` for durable streams.
 * A durable's progress is a floor (every message at or below it is done) plus the acked
 * sequence numbers above it, so that out-of-order acks across subjects are exact.
 */
import { subjectMatches, type Headers } from '../bus.js';

export interface StoredMessage {
  stream: string;
  seq: number;
  subject: string;
  data: Uint8Array;
  headers: Headers;
  ts: number;
}

export interface MessageStore {
  /** Stores a message and returns its sequence number; undefined when msgId was seen. */
  append(stream: string, subject: string, data: Uint8Array, headers: Headers, ts: number, msgId?: string): number | undefined;
  registerConsumer(stream: string, durable: string, filter: string): void;
  /** Messages not yet acked by `durable`, in order. */
  pending(stream: string, durable: string): StoredMessage[];
  ack(stream: string, durable: string, seq: number): void;
  /** Advances floors and deletes what every durable of the stream has done, and expired messages. */
  compact(stream: string, olderThanTs: number | undefined): void;
  close(): void;
}

interface MemoryConsumer {
  filter: string;
  floor: number;
  acked: Set<number>;
}

interface MemoryStream {
  messages: StoredMessage[];
  lastSeq: number;
  consumers: Map<string, MemoryConsumer>;
  msgIds: Map<string, number>;
}

/** Messages kept for a stream nobody consumes yet, so that a late consumer still sees recent ones. */
export const UNCONSUMED_RETENTION = 100_000;

export class MemoryStore implements MessageStore {
  private readonly streams = new Map<string, MemoryStream>();

  private stream(name: string): MemoryStream {
    let s = this.streams.get(name);
    if (!s) {
      s = { messages: [], lastSeq: 0, consumers: new Map(), msgIds: new Map() };
      this.streams.set(name, s);
    }
    return s;
  }

  append(stream: string, subject: string, data: Uint8Array, headers: Headers, ts: number, msgId?: string): number | undefined {
    const s = this.stream(stream);
    if (msgId !== undefined && s.msgIds.has(msgId)) return undefined;
    const seq = ++s.lastSeq;
    if (msgId !== undefined) s.msgIds.set(msgId, seq);
    s.messages.push({ stream, seq, subject, data, headers, ts });
    return seq;
  }

  registerConsumer(stream: string, durable: string, filter: string): void {
    const s = this.stream(stream);
    if (!s.consumers.has(durable)) s.consumers.set(durable, { filter, floor: 0, acked: new Set() });
    else s.consumers.get(durable)!.filter = filter;
  }

  pending(stream: string, durable: string): StoredMessage[] {
    const s = this.stream(stream);
    const c = s.consumers.get(durable);
    if (!c) return [];
    return s.messages.filter((m) => m.seq > c.floor && !c.acked.has(m.seq) && subjectMatches(c.filter, m.subject));
  }

  ack(stream: string, durable: string, seq: number): void {
    const c = this.stream(stream).consumers.get(durable);
    if (c && seq > c.floor) c.acked.add(seq);
  }

  compact(stream: string, olderThanTs: number | undefined): void {
    const s = this.stream(stream);
    for (const c of s.consumers.values()) {
      // Walk forward over messages that are acked or not this consumer's.
      for (const m of s.messages) {
        if (m.seq <= c.floor) continue;
        if (c.acked.delete(m.seq) || !subjectMatches(c.filter, m.subject)) c.floor = m.seq;
        else break;
      }
    }
    let keepFrom: number;
    if (s.consumers.size > 0) {
      keepFrom = Math.min(...[...s.consumers.values()].map((c) => c.floor)) + 1;
    } else {
      keepFrom = s.lastSeq - UNCONSUMED_RETENTION + 1;
    }
    const cut = s.messages.findIndex((m) => m.seq >= keepFrom && (olderThanTs === undefined || m.ts >= olderThanTs));
    if (cut === -1) s.messages.length = 0;
    else if (cut > 0) s.messages.splice(0, cut);
    if (s.msgIds.size > 10_000) s.msgIds.clear(); // dedup window, like JetStream's duplicate window
  }

  close(): void {
    this.streams.clear();
  }
}
