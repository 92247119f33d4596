import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { defineBusContract, silentLogger } from './bus.contract.js';
import { sleep } from './bus.js';
import { InProcessBus } from './inprocess/inprocess-bus.js';
import { subjectFor } from './streams.js';

let n = 0;

defineBusContract(
  'in-process, in memory',
  async (opts) => {
    const prefix = `Mem${n++}`;
    const open = async () => new InProcessBus({ topicPrefix: prefix, inMemory: true, storagePath: '', logger: silentLogger, compactEveryMs: 100, ...opts });
    return { prefix, open, cleanup: async () => {} };
  },
  { durable: false },
);

defineBusContract(
  'in-process, durable (SQLite)',
  async (opts) => {
    const prefix = `Dur${n++}`;
    const dir = mkdtempSync(path.join(tmpdir(), 'bus-'));
    return {
      prefix,
      open: async () => new InProcessBus({ topicPrefix: prefix, inMemory: false, storagePath: dir, logger: silentLogger, compactEveryMs: 100, ...opts }),
      child: { addresses: [], topicPrefix: prefix, storagePath: dir },
      cleanup: async () => rmSync(dir, { recursive: true, force: true }),
    };
  },
  { durable: true },
);

describe('in-process bus storage', () => {
  const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
  const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
  async function until(cond: () => boolean, ms = 5_000): Promise<void> {
    for (const end = Date.now() + ms; !cond(); await sleep(5)) if (Date.now() > end) throw new Error(`condition not met within ${ms} ms`);
  }

  it('resumes a durable where it acked after a clean restart, and never reuses a sequence number', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'bus-resume-'));
    const open = () => new InProcessBus({ topicPrefix: 'R', inMemory: false, storagePath: dir, logger: silentLogger, compactEveryMs: 20 });
    const seen: string[] = [];
    const seqs: number[] = [];
    const a = open();
    await a.consume({ stream: 'ROutputRoomEvent', durable: 'd' }, async (m) => void seen.push(dec(m.data)));
    seqs.push((await a.publish(subjectFor('R', 'OutputRoomEvent'), enc('one'))).seq);
    await until(() => seen.length === 1);
    await sleep(100); // acked and compacted away
    await a.close();
    const b = open();
    seqs.push((await b.publish(subjectFor('R', 'OutputRoomEvent'), enc('two'))).seq);
    await b.consume({ stream: 'ROutputRoomEvent', durable: 'd' }, async (m) => void seen.push(dec(m.data)));
    await until(() => seen.length === 2);
    await sleep(50);
    await b.close();
    rmSync(dir, { recursive: true, force: true });
    expect(seen).toEqual(['one', 'two']);
    expect(seqs[1]).toBeGreaterThan(seqs[0]!);
  });

  it('deletes messages once every durable has acked them, and keeps them for a durable that has not', async () => {
    const bus = new InProcessBus({ topicPrefix: 'G', inMemory: true, storagePath: '', logger: silentLogger, compactEveryMs: 10 });
    const fast: string[] = [];
    let laggingCalls = 0;
    await bus.consume({ stream: 'GOutputRoomEvent', durable: 'fast' }, async (m) => void fast.push(dec(m.data)));
    const lagging = await bus.consume({ stream: 'GOutputRoomEvent', durable: 'lagging' }, async () => {
      laggingCalls++;
      throw new Error('not yet');
    });
    await bus.publish(subjectFor('G', 'OutputRoomEvent'), enc('x'));
    await until(() => fast.length === 1 && laggingCalls >= 1);
    await lagging.unsubscribe();
    await sleep(100); // compactions run; 'lagging' has not acked, so the message stays for it
    const later: string[] = [];
    await bus.consume({ stream: 'GOutputRoomEvent', durable: 'lagging' }, async (m) => void later.push(dec(m.data)));
    await until(() => later.length === 1);
    expect(fast).toEqual(['x']);
    expect(later).toEqual(['x']);
    await sleep(200); // both acked: compaction deletes it
    const fresh: string[] = [];
    await bus.consume({ stream: 'GOutputRoomEvent', durable: 'fresh' }, async (m) => void fresh.push(dec(m.data)));
    await sleep(50);
    expect(fresh).toEqual([]);
    await bus.close();
  });

  it('refuses a second consumer of one durable in the same process', async () => {
    const bus = new InProcessBus({ topicPrefix: 'D', inMemory: true, storagePath: '', logger: silentLogger });
    await bus.consume({ stream: 'DOutputRoomEvent', durable: 'd' }, async () => {});
    await expect(bus.consume({ stream: 'DOutputRoomEvent', durable: 'd' }, async () => {})).rejects.toMatchObject({ code: 'in_use' });
    await bus.close();
    await expect(bus.publish('DOutputRoomEvent', enc('x'))).rejects.toMatchObject({ code: 'closed' });
  });
});
