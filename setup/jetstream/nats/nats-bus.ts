/**
 * The bus on NATS JetStream (required for polylith): connection (`connection.ts`), streams
 * made at start-up (`stream-setup.ts`), durable pull consumers (`consumer.ts`) and core NATS
 * request/reply (`request-reply.ts`).
 */
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import {
  BusError,
  DEFAULT_MAX_BATCH,
  errorMessage,
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
import { connectNats } from './connection.js';
import type { BatchDispatch } from '../dispatcher.js';
import { startConsumer, type RunningConsumer } from './consumer.js';
import { toNatsHeaders } from './headers.js';
import { natsRequest, natsRespond } from './request-reply.js';
import { ensureStreams } from './stream-setup.js';

export interface NatsBusOptions {
  addresses: string[];
  topicPrefix: string;
  logger: Logger;
  /** Tests shorten max ages. */
  maxAgeOverrides?: Partial<Record<StreamName, number>>;
  /** Tests shorten the pull request expiry (and so the wait for handed-back messages). */
  pullExpiresMs?: number;
}

export class NatsBus implements Bus {
  readonly kind = 'nats' as const;
  private readonly consumers = new Set<RunningConsumer>();
  private readonly subscriptions = new Set<Subscription>();

  private constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly js: JetStreamClient,
    readonly defs: readonly StreamDefinition[],
    private readonly logger: Logger,
    private readonly pullExpiresMs: number | undefined,
  ) {}

  static async connect(opts: NatsBusOptions): Promise<NatsBus> {
    const nc = await connectNats(opts.addresses, opts.logger);
    const defs = streamDefinitions(opts.topicPrefix, opts.maxAgeOverrides);
    let jsm: JetStreamManager;
    try {
      jsm = await jetstreamManager(nc);
      await ensureStreams(jsm, defs, opts.logger);
    } catch (err) {
      await nc.close();
      throw new BusError('connect', `NATS at ${opts.addresses.join(', ')} has no usable JetStream: ${errorMessage(err)}`, { cause: err });
    }
    return new NatsBus(nc, jsm, jetstream(nc), defs, opts.logger, opts.pullExpiresMs);
  }

  async publish(subject: string, payload: Uint8Array, opts: PublishOptions = {}): Promise<PublishAck> {
    // Checked here: JetStream's answer for a subject no stream holds is a misleading "jetstream is not enabled".
    const d = streamOfSubject(this.defs, subject);
    if (!d) throw new BusError('no_stream', `no stream holds subject ${subject}`);
    const h = toNatsHeaders(opts.headers);
    try {
      const ack = await this.js.publish(subject, payload, { ...(h ? { headers: h } : {}), ...(opts.msgId ? { msgID: opts.msgId } : {}) });
      return { stream: ack.stream, seq: ack.seq };
    } catch (err) {
      throw new BusError(this.nc.isClosed() ? 'closed' : 'timeout', `publish to ${subject} was not stored: ${errorMessage(err)}`, { cause: err });
    }
  }

  async consume(opts: ConsumeOptions, handler: MessageHandler): Promise<Subscription> {
    return this.startConsumer(opts, handler);
  }

  async consumeBatch(opts: ConsumeBatchOptions, handler: BatchHandler): Promise<Subscription> {
    return this.startConsumer(opts, { batch: handler, maxBatch: opts.maxBatch ?? DEFAULT_MAX_BATCH });
  }

  private async startConsumer(opts: ConsumeOptions, handler: MessageHandler | BatchDispatch): Promise<Subscription> {
    if (!this.defs.some((d) => d.name === opts.stream)) throw new BusError('no_stream', `no stream named ${opts.stream}`);
    const consumer = await startConsumer(this.jsm, this.js, opts, handler, this.logger, this.pullExpiresMs);
    this.consumers.add(consumer);
    return {
      unsubscribe: async () => {
        this.consumers.delete(consumer);
        await consumer.stop();
      },
    };
  }

  async request(subject: string, payload: Uint8Array, timeoutMs: number, headers?: Headers): Promise<Uint8Array> {
    return natsRequest(this.nc, subject, payload, timeoutMs, headers);
  }

  async respond(subject: string, handler: RequestHandler): Promise<Subscription> {
    const sub = await natsRespond(this.nc, subject, handler, this.logger);
    this.subscriptions.add(sub);
    return {
      unsubscribe: async () => {
        this.subscriptions.delete(sub);
        await sub.unsubscribe();
      },
    };
  }

  /** Deletes this prefix's streams (tests, benchmarks). */
  async deleteStreams(): Promise<void> {
    for (const d of this.defs) await this.jsm.streams.delete(d.name).catch(() => false);
  }

  async close(): Promise<void> {
    if (this.nc.isClosed()) return;
    // Consumers first, so that running handlers can still ack; drain then flushes those acks.
    await Promise.all([...this.consumers].map((c) => c.stop()));
    this.consumers.clear();
    this.subscriptions.clear();
    await this.nc.drain();
  }
}
