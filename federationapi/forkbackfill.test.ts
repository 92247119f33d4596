/**
 * A late joiner paging back through a forked room history it gets by backfill. Users of A and
 * of B talk at once, so each server chains its own users' messages on what it has while the
 * other's are still on the way: the DAG forks into interleaved branches (many events with two
 * or more prev events, the branches' depths interleaved). C joins afterwards and pages back from
 * its join with /messages, 100 at a time, each page asking for more history than one /backfill
 * brings: every message must come back, each sender's in reverse order of sending, none
 * missing, none twice. (Paging past a gap left open, after a page's fills ran out or after a
 * backfill whose state fetches ran out on the ragged bottom of a forked answer, lost a run of
 * one branch's messages here in about one run in four.)
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { federationRequest, nodeRequest, registerOn, startFederatingNode, type FederatingNode } from '../test/federation.js';
import { waitFor } from '../test/harness.js';

type Body = Record<string, unknown>;
const enc = encodeURIComponent;
/** Messages per sender: several /backfill rounds (100 events each) in all. */
const MESSAGES = Number(process.env['FED_FORK_MESSAGES'] ?? 150);
/** Users talking at once on each of A and B. */
const SENDERS = Number(process.env['FED_FORK_SENDERS'] ?? 2);

let a: FederatingNode;
let b: FederatingNode;
let c: FederatingNode;
/** Each sender's access token, server and message prefix. */
let senders: Array<{ n: FederatingNode; token: string; prefix: string }>;
let carol: string;
let roomId: string;

/** Sends `${prefix}0` .. `${prefix}${count - 1}`, one after another. */
const talk = async (n: FederatingNode, token: string, prefix: string, count: number): Promise<void> => {
  for (let i = 0; i < count; i++) {
    const r = await nodeRequest(n, 'PUT', `/rooms/${enc(roomId)}/send/m.room.message/${prefix}${i}`, token, { msgtype: 'm.text', body: `${prefix}${i}` });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
  }
};
/** The messages a server holds of the room, oldest first. */
const history = async (n: FederatingNode, token: string): Promise<Body[]> => {
  const out: Body[] = [];
  let from: string | undefined;
  for (;;) {
    const page = (await nodeRequest(n, 'GET', `/rooms/${enc(roomId)}/messages?dir=f&limit=1000${from ? `&from=${enc(from)}` : ''}`, token)).body;
    const chunk = (page.chunk as Body[] | undefined) ?? [];
    out.push(...chunk.filter((e) => e.type === 'm.room.message'));
    if (chunk.length === 0 || page.end === undefined) return out;
    from = page.end as string;
  }
};
const bodyOf = (e: Body): string => (e.content as Body).body as string;
const series = (prefix: string, count: number): string[] => Array.from({ length: count }, (_, i) => `${prefix}${i}`);

beforeAll(async () => {
  [a, b, c] = await Promise.all([startFederatingNode(), startFederatingNode(), startFederatingNode()]);
  carol = await registerOn(c, 'carol');
  senders = [];
  for (const [n, server] of [
    [a, 'a'],
    [b, 'b'],
  ] as const) {
    for (let k = 0; k < SENDERS; k++) senders.push({ n, token: await registerOn(n, `${server}${k}`), prefix: `${server}${k}_` });
  }
  const creator = senders[0]!;
  roomId = (await nodeRequest(a, 'POST', '/createRoom', creator.token, { preset: 'public_chat' })).body.room_id as string;
  for (const s of senders.slice(1)) expect((await nodeRequest(s.n, 'POST', `/join/${enc(roomId)}`, s.token, {})).status).toBe(200);
}, 120_000);
afterAll(async () => {
  await Promise.all([a?.t.stop(), b?.t.stop(), c?.t.stop()]);
});

it('lets a late joiner page back through a forked history of senders on two servers: each sender in order, none missing, none twice', async () => {
  await Promise.all(senders.map((s) => talk(s.n, s.token, s.prefix, MESSAGES)));
  // Both servers hold everything before C joins, so that all C lacks is behind its join.
  const all = MESSAGES * senders.length;
  let onA: Body[] = [];
  for (const s of [senders[0]!, senders[senders.length - 1]!]) {
    const seen = await waitFor(async () => {
      const h = await history(s.n, s.token);
      return h.length >= all ? h : undefined;
    }, 60_000, 200);
    if (s.n === a) onA = seen;
  }
  // The history really forks (else this would page a straight line): events of A's with two or more prev events.
  const newest = onA[onA.length - 1]!.event_id as string;
  const { body: dag } = await federationRequest(b, a, 'GET', `/_matrix/federation/v1/backfill/${enc(roomId)}?v=${enc(newest)}&limit=100`);
  expect((dag.pdus as Body[]).filter((p) => (p.prev_events as unknown[]).length > 1).length).toBeGreaterThan(10);

  expect((await nodeRequest(c, 'POST', `/join/${enc(roomId)}`, carol, {})).status).toBe(200);
  const rooms = await waitFor(async () => {
    const r = ((await nodeRequest(c, 'GET', '/sync?timeout=0', carol)).body.rooms as Body | undefined)?.join as Record<string, Body> | undefined;
    return r?.[roomId] ? r : undefined;
  });
  let token = (rooms[roomId]!.timeline as Body).prev_batch as string;
  const got: string[] = [];
  const ids = new Set<string>();
  for (let pages = 0; got.length < all && pages < 100; pages++) {
    const page = await nodeRequest(c, 'GET', `/rooms/${enc(roomId)}/messages?dir=b&limit=100&from=${enc(token)}`, carol);
    expect(page.status, JSON.stringify(page.body)).toBe(200);
    const chunk = (page.body.chunk as Body[] | undefined) ?? [];
    if (chunk.length === 0 || page.body.end === undefined) break;
    for (const e of chunk) {
      expect(ids.has(e.event_id as string), `${e.event_id as string} twice`).toBe(false);
      ids.add(e.event_id as string);
      if (e.type === 'm.room.message') got.push(bodyOf(e));
    }
    token = page.body.end as string;
  }
  // Newest first: each sender's messages in reverse order of sending, all of them.
  for (const { prefix } of senders) {
    const mine = got.filter((x) => x.startsWith(prefix));
    const missing = series(prefix, MESSAGES).filter((x) => !mine.includes(x));
    expect(mine, `${prefix}: missing ${missing.join(',')}`).toEqual(series(prefix, MESSAGES).reverse());
  }
}, 180_000);
