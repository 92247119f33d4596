/**
 * The embedded bus: the JetStream semantics the components rely on, inside this process.
 * In-memory mode keeps nothing on disk (tests, Sytest); otherwise file streams live in a
 * SQLite file under `storage_path` and survive kill -9. Memory streams (typing, presence) are
 * always in memory with their max age, as in Dendrite.
 *
 * Publishes to durable streams are group-committed: those made in the same tick share one
 * transaction, and each resolves once that transaction has committed.
 */
import type { Logger } from 'pino';
import {
  BusError,
  DEFAULT_MAX_BATCH,
  type BatchHandler,
  type Bus,
  type ConsumeBatchOptions,
  type ConsumeOptions,
  type Headers,
  type MessageHandler,
  type PublishAck,
  type PublishOptions,
  type RequestHandler,
  type Subscription,
} from '../bus.js';
import { streamDefinitions, streamOfSubject, type StreamDefinition, type StreamName } from '../streams.js';
import type { BatchDispatch } from '../dispatcher.js';
import { InProcessConsumer } from './consumer.js';
import { MemoryStore } from './memory-store.js';
import type { AppendResult, MessageStore, NewMessage } from './message-store.js';
import { Responders } from './responders.js';
import { SqliteStore } from './sqlite-store.js';

export interface InProcessBusOptions {
  topicPrefix: string;
  inMemory: boolean;
  /** Directory of `jetstream.db`; unused in memory. */
  storagePath: string;
  logger: Logger;
  /** Tests shorten max ages. */
  maxAgeOverrides?: Partial<Record<StreamName, number>>;
  /** How often acked and expired messages are deleted. Default 1 s. */
  compactEveryMs?: number;
}

interface PendingWrite {
  msg: NewMessage;
  resolve(r: AppendResult): void;
  reject(err: unknown): void;
}

export class InProcessBus implements Bus {
  readonly kind = 'inprocess' as const;
  readonly defs: readonly StreamDefinition[];
  private readonly memory = new MemoryStore();
  private readonly disk: SqliteStore | undefined;
  private readonly consumers = new Map<string, Set<InProcessConsumer>>();
  private readonly responders = new Responders();
  private readonly compactTimer: NodeJS.Timeout;
  private writes: PendingWrite[] = [];
  private writeFlush: NodeJS.Immediate | undefined;
  private closed = false;

  constructor(private readonly opts: InProcessBusOptions) {
    this.defs = streamDefinitions(opts.topicPrefix, opts.maxAgeOverrides);
    this.disk = opts.inMemory ? undefined : new SqliteStore(opts.storagePath);
    this.compactTimer = setInterval(() => this.compact(), opts.compactEveryMs ?? 1_000);
    this.compactTimer.unref();
  }

  private storeOf(d: StreamDefinition): MessageStore {
    return d.storage === 'memory' || !this.disk ? this.memory : this.disk;
  }

  private assertOpen(): void {
    if (this.closed) throw new BusError('closed', 'the bus is closed');
  }

  async publish(subject: string, payload: Uint8Array, opts: PublishOptions = {}): Promise<PublishAck> {
    this.assertOpen();
    const d = streamOfSubject(this.defs, subject);
    if (!d) throw new BusError('no_stream', `no stream holds subject ${subject}`);
    const msg: NewMessage = { stream: d.name, subject, data: payload, headers: opts.headers ?? {}, ts: Date.now(), ...(opts.msgId ? { msgId: opts.msgId } : {}) };
    const store = this.storeOf(d);
    if (store === this.memory) {
      const [r] = this.memory.append([msg]);
      this.stored(d, msg, r!);
      return { stream: d.name, seq: r!.seq };
    }
    const r = await new Promise<AppendResult>((resolve, reject) => {
      this.writes.push({ msg, resolve, reject });
      this.writeFlush ??= setImmediate(() => this.flushWrites());
    });
    return { stream: d.name, seq: r.seq };
  }

  /** Commits the tick's publishes in one transaction, then hands them to consumers. */
  private flushWrites(): void {
    if (this.writeFlush) clearImmediate(this.writeFlush);
    this.writeFlush = undefined;
    const writes = this.writes;
    this.writes = [];
    if (writes.length === 0 || !this.disk) return;
    let results: AppendResult[];
    try {
      results = this.disk.append(writes.map((w) => w.msg));
    } catch (err) {
      const e = new BusError('storage', `could not store ${writes.length} message(s) in ${this.opts.storagePath}: ${(err as Error).message}`, { cause: err });
      for (const w of writes) w.reject(e);
      return;
    }
    writes.forEach((w, i) => {
      const r = results[i]!;
      const d = this.defs.find((x) => x.name === w.msg.stream)!;
      this.stored(d, w.msg, r);
      w.resolve(r);
    });
  }

  private stored(d: StreamDefinition, msg: NewMessage, r: AppendResult): void {
    if (r.duplicate) return;
    const m = { stream: d.name, seq: r.seq, subject: msg.subject, data: msg.data, headers: msg.headers, ts: msg.ts };
    for (const c of this.consumers.get(d.name) ?? []) c.offer(m);
  }

  async consume(opts: ConsumeOptions, handler: MessageHandler): Promise<Subscription> {
    return this.startConsumer(opts, handler);
  }

  async consumeBatch(opts: ConsumeBatchOptions, handler: BatchHandler): Promise<Subscription> {
    return this.startConsumer(opts, { batch: handler, maxBatch: opts.maxBatch ?? DEFAULT_MAX_BATCH });
  }

  private async startConsumer(opts: ConsumeOptions, handler: MessageHandler | BatchDispatch): Promise<Subscription> {
    this.assertOpen();
    const d = this.defs.find((x) => x.name === opts.stream);
    if (!d) throw new BusError('no_stream', `no stream named ${opts.stream}`);
    const live = this.consumers.get(d.name) ?? new Set<InProcessConsumer>();
    this.consumers.set(d.name, live);
    for (const c of live) {
      if (c.durable === opts.durable) throw new BusError('in_use', `durable ${opts.durable} of ${d.name} is already consuming in this process`);
    }
    // Publishes waiting for their commit must reach this consumer through the store, in order.
    this.flushWrites();
    const consumer = new InProcessConsumer(
      {
        def: d,
        durable: opts.durable,
        filter: opts.filterSubject ?? '>',
        store: this.storeOf(d),
        ordered: opts.orderedBySubject ?? false,
        concurrency: opts.concurrency ?? 1,
        maxDeliver: opts.maxDeliver ?? 0,
        logger: this.opts.logger,
      },
      handler,
    );
    live.add(consumer);
    consumer.start();
    return {
      unsubscribe: async () => {
        live.delete(consumer);
        await consumer.stop();
      },
    };
  }

  async request(subject: string, payload: Uint8Array, timeoutMs: number, headers: Headers = {}): Promise<Uint8Array> {
    this.assertOpen();
    return this.responders.request(subject, payload, timeoutMs, headers);
  }

  async respond(subject: string, handler: RequestHandler): Promise<Subscription> {
    this.assertOpen();
    return this.responders.add(subject, handler);
  }

  /** Deletes what every durable has done, and messages past their stream's max age. */
  private compact(): void {
    const now = Date.now();
    for (const d of this.defs) {
      try {
        this.storeOf(d).compact(d.name, now, d.maxAgeMs > 0 ? now - d.maxAgeMs : undefined);
      } catch (err) {
        this.opts.logger.error({ err, stream: d.name }, 'bus compaction failed');
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.compactTimer);
    this.responders.clear();
    this.flushWrites();
    await Promise.all([...this.consumers.values()].flatMap((set) => [...set].map((c) => c.stop())));
    this.consumers.clear();
    this.compact();
    this.disk?.close();
    this.memory.close();
  }
}
