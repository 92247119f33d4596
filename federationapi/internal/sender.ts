/**
 * The outbound sender: one worker per destination server, draining that server's persisted
 * queue in transactions of up to 50 PDUs and 100 EDUs, in order. A failed transaction is
 * retried with exponential backoff (capped); items leave the queue only when the destination
 * acknowledged them, so a restart or an outage loses nothing. Queuing wakes a waiting worker.
 */
import type { Logger } from 'pino';
import type { JsonValue } from '../../internal/matrix/index.js';
import type { OutboundQueueStore } from '../storage/queue.js';

const MAX_PDUS = 50;
const MAX_EDUS = 100;
const BASE_BACKOFF_MS = 1_000;
const MAX_BACKOFF_MS = 60 * 60_000;

export interface TransactionSender {
  sendTransaction(destination: string, txnId: string, txn: { origin: string; origin_server_ts: number; pdus: JsonValue[]; edus?: JsonValue[] }): Promise<unknown>;
}

interface Worker {
  running: boolean;
  /** Set when something was queued while the worker ran: it looks again before stopping. */
  again: boolean;
  failures: number;
  retryTimer?: NodeJS.Timeout;
}

export class OutboundSender {
  private readonly workers = new Map<string, Worker>();
  private closed = false;
  private txnCounter = 0;

  constructor(
    private readonly deps: {
      serverName: string;
      queue: OutboundQueueStore;
      client: TransactionSender;
      log: Logger;
      /** Backoff base (tests shorten it). */
      baseBackoffMs?: number;
    },
  ) {}

  /** Queues a PDU (its federation JSON) for each destination and wakes their workers. */
  async sendPDU(destinations: readonly string[], pdu: JsonValue): Promise<void> {
    const to = this.remote(destinations);
    await this.deps.queue.add(to, 'pdu', JSON.stringify(pdu));
    for (const d of to) this.wake(d);
  }

  /** Queues an EDU ({edu_type, content}) for each destination and wakes their workers. */
  async sendEDU(destinations: readonly string[], edu: JsonValue): Promise<void> {
    const to = this.remote(destinations);
    await this.deps.queue.add(to, 'edu', JSON.stringify(edu));
    for (const d of to) this.wake(d);
  }

  /** Starts workers for whatever was queued before a restart. */
  async resume(): Promise<void> {
    for (const d of await this.deps.queue.destinations()) this.wake(d);
  }

  /** Retries a destination now (it came back: it sent us something). */
  retryNow(destination: string): void {
    const w = this.workers.get(destination);
    if (!w || w.retryTimer === undefined) return;
    clearTimeout(w.retryTimer);
    w.retryTimer = undefined;
    w.failures = 0;
    this.wake(destination);
  }

  close(): void {
    this.closed = true;
    for (const w of this.workers.values()) clearTimeout(w.retryTimer);
  }

  private remote(destinations: readonly string[]): string[] {
    return [...new Set(destinations)].filter((d) => d !== this.deps.serverName);
  }

  private wake(destination: string): void {
    if (this.closed) return;
    let w = this.workers.get(destination);
    if (!w) this.workers.set(destination, (w = { running: false, again: false, failures: 0 }));
    if (w.retryTimer !== undefined) return; // backing off: the timer will run it
    if (w.running) {
      w.again = true;
      return;
    }
    w.running = true;
    void this.run(destination, w);
  }

  private async run(destination: string, w: Worker): Promise<void> {
    try {
      for (;;) {
        w.again = false;
        const items = await this.deps.queue.next(destination, MAX_PDUS, MAX_EDUS);
        if (items.length === 0) {
          if (w.again) continue;
          break;
        }
        const txnId = `${Date.now()}_${++this.txnCounter}`;
        try {
          await this.deps.client.sendTransaction(destination, txnId, {
            origin: this.deps.serverName,
            origin_server_ts: Date.now(),
            pdus: items.filter((i) => i.kind === 'pdu').map((i) => JSON.parse(i.json) as JsonValue),
            edus: items.filter((i) => i.kind === 'edu').map((i) => JSON.parse(i.json) as JsonValue),
          });
        } catch (err) {
          w.failures += 1;
          const delay = Math.min(MAX_BACKOFF_MS, (this.deps.baseBackoffMs ?? BASE_BACKOFF_MS) * 2 ** Math.min(w.failures - 1, 20));
          this.deps.log.info({ destination, failures: w.failures, retryInMs: delay, err: err instanceof Error ? err.message : String(err) }, 'federation: transaction failed, will retry');
          if (!this.closed) {
            w.retryTimer = setTimeout(() => {
              w.retryTimer = undefined;
              w.running = false;
              this.wake(destination);
            }, delay);
            w.retryTimer.unref();
          }
          return;
        }
        w.failures = 0;
        await this.deps.queue.remove(items.map((i) => i.id));
      }
      w.running = false;
    } catch (err) {
      w.running = false;
      this.deps.log.error({ err, destination }, 'federation: sender worker failed');
    }
  }
}
