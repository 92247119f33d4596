import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { sleep } from './bus.js';
import { Dispatcher, type Delivery } from './dispatcher.js';

const logger = pino({ level: 'silent' });

function delivery(seq: number, subject: string, log: string[], previousDeliveries = 0): Delivery {
  return {
    msg: { subject, data: new Uint8Array(), headers: {}, seq },
    previousDeliveries,
    ack: () => void log.push(`ack ${seq}`),
    terminate: () => void log.push(`term ${seq}`),
    release: () => void log.push(`release ${seq}`),
  };
}

describe('Dispatcher', () => {
  it('gives ready subjects turns, so that one busy subject does not take every slot', async () => {
    const order: string[] = [];
    const d = new Dispatcher({ ordered: true, concurrency: 1, maxDeliver: 0, keepAliveEveryMs: 0, logger, consumer: 't' }, async (m) => {
      order.push(`${m.subject}${m.seq}`);
    });
    const log: string[] = [];
    for (const [seq, subj] of [[1, 'a'], [2, 'a'], [3, 'a'], [4, 'b'], [5, 'b']] as const) d.push(delivery(seq, subj, log));
    await sleep(20);
    expect(order).toEqual(['a1', 'b4', 'a2', 'b5', 'a3']);
    expect(log.filter((l) => l.startsWith('ack')).length).toBe(5);
  });

  it('on stop hands back queued messages, finishes and acks the running one', async () => {
    const log: string[] = [];
    let release!: () => void;
    const d = new Dispatcher({ ordered: false, concurrency: 1, maxDeliver: 0, keepAliveEveryMs: 0, logger, consumer: 't' }, async (m) => {
      log.push(`start ${m.seq}`);
      await new Promise<void>((r) => (release = r));
    });
    for (const seq of [1, 2, 3]) d.push(delivery(seq, 's', log));
    await sleep(5);
    const stopped = d.stop();
    expect(log).toEqual(['start 1', 'release 2', 'release 3']);
    release();
    await stopped;
    expect(log).toEqual(['start 1', 'release 2', 'release 3', 'ack 1']);
    d.push(delivery(4, 's', log));
    expect(log.at(-1)).toBe('release 4');
  });

  it('cuts a retry backoff short on stop and hands the message back', async () => {
    const log: string[] = [];
    const d = new Dispatcher({ ordered: false, concurrency: 1, maxDeliver: 0, keepAliveEveryMs: 0, logger, consumer: 't' }, async () => {
      throw new Error('fails');
    });
    d.push(delivery(1, 's', log, 6)); // 7th attempt: a 5 s backoff follows
    await sleep(5);
    const t = Date.now();
    await d.stop();
    expect(Date.now() - t).toBeLessThan(100);
    expect(log).toEqual(['release 1']);
  });

  it('keeps one copy of a message delivered again while held, acking through the newest', async () => {
    const log: string[] = [];
    let release!: () => void;
    const seen: number[] = [];
    const d = new Dispatcher({ ordered: true, concurrency: 2, maxDeliver: 0, keepAliveEveryMs: 0, logger, consumer: 't' }, async (m) => {
      seen.push(m.deliveryCount);
      if (m.seq === 1) await new Promise<void>((r) => (release = r));
    });
    d.push(delivery(1, 's', log));
    d.push(delivery(2, 's', log));
    await sleep(5);
    const newer = delivery(2, 's', log, 1);
    d.push({ ...newer, ack: () => void log.push('ack 2 (newest)') });
    release();
    await sleep(10);
    expect(seen).toEqual([1, 2]);
    expect(log).toEqual(['ack 1', 'ack 2 (newest)']);
  });

  it('batches: stop while a batch runs acks it when it succeeds and hands back the messages queued behind it', async () => {
    const log: string[] = [];
    let release!: () => void;
    const sizes: number[] = [];
    const d = new Dispatcher({ ordered: false, concurrency: 1, maxDeliver: 0, keepAliveEveryMs: 0, logger, consumer: 't' }, {
      maxBatch: 2,
      batch: async (msgs) => {
        sizes.push(msgs.length);
        await new Promise<void>((r) => (release = r));
      },
    });
    for (const seq of [1, 2, 3]) d.push(delivery(seq, 's', log));
    await sleep(5);
    const stopped = d.stop();
    expect(log).toEqual(['release 3']);
    release();
    await stopped;
    expect(sizes).toEqual([2]);
    expect(log).toEqual(['release 3', 'ack 1', 'ack 2']);
  });

  it('batches: a handled count out of range is a failure, retried message by message', async () => {
    const log: string[] = [];
    const calls: string[] = [];
    const d = new Dispatcher({ ordered: false, concurrency: 1, maxDeliver: 0, keepAliveEveryMs: 0, logger, consumer: 't' }, {
      maxBatch: 10,
      batch: async (msgs) => {
        calls.push(msgs.map((m) => `${m.seq}@${m.deliveryCount}`).join(','));
        return msgs.length > 1 ? 0 : 1;
      },
    });
    for (const seq of [1, 2]) d.push(delivery(seq, 's', log));
    await sleep(300);
    expect(calls).toEqual(['1@1,2@1', '1@2', '2@2']);
    expect(log).toEqual(['ack 1', 'ack 2']);
  });

  it('batches: stopped while a batch runs, the part the handler left for later goes back', async () => {
    const log: string[] = [];
    let release!: () => void;
    const d = new Dispatcher({ ordered: false, concurrency: 1, maxDeliver: 0, keepAliveEveryMs: 0, logger, consumer: 't' }, {
      maxBatch: 10,
      batch: async () => {
        await new Promise<void>((r) => (release = r));
        return 1;
      },
    });
    for (const seq of [1, 2, 3]) d.push(delivery(seq, 's', log));
    await sleep(5);
    const stopped = d.stop();
    release();
    await stopped;
    expect(log).toEqual(['ack 1', 'release 2', 'release 3']);
    expect(d.size).toBe(0);
  });
});
