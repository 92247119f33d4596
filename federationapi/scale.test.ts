/**
 * Three of our servers federating over HTTPS on loopback, at the federation issue's scale:
 * - A's and B's users exchange MESSAGES messages each (1,000 by default), sent concurrently:
 *   every server ends with all of them, each sender's in the order sent;
 * - C joins afterwards and pages back through 500 events of that history, which it gets by
 *   backfill from the others: in order, none missing, none twice;
 * - C is stopped mid-conversation for OUTAGE_MS (a minute by default) while A's user talks on;
 *   restarted (same databases, same name), C gets everything A queued for it, in order.
 * Sizes can be lowered for a quick run: FED_SCALE_MESSAGES, FED_SCALE_OUTAGE_MS.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { restartFederatingNode, startFederatingNode, nodeRequest, registerOn, type FederatingNode } from '../test/federation.js';
import { waitFor } from '../test/harness.js';

type Body = Record<string, unknown>;
const enc = encodeURIComponent;
const MESSAGES = Number(process.env['FED_SCALE_MESSAGES'] ?? 1000);
const OUTAGE_MS = Number(process.env['FED_SCALE_OUTAGE_MS'] ?? 60_000);
const BACKFILLED = Math.min(500, MESSAGES);

let a: FederatingNode;
let b: FederatingNode;
let c: FederatingNode;
let cStopped = false;
let alice: string;
let bob: string;
let carol: string;
let roomId: string;

const req = nodeRequest;
const register = registerOn;
const until = <T>(fn: () => Promise<T | undefined>, ms: number): Promise<T> => waitFor(fn, ms, 200);
/** Sends `count` messages `${prefix}${i}`, one after another. */
const talk = async (n: FederatingNode, token: string, prefix: string, count: number): Promise<void> => {
  for (let i = 0; i < count; i++) {
    const r = await req(n, 'PUT', `/rooms/${enc(roomId)}/send/m.room.message/${prefix}${i}`, token, { msgtype: 'm.text', body: `${prefix}${i}` });
    expect(r.status).toBe(200);
  }
};
/** The message bodies of the room a server holds, oldest first (its whole history, paged forwards). */
const history = async (n: FederatingNode, token: string): Promise<string[]> => {
  const out: string[] = [];
  let from: string | undefined;
  for (;;) {
    const page = (await req(n, 'GET', `/rooms/${enc(roomId)}/messages?dir=f&limit=1000${from ? `&from=${enc(from)}` : ''}`, token)).body;
    const chunk = (page.chunk as Body[] | undefined) ?? [];
    out.push(...chunk.filter((e) => e.type === 'm.room.message').map((e) => (e.content as Body).body as string));
    if (chunk.length === 0 || page.end === undefined) return out;
    from = page.end as string;
  }
};
const series = (prefix: string, count: number): string[] => Array.from({ length: count }, (_, i) => `${prefix}${i}`);

beforeAll(async () => {
  [a, b, c] = await Promise.all([startFederatingNode(), startFederatingNode(), startFederatingNode()]);
  [alice, bob, carol] = await Promise.all([register(a, 'alice'), register(b, 'bob'), register(c, 'carol')]);
  roomId = (await req(a, 'POST', '/createRoom', alice, { preset: 'public_chat' })).body.room_id as string;
  expect((await req(b, 'POST', `/join/${enc(roomId)}`, bob, {})).status).toBe(200);
}, 120_000);
afterAll(async () => {
  await Promise.all([a?.t.stop(), b?.t.stop(), cStopped ? undefined : c?.t.stop()]);
});

it(`exchanges ${MESSAGES} messages each way between two servers with no loss, each sender's in order`, async () => {
  await Promise.all([talk(a, alice, 'a', MESSAGES), talk(b, bob, 'b', MESSAGES)]);
  for (const [n, token] of [
    [a, alice],
    [b, bob],
  ] as const) {
    const seen = await until(async () => {
      const all = await history(n, token);
      return all.filter((x) => /^[ab]\d+$/.test(x)).length >= 2 * MESSAGES ? all : undefined;
    }, 120_000);
    expect(seen.filter((x) => /^a\d+$/.test(x))).toEqual(series('a', MESSAGES));
    expect(seen.filter((x) => /^b\d+$/.test(x))).toEqual(series('b', MESSAGES));
  }
}, 300_000);

it(`lets a server that joins later page back through ${BACKFILLED} events of history it gets by backfill`, async () => {
  expect((await req(c, 'POST', `/join/${enc(roomId)}`, carol, {})).status).toBe(200);
  const got: string[] = [];
  const rooms = (await req(c, 'GET', '/sync?timeout=0', carol)).body.rooms as Body;
  let token = ((rooms.join as Record<string, Body>)[roomId]!.timeline as Body).prev_batch as string;
  const ids = new Set<string>();
  while (got.length < BACKFILLED) {
    const page = (await req(c, 'GET', `/rooms/${enc(roomId)}/messages?dir=b&limit=100&from=${enc(token)}`, carol)).body;
    const chunk = (page.chunk as Body[] | undefined) ?? [];
    if (chunk.length === 0) break;
    for (const e of chunk) {
      expect(ids.has(e.event_id as string)).toBe(false);
      ids.add(e.event_id as string);
      if (e.type === 'm.room.message') got.push((e.content as Body).body as string);
    }
    token = page.end as string;
  }
  expect(got.length).toBeGreaterThanOrEqual(BACKFILLED);
  // Newest first: each sender's messages come in reverse order of sending, none missing between.
  for (const prefix of ['a', 'b']) {
    const mine = got.filter((x) => x.startsWith(prefix) && /^\w\d+$/.test(x)).map((x) => Number(x.slice(1)));
    expect(mine.length).toBeGreaterThan(0);
    expect(mine).toEqual(Array.from({ length: mine.length }, (_, i) => MESSAGES - 1 - i));
  }
}, 300_000);

it(`delivers what was sent while a server was down for ${OUTAGE_MS / 1000} s, once it is back`, async () => {
  await c.t.stop();
  cStopped = true;
  const talking = talk(a, alice, 'while-down-', 20);
  await new Promise((r) => setTimeout(r, OUTAGE_MS));
  await talking;
  c = await restartFederatingNode(c);
  cStopped = false;
  // Carol speaks: A hears from C again and retries its queue at once (else its backoff timer would).
  const back = await req(c, 'PUT', `/rooms/${enc(roomId)}/send/m.room.message/back`, carol, { msgtype: 'm.text', body: 'carol is back' });
  expect(back.status).toBe(200);
  const seen = await until(async () => {
    const all = await history(c, carol);
    return series('while-down-', 20).every((x) => all.includes(x)) ? all : undefined;
  }, 120_000);
  expect(seen.filter((x) => x.startsWith('while-down-'))).toEqual(series('while-down-', 20));
  await until(async () => ((await history(a, alice)).includes('carol is back') ? true : undefined), 60_000);
}, OUTAGE_MS + 300_000);
