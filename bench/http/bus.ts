/**
 * Bus publish-to-consume throughput and latency, ~1 KB payloads: in-process (memory and
 * durable SQLite) and NATS JetStream at 127.0.0.1:4222.
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

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;
}

/** Publishes `count` messages as fast as acks come back (a window of 64 in flight) and times each to its consumption. */
async function measure(bus: Bus, prefix: string, count: number): Promise<{ perSec: number; p50: number; p99: number }> {
  const payload = new Uint8Array(1024).fill(120);
  const sentAt = new Map<number, number>();
  const latencies: number[] = [];
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  await bus.consume({ stream: `${prefix}OutputRoomEvent`, durable: 'bench', concurrency: 1 }, async (m) => {
    const i = Number(m.headers.i);
    latencies.push(performance.now() - (sentAt.get(i) ?? performance.now()));
    if (latencies.length === count) resolveDone();
  });
  const subject = subjectFor(prefix, 'OutputRoomEvent');
  const start = performance.now();
  const window = 64;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      sentAt.set(i, performance.now());
      await bus.publish(subject, payload, { headers: { i: String(i) } });
    }
  };
  await Promise.all(Array.from({ length: window }, worker));
  await done;
  const seconds = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  return { perSec: Math.round(count / seconds), p50: +percentile(latencies, 0.5).toFixed(2), p99: +percentile(latencies, 0.99).toFixed(2) };
}

/** Latency without queueing: one message at a time, publish to handler. */
async function measureIdleLatency(bus: Bus, prefix: string, count: number): Promise<{ p50: number; p99: number }> {
  const payload = new Uint8Array(1024).fill(121);
  const subject = subjectFor(prefix, 'OutputClientData');
  let arrived: (() => void) | undefined;
  await bus.consume({ stream: `${prefix}OutputClientData`, durable: 'bench-idle' }, async () => arrived?.());
  const latencies: number[] = [];
  for (let i = 0; i < count; i++) {
    const got = new Promise<void>((r) => (arrived = r));
    const t = performance.now();
    await bus.publish(subject, payload);
    await got;
    latencies.push(performance.now() - t);
  }
  latencies.sort((a, b) => a - b);
  return { p50: +percentile(latencies, 0.5).toFixed(3), p99: +percentile(latencies, 0.99).toFixed(3) };
}

export async function busBenches(count = 20_000): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const record = (name: string, r: { perSec: number; p50: number; p99: number }, idle: { p50: number; p99: number }): void => {
    out[`${name} throughput msgs/s (64 publishes in flight)`] = r.perSec;
    out[`${name} latency under that load p50 ms`] = r.p50;
    out[`${name} latency under that load p99 ms`] = r.p99;
    out[`${name} latency one at a time p50 ms`] = idle.p50;
    out[`${name} latency one at a time p99 ms`] = idle.p99;
  };
  const mem = new InProcessBus({ topicPrefix: 'BenchMem', inMemory: true, storagePath: '', logger });
  record('in-process memory', await measure(mem, 'BenchMem', count), await measureIdleLatency(mem, 'BenchMem', 2000));
  await mem.close();

  const dir = mkdtempSync(path.join(tmpdir(), 'bench-bus-'));
  const dur = new InProcessBus({ topicPrefix: 'BenchDur', inMemory: false, storagePath: dir, logger });
  record('in-process durable', await measure(dur, 'BenchDur', count), await measureIdleLatency(dur, 'BenchDur', 2000));
  await dur.close();
  rmSync(dir, { recursive: true, force: true });

  const prefix = `Bench${process.pid}`;
  try {
    const nats = await NatsBus.connect({ addresses: ['127.0.0.1:4222'], topicPrefix: prefix, logger });
    try {
      record('NATS JetStream', await measure(nats, prefix, count), await measureIdleLatency(nats, prefix, 2000));
    } finally {
      await nats.deleteStreams();
      await nats.close();
    }
  } catch (err) {
    console.error(`NATS benchmark skipped: ${(err as Error).message}`);
  }
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const [k, v] of Object.entries(await busBenches())) console.log(`${k}: ${v}`);
}
