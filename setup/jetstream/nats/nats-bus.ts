/**
 * The bus on NATS JetStream (required for polylith). Streams are created or updated at
 * start-up; durable pull consumers with explicit ack feed the shared Dispatcher, which keeps
 * per-subject order: a failing message is retried in place (its ack deadline extended)
 * rather than nak'ed, so that the messages behind it on its subject cannot overtake it.
 */
import {
  AckPolicy,
  DeliverPolicy,
  RetentionPolicy,
  StorageType,
  jetstream,
  jetstreamManager,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import { NoRespondersError, TimeoutError, connect, headers as natsHeaders, nanos, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { BusError, type Bus, type BusMessage, type ConsumeOptions, type Headers, type PublishOptions, type Subscription } from '../bus.js';
import { Dispatcher } from '../dispatcher.js';
import { streamDefinitions, type StreamDefinition, type StreamName } from '../streams.js';

export interface NatsBusOptions {
  addresses: string[];
  topicPrefix: string;
  logger: Logger;
  maxAgeOverrides?: Partial<Record<StreamName, number>>;
}

/** Queue group of request/reply responders: several processes may serve one component. */
const RESPONDER_QUEUE = 'dendrite-api';

function toHeaders(h: MsgHdrs | undefined): Headers {
  const out: Headers = {};
  if (!h) return out;
  for (const k of h.keys()) out[k] = h.get(k);
  return out;
}

function fromHeaders(h: Headers | undefined): MsgHdrs | undefined {
  if (!h || Object.keys(h).length === 0) return undefined;
  const out = natsHeaders();
  for (const [k, v] of Object.entries(h)) out.set(k, v);
  return out;
}

export class NatsBus implements Bus {
  readonly kind = 'nats' as const;
  private readonly consumers = new Set<{ messages: ConsumerMessages; dispatcher: Dispatcher }>();

  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    readonly defs: readonly StreamDefinition[],
    private readonly logger: Logger,
  ) {}

  static async connect(opts: NatsBusOptions): Promise<NatsBus> {
    const servers = opts.addresses.map((a) => a.replace(/^nats:\/\//, ''));
    let nc: NatsConnection;
    try {
      nc = await connect({ servers, name: `dendrite-ts ${process.pid}`, timeout: 5_000, maxReconnectAttempts: -1 });
    } catch (err) {
      throw new BusError('connect', `cannot connect to NATS at ${servers.join(', ')}: ${(err as Error).message}`);
    }
    const defs = streamDefinitions(opts.topicPrefix, opts.maxAgeOverrides);
    try {
      const jsm = await jetstreamManager(nc);
      for (const d of defs) await ensureStream(jsm, d);
    } catch (err) {
      await nc.close();
      throw new BusError('connect', `NATS at ${servers.join(', ')} has no usable JetStream: ${(err as Error).message}`);
    }
    return new NatsBus(nc, jetstream(nc), defs, opts.logger);
  }

  async publish(subject: string, payload: Uint8Array, opts: PublishOptions = {}): Promise<{ stream: string; seq: number }> {
    const h = fromHeaders(opts.headers);
    const ack = await this.js.publish(subject, payload, {
      ...(h ? { headers: h } : {}),
      ...(opts.msgId ? { msgID: opts.msgId } : {}),
    });
    return { stream: ack.stream, seq: ack.duplicate ? 0 : ack.seq };
  }

  async consume(opts: ConsumeOptions, handler: (msg: BusMessage) => Promise<void>): Promise<Subscription> {
    const def = this.defs.find((d) => d.name === opts.stream);
    if (!def) throw new BusError('no_stream', `no stream named ${opts.stream}`);
    const jsm = await jetstreamManager(this.nc);
    const concurrency = opts.concurrency ?? 1;
    const ackWaitMs = opts.ackWaitMs ?? 60_000;
    await jsm.consumers.add(def.name, {
      durable_name: opts.durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(ackWaitMs),
      // Ordering is ours to keep: let enough be outstanding to feed every subject lane.
      max_ack_pending: Math.max(1000, concurrency * 100),
      ...(opts.filterSubject ? { filter_subject: opts.filterSubject } : {}),
    });
    const consumer = await this.js.consumers.get(def.name, opts.durable);
    const messages = await consumer.consume({ max_messages: Math.max(100, concurrency * 10) });
    const dispatcher = new Dispatcher(
      {
        ordered: opts.orderedBySubject ?? false,
        concurrency,
        maxDeliver: opts.maxDeliver ?? 0,
        logger: this.logger,
        consumer: `${def.name}/${opts.durable}`,
      },
      handler,
    );
    const entry = { messages, dispatcher };
    this.consumers.add(entry);
    void (async () => {
      try {
        for await (const m of messages) dispatcher.push(this.delivery(m));
      } catch (err) {
        this.logger.error({ err, consumer: `${def.name}/${opts.durable}` }, 'NATS consumer stopped');
      }
    })();
    return {
      unsubscribe: async () => {
        this.consumers.delete(entry);
        await messages.close();
        await dispatcher.stop();
      },
    };
  }

  private delivery(m: JsMsg) {
    return {
      msg: { subject: m.subject, data: m.data, headers: toHeaders(m.headers), seq: m.seq },
      previousDeliveries: m.info.deliveryCount - 1,
      ack: () => m.ack(),
      terminate: (reason: string) => m.term(reason),
      stillWorking: () => m.working(),
    };
  }

  async request(subject: string, payload: Uint8Array, timeoutMs: number, headers?: Headers): Promise<Uint8Array> {
    try {
      const h = fromHeaders(headers);
      const reply = await this.nc.request(subject, payload, { timeout: timeoutMs, ...(h ? { headers: h } : {}) });
      return reply.data;
    } catch (err) {
      const e = err as Error & { isNoResponders?: () => boolean };
      if (err instanceof NoRespondersError || e.isNoResponders?.() || /no responders/i.test(e.message)) {
        throw new BusError('no_responders', `no responders for ${subject}`);
      }
      if (err instanceof TimeoutError || /timeout/i.test(e.message)) {
        throw new BusError('timeout', `request to ${subject} timed out after ${timeoutMs} ms`);
      }
      throw err;
    }
  }

  async respond(subject: string, handler: (payload: Uint8Array, headers: Headers) => Promise<Uint8Array>): Promise<Subscription> {
    const sub = this.nc.subscribe(subject, {
      queue: RESPONDER_QUEUE,
      callback: (err, msg) => {
        if (err) {
          this.logger.error({ err, subject }, 'responder subscription failed');
          return;
        }
        void handler(msg.data, toHeaders(msg.headers)).then(
          (reply) => msg.respond(reply),
          (e: unknown) => this.logger.error({ err: e, subject }, 'responder failed'),
        );
      },
    });
    // Make sure the server knows the subscription before callers rely on it.
    await this.nc.flush();
    return { unsubscribe: async () => sub.unsubscribe() };
  }

  /** Deletes this prefix's streams (tests). */
  async deleteStreams(): Promise<void> {
    const jsm = await jetstreamManager(this.nc);
    for (const d of this.defs) await jsm.streams.delete(d.name).catch(() => false);
  }

  async close(): Promise<void> {
    if (this.nc.isClosed()) return;
    await Promise.all(
      [...this.consumers].map(async (c) => {
        await c.messages.close();
        await c.dispatcher.stop();
      }),
    );
    this.consumers.clear();
    await this.nc.drain();
  }
}

async function ensureStream(jsm: JetStreamManager, d: StreamDefinition): Promise<void> {
  const config = {
    name: d.name,
    subjects: d.subjects,
    storage: d.storage === 'memory' ? StorageType.Memory : StorageType.File,
    retention: RetentionPolicy.Limits,
    max_age: nanos(d.maxAgeMs),
    // JetStream requires the dedup window to fit within max age.
    duplicate_window: nanos(d.maxAgeMs > 0 ? Math.min(120_000, d.maxAgeMs) : 120_000),
  };
  try {
    await jsm.streams.info(d.name);
    await jsm.streams.update(d.name, config);
  } catch (err) {
    if (/not found/i.test((err as Error).message)) await jsm.streams.add(config);
    else throw err;
  }
}
