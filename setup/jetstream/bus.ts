/**
 * The bus between components (../shared/design.md §3): one small interface with two
 * implementations, NATS JetStream (`nats/`) and in-process (`inprocess/`), held to one
 * contract (`bus.contract.ts`). Semantics the components rely on:
 * - publish resolves once the message is stored (durably, for durable streams);
 * - durable consumers get every message until they ack it: a handler that throws sees the
 *   message again (up to maxDeliver), and a process that dies before acking sees it again
 *   on restart (at-least-once: handlers must tolerate a repeat);
 * - with `orderedBySubject`, one subject's messages are handled strictly in order while
 *   different subjects run in parallel (InputRoomEvent has one subject per room);
 * - `consumeBatch` hands a handler the messages that are waiting together (up to a limit, in
 *   the same order), so that it can do their work in one database transaction; they are
 *   acked once it resolves, and a batch that fails is retried message by message;
 * - streams keep a message until every durable consumer of the stream whose filter matches
 *   it has acked it (JetStream's interest retention, as Dendrite configures its streams), or
 *   until the stream's max age. Create durables before publishing to them: a message that no
 *   durable wants when it is stored may be dropped;
 * - request/reply for synchronous calls between components.
 */

export type Headers = Record<string, string>;

export interface BusMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers: Headers;
  /** Position in its stream. */
  readonly seq: number;
  /** 1 on first delivery. */
  readonly deliveryCount: number;
}

export interface Subscription {
  unsubscribe(): Promise<void>;
}

export interface ConsumeOptions {
  stream: string;
  /** Durable name: progress is kept under it across restarts. */
  durable: string;
  /** Only subjects matching this (NATS wildcards `*` and `>`). Default: the whole stream. */
  filterSubject?: string;
  /**
   * NATS: how long a delivery may go unacknowledged before the server hands it to another
   * process. Held messages are kept alive while this process works on them, so this only
   * bounds how soon a crashed process's messages come back. Default 30 s.
   */
  ackWaitMs?: number;
  /** Attempts before a message is given up (logged and dropped). 0: never give up (default). */
  maxDeliver?: number;
  orderedBySubject?: boolean;
  /** Messages handled at once (across subjects when ordered). Default 1. */
  concurrency?: number;
}

export interface ConsumeBatchOptions extends ConsumeOptions {
  /** Most messages handed to one call. Default 100. */
  maxBatch?: number;
}

export interface PublishOptions {
  headers?: Headers;
  /** Deduplication ID: a second publish with the same ID within two minutes is stored once. */
  msgId?: string;
}

export interface PublishAck {
  stream: string;
  /** The message's sequence number; for a duplicate msgId, the original's when known, else 0. */
  seq: number;
}

export type MessageHandler = (msg: BusMessage) => Promise<void>;

/**
 * Handles messages that were waiting together, oldest first (one subject's when ordered by
 * subject, else the stream's), and says how many of the leading ones it handled: at least
 * one, and nothing means all. Those are acked together once it resolves; the rest lead the
 * next call. Returning early lets a handler commit one kind of work atomically and take the
 * next kind on its own. A throw acks none of them (see consumeBatch).
 */
export type BatchHandler = (msgs: readonly BusMessage[]) => Promise<number | void>;
export type RequestHandler = (payload: Uint8Array, headers: Headers) => Promise<Uint8Array>;

export interface Bus {
  readonly kind: 'nats' | 'inprocess';
  publish(subject: string, payload: Uint8Array, opts?: PublishOptions): Promise<PublishAck>;
  consume(opts: ConsumeOptions, handler: MessageHandler): Promise<Subscription>;
  /**
   * As consume, but hands over up to `maxBatch` messages that are already here at once, so
   * that a consumer can do a batch's work in one database transaction. Never waits for more
   * to arrive. Order: one subject's messages in order with `orderedBySubject` (subjects in
   * parallel, up to `concurrency` batches at once), else the whole stream in order, one batch
   * at a time. A batch that fails acks nothing; its messages are then retried one by one
   * (same backoff and maxDeliver as consume, each counting the failed batch as an attempt),
   * so that one bad message cannot hold good ones back or take them down with it. Handlers
   * must tolerate a repeat, as with consume.
   */
  consumeBatch(opts: ConsumeBatchOptions, handler: BatchHandler): Promise<Subscription>;
  /** Fails with BusError code `timeout`, `no_responders`, or `remote` (the responder threw). */
  request(subject: string, payload: Uint8Array, timeoutMs: number, headers?: Headers): Promise<Uint8Array>;
  /** Serves a subject; several responders (across processes) share the requests. */
  respond(subject: string, handler: RequestHandler): Promise<Subscription>;
  /** Stops consumers (waiting for running handlers) and responders, then lets go of the connection or file. */
  close(): Promise<void>;
}

export type BusErrorCode = 'timeout' | 'no_responders' | 'remote' | 'closed' | 'no_stream' | 'in_use' | 'connect' | 'storage';

export class BusError extends Error {
  constructor(
    readonly code: BusErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'BusError';
  }
}

/**
 * Messages a durable consumer may hold unacknowledged (JetStream's max_ack_pending). Bounds
 * the memory a backlog takes; a subject with this many messages waiting holds up the others.
 */
export const MAX_ACK_PENDING = 1000;

/** consumeBatch's default batch size. */
export const DEFAULT_MAX_BATCH = 100;

/** Header a responder's failure travels in, so the requester fails at once instead of timing out. */
export const RESPONDER_ERROR_HEADER = 'Bus-Responder-Error';

/** NATS subject matching: `*` matches one token, `>` the rest (one or more tokens). */
export function subjectMatches(filter: string, subject: string): boolean {
  if (filter === subject || filter === '>') return true;
  const f = filter.split('.');
  const s = subject.split('.');
  for (let i = 0; i < f.length; i++) {
    const tok = f[i];
    if (tok === '>') return s.length > i;
    if (i >= s.length) return false;
    if (tok !== '*' && tok !== s[i]) return false;
  }
  return f.length === s.length;
}

/** Wait between attempts of a failing handler: 100 ms doubling, at most 5 s. */
export function retryDelayMs(attempt: number): number {
  return Math.min(100 * 2 ** Math.max(0, attempt - 1), 5_000);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
