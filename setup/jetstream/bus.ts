/**
 * The bus between components (../shared/design.md §3): one small interface with two
 * implementations, NATS JetStream (`nats/`) and in-process (`inprocess/`), held to one
 * contract (`bus.contract.ts`). Semantics the components rely on:
 * - publish resolves once the message is stored (durably, for durable streams);
 * - durable consumers get every message until they ack it: a handler that throws sees the
 *   message again (up to maxDeliver), and a process that dies before acking sees it again
 *   on restart;
 * - with `orderedBySubject`, one subject's messages are handled strictly in order while
 *   different subjects run in parallel (InputRoomEvent has one subject per room);
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
  /** How long a delivery may stay unacknowledged before NATS redelivers it. */
  ackWaitMs?: number;
  /** Attempts before a message is given up (logged and dropped). 0: never give up. */
  maxDeliver?: number;
  orderedBySubject?: boolean;
  /** Messages handled at once (across subjects when ordered). Default 1. */
  concurrency?: number;
}

export interface PublishOptions {
  headers?: Headers;
  /** Deduplication ID: a second publish with the same ID is stored once. */
  msgId?: string;
}

export interface Bus {
  readonly kind: 'nats' | 'inprocess';
  publish(subject: string, payload: Uint8Array, opts?: PublishOptions): Promise<{ stream: string; seq: number }>;
  consume(opts: ConsumeOptions, handler: (msg: BusMessage) => Promise<void>): Promise<Subscription>;
  request(subject: string, payload: Uint8Array, timeoutMs: number, headers?: Headers): Promise<Uint8Array>;
  respond(subject: string, handler: (payload: Uint8Array, headers: Headers) => Promise<Uint8Array>): Promise<Subscription>;
  close(): Promise<void>;
}

export type BusErrorCode = 'timeout' | 'no_responders' | 'closed' | 'no_stream' | 'connect';

export class BusError extends Error {
  constructor(
    readonly code: BusErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'BusError';
  }
}

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
