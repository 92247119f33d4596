/**
 * Bus benchmarks, ~1 KB payloads, for the in-process bus (in memory, and durable on SQLite)
 * and NATS JetStream at 127.0.0.1:4222 (skipped when it is not there):
 * - throughput: messages from publish to handled, with 64 publishes in flight;
 * - latency one at a time: publish, wait for the handler, repeat (no queueing);
 * - latency at a steady 2,000 msgs/s, well within every implementation's capacity;
 * - roomserver shape: 50 rooms, ordered by subject, 8 handlers at once.
 * Run: npm run build && node dist/bench/http/bus.js
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pino from 'pino';
import type { Bus } from '../../setup/jetstream/bus.js';
import { InProcessBus } from '../../setup/jetstream/inprocess/inprocess-bus.js';
import { NatsBus } from '../../setup/jetstream/nats/nats-bus.js';
import { subjectFor } from '../../setup/jetstream/streams.js';

const logger = pino({ level: 'silent' });
const payload = new Uint8Array(1024).fill(120);

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;
}

interface Latencies {
  p50: number;
  p99: number;
}

/** Microseconds, rounded. */
function summarise(ms: number[]): Latencies {
  ms.sort((a, b) => a - b);
  return { p50: Math.round(percentile(ms, 0.5) * 1000), p99: Math.round(percentile(ms, 0.99) * 1000) };
}

/** Publishes `count` messages keeping `window` publishes in flight; the clock stops when the last is handled. */
async function throughput(bus: Bus, prefix: string, count: number, window = 64): Promise<number> {
  let handled = 0;
  let done!: () => void;
  const allHandled = new Promise<void>((r) => (done = r));
  const sub = await bus.consume({ stream: `${prefix}OutputRoomEvent`, durable: 'bench-throughput' }, async () => {
    if (++handled === count) done();
  });
  const subject = subjectFor(prefix, 'OutputRoomEvent');
  const start = performance.now();
  let next = 0;
  const publisher = async (): Promise<void> => {
    while (next < count) {
      next++;
      await bus.publish(subject, payload);
    }
  };
  await Promise.all(Array.from({ length: window }, publisher));
  await allHandled;
  const perSec = Math.round(count / ((performance.now() - start) / 1000));
  await sub.unsubscribe();
  return perSec;
}

/** Publish, wait for the handler, repeat. */
async function latencyOneAtATime(bus: Bus, prefix: string, count: number): Promise<Latencies> {
  const subject = subjectFor(prefix, 'OutputClientData');
  let arrived: (() => void) | undefined;
  const sub = await bus.consume({ stream: `${prefix}OutputClientData`, durable: 'bench-idle' }, async () => arrived?.());
  const ms: number[] = [];
  for (let i = 0; i < count; i++) {
    const got = new Promise<void>((r) => (arrived = r));
    const t = performance.now();
    await bus.publish(subject, payload);
    await got;
    ms.push(performance.now() - t);
  }
  await sub.unsubscribe();
  return summarise(ms);
}

/** Publishes at a fixed rate and times each message from publish call to handler. */
async function latencyAtRate(bus: Bus, prefix: string, perSec: number, seconds: number): Promise<Latencies> {
  const subject = subjectFor(prefix, 'OutputReceiptEvent');
  const count = perSec * seconds;
  const ms: number[] = [];
  let done!: () => void;
  const allHandled = new Promise<void>((r) => (done = r));
  const sub = await bus.consume({ stream: `${prefix}OutputReceiptEvent`, durable: 'bench-rate' }, async (m) => {
    ms.push(performance.now() - Number(m.headers.t));
    if (ms.length === count) done();
  });
  const start = performance.now();
  const sends: Array<Promise<unknown>> = [];
  for (let i = 0; i < count; i++) {
    // Send in 1 ms ticks to keep the rate steady.
    const due = start + (i * 1000) / perSec;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    sends.push(bus.publish(subject, payload, { headers: { t: String(performance.now()) } }));
  }
  await Promise.all(sends);
  await allHandled;
  await sub.unsubscribe();
  return summarise(ms);
}

/** The roomserver's shape: one subject per room, strict order per room, 8 rooms at a time. */
async function orderedRooms(bus: Bus, prefix: string, count: number): Promise<number> {
  const rooms = Array.from({ length: 50 }, (_, i) => subjectFor(prefix, 'InputRoomEvent', `!room${i}:bench`));
  let handled = 0;
  let done!: () => void;
  const allHandled = new Promise<void>((r) => (done = r));
  const sub = await bus.consume({ stream: `${prefix}InputRoomEvent`, durable: 'bench-rooms', orderedBySubject: true, concurrency: 8 }, async () => {
    await Promise.resolve();
    if (++handled === count) done();
  });
  const start = performance.now();
  let next = 0;
  const publisher = async (): Promise<void> => {
    while (next < count) await bus.publish(rooms[next++ % rooms.length]!, payload);
  };
  await Promise.all(Array.from({ length: 64 }, publisher));
  await allHandled;
  const perSec = Math.round(count / ((performance.now() - start) / 1000));
  await sub.unsubscribe();
  return perSec;
}

async function benchOne(name: string, bus: Bus, prefix: string, count: number, out: Record<string, number>): Promise<void> {
  out[`${name}: throughput msgs/s (64 publishes in flight)`] = await throughput(bus, prefix, count);
  out[`${name}: roomserver shape msgs/s (50 rooms, ordered, 8 at once)`] = await orderedRooms(bus, prefix, Math.round(count / 2));
  const idle = await latencyOneAtATime(bus, prefix, 2_000);
  out[`${name}: latency one at a time p50 µs`] = idle.p50;
  out[`${name}: latency one at a time p99 µs`] = idle.p99;
  const steady = await latencyAtRate(bus, prefix, 2_000, 2);
  out[`${name}: latency at 2,000 msgs/s p50 µs`] = steady.p50;
  out[`${name}: latency at 2,000 msgs/s p99 µs`] = steady.p99;
}

export async function busBenches(count = 20_000): Promise<Record<string, number>> {
  const out: Record<string, number> = {};

  const mem = new InProcessBus({ topicPrefix: 'BenchMem', inMemory: true, storagePath: '', logger });
  try {
    await benchOne('in-process memory', mem, 'BenchMem', count, out);
  } finally {
    await mem.close();
  }

  const dir = mkdtempSync(path.join(tmpdir(), 'bench-bus-'));
  const durable = new InProcessBus({ topicPrefix: 'BenchDur', inMemory: false, storagePath: dir, logger });
  try {
    await benchOne('in-process durable (SQLite)', durable, 'BenchDur', count, out);
  } finally {
    await durable.close();
    rmSync(dir, { recursive: true, force: true });
  }

  const prefix = `Bench${process.pid}`;
  let nats: NatsBus | undefined;
  try {
    nats = await NatsBus.connect({ addresses: ['127.0.0.1:4222'], topicPrefix: prefix, logger });
  } catch (err) {
    console.error(`NATS benchmark skipped: ${(err as Error).message}`);
  }
  if (nats) {
    try {
      await benchOne('NATS JetStream', nats, prefix, count, out);
    } finally {
      await nats.deleteStreams();
      await nats.close();
    }
  }
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const [k, v] of Object.entries(await busBenches())) console.log(`${k}: ${v}`);
}
