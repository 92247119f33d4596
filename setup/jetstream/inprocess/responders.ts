/**
 * Request/reply inside one process: a request calls a responder of its exact subject
 * directly (taking turns when there are several, like a NATS queue group), with the same
 * errors as NATS: no responders, timeout, and the responder's own failure.
 */
import { BusError, errorMessage, type Headers, type RequestHandler, type Subscription } from '../bus.js';

export class Responders {
  private readonly bySubject = new Map<string, { handlers: RequestHandler[]; turn: number }>();

  add(subject: string, handler: RequestHandler): Subscription {
    let r = this.bySubject.get(subject);
    if (!r) {
      r = { handlers: [], turn: 0 };
      this.bySubject.set(subject, r);
    }
    r.handlers.push(handler);
    const entry = r;
    return {
      unsubscribe: async () => {
        entry.handlers = entry.handlers.filter((h) => h !== handler);
        if (entry.handlers.length === 0 && this.bySubject.get(subject) === entry) this.bySubject.delete(subject);
      },
    };
  }

  async request(subject: string, payload: Uint8Array, timeoutMs: number, headers: Headers): Promise<Uint8Array> {
    const r = this.bySubject.get(subject);
    const handler = r?.handlers[r.turn++ % r.handlers.length];
    if (!handler) throw new BusError('no_responders', `no responders for ${subject}`);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new BusError('timeout', `request to ${subject} timed out after ${timeoutMs} ms`)), timeoutMs);
    });
    const reply = (async () => {
      try {
        // Copies: neither side may see the other's later changes to a buffer, as over a network.
        return (await handler(payload.slice(), { ...headers })).slice();
      } catch (err) {
        throw new BusError('remote', `responder for ${subject} failed: ${errorMessage(err)}`, { cause: err });
      }
    })();
    try {
      return await Promise.race([reply, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  clear(): void {
    this.bySubject.clear();
  }
}
