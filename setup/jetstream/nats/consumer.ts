/**
 * A durable pull consumer with explicit ack, feeding the shared Dispatcher. The consumer is
 * created or updated on the server (so that several processes can share one durable), then
 * pulled with `consume()`; acks, terms and naks go back per message.
 */
import { AckPolicy, DeliverPolicy, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { BusError, MAX_ACK_PENDING, errorMessage, type ConsumeOptions, type MessageHandler } from '../bus.js';
import { Dispatcher, type BatchDispatch, type Delivery } from '../dispatcher.js';
import { fromNatsHeaders } from './headers.js';

export const DEFAULT_ACK_WAIT_MS = 30_000;

/**
 * How long each pull request waits on the server (the client renews it). Shorter than the
 * client's 30 s default: it bounds how long messages handed back by a stopped consumer wait.
 */
export const DEFAULT_PULL_EXPIRES_MS = 5_000;

export interface RunningConsumer {
  stop(): Promise<void>;
}

export async function startConsumer(
  jsm: JetStreamManager,
  js: JetStreamClient,
  opts: ConsumeOptions,
  handler: MessageHandler | BatchDispatch,
  logger: Logger,
  pullExpiresMs = DEFAULT_PULL_EXPIRES_MS,
): Promise<RunningConsumer> {
  const name = `${opts.stream}/${opts.durable}`;
  const ackWaitMs = opts.ackWaitMs ?? DEFAULT_ACK_WAIT_MS;
  const config = {
    durable_name: opts.durable,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(ackWaitMs),
    // Counts deliveries across processes too: a message that kills every process that takes
    // it is given up after maxDeliver tries.
    max_deliver: opts.maxDeliver && opts.maxDeliver > 0 ? opts.maxDeliver : -1,
    max_ack_pending: MAX_ACK_PENDING,
    // (An empty filter would end up in the create request's subject, which NATS rejects.)
    ...(opts.filterSubject ? { filter_subject: opts.filterSubject } : {}),
  };
  try {
    await jsm.consumers.add(opts.stream, config);
  } catch (err) {
    // Servers from 2.10 refuse to create over a differently made durable: update it instead.
    const { durable_name: _, ack_policy: __, deliver_policy: ___, ...editable } = config;
    await jsm.consumers.update(opts.stream, opts.durable, editable).catch(() => {
      throw new BusError('no_stream', `cannot create consumer ${name}: ${errorMessage(err)}`, { cause: err });
    });
  }
  const consumer = await js.consumers.get(opts.stream, opts.durable);
  const messages = await consumer.consume({ max_messages: Math.min(MAX_ACK_PENDING, 256), expires: pullExpiresMs });
  const dispatcher = new Dispatcher(
    {
      ordered: opts.orderedBySubject ?? false,
      concurrency: opts.concurrency ?? 1,
      maxDeliver: opts.maxDeliver ?? 0,
      keepAliveEveryMs: Math.max(20, Math.floor(ackWaitMs / 3)),
      logger,
      consumer: name,
    },
    handler,
  );
  // A pull request outlives the consume() that made it until it expires, and the server hands
  // a nak'ed message to any waiting request, live or not: hand messages back only after it.
  void pull(messages, dispatcher, pullExpiresMs + 500, logger, name);
  void logStatus(messages, logger, name);
  return {
    stop: async () => {
      await messages.close();
      await dispatcher.stop();
    },
  };
}

async function pull(messages: ConsumerMessages, dispatcher: Dispatcher, releaseDelayMs: number, logger: Logger, name: string): Promise<void> {
  try {
    for await (const m of messages) dispatcher.push(delivery(m, releaseDelayMs));
  } catch (err) {
    logger.error({ err, consumer: name }, 'NATS consumer stopped');
  }
}

function delivery(m: JsMsg, releaseDelayMs: number): Delivery {
  return {
    msg: { subject: m.subject, data: m.data, headers: fromNatsHeaders(m.headers), seq: m.seq },
    previousDeliveries: m.info.deliveryCount - 1,
    ack: () => m.ack(),
    terminate: (reason) => m.term(reason),
    keepAlive: () => m.working(),
    release: () => m.nak(releaseDelayMs),
  };
}

async function logStatus(messages: ConsumerMessages, logger: Logger, name: string): Promise<void> {
  for await (const s of messages.status()) {
    switch (s.type) {
      case 'heartbeats_missed':
      case 'consumer_not_found':
      case 'stream_not_found':
      case 'consumer_deleted':
      case 'exceeded_limits':
      case 'no_responders':
        logger.warn({ consumer: name, status: s }, `NATS consumer: ${s.type}`);
        break;
      default:
        break;
    }
  }
}
