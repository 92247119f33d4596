/**
 * The contract every Bus implementation keeps; each implementation's test file runs it
 * (`inprocess.test.ts`, `nats.test.ts`).
 */
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { BusError, MAX_ACK_PENDING, sleep, type Bus, type BusMessage } from './bus.js';
import { apiClient, RemoteApiError, serveApi } from './rpc.js';
import { subjectFor, type StreamName } from './streams.js';
import type { ChildBusConfig } from './testing/bus-child.js';
import { startBusChild } from './testing/child-process.js';

export interface BusEnvironment {
  /** Opens a bus on this environment's storage and prefix; a second one sees what the first stored (when durable). */
  open(): Promise<Bus>;
  prefix: string;
  /** Durable environments: how a child process opens the same bus. */
  child?: ChildBusConfig;
  cleanup(): Promise<void>;
}

export type EnvironmentFactory = (opts: { maxAgeOverrides?: Partial<Record<StreamName, number>> }) => Promise<BusEnvironment>;

export const silentLogger = pino({ level: 'silent' });
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

async function until(cond: () => boolean, ms = 5_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what} not met within ${ms} ms`);
    await sleep(5);
  }
}

/** `durable`: the implementation keeps messages across a close, a reopen and a kill. */
export function defineBusContract(name: string, makeEnv: EnvironmentFactory, opts: { durable: boolean }): void {
  describe(`Bus contract: ${name}`, () => {
    const toClean: Array<() => Promise<void>> = [];
    afterEach(async () => {
      for (const c of toClean.splice(0).reverse()) await c();
    });
    async function env(o: Parameters<EnvironmentFactory>[0] = {}): Promise<BusEnvironment> {
      const e = await makeEnv(o);
      toClean.push(() => e.cleanup());
      return e;
    }
    async function open(e: BusEnvironment): Promise<Bus> {
      const bus = await e.open();
      toClean.push(() => bus.close());
      return bus;
    }
    /** Creates a durable without handling anything: with interest retention, messages need one to exist. */
    async function declare(bus: Bus, stream: string, durable: string): Promise<void> {
      const sub = await bus.consume({ stream, durable }, async () => {
        throw new Error('declared only');
      });
      await sub.unsubscribe();
    }

    it('delivers published messages with headers, in order', async () => {
      const e = await env();
      const bus = await open(e);
      const got: BusMessage[] = [];
      await bus.consume({ stream: `${e.prefix}OutputRoomEvent`, durable: 'syncapi' }, async (m) => void got.push(m));
      const acks = [];
      for (let i = 0; i < 5; i++) acks.push(await bus.publish(subjectFor(e.prefix, 'OutputRoomEvent'), enc(`m${i}`), { headers: { room_id: `!r${i}:x` } }));
      await until(() => got.length === 5);
      expect(got.map((m) => dec(m.data))).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
      expect(got[2]!.headers.room_id).toBe('!r2:x');
      expect(got.every((m) => m.deliveryCount === 1 && m.subject === `${e.prefix}OutputRoomEvent`)).toBe(true);
      expect(got.map((m) => m.seq)).toEqual(acks.map((a) => a.seq));
      expect(acks.every((a) => a.stream === `${e.prefix}OutputRoomEvent`)).toBe(true);
      expect(new Set(acks.map((a) => a.seq)).size).toBe(5);
    });

    it('refuses a subject that no stream holds', async () => {
      const e = await env();
      const bus = await open(e);
      await expect(bus.publish(`${e.prefix}NoSuchStream.x`, enc('x'))).rejects.toMatchObject({ code: 'no_stream' });
      await expect(bus.consume({ stream: `${e.prefix}NoSuchStream`, durable: 'd' }, async () => {})).rejects.toMatchObject({ code: 'no_stream' });
    });

    it('keeps per-subject order while running subjects in parallel', async () => {
      const e = await env();
      const bus = await open(e);
      const seen = new Map<string, number[]>();
      const inSubject = new Map<string, number>();
      let running = 0;
      let maxRunning = 0;
      let violations = 0;
      let done = 0;
      await bus.consume({ stream: `${e.prefix}InputRoomEvent`, durable: 'roomserver', orderedBySubject: true, concurrency: 4 }, async (m) => {
        const n = (inSubject.get(m.subject) ?? 0) + 1;
        inSubject.set(m.subject, n);
        if (n > 1) violations++;
        running++;
        maxRunning = Math.max(maxRunning, running);
        await sleep(Math.random() * 3);
        const body = dec(m.data);
        seen.set(m.subject, [...(seen.get(m.subject) ?? []), Number(body.slice(body.lastIndexOf('#') + 1))]);
        running--;
        inSubject.set(m.subject, n - 1);
        done++;
      });
      const rooms = ['!a:x', '!b:x', '!c:x', '!d:x', '!e:x', '!f.g:x'];
      await Promise.all(
        rooms.map(async (room) => {
          for (let i = 0; i < 20; i++) await bus.publish(subjectFor(e.prefix, 'InputRoomEvent', room), enc(`${room}#${i}`));
        }),
      );
      await until(() => done === 120, 10_000);
      expect(violations).toBe(0);
      expect(maxRunning).toBeGreaterThan(1);
      expect(maxRunning).toBeLessThanOrEqual(4);
      expect(seen.size).toBe(rooms.length);
      for (const list of seen.values()) expect(list).toEqual(Array.from({ length: 20 }, (_, i) => i));
    });

    it('redelivers after a handler failure, keeping the message ahead of its subject', async () => {
      const e = await env();
      const bus = await open(e);
      const log: string[] = [];
      let failures = 0;
      await bus.consume({ stream: `${e.prefix}InputRoomEvent`, durable: 'rs', orderedBySubject: true, concurrency: 2 }, async (m) => {
        const body = dec(m.data);
        if (body === 'first' && failures < 2) {
          failures++;
          throw new Error('transient');
        }
        log.push(`${body}@${m.deliveryCount}`);
      });
      const subj = subjectFor(e.prefix, 'InputRoomEvent', '!room:x');
      await bus.publish(subj, enc('first'));
      await bus.publish(subj, enc('second'));
      await until(() => log.length === 2);
      expect(log).toEqual(['first@3', 'second@1']);
    });

    it('gives up after maxDeliver attempts and moves on', async () => {
      const e = await env();
      const bus = await open(e);
      const attempts: number[] = [];
      const ok: string[] = [];
      await bus.consume({ stream: `${e.prefix}OutputRoomEvent`, durable: 'x', maxDeliver: 2 }, async (m) => {
        if (dec(m.data) === 'poison') {
          attempts.push(m.deliveryCount);
          throw new Error('always fails');
        }
        ok.push(dec(m.data));
      });
      await bus.publish(subjectFor(e.prefix, 'OutputRoomEvent'), enc('poison'));
      await bus.publish(subjectFor(e.prefix, 'OutputRoomEvent'), enc('fine'));
      await until(() => ok.length === 1);
      await sleep(50);
      expect(attempts).toEqual([1, 2]);
      expect(ok).toEqual(['fine']);
    });

    describe('consumeBatch', () => {
      /** Publishes `bodies` to one subject, in order. */
      async function publishAll(bus: Bus, subject: string, bodies: readonly string[]): Promise<void> {
        for (const b of bodies) await bus.publish(subject, enc(b));
      }

      it('hands waiting messages over together, in order, at most maxBatch at a time, each once', async () => {
        const e = await env();
        const bus = await open(e);
        const stream = `${e.prefix}OutputRoomEvent`;
        const subject = subjectFor(e.prefix, 'OutputRoomEvent');
        const batches: string[][] = [];
        let release!: () => void;
        const gate = new Promise<void>((r) => (release = r));
        await bus.consumeBatch({ stream, durable: 'batched', maxBatch: 4 }, async (msgs) => {
          batches.push(msgs.map((m) => dec(m.data)));
          if (batches.length === 1) await gate;
        });
        await publishAll(bus, subject, ['m0']);
        await until(() => batches.length === 1);
        // These wait behind the first batch, then come four at a time.
        await publishAll(bus, subject, Array.from({ length: 10 }, (_, i) => `m${i + 1}`));
        await sleep(200);
        release();
        await until(() => batches.flat().length === 11);
        await sleep(100);
        expect(batches.flat()).toEqual(Array.from({ length: 11 }, (_, i) => `m${i}`));
        expect(batches.slice(1).map((b) => b.length)).toEqual([4, 4, 2]);
      });

      it('acks only the leading messages a handler says it handled; the rest lead the next batch', async () => {
        const e = await env();
        const bus = await open(e);
        const stream = `${e.prefix}OutputRoomEvent`;
        const declared = await bus.consume({ stream, durable: 'partial' }, async () => {
          throw new Error('declared only');
        });
        await declared.unsubscribe();
        await publishAll(bus, subjectFor(e.prefix, 'OutputRoomEvent'), ['a', 'b', 'c', 'd', 'e']);
        const calls: string[][] = [];
        await bus.consumeBatch({ stream, durable: 'partial', maxBatch: 10 }, async (msgs) => {
          calls.push(msgs.map((m) => `${dec(m.data)}@${m.deliveryCount}`));
          // Takes "a" and "b" alone, then the rest together.
          return dec(msgs[0]!.data) === 'a' || dec(msgs[0]!.data) === 'b' ? 1 : undefined;
        });
        await until(() => calls.flat().some((c) => c.startsWith('e')));
        await sleep(100);
        expect(calls[0]).toEqual(['a@1', 'b@1', 'c@1', 'd@1', 'e@1']);
        expect(calls.slice(1)).toEqual([['b@1', 'c@1', 'd@1', 'e@1'], ['c@1', 'd@1', 'e@1']]);
      });

      it('keeps each subject in order and never runs two batches of one subject at once', async () => {
        const e = await env();
        const bus = await open(e);
        const running = new Set<string>();
        let violations = 0;
        let mixed = 0;
        const seen = new Map<string, number[]>();
        await bus.consumeBatch({ stream: `${e.prefix}InputRoomEvent`, durable: 'rooms', orderedBySubject: true, concurrency: 3, maxBatch: 5 }, async (msgs) => {
          const subject = msgs[0]!.subject;
          if (msgs.some((m) => m.subject !== subject)) mixed++;
          if (running.has(subject)) violations++;
          running.add(subject);
          await sleep(Math.random() * 3);
          for (const m of msgs) seen.set(subject, [...(seen.get(subject) ?? []), Number(dec(m.data).split('#')[1])]);
          running.delete(subject);
        });
        const rooms = ['!a:x', '!b:x', '!c:x', '!d:x'];
        await Promise.all(rooms.map((room) => publishAll(bus, subjectFor(e.prefix, 'InputRoomEvent', room), Array.from({ length: 15 }, (_, i) => `${room}#${i}`))));
        await until(() => [...seen.values()].flat().length === 60, 10_000);
        expect(violations).toBe(0);
        expect(mixed).toBe(0);
        for (const list of seen.values()) expect(list).toEqual(Array.from({ length: 15 }, (_, i) => i));
      });

      it('acks nothing of a failed batch, then retries its messages one by one in order, giving up only on the bad one', async () => {
        const e = await env();
        const bus = await open(e);
        const stream = `${e.prefix}OutputRoomEvent`;
        const declared = await bus.consume({ stream, durable: 'failing' }, async () => {
          throw new Error('declared only');
        });
        await declared.unsubscribe();
        await publishAll(bus, subjectFor(e.prefix, 'OutputRoomEvent'), ['ok1', 'poison', 'ok2', 'ok3']);
        const calls: string[][] = [];
        const committed: string[] = [];
        await bus.consumeBatch({ stream, durable: 'failing', maxBatch: 10, maxDeliver: 2 }, async (msgs) => {
          calls.push(msgs.map((m) => `${dec(m.data)}@${m.deliveryCount}`));
          // All or nothing, as a database transaction would be.
          if (msgs.some((m) => dec(m.data) === 'poison')) throw new Error('poison');
          committed.push(...msgs.map((m) => dec(m.data)));
        });
        await until(() => committed.includes('ok3'), 5_000);
        await publishAll(bus, subjectFor(e.prefix, 'OutputRoomEvent'), ['after']);
        await until(() => committed.includes('after'));
        await sleep(100);
        expect(calls).toEqual([['ok1@1', 'poison@1', 'ok2@1', 'ok3@1'], ['ok1@2'], ['poison@2'], ['ok2@2'], ['ok3@2'], ['after@1']]);
        // Each message took effect once: nothing of the failed batch stayed.
        expect(committed).toEqual(['ok1', 'ok2', 'ok3', 'after']);
      });

      if (opts.durable) {
        it('redelivers a batch that was not acked when its consumer went away', async () => {
          const e = await env();
          const first = await e.open();
          const stream = `${e.prefix}OutputRoomEvent`;
          let calls = 0;
          await first.consumeBatch({ stream, durable: 'crashy-batch', ackWaitMs: 1_000 }, async () => {
            calls++;
            throw new Error('dies before acking');
          });
          await publishAll(first, subjectFor(e.prefix, 'OutputRoomEvent'), ['x', 'y', 'z']);
          await until(() => calls >= 1);
          await first.close();
          const second = await open(e);
          const got: string[] = [];
          await second.consumeBatch({ stream, durable: 'crashy-batch', ackWaitMs: 1_000 }, async (msgs) => void got.push(...msgs.map((m) => dec(m.data))));
          await until(() => got.length >= 3, 10_000);
          await sleep(100);
          expect(got).toEqual(['x', 'y', 'z']);
        });
      }
    });

    it('stores a message once per msgId', async () => {
      const e = await env();
      const bus = await open(e);
      const got: string[] = [];
      await bus.consume({ stream: `${e.prefix}OutputClientData`, durable: 'c' }, async (m) => void got.push(dec(m.data)));
      const s = subjectFor(e.prefix, 'OutputClientData');
      const first = await bus.publish(s, enc('once'), { msgId: 'abc' });
      const again = await bus.publish(s, enc('once'), { msgId: 'abc' });
      await bus.publish(s, enc('after'));
      await until(() => got.includes('after'));
      expect(got).toEqual(['once', 'after']);
      expect(again.seq).toBe(first.seq);
      // Still a duplicate once the original has been acked and deleted (within the window).
      await sleep(250);
      await bus.publish(s, enc('once'), { msgId: 'abc' });
      await bus.publish(s, enc('last'));
      await until(() => got.includes('last'));
      expect(got).toEqual(['once', 'after', 'last']);
    });

    it('only delivers to a durable what its filter matches', async () => {
      const e = await env();
      const bus = await open(e);
      const got: string[] = [];
      const a = subjectFor(e.prefix, 'InputRoomEvent', '!a:x');
      await bus.consume({ stream: `${e.prefix}InputRoomEvent`, durable: 'only-a', filterSubject: a }, async (m) => void got.push(dec(m.data)));
      await bus.publish(subjectFor(e.prefix, 'InputRoomEvent', '!b:x'), enc('b'));
      await bus.publish(a, enc('a'));
      await until(() => got.length >= 1);
      await sleep(50);
      expect(got).toEqual(['a']);
    });

    it('delivers a backlog larger than the ack window in order, each message once', async () => {
      const e = await env();
      const bus = await open(e);
      const stream = `${e.prefix}OutputRoomEvent`;
      const got: number[] = [];
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      await bus.consume({ stream, durable: 'slow' }, async (m) => {
        await gate;
        got.push(Number(dec(m.data)));
      });
      const total = MAX_ACK_PENDING * 2 + 500;
      const subject = subjectFor(e.prefix, 'OutputRoomEvent');
      for (let i = 0; i < total; i += 100) {
        await Promise.all(Array.from({ length: Math.min(100, total - i) }, (_, j) => bus.publish(subject, enc(String(i + j)), { headers: {} })));
      }
      release();
      await until(() => got.length >= total, 15_000, `${total} messages`);
      await sleep(50);
      expect(got.length).toBe(total);
      // Concurrent publishes within a batch of 100 may be stored in any order; check by set and by batch.
      expect(new Set(got).size).toBe(total);
      for (let i = 1; i < got.length; i++) expect(Math.floor(got[i]! / 100)).toBeGreaterThanOrEqual(Math.floor(got[i - 1]! / 100));
    });

    it('does not hand a message out twice while a handler works past the ack wait', async () => {
      const e = await env();
      const bus = await open(e);
      const starts: string[] = [];
      await bus.consume(
        { stream: `${e.prefix}InputRoomEvent`, durable: 'patient', ackWaitMs: 500, orderedBySubject: true, concurrency: 2 },
        async (m) => {
          starts.push(`${dec(m.data)}@${m.deliveryCount}`);
          if (dec(m.data) === 'slow') await sleep(1_100);
        },
      );
      const subj = subjectFor(e.prefix, 'InputRoomEvent', '!r:x');
      await bus.publish(subj, enc('slow'));
      await bus.publish(subj, enc('queued behind'));
      await until(() => starts.length >= 2, 5_000);
      await sleep(150);
      // Delivered once each: neither the running nor the waiting message went back to the server.
      expect(starts).toEqual(['slow@1', 'queued behind@1']);
    });

    it('drops memory-stream messages past their max age', async () => {
      const e = await env({ maxAgeOverrides: { OutputTypingEvent: 200 } });
      const bus = await open(e);
      const stream = `${e.prefix}OutputTypingEvent`;
      await declare(bus, stream, 'typing');
      await bus.publish(subjectFor(e.prefix, 'OutputTypingEvent'), enc('old'));
      await sleep(600);
      await bus.publish(subjectFor(e.prefix, 'OutputTypingEvent'), enc('new'));
      const got: string[] = [];
      await bus.consume({ stream, durable: 'typing' }, async (m) => void got.push(dec(m.data)));
      await until(() => got.length >= 1);
      await sleep(50);
      expect(got).toEqual(['new']);
    });

    it('answers requests, and says so when nobody answers, in time or at all', async () => {
      const e = await env();
      const bus = await open(e);
      const sub = await bus.respond(`${e.prefix}.echo`, async (p, h) => enc(`${dec(p)}|${h.x ?? ''}`));
      expect(dec(await bus.request(`${e.prefix}.echo`, enc('hi'), 2_000, { x: 'y' }))).toBe('hi|y');
      await bus.respond(`${e.prefix}.slow`, async () => {
        await sleep(500);
        return enc('late');
      });
      await expect(bus.request(`${e.prefix}.slow`, enc(''), 100)).rejects.toMatchObject({ code: 'timeout' });
      await bus.respond(`${e.prefix}.broken`, async () => {
        throw new Error('database is gone');
      });
      const broken = await bus.request(`${e.prefix}.broken`, enc(''), 5_000).catch((x: unknown) => x);
      expect(broken).toBeInstanceOf(BusError);
      expect(broken).toMatchObject({ code: 'remote', message: expect.stringContaining('database is gone') });
      await sub.unsubscribe();
      const nobody = await bus.request(`${e.prefix}.echo`, enc(''), 1_000).catch((x: unknown) => x);
      expect(nobody).toBeInstanceOf(BusError);
      expect(nobody).toMatchObject({ code: 'no_responders' });
    });

    it('shares requests among the responders of a subject', async () => {
      const e = await env();
      const bus = await open(e);
      const served = [0, 0];
      for (const i of [0, 1]) {
        await bus.respond(`${e.prefix}.shared`, async () => {
          served[i]!++;
          return enc(String(i));
        });
      }
      for (let i = 0; i < 40; i++) await bus.request(`${e.prefix}.shared`, enc(''), 2_000);
      expect(served[0]! + served[1]!).toBe(40);
      expect(served[0]).toBeGreaterThan(0);
      expect(served[1]).toBeGreaterThan(0);
    });

    it('carries internal API calls, errors included', async () => {
      const e = await env();
      const bus = await open(e);
      interface Api {
        add(req: { a: number; b: number }): Promise<{ sum: number }>;
        fail(req: Record<string, never>): Promise<void>;
        hang(req: Record<string, never>): Promise<void>;
      }
      const impl: Api = {
        add: async ({ a, b }) => ({ sum: a + b }),
        fail: async () => {
          throw Object.assign(new Error('room not found'), { code: 'M_NOT_FOUND' });
        },
        hang: () => sleep(1_000),
      };
      const served = await serveApi(bus, e.prefix, 'testc', impl, ['add', 'fail', 'hang']);
      const client = apiClient<Api>(bus, e.prefix, 'testc', ['add', 'fail', 'hang'], 200);
      expect(await client.add({ a: 2, b: 3 })).toEqual({ sum: 5 });
      const err = await client.fail({}).catch((x: unknown) => x);
      expect(err).toBeInstanceOf(RemoteApiError);
      expect(err).toMatchObject({ message: 'room not found', code: 'M_NOT_FOUND', method: 'testc.fail' });
      await expect(client.hang({})).rejects.toMatchObject({ code: 'timeout', message: 'testc.hang: timed out after 200 ms' });
      await served.unsubscribe();
      await expect(client.add({ a: 1, b: 1 })).rejects.toMatchObject({ code: 'no_responders', message: expect.stringMatching(/^testc\.add: no responders \(no process serves testc/) });
    });

    if (!opts.durable) return;
    // From here: what needs messages to outlive the bus object (NATS, and the in-process bus on disk).

    it('redelivers what was not acked when the consumer went away', async () => {
      const e = await env();
      const first = await e.open();
      const subj = subjectFor(e.prefix, 'OutputRoomEvent');
      let calls = 0;
      await first.consume({ stream: `${e.prefix}OutputRoomEvent`, durable: 'crashy', ackWaitMs: 1_000 }, async () => {
        calls++;
        throw new Error('dies before acking');
      });
      await first.publish(subj, enc('important'));
      await until(() => calls >= 1);
      await first.close();
      const second = await open(e);
      const got: BusMessage[] = [];
      await second.consume({ stream: `${e.prefix}OutputRoomEvent`, durable: 'crashy', ackWaitMs: 1_000 }, async (m) => void got.push(m));
      await until(() => got.length === 1, 10_000);
      await sleep(100);
      expect(got.map((m) => dec(m.data))).toEqual(['important']);
    });

    it('hands queued messages to the next consumer well before the ack wait when a consumer stops', async () => {
      const e = await env();
      const first = await e.open();
      const stream = `${e.prefix}OutputRoomEvent`;
      const handled: string[] = [];
      // A long ack wait: only an explicit hand-back gets the queued messages out quickly.
      await first.consume({ stream, durable: 'handover', ackWaitMs: 30_000 }, async (m) => {
        await sleep(200);
        handled.push(`first:${dec(m.data)}`);
      });
      for (const s of ['a', 'b', 'c']) await first.publish(subjectFor(e.prefix, 'OutputRoomEvent'), enc(s));
      await sleep(50);
      await first.close();
      expect(handled).toEqual(['first:a']);
      const second = await open(e);
      await second.consume({ stream, durable: 'handover', ackWaitMs: 30_000 }, async (m) => void handled.push(`second:${dec(m.data)}`));
      await until(() => handled.length === 3, 10_000, 'handover');
      expect(handled).toEqual(['first:a', 'second:b', 'second:c']);
    });

    it('loses no acknowledged publish when the publishing process is killed', async () => {
      const e = await env();
      const stream = `${e.prefix}OutputRoomEvent`;
      const before = await e.open();
      await declare(before, stream, 'after-kill');
      await before.close();
      const child = startBusChild({ mode: 'publish', bus: e.child!, subject: subjectFor(e.prefix, 'OutputRoomEvent'), count: 100_000, parallel: 8 });
      // Kill it mid-stream once some publishes are acknowledged; a loaded machine may be slow.
      await child.waitFor((_, all) => all.length >= 100, 30_000);
      await child.kill();
      const acked = child.lines.filter((l) => l.startsWith('acked ')).map((l) => Number(l.slice(6)));
      const bus = await open(e);
      const got: number[] = [];
      await bus.consume({ stream, durable: 'after-kill' }, async (m) => void got.push(Number(dec(m.data))));
      await until(() => got.length >= acked.length, 10_000, `${acked.length} acked messages`);
      await sleep(100);
      const stored = new Set(got);
      expect(stored.size).toBe(got.length);
      expect(acked.filter((n) => !stored.has(n))).toEqual([]);
    }, 60_000);

    it('redelivers on restart what a killed consumer had not acked', async () => {
      const e = await env();
      const stream = `${e.prefix}InputRoomEvent`;
      const before = await e.open();
      await declare(before, stream, 'roomserver');
      const subj = subjectFor(e.prefix, 'InputRoomEvent', '!room:x');
      for (const s of ['m1', 'm2', 'm3']) await before.publish(subj, enc(s));
      await before.close();
      const child = startBusChild({ mode: 'consume', bus: e.child!, stream, durable: 'roomserver', ackWaitMs: 1_000 });
      await child.waitFor((l) => l === 'got m1', 30_000);
      await sleep(200); // time enough for anything written early (an ack too soon) to land
      await child.kill();
      const bus = await open(e);
      const got: BusMessage[] = [];
      await bus.consume({ stream, durable: 'roomserver', ackWaitMs: 1_000, orderedBySubject: true, concurrency: 4 }, async (m) => void got.push(m));
      await until(() => got.length >= 3, 10_000, 'redelivery');
      await sleep(100);
      expect(got.map((m) => dec(m.data))).toEqual(['m1', 'm2', 'm3']);
    }, 60_000);
  });
}
