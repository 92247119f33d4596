/**
 * client_api.rate_limiting over HTTP on a real monolith (threshold 3, cooloff 2 s), on SQLite
 * and PostgreSQL: per-device slots, 429 M_LIMIT_EXCEEDED with retry_after_ms, exempt users,
 * unlimited reads, bad tokens still 401, the cooloff, and /login limited per address.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientRequester, getJson, registerUser, waitFor, type TestServer, startTestServerOn, TEST_DIALECTS } from '../../test/harness.js';

type Body = Record<string, unknown>;
const enc = encodeURIComponent;
const BOB = '@bob:localhost:8008';
const THRESHOLD = 3;
const COOLOFF_MS = 2000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const dialect of TEST_DIALECTS) {
  describe(`client API rate limiting [${dialect}]`, () => {
    let t: TestServer;
    const req = clientRequester(() => t);
    /** alice's first device (from registration), alice's second device (from /login), bob (exempt). */
    let aliceA: string;
    let aliceB: string;
    let bob: string;
    let room: string;
    let retryAfterMs = 0;
    const send = (token: string, body: string, txn: string) => req('PUT', `/rooms/${enc(room)}/send/m.room.message/${txn}`, token, { msgtype: 'm.text', body });

    beforeAll(async () => {
      const limits = (doc: Record<string, Record<string, unknown>>) => {
        doc.client_api!.rate_limiting = { enabled: true, threshold: THRESHOLD, cooloff_ms: COOLOFF_MS, exempt_user_ids: [BOB] };
      };
      t = await startTestServerOn(dialect, limits);
      // Three unauthenticated requests from this address: its whole allowance for a while.
      aliceA = await registerUser(req, 'alice');
      bob = await registerUser(req, 'bob');
      const login = await req('POST', '/login', '', { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'alice' }, password: 'pw' });
      expect(login.status).toBe(200);
      aliceB = login.body.access_token as string;
      const created = await req('POST', '/createRoom', aliceB, { preset: 'public_chat' });
      expect(created.status).toBe(200);
      room = created.body.room_id as string;
      expect((await req('POST', `/join/${enc(room)}`, bob)).status).toBe(200);
    }, 60_000);
    afterAll(() => t?.stop());

    it('refuses a device its 4th quick send with 429 M_LIMIT_EXCEEDED and retry_after_ms, on /v3 and /r0', async () => {
      for (let i = 1; i <= THRESHOLD; i++) expect((await send(aliceA, `s${i}`, `s${i}`)).status).toBe(200);
      const refused = await send(aliceA, 'rejected', 'r1');
      expect(refused.status).toBe(429);
      expect(refused.body.errcode).toBe('M_LIMIT_EXCEEDED');
      expect(typeof refused.body.error).toBe('string');
      retryAfterMs = refused.body.retry_after_ms as number;
      expect(Number.isInteger(retryAfterMs)).toBe(true);
      expect(retryAfterMs).toBeGreaterThan(0);
      expect(retryAfterMs).toBeLessThanOrEqual(COOLOFF_MS);
      // The limit is the device's, whichever path version it uses.
      const r0 = await getJson(`${t.baseUrl}/_matrix/client/r0/rooms/${enc(room)}/send/m.room.message/r2`, {
        method: 'PUT',
        body: JSON.stringify({ msgtype: 'm.text', body: 'rejected' }),
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${aliceA}` },
      });
      expect(r0.status).toBe(429);
      expect(r0.body.errcode).toBe('M_LIMIT_EXCEEDED');
    });

    it('does not limit another device of the same user', async () => {
      expect((await send(aliceB, 'from B', 'b1')).status).toBe(200);
    });

    it('never limits an exempt user', async () => {
      for (let i = 0; i < THRESHOLD * 2; i++) expect((await send(bob, `bob${i}`, `bob${i}`)).status).toBe(200);
    });

    it('does not limit reads', async () => {
      for (let i = 0; i < THRESHOLD * 2; i++) expect((await req('GET', `/rooms/${enc(room)}/messages?dir=b&limit=5`, aliceA)).status).toBe(200);
    });

    it('answers unknown and missing tokens with the usual 401, never 429', async () => {
      for (let i = 0; i < THRESHOLD * 2; i++) {
        const bad = await send('not-a-token', 'x', `x${i}`);
        expect(bad.status).toBe(401);
        expect(bad.body.errcode).toBe('M_UNKNOWN_TOKEN');
        const none = await send('', 'x', `y${i}`);
        expect(none.status).toBe(401);
        expect(none.body.errcode).toBe('M_MISSING_TOKEN');
      }
    });

    it('lets the device send again once retry_after_ms has passed, and the refused sends did nothing', async () => {
      expect(retryAfterMs).toBeGreaterThan(0);
      await sleep(retryAfterMs + 50);
      const again = await send(aliceA, 'after cooloff', 'a1');
      expect(again.status).toBe(200);
      const eventId = again.body.event_id as string;
      // syncapi stores events behind the send: wait for this one, then read the timeline.
      const bodies = await waitFor(async () => {
        const res = await req('GET', `/rooms/${enc(room)}/messages?dir=b&limit=50`, aliceA);
        const chunk = res.body.chunk as Body[];
        if (!chunk.some((e) => e.event_id === eventId)) return undefined;
        return chunk.filter((e) => e.type === 'm.room.message').map((e) => (e.content as Body).body);
      });
      expect(bodies).toEqual(expect.arrayContaining(['s1', 's2', 's3', 'from B', 'after cooloff']));
      expect(bodies).not.toContain('rejected');
    });

    it('limits /login per client address', async () => {
      // Up to three slots of this address may be free; four at once cannot all pass.
      const attempts = await Promise.all(
        Array.from({ length: THRESHOLD + 1 }, () => req('POST', '/login', '', { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'alice' }, password: 'wrong' })),
      );
      const limited = attempts.filter((a) => a.status === 429);
      expect(limited.length).toBeGreaterThanOrEqual(1);
      for (const a of limited) {
        expect(a.body.errcode).toBe('M_LIMIT_EXCEEDED');
        expect(a.body.retry_after_ms as number).toBeGreaterThan(0);
      }
      // The others reached the route: a wrong password is 403 M_FORBIDDEN.
      for (const a of attempts.filter((x) => x.status !== 429)) expect(a.body.errcode).toBe('M_FORBIDDEN');
    });
  });
}
