/**
 * Request/reply over core NATS: responders join one queue group per subject, so several
 * processes can serve a component and each request reaches one of them. A responder that
 * throws answers with an error header, so the requester fails at once rather than timing out.
 */
import { ClosedConnectionError, NoRespondersError, RequestError, TimeoutError, headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { BusError, RESPONDER_ERROR_HEADER, errorMessage, type Headers, type RequestHandler, type Subscription } from '../bus.js';
import { fromNatsHeaders, toNatsHeaders } from './headers.js';

const RESPONDER_QUEUE = 'dendrite-api';

export async function natsRequest(nc: NatsConnection, subject: string, payload: Uint8Array, timeoutMs: number, headers?: Headers): Promise<Uint8Array> {
  let reply;
  try {
    const h = toNatsHeaders(headers);
    reply = await nc.request(subject, payload, { timeout: timeoutMs, ...(h ? { headers: h } : {}) });
  } catch (err) {
    throw requestError(err, subject, timeoutMs);
  }
  const failure = reply.headers?.get(RESPONDER_ERROR_HEADER);
  if (failure) throw new BusError('remote', `responder for ${subject} failed: ${failure}`);
  return reply.data;
}

function requestError(err: unknown, subject: string, timeoutMs: number): unknown {
  const cause = err instanceof RequestError && err.cause !== undefined ? err.cause : err;
  if (cause instanceof NoRespondersError || (err instanceof RequestError && err.isNoResponders())) {
    return new BusError('no_responders', `no responders for ${subject}`, { cause: err });
  }
  if (cause instanceof TimeoutError || err instanceof TimeoutError) {
    return new BusError('timeout', `request to ${subject} timed out after ${timeoutMs} ms`, { cause: err });
  }
  if (cause instanceof ClosedConnectionError) return new BusError('closed', `request to ${subject}: the NATS connection is closed`, { cause: err });
  return err;
}

export async function natsRespond(nc: NatsConnection, subject: string, handler: RequestHandler, logger: Logger): Promise<Subscription> {
  const sub = nc.subscribe(subject, {
    queue: RESPONDER_QUEUE,
    callback: (err, msg) => {
      if (err) {
        logger.error({ err, subject }, 'responder subscription failed');
        return;
      }
      void handler(msg.data, fromNatsHeaders(msg.headers)).then(
        (reply) => msg.respond(reply),
        (e: unknown) => {
          logger.warn({ err: e, subject }, 'responder failed');
          const h = natsHeaders();
          // Header values are one line.
          h.set(RESPONDER_ERROR_HEADER, errorMessage(e).replace(/[\r\n]+/g, ' ') || 'error');
          msg.respond(new Uint8Array(0), { headers: h });
        },
      );
    },
  });
  // The server must know the subscription before a caller relies on it.
  await nc.flush();
  return { unsubscribe: async () => sub.unsubscribe() };
}
