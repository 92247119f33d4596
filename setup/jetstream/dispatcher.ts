/**
 * Runs a consumer's handler over delivered messages; shared by both bus implementations.
 * - Lanes: when ordered, one lane per subject and a lane never has two handlers in flight;
 *   otherwise every message is its own lane (one shared lane when concurrency is 1, and
 *   always one lane for batches: a batch is a run of the stream in order).
 * - At most `concurrency` handlers run at once; ready lanes take turns (round robin), so a
 *   busy room cannot starve the others of slots.
 * - Batches (consumeBatch): a lane's turn hands the handler up to `maxBatch` of its queued
 *   messages, which start on the next macrotask so that messages published together (in
 *   one tick) go together. The handler may handle only a leading part; the rest stay at the
 *   head of the lane. A failed batch acks nothing and its messages are retried one by one.
 * - A failing message is retried in place after a backoff, keeping its place ahead of the
 *   later messages of its subject. (Nak'ing it back to NATS would let those overtake it.)
 * - Every held message is kept alive (NATS: `working()`) while queued or running, so the
 *   server does not hand it out again while it waits behind its subject; and a repeat
 *   delivery of a message already held replaces the held copy instead of queueing twice.
 * - stop() hands queued messages back (NATS: nak, for another process to take at once) and
 *   waits for running handlers.
 */
import type { Logger } from 'pino';
import { errorMessage, retryDelayMs, type BatchHandler, type BusMessage, type MessageHandler } from './bus.js';

export interface Delivery {
  msg: Omit<BusMessage, 'deliveryCount'>;
  /** Deliveries before this one (NATS redeliveries after a crash). */
  previousDeliveries: number;
  ack(): void;
  /** Given up after maxDeliver attempts. */
  terminate(reason: string): void;
  /** Resets the server's redelivery timer. */
  keepAlive?(): void;
  /** Returns an unhandled message to the server for redelivery. */
  release?(): void;
}

export interface DispatcherOptions {
  ordered: boolean;
  concurrency: number;
  maxDeliver: number;
  /** How often held messages are kept alive; 0: never (in-process). */
  keepAliveEveryMs: number;
  logger: Logger;
  /** `<stream>/<durable>`, for logs. */
  consumer: string;
}

/** What consumeBatch dispatches: a batch handler and the most messages per call. */
export interface BatchDispatch {
  batch: BatchHandler;
  maxBatch: number;
}

export class Dispatcher {
  /** The messages this dispatcher holds, by stream sequence: queued or running. */
  private readonly held = new Map<number, Delivery>();
  /** Sequences whose handler is running (or retrying). */
  private readonly inFlight = new Set<number>();
  private readonly lanes = new Map<string, number[]>();
  /** Lanes with work and no running handler, in turn order. */
  private readonly ready: string[] = [];
  private running = 0;
  private stopped = false;
  /** Resolves on stop(): cuts a retry's backoff short. */
  private readonly stopping: Promise<void>;
  private signalStop!: () => void;
  private nextLane = 0;
  private readonly idleWaiters: Array<() => void> = [];
  private readonly keepAliveTimer: NodeJS.Timeout | undefined;
  /** Handler calls run: a batch's messages, or one message. */
  private readonly handle: BatchHandler;
  private readonly maxBatch: number;
  /** Attempts a failed batch made of messages that are now retried one by one. */
  private readonly triedInBatch = new Map<number, number>();

  constructor(
    private readonly opts: DispatcherOptions,
    handler: MessageHandler | BatchDispatch,
  ) {
    if (typeof handler === 'function') {
      this.handle = (msgs) => handler(msgs[0]!);
      this.maxBatch = 1;
    } else {
      this.handle = handler.batch;
      this.maxBatch = Math.max(1, Math.floor(handler.maxBatch));
    }
    this.stopping = new Promise((r) => (this.signalStop = r));
    if (opts.keepAliveEveryMs > 0) {
      this.keepAliveTimer = setInterval(() => {
        for (const d of this.held.values()) d.keepAlive?.();
      }, opts.keepAliveEveryMs);
      this.keepAliveTimer.unref();
    }
  }

  private get batching(): boolean {
    return this.maxBatch > 1;
  }

  /** Messages held: queued or running. */
  get size(): number {
    return this.held.size;
  }

  push(d: Delivery): void {
    if (this.stopped) {
      d.release?.();
      return;
    }
    const seq = d.msg.seq;
    if (this.held.has(seq)) {
      // A redelivery of a message we still hold: ack through the newest delivery.
      this.held.set(seq, d);
      return;
    }
    this.held.set(seq, d);
    const lane = this.opts.ordered ? d.msg.subject : this.opts.concurrency === 1 || this.batching ? '' : String(this.nextLane++);
    const queue = this.lanes.get(lane);
    if (queue) {
      queue.push(seq);
      return;
    }
    this.lanes.set(lane, [seq]);
    this.ready.push(lane);
    this.pump();
  }

  /** Stops taking messages, hands back queued ones, and resolves when running handlers have finished. */
  async stop(): Promise<void> {
    if (!this.stopped) {
      this.stopped = true;
      this.signalStop();
      clearInterval(this.keepAliveTimer);
      for (const [seq, d] of this.held) {
        if (this.inFlight.has(seq)) continue;
        this.held.delete(seq);
        d.release?.();
      }
      this.lanes.clear();
      this.ready.length = 0;
    }
    if (this.running === 0) return;
    await new Promise<void>((r) => this.idleWaiters.push(r));
  }

  private pump(): void {
    while (!this.stopped && this.running < this.opts.concurrency && this.ready.length > 0) {
      const lane = this.ready.shift()!;
      this.running++;
      void this.runLaneHead(lane).finally(() => {
        this.running--;
        if (this.running === 0 && this.stopped) for (const w of this.idleWaiters.splice(0)) w();
        this.pump();
      });
    }
  }

  private async runLaneHead(lane: string): Promise<void> {
    // Start handlers on a fresh tick: never inside the publisher's call (in-process bus). A
    // batch waits for the next macrotask, so that what was published in this one joins it.
    if (this.batching) await new Promise<void>((r) => setImmediate(r));
    else await Promise.resolve();
    const queue = this.lanes.get(lane);
    if (!queue || queue.length === 0 || this.stopped) return;
    const done = queue.length === 1 || !this.batching ? await this.handleOne(queue[0]!) : await this.handleBatch(queue.slice(0, this.maxBatch));
    if (this.stopped) return;
    queue.splice(0, done);
    if (queue.length > 0) this.ready.push(lane);
    else this.lanes.delete(lane);
  }

  /** Runs one message to its end (acked or given up); 1. */
  private async handleOne(seq: number): Promise<number> {
    const first = this.held.get(seq);
    if (!first) return 1;
    this.inFlight.add(seq);
    try {
      await this.attempts(seq, first);
    } finally {
      this.inFlight.delete(seq);
    }
    return 1;
  }

  /** Runs a batch once; on failure, its messages one by one. How many leading messages are done. */
  private async handleBatch(seqs: readonly number[]): Promise<number> {
    // Queued messages are held until settled; a lane head that is not is skipped, as handleOne does.
    const end = seqs.findIndex((seq) => !this.held.has(seq));
    if (end === 0) return 1;
    const batch = end < 0 ? seqs : seqs.slice(0, end);
    for (const seq of batch) this.inFlight.add(seq);
    const msgs = batch.map((seq) => {
      const d = this.held.get(seq)!;
      return { ...d.msg, deliveryCount: Math.max(this.triedInBatch.get(seq) ?? 0, d.previousDeliveries) + 1 };
    });
    let failure: unknown;
    let handled = 0;
    try {
      const n = await this.handle(msgs);
      handled = n === undefined ? batch.length : n;
      if (!Number.isInteger(handled) || handled < 1 || handled > batch.length) {
        throw new Error(`batch handler said it handled ${String(n)} of ${batch.length} messages (1 to ${batch.length}, or nothing for all)`);
      }
    } catch (err) {
      failure = err;
    } finally {
      for (const seq of batch) this.inFlight.delete(seq);
    }
    if (failure === undefined) {
      for (const seq of batch.slice(0, handled)) this.settle(seq, (x) => x.ack());
      // Stopped meanwhile: the part left for the next batch goes back, as queued messages did.
      if (this.stopped) for (const seq of batch.slice(handled)) this.settle(seq, (x) => x.release?.());
      return handled;
    }
    this.opts.logger.warn(
      { err: failure, consumer: this.opts.consumer, seqs: [batch[0], batch.at(-1)], size: batch.length },
      'bus batch handler failed; retrying its messages one by one',
    );
    msgs.forEach((m, i) => this.triedInBatch.set(batch[i]!, m.deliveryCount));
    if (!this.stopped) await this.backoff(retryDelayMs(1));
    let done = 0;
    for (const seq of batch) {
      if (this.stopped) break;
      await this.handleOne(seq);
      done++;
    }
    if (this.stopped) {
      // Hand back what was not retried (held messages not in flight go back in stop()).
      for (const seq of batch.slice(done)) this.settle(seq, (x) => x.release?.());
    }
    return done;
  }

  private async attempts(seq: number, first: Delivery): Promise<void> {
    let attempt = Math.max(first.previousDeliveries, this.triedInBatch.get(seq) ?? 0);
    for (;;) {
      const d = this.held.get(seq) ?? first;
      // Count the server's redeliveries too (a copy that replaced the held one).
      attempt = Math.max(attempt + 1, d.previousDeliveries + 1);
      try {
        await this.handle([{ ...d.msg, deliveryCount: attempt }]);
      } catch (err) {
        const giveUp = this.opts.maxDeliver > 0 && attempt >= this.opts.maxDeliver;
        this.opts.logger.warn(
          { err, consumer: this.opts.consumer, subject: d.msg.subject, seq, attempt, giveUp },
          giveUp ? 'bus handler failed; giving up on the message' : 'bus handler failed; will retry',
        );
        if (giveUp) {
          this.settle(seq, (x) => x.terminate(`handler failed ${attempt} times: ${errorMessage(err)}`));
          return;
        }
        if (!this.stopped) await this.backoff(retryDelayMs(attempt));
        if (this.stopped) {
          this.settle(seq, (x) => x.release?.());
          return;
        }
        continue;
      }
      this.settle(seq, (x) => x.ack());
      return;
    }
  }

  /** Waits before a retry; stop() cuts it short. */
  private backoff(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      void this.stopping.then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private settle(seq: number, how: (d: Delivery) => void): void {
    const d = this.held.get(seq);
    this.held.delete(seq);
    this.triedInBatch.delete(seq);
    if (!d) return;
    try {
      how(d);
    } catch (err) {
      // The message stays unacked in the stream and comes back later: at-least-once.
      this.opts.logger.error({ err, consumer: this.opts.consumer, seq }, 'bus could not settle a message');
    }
  }
}
