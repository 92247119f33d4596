/**
 * The contract every Bus implementation keeps; run against each by its own test file.
 */
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { BusError, sleep, type Bus, type BusMessage } from './bus.js';
import { apiClient, RemoteApiError, serveApi } from './rpc.js';
import { subjectFor, type StreamName } from './streams.js';

export interface BusEnvironment {
  /** Opens a bus on this environment's storage/prefix; a second open sees what the first stored (when durable). */
  open(): Promise<Bus>;
  prefix: string;
  cleanup(): Promise<void>;
}

export type EnvironmentFactory = (opts: { maxAgeOverrides?: Partial<Record<StreamName, number>> }) => Promise<BusEnvironment>;

export const silentLogger = pino({ level: 'silent' });
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

async function until(cond: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(10);
  }
}

/** `durable`: whether the implementation keeps messages across a close and reopen. */
export function defineBusContract(name: string, makeEnv: EnvironmentFactory, opts: { durable: boolean }): void {
  describe(`Bus contract: ${name}`, () => {
    const toClean: Array<() => Promise<void>> = [];
    afterEach(async () => {
      for (const c of toClean.splice(0).reverse()) await c();
    });
    async function env(opts: Parameters<EnvironmentFactory>[0] = {}): Promise<BusEnvironment> {
      const e = await makeEnv(opts);
      toClean.push(() => e.cleanup());
      return e;
    }
    async function open(e: BusEnvironment): Promise<Bus> {
      const bus = await e.open();
      toClean.push(() => bus.close());
      return bus;
    }

    it('delivers published messages with headers, in order', async () => {
      const e = await env();
      const bus = await open(e);
      const got: BusMessage[] = [];
      await bus.consume({ stream: `${e.prefix}OutputRoomEvent`, durable: 'syncapi' }, async (m) => void got.push(m));
      for (let i = 0; i < 5; i++) await bus.publish(subjectFor(e.prefix, 'OutputRoomEvent'), enc(`m${i}`), { headers: { room_id: `!r${i}:x` } });
      await until(() => got.length === 5);
      expect(got.map((m) => dec(m.data))).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
      expect(got[2]!.headers.room_id).toBe('!r2:x');
      expect(got.every((m) => m.deliveryCount === 1)).toBe(true);
      expect(got.map((m) => m.seq)).toEqual([...got.map((m) => m.seq)].sort((a, b) => a - b));
    });

    it('refuses a subject that no stream holds', async () => {
      const e = await env();
      const bus = await open(e);
      await expect(bus.publish(`${e.prefix}NoSuchStream.x`, enc('x'))).rejects.toThrow();
    });

    it('keeps per-subject order while running subjects in parallel', async () => {
      const e = await env();
      const bus = await open(e);
      const seen = new Map<string, number[]>();
      let running = 0;
      let maxRunning = 0;
      const perSubject = new Map<string, number>();
      let violations = 0;
      let done = 0;
      await bus.consume(
        { stream: `${e.prefix}InputRoomEvent`, durable: 'roomserver', orderedBySubject: true, concurrency: 4 },
        async (m) => {
          const inSubject = (perSubject.get(m.subject) ?? 0) + 1;
          perSubject.set(m.subject, inSubject);
          if (inSubject > 1) violations++;
          running++;
          maxRunning = Math.max(maxRunning, running);
          await sleep(Math.random() * 4);
          const body = dec(m.data);
          seen.set(m.subject, [...(seen.get(m.subject) ?? []), Number(body.slice(body.lastIndexOf(':') + 1))]);
          running--;
          perSubject.set(m.subject, inSubject - 1);
          done++;
        },
      );
      const rooms = ['!a:x', '!b:x', '!c:x', '!d:x', '!e:x'];
      await Promise.all(
        rooms.map(async (room) => {
          for (let i = 0; i < 20; i++) await bus.publish(subjectFor(e.prefix, 'InputRoomEvent', room), enc(`${room}:${i}`));
        }),
      );
      await until(() => done === 100, 10_000);
      expect(violations).toBe(0);
      expect(maxRunning).toBeGreaterThan(1);
      expect(maxRunning).toBeLessThanOrEqual(4);
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
      expect(attempts).toEqual([1, 2]);
      expect(ok).toEqual(['fine']);
    });

    it('stores a message once per msgId', async () => {
      const e = await env();
      const bus = await open(e);
      const got: string[] = [];
      await bus.consume({ stream: `${e.prefix}OutputClientData`, durable: 'c' }, async (m) => void got.push(dec(m.data)));
      const s = subjectFor(e.prefix, 'OutputClientData');
      await bus.publish(s, enc('once'), { msgId: 'abc' });
      await bus.publish(s, enc('once'), { msgId: 'abc' });
      await bus.publish(s, enc('after'));
      await until(() => got.includes('after'));
      expect(got).toEqual(['once', 'after']);
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

    it('drops memory-stream messages past their max age', async () => {
      const e = await env({ maxAgeOverrides: { OutputTypingEvent: 300 } });
      const bus = await open(e);
      await bus.publish(subjectFor(e.prefix, 'OutputTypingEvent'), enc('old'));
      await sleep(1_300);
      await bus.publish(subjectFor(e.prefix, 'OutputTypingEvent'), enc('new'));
      const got: string[] = [];
      await bus.consume({ stream: `${e.prefix}OutputTypingEvent`, durable: 'typing' }, async (m) => void got.push(dec(m.data)));
      await until(() => got.length >= 1);
      await sleep(50);
      expect(got).toEqual(['new']);
    });

    it('answers requests, and says so when nobody answers or in time', async () => {
      const e = await env();
      const bus = await open(e);
      const sub = await bus.respond(`${e.prefix}.echo`, async (p, h) => enc(`${dec(p)}|${h.x ?? ''}`));
      expect(dec(await bus.request(`${e.prefix}.echo`, enc('hi'), 2_000, { x: 'y' }))).toBe('hi|y');
      await bus.respond(`${e.prefix}.slow`, async () => {
        await sleep(500);
        return enc('late');
      });
      await expect(bus.request(`${e.prefix}.slow`, enc(''), 100)).rejects.toMatchObject({ code: 'timeout' });
      await sub.unsubscribe();
      await expect(bus.request(`${e.prefix}.nobody`, enc(''), 1_000)).rejects.toBeInstanceOf(BusError);
      await expect(bus.request(`${e.prefix}.nobody`, enc(''), 1_000)).rejects.toMatchObject({ code: 'no_responders' });
    });

    it('carries internal API calls, errors included', async () => {
      const e = await env();
      const bus = await open(e);
      interface Api {
        add(req: { a: number; b: number }): Promise<{ sum: number }>;
        fail(req: Record<string, never>): Promise<void>;
      }
      const impl: Api = {
        add: async ({ a, b }) => ({ sum: a + b }),
        fail: async () => {
          throw Object.assign(new Error('room not found'), { code: 'M_NOT_FOUND' });
        },
      };
      await serveApi(bus, e.prefix, 'testc', impl, ['add', 'fail']);
      const client = apiClient<Api>(bus, e.prefix, 'testc', ['add', 'fail']);
      expect(await client.add({ a: 2, b: 3 })).toEqual({ sum: 5 });
      const err = await client.fail({}).catch((x: unknown) => x);
      expect(err).toBeInstanceOf(RemoteApiError);
      expect(err).toMatchObject({ message: 'room not found', code: 'M_NOT_FOUND', method: 'testc.fail' });
      const absent = apiClient<Api>(bus, e.prefix, 'nowhere', ['add']);
      await expect(absent.add({ a: 1, b: 1 })).rejects.toThrow(/nowhere.add: no responders/);
    });

    // Only where messages outlive the bus object: NATS, and the in-process bus on disk.
    if (opts.durable) it('redelivers what was not acked when the consumer went away', async () => {
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
      const got: string[] = [];
      await second.consume({ stream: `${e.prefix}OutputRoomEvent`, durable: 'crashy', ackWaitMs: 1_000 }, async (m) => void got.push(dec(m.data)));
      await until(() => got.length === 1, 10_000);
      expect(got).toEqual(['important']);
      // Acked now: a third consumer session gets nothing more.
      await sleep(100);
    });
  });
}
