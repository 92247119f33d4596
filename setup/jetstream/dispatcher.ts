/**
 * Runs a consumer's handler over delivered messages, shared by both bus implementations:
 * per-subject FIFO queues (one subject never has two messages in flight when ordered), a
 * global concurrency limit, and retries in place so that a failing message keeps its place
 * ahead of the later messages of its subject.
 */
import type { Logger } from 'pino';
import { retryDelayMs, sleep, type BusMessage } from './bus.js';

export interface Delivery {
  msg: Omit<BusMessage, 'deliveryCount'>;
  /** deliveries before this one (NATS redeliveries after a crash). */
  previousDeliveries: number;
  ack(): Promise<void> | void;
  /** Given up after maxDeliver attempts. */
  terminate(reason: string): Promise<void> | void;
  /** Called between attempts (NATS: extend the ack deadline). */
  stillWorking?(): void;
}

export interface DispatcherOptions {
  ordered: boolean;
  concurrency: number;
  maxDeliver: number;
  logger: Logger;
  consumer: string;
}

export class Dispatcher {
  private readonly queues = new Map<string, Delivery[]>();
  /** Subjects with a queue waiting for a concurrency slot, in arrival order. */
  private readonly ready: string[] = [];
  private running = 0;
  private stopped = false;
  private readonly idleWaiters: Array<() => void> = [];
  private nextKey = 0;

  constructor(
    private readonly opts: DispatcherOptions,
    private readonly handler: (msg: BusMessage) => Promise<void>,
  ) {}

  push(d: Delivery): void {
    if (this.stopped) return;
    // Unordered with concurrency 1 is still strictly sequential: one shared queue.
    const key = this.opts.ordered ? d.msg.subject : this.opts.concurrency === 1 ? '' : String(this.nextKey++);
    const q = this.queues.get(key);
    if (q) {
      q.push(d);
      return;
    }
    this.queues.set(key, [d]);
    this.ready.push(key);
    this.pump();
  }

  /** Stops taking messages; resolves when in-flight handlers have finished. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.queues.clear();
    this.ready.length = 0;
    if (this.running === 0) return;
    await new Promise<void>((r) => this.idleWaiters.push(r));
  }

  get inFlight(): number {
    return this.running;
  }

  private pump(): void {
    while (!this.stopped && this.running < this.opts.concurrency && this.ready.length > 0) {
      const key = this.ready.shift()!;
      this.running++;
      void this.drain(key).finally(() => {
        this.running--;
        if (this.running === 0 && this.stopped) for (const w of this.idleWaiters.splice(0)) w();
        this.pump();
      });
    }
  }

  /** Handles one subject's queue head; requeues the subject if more are waiting. */
  private async drain(key: string): Promise<void> {
    const q = this.queues.get(key);
    const d = q?.[0];
    if (!q || !d) return;
    await this.handleOne(d);
    if (this.stopped) return;
    q.shift();
    if (q.length > 0) this.ready.push(key);
    else this.queues.delete(key);
  }

  private async handleOne(d: Delivery): Promise<void> {
    for (let attempt = d.previousDeliveries + 1; ; attempt++) {
      try {
        await this.handler({ ...d.msg, deliveryCount: attempt });
        await d.ack();
        return;
      } catch (err) {
        const giveUp = this.opts.maxDeliver > 0 && attempt >= this.opts.maxDeliver;
        this.opts.logger.warn(
          { err, consumer: this.opts.consumer, subject: d.msg.subject, seq: d.msg.seq, attempt, giveUp },
          giveUp ? 'bus handler failed; giving up on the message' : 'bus handler failed; will retry',
        );
        if (giveUp) {
          await d.terminate(err instanceof Error ? err.message : String(err));
          return;
        }
        if (this.stopped) return; // left unacked: redelivered after restart
        d.stillWorking?.();
        await sleep(retryDelayMs(attempt));
        if (this.stopped) return;
      }
    }
  }
}
