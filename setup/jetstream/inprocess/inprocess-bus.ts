/**
 * The embedded bus: JetStream's semantics that the components rely on, in this process.
 * In-memory mode keeps nothing on disk (tests, Sytest); otherwise file streams live in a
 * SQLite file under `storage_path` and survive kill -9. Memory streams (typing, presence)
 * are always in memory with their max age, as in Dendrite.
 */
import type { Logger } from 'pino';
import {
  BusError,
  subjectMatches,
  type Bus,
  type BusMessage,
  type ConsumeOptions,
  type Headers,
  type PublishOptions,
  type Subscription,
} from '../bus.js';
import { Dispatcher } from '../dispatcher.js';
import { streamDefinitions, streamOfSubject, type StreamDefinition, type StreamName } from '../streams.js';
import { SqliteStore } from './sqlite-store.js';
import { MemoryStore, type MessageStore, type StoredMessage } from './store.js';

export interface InProcessBusOptions {
  topicPrefix: string;
  inMemory: boolean;
  storagePath: string;
  logger: Logger;
  /** Tests shorten max ages. */
  maxAgeOverrides?: Partial<Record<StreamName, number>>;
  compactEveryMs?: number;
}

interface LiveConsumer {
  durable: string;
  filter: string;
  dispatcher: Dispatcher;
}

type Responder = (payload: Uint8Array, headers: Headers) => Promise<Uint8Array>;

export class InProcessBus implements Bus {
  readonly kind = 'inprocess' as const;
  private readonly defs: StreamDefinition[];
  private readonly memory = new MemoryStore();
  private readonly durable: MessageStore;
  private readonly live = new Map<string, Set<LiveConsumer>>();
  private readonly responders = new Map<string, { handlers: Responder[]; next: number }>();
  private readonly timer: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly opts: InProcessBusOptions) {
    this.defs = streamDefinitions(opts.topicPrefix, opts.maxAgeOverrides);
    this.durable = opts.inMemory ? this.memory : new SqliteStore(opts.storagePath);
    this.timer = setInterval(() => this.compact(), opts.compactEveryMs ?? 1_000);
    this.timer.unref();
  }

  private def(stream: string): StreamDefinition {
    const d = this.defs.find((x) => x.name === stream);
    if (!d) throw new BusError('no_stream', `no stream named ${stream}`);
    return d;
  }

  private storeOf(d: StreamDefinition): MessageStore {
    return d.storage === 'memory' ? this.memory : this.durable;
  }

  private expired(d: StreamDefinition, m: StoredMessage, now = Date.now()): boolean {
    return d.maxAgeMs > 0 && m.ts < now - d.maxAgeMs;
  }

  async publish(subject: string, payload: Uint8Array, opts: PublishOptions = {}): Promise<{ stream: string; seq: number }> {
    if (this.closed) throw new BusError('closed', 'the bus is closed');
    const d = streamOfSubject(this.defs, subject);
    if (!d) throw new BusError('no_stream', `no stream holds subject ${subject}`);
    const headers = opts.headers ?? {};
    const ts = Date.now();
    const seq = this.storeOf(d).append(d.name, subject, payload, headers, ts, opts.msgId);
    if (seq === undefined) return { stream: d.name, seq: 0 }; // duplicate msgId: stored once
    const msg: StoredMessage = { stream: d.name, seq, subject, data: payload, headers, ts };
    for (const c of this.live.get(d.name) ?? []) {
      if (subjectMatches(c.filter, subject)) this.deliver(d, c, msg);
    }
    return { stream: d.name, seq };
  }

  private deliver(d: StreamDefinition, c: LiveConsumer, m: StoredMessage): void {
    const store = this.storeOf(d);
    c.dispatcher.push({
      msg: { subject: m.subject, data: m.data, headers: m.headers, seq: m.seq },
      previousDeliveries: 0,
      ack: () => store.ack(d.name, c.durable, m.seq),
      terminate: () => store.ack(d.name, c.durable, m.seq),
    });
  }

  async consume(opts: ConsumeOptions, handler: (msg: BusMessage) => Promise<void>): Promise<Subscription> {
    if (this.closed) throw new BusError('closed', 'the bus is closed');
    const d = this.def(opts.stream);
    const set = this.live.get(d.name) ?? new Set<LiveConsumer>();
    this.live.set(d.name, set);
    for (const c of set) {
      if (c.durable === opts.durable) throw new BusError('closed', `durable ${opts.durable} on ${d.name} is already consuming in this process`);
    }
    const store = this.storeOf(d);
    store.registerConsumer(d.name, opts.durable, opts.filterSubject ?? '>');
    const consumer: LiveConsumer = {
      durable: opts.durable,
      filter: opts.filterSubject ?? '>',
      dispatcher: new Dispatcher(
        {
          ordered: opts.orderedBySubject ?? false,
          concurrency: opts.concurrency ?? 1,
          maxDeliver: opts.maxDeliver ?? 0,
          logger: this.opts.logger,
          consumer: `${d.name}/${opts.durable}`,
        },
        handler,
      ),
    };
    const now = Date.now();
    for (const m of store.pending(d.name, opts.durable)) {
      if (!this.expired(d, m, now)) this.deliver(d, consumer, m);
    }
    set.add(consumer);
    return {
      unsubscribe: async () => {
        set.delete(consumer);
        await consumer.dispatcher.stop();
      },
    };
  }

  async request(subject: string, payload: Uint8Array, timeoutMs: number, headers: Headers = {}): Promise<Uint8Array> {
    if (this.closed) throw new BusError('closed', 'the bus is closed');
    const r = this.responders.get(subject);
    if (!r || r.handlers.length === 0) throw new BusError('no_responders', `no responders for ${subject}`);
    const handler = r.handlers[r.next++ % r.handlers.length]!;
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        handler(payload, headers),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new BusError('timeout', `request to ${subject} timed out after ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  async respond(subject: string, handler: Responder): Promise<Subscription> {
    const r = this.responders.get(subject) ?? { handlers: [], next: 0 };
    this.responders.set(subject, r);
    r.handlers.push(handler);
    return {
      unsubscribe: async () => {
        r.handlers = r.handlers.filter((h) => h !== handler);
      },
    };
  }

  /** Deletes what every durable has done, and messages past their stream's max age. */
  private compact(): void {
    const now = Date.now();
    for (const d of this.defs) {
      try {
        this.storeOf(d).compact(d.name, d.maxAgeMs > 0 ? now - d.maxAgeMs : undefined);
      } catch (err) {
        this.opts.logger.error({ err, stream: d.name }, 'bus compaction failed');
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    await Promise.all([...this.live.values()].flatMap((set) => [...set].map((c) => c.dispatcher.stop())));
    this.live.clear();
    this.responders.clear();
    this.compact();
    this.durable.close();
    if (this.durable !== this.memory) this.memory.close();
  }
}
