/**
 * Streams kept in this process's memory: the whole bus in in-memory mode, and the memory
 * streams (typing, presence) always.
 */
import { subjectMatches } from '../bus.js';
import { DUPLICATE_WINDOW_MS, UNCLAIMED_GRACE_MS, type AppendResult, type MessageStore, type NewMessage, type StoredMessage } from './message-store.js';

interface MemoryConsumer {
  filter: string;
  floor: number;
  /** Acked sequence numbers above the floor. */
  acked: Set<number>;
}

interface MemoryStream {
  /** In sequence order. */
  messages: StoredMessage[];
  lastSeq: number;
  consumers: Map<string, MemoryConsumer>;
  recentIds: Map<string, { seq: number; ts: number }>;
}

export class MemoryStore implements MessageStore {
  private readonly streams = new Map<string, MemoryStream>();

  private stream(name: string): MemoryStream {
    let s = this.streams.get(name);
    if (!s) {
      s = { messages: [], lastSeq: 0, consumers: new Map(), recentIds: new Map() };
      this.streams.set(name, s);
    }
    return s;
  }

  append(msgs: readonly NewMessage[]): AppendResult[] {
    return msgs.map((m) => {
      const s = this.stream(m.stream);
      if (m.msgId !== undefined) {
        const seen = s.recentIds.get(m.msgId);
        if (seen && seen.ts >= m.ts - DUPLICATE_WINDOW_MS) return { seq: seen.seq, duplicate: true };
      }
      const seq = ++s.lastSeq;
      if (m.msgId !== undefined) s.recentIds.set(m.msgId, { seq, ts: m.ts });
      // A copy: the publisher may reuse its buffer.
      s.messages.push({ stream: m.stream, seq, subject: m.subject, data: m.data.slice(), headers: { ...m.headers }, ts: m.ts });
      return { seq, duplicate: false };
    });
  }

  registerConsumer(stream: string, durable: string, filter: string): void {
    const s = this.stream(stream);
    const c = s.consumers.get(durable);
    if (c) c.filter = filter;
    else s.consumers.set(durable, { filter, floor: 0, acked: new Set() });
  }

  floor(stream: string, durable: string): number {
    return this.stream(stream).consumers.get(durable)?.floor ?? 0;
  }

  fetch(stream: string, durable: string, afterSeq: number, limit: number, minTs: number): StoredMessage[] {
    const s = this.stream(stream);
    const c = s.consumers.get(durable);
    if (!c) return [];
    const out: StoredMessage[] = [];
    for (let i = firstAfter(s.messages, afterSeq); i < s.messages.length && out.length < limit; i++) {
      const m = s.messages[i]!;
      if (m.ts >= minTs && !c.acked.has(m.seq) && subjectMatches(c.filter, m.subject)) out.push(m);
    }
    return out;
  }

  ack(stream: string, durable: string, seq: number): void {
    const c = this.stream(stream).consumers.get(durable);
    if (c && seq > c.floor) c.acked.add(seq);
  }

  compact(stream: string, now: number, olderThanTs: number | undefined): void {
    const s = this.stream(stream);
    for (const c of s.consumers.values()) {
      // Walk over what is acked or not this consumer's; stop at the first it still wants.
      for (let i = firstAfter(s.messages, c.floor); i < s.messages.length; i++) {
        const m = s.messages[i]!;
        if (!c.acked.delete(m.seq) && subjectMatches(c.filter, m.subject)) break;
        c.floor = m.seq;
      }
      if (s.messages.length === 0 || s.messages[s.messages.length - 1]!.seq <= c.floor) {
        c.floor = Math.max(c.floor, s.lastSeq);
        c.acked.clear();
      }
    }
    const doneUpTo = s.consumers.size > 0 ? Math.min(...[...s.consumers.values()].map((c) => c.floor)) : undefined;
    const keep = (m: StoredMessage): boolean =>
      (doneUpTo === undefined ? m.ts >= now - UNCLAIMED_GRACE_MS : m.seq > doneUpTo) && (olderThanTs === undefined || m.ts >= olderThanTs);
    // Both conditions only ever fail for a prefix of the stream (seq and ts grow together).
    const cut = s.messages.findIndex(keep);
    if (cut === -1) s.messages.length = 0;
    else if (cut > 0) s.messages.splice(0, cut);
    for (const [id, seen] of s.recentIds) if (seen.ts < now - DUPLICATE_WINDOW_MS) s.recentIds.delete(id);
  }

  close(): void {
    this.streams.clear();
  }
}

/** Index of the first message with seq > `seq` (messages are in seq order). */
function firstAfter(messages: readonly StoredMessage[], seq: number): number {
  let lo = 0;
  let hi = messages.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (messages[mid]!.seq <= seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
