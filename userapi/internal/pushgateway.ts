/**
 * Delivery to HTTP push gateways (Push Gateway API, POST /_matrix/push/v1/notify). Sends are
 * queued and made in the background, a few at a time, so a slow or dead gateway never holds up
 * the event consumer. A failed send (network error, 5xx, 429) is retried with exponential
 * backoff; 4xx other than 429 is final. Pushkeys the gateway lists as `rejected` are reported
 * to `onRejected`, which removes their pushers.
 */
import http from 'node:http';
import https from 'node:https';
import type { Logger } from 'pino';

export interface PushDevice {
  app_id: string;
  pushkey: string;
  pushkey_ts: number;
  data: Record<string, unknown>;
  tweaks: Record<string, unknown>;
}

/** The `notification` object of a notify request. */
export type GatewayNotification = Record<string, unknown> & { devices: PushDevice[] };

export interface PushGatewayOptions {
  /** user_api.push_gateway_disable_tls_validation: for test gateways with self-signed certificates. */
  disableTlsValidation: boolean;
  log: Logger;
  /** The gateway refused these pushkeys (sent to `url` for `userId`). */
  onRejected: (userId: string, appId: string, pushkeys: string[]) => Promise<void>;
  maxAttempts?: number;
  /** First retry delay, doubling each time (capped at 10 minutes). */
  baseDelayMs?: number;
  timeoutMs?: number;
  concurrency?: number;
  /** Sends waiting beyond this are dropped, oldest first (a push is only a hint to sync). */
  maxQueued?: number;
}

interface Job {
  url: string;
  userId: string;
  appId: string;
  body: string;
  attempt: number;
}

const MAX_BACKOFF_MS = 600_000;

export class PushGatewayClient {
  private readonly queue: Job[] = [];
  private running = 0;
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;
  private readonly httpsAgent: https.Agent;
  private readonly httpAgent = new http.Agent({ keepAlive: true });
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly opts: PushGatewayOptions) {
    this.httpsAgent = new https.Agent({ keepAlive: true, rejectUnauthorized: !opts.disableTlsValidation });
  }

  /** Queues a notify request; returns at once. */
  send(url: string, userId: string, notification: GatewayNotification): void {
    if (this.closed) return;
    const appId = notification.devices[0]?.app_id ?? '';
    this.enqueue({ url, userId, appId, body: JSON.stringify({ notification }), attempt: 0 });
  }

  private enqueue(job: Job): void {
    this.queue.push(job);
    const max = this.opts.maxQueued ?? 10_000;
    if (this.queue.length > max) {
      const dropped = this.queue.shift()!;
      this.opts.log.warn({ url: dropped.url }, 'push gateway queue full: dropping the oldest push');
    }
    this.pump();
  }

  private pump(): void {
    const concurrency = this.opts.concurrency ?? 16;
    while (!this.closed && this.running < concurrency && this.queue.length > 0) {
      const job = this.queue.shift()!;
      this.running++;
      void this.run(job).finally(() => {
        this.running--;
        this.pump();
        if (this.running === 0 && this.queue.length === 0 && this.timers.size === 0) {
          const w = this.idleWaiters;
          this.idleWaiters = [];
          for (const f of w) f();
        }
      });
    }
  }

  private async run(job: Job): Promise<void> {
    const log = this.opts.log;
    let status = 0;
    let text = '';
    try {
      ({ status, text } = await this.post(job.url, job.body));
    } catch (err) {
      log.debug({ err, url: job.url }, 'push gateway unreachable');
    }
    if (status >= 200 && status < 300) {
      let rejected: unknown;
      try {
        rejected = (JSON.parse(text || '{}') as { rejected?: unknown }).rejected;
      } catch {
        rejected = undefined;
      }
      if (Array.isArray(rejected) && rejected.length > 0) {
        const keys = rejected.filter((k): k is string => typeof k === 'string');
        try {
          await this.opts.onRejected(job.userId, job.appId, keys);
        } catch (err) {
          log.error({ err }, 'cannot remove rejected pushers');
        }
      }
      return;
    }
    const retriable = status === 0 || status === 429 || status >= 500;
    const attempt = job.attempt + 1;
    if (!retriable || attempt >= (this.opts.maxAttempts ?? 8)) {
      log.warn({ url: job.url, status, attempts: attempt }, 'push gateway: giving up on a push');
      return;
    }
    const delay = Math.min((this.opts.baseDelayMs ?? 1_000) * 2 ** (attempt - 1), MAX_BACKOFF_MS);
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.enqueue({ ...job, attempt });
    }, delay);
    timer.unref();
    this.timers.add(timer);
  }

  private post(url: string, body: string): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const u = new URL(url);
      const mod = u.protocol === 'https:' ? https : http;
      const req = mod.request(
        u,
        {
          method: 'POST',
          agent: u.protocol === 'https:' ? this.httpsAgent : this.httpAgent,
          headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
          timeout: this.opts.timeoutMs ?? 10_000,
        },
        (res) => {
          const parts: Buffer[] = [];
          let size = 0;
          res.on('data', (b: Buffer) => {
            size += b.length;
            if (size <= 64 * 1024) parts.push(b);
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(parts).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error('push gateway timed out')));
      req.on('error', reject);
      req.end(body);
    });
  }

  /** Resolves once nothing is queued, sending or waiting to retry (tests, shutdown). */
  idle(): Promise<void> {
    if (this.running === 0 && this.queue.length === 0 && this.timers.size === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.queue.length = 0;
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}
