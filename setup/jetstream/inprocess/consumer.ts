/**
 * One durable consumer of the in-process bus: feeds the dispatcher from the store, at most
 * MAX_ACK_PENDING messages at a time, as a JetStream pull consumer does. New messages go
 * straight from publish to the dispatcher while the consumer keeps up; once it falls behind
 * it reads the backlog from the store in order as acks make room, so a backlog costs disk,
 * not memory.
 */
import type { Logger } from 'pino';
import { MAX_ACK_PENDING, subjectMatches, type MessageHandler } from '../bus.js';
import { Dispatcher, type BatchDispatch } from '../dispatcher.js';
import type { StreamDefinition } from '../streams.js';
import type { MessageStore, StoredMessage } from './message-store.js';

export interface InProcessConsumerOptions {
  def: StreamDefinition;
  durable: string;
  filter: string;
  store: MessageStore;
  ordered: boolean;
  concurrency: number;
  maxDeliver: number;
  logger: Logger;
  maxAckPending?: number;
}

export class InProcessConsumer {
  private readonly dispatcher: Dispatcher;
  /** The last sequence number looked at: everything up to it has been handed over or skipped. */
  private cursor: number;
  /** Messages after the cursor wait in the store. */
  private behind = true;
  private fillQueued = false;
  private stopped = false;
  private readonly maxAckPending: number;

  constructor(
    private readonly opts: InProcessConsumerOptions,
    handler: MessageHandler | BatchDispatch,
  ) {
    this.maxAckPending = opts.maxAckPending ?? MAX_ACK_PENDING;
    opts.store.registerConsumer(opts.def.name, opts.durable, opts.filter);
    this.cursor = opts.store.floor(opts.def.name, opts.durable);
    this.dispatcher = new Dispatcher(
      {
        ordered: opts.ordered,
        concurrency: opts.concurrency,
        maxDeliver: opts.maxDeliver,
        keepAliveEveryMs: 0,
        logger: opts.logger,
        consumer: `${opts.def.name}/${opts.durable}`,
      },
      handler,
    );
  }

  get durable(): string {
    return this.opts.durable;
  }

  /** Starts delivering: first whatever is waiting in the store. */
  start(): void {
    this.fill();
  }

  /** A message the bus has just stored in this consumer's stream. */
  offer(m: StoredMessage): void {
    if (this.stopped) return;
    if (this.behind || this.dispatcher.size >= this.maxAckPending) {
      this.behind = true;
      return;
    }
    this.cursor = m.seq;
    if (subjectMatches(this.opts.filter, m.subject)) this.handOver(m);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.dispatcher.stop();
  }

  private handOver(m: StoredMessage): void {
    const settle = (): void => {
      this.opts.store.ack(this.opts.def.name, this.opts.durable, m.seq);
      // Refill in batches (at half the window), as a pull consumer re-pulls at a threshold.
      if (this.behind && this.dispatcher.size <= this.maxAckPending / 2) this.queueFill();
    };
    this.dispatcher.push({
      msg: { subject: m.subject, data: m.data, headers: m.headers, seq: m.seq },
      previousDeliveries: 0,
      ack: settle,
      terminate: settle,
    });
  }

  private queueFill(): void {
    if (this.fillQueued) return;
    this.fillQueued = true;
    queueMicrotask(() => {
      this.fillQueued = false;
      this.fill();
    });
  }

  private fill(): void {
    const { def, durable, store } = this.opts;
    while (this.behind && !this.stopped) {
      const room = Math.min(this.maxAckPending - this.dispatcher.size, 500);
      if (room <= 0) return;
      const minTs = def.maxAgeMs > 0 ? Date.now() - def.maxAgeMs : 0;
      const batch = store.fetch(def.name, durable, this.cursor, room, minTs);
      for (const m of batch) {
        this.cursor = m.seq;
        this.handOver(m);
      }
      if (batch.length < room) this.behind = false;
    }
  }
}
