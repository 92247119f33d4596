/**
 * Transaction IDs across a restart, over HTTP on SQLite and PostgreSQL: a PUT /send or /redact
 * retried with the same transaction ID from the same device after the server restarted (its
 * memory of transactions gone) answers the first event and sends nothing new; syncapi, which
 * stores each event's transaction, is what still knows it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../internal/sqlutil/testing.js';
import { clientRequester, registerUser, startTestServer, testConfig, waitFor, type TestServer } from '../../test/harness.js';

type Body = Record<string, unknown>;
const enc = encodeURIComponent;

for (const dialect of ['sqlite', 'postgres'] as const) {
  describe(`transaction IDs across a restart [${dialect}]`, () => {
    let t: TestServer;
    let pg: TestDatabase | undefined;
    const req = clientRequester(() => t);

    let alice: string;
    /** Alice's second device (a second login). */
    let alice2: string;
    let room: string;

    const send = (token: string, txn: string, body: string) => req('PUT', `/rooms/${enc(room)}/send/m.room.message/${enc(txn)}`, token, { msgtype: 'm.text', body });
    const redact = (token: string, eventId: string, txn: string) => req('PUT', `/rooms/${enc(room)}/redact/${enc(eventId)}/${enc(txn)}`, token, { reason: 'spam' });
    /** Waits until syncapi has the event: only then does it know the event's transaction. */
    const synced = (eventId: string) => waitFor(async () => ((await req('GET', `/rooms/${enc(room)}/event/${enc(eventId)}`, alice)).status === 200 ? true : undefined));
    /** Stops the server and starts it again on the same configuration and databases (a fresh process's memory). */
    const restart = async () => {
      await t.stop();
      t = await startTestServer({ cfg: t.cfg, dir: t.dir });
    };
    /** The room's timeline, newest first (the whole of it: the room is small). */
    const timeline = async (): Promise<Body[]> => {
      const res = await req('GET', `/rooms/${enc(room)}/messages?dir=b&limit=200`, alice);
      expect(res.status).toBe(200);
      return res.body.chunk as Body[];
    };

    beforeAll(async () => {
      if (dialect === 'postgres') {
        pg = await createTestDatabase('postgres');
        t = await startTestServer(testConfig(undefined, pg.connectionString));
      } else {
        t = await startTestServer();
      }
      alice = await registerUser(req, 'alice');
      const login = await req('POST', '/login', '', { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'alice' }, password: 'pw' });
      expect(login.status).toBe(200);
      alice2 = login.body.access_token as string;
      const created = await req('POST', '/createRoom', alice, { preset: 'public_chat' });
      expect(created.status).toBe(200);
      room = created.body.room_id as string;
    }, 60_000);
    afterAll(async () => {
      await t?.stop();
      await pg?.drop();
    });

    it('answers a /send retried after a restart with the first event, and sends it once', async () => {
      const first = await send(alice, 'txn-1', 'hello once');
      expect(first.status).toBe(200);
      const eventId = first.body.event_id as string;
      expect(eventId).toMatch(/^\$/);
      await synced(eventId);

      await restart();

      const retry = await send(alice, 'txn-1', 'hello once');
      expect(retry.status).toBe(200);
      expect(retry.body.event_id).toBe(eventId);
      // A new transaction ID is a new event; so is the same ID from another device of the same user.
      const other = await send(alice, 'txn-2', 'hello twice');
      expect(other.status).toBe(200);
      expect(other.body.event_id).not.toBe(eventId);
      const otherDevice = await send(alice2, 'txn-1', 'from the second device');
      expect(otherDevice.status).toBe(200);
      expect(otherDevice.body.event_id).not.toBe(eventId);
      expect(otherDevice.body.event_id).not.toBe(other.body.event_id);
      await synced(otherDevice.body.event_id as string);

      const chunk = await timeline();
      const onces = chunk.filter((e) => (e.content as Body | undefined)?.body === 'hello once');
      expect(onces.map((e) => e.event_id)).toEqual([eventId]);
      expect(chunk.filter((e) => e.event_id === other.body.event_id)).toHaveLength(1);
      expect(chunk.filter((e) => e.event_id === otherDevice.body.event_id)).toHaveLength(1);
    });

    it('answers a /redact retried after a restart with the first redaction, and redacts once', async () => {
      const target = (await send(alice, 'target-1', 'to be redacted')).body.event_id as string;
      const target2 = (await send(alice, 'target-2', 'also to be redacted')).body.event_id as string;
      // A message whose transaction ID the redactions below use again.
      const message = (await send(alice, 'shared-txn', 'not a redaction')).body.event_id as string;
      const first = await redact(alice, target, 'redact-1');
      expect(first.status).toBe(200);
      const redactionId = first.body.event_id as string;
      expect(redactionId).toMatch(/^\$/);
      // Until syncapi has applied the redaction too: the test bus is in memory, so what syncapi
      // had not consumed before the restart would be lost (a durable bus keeps it).
      await waitFor(async () => {
        const res = await req('GET', `/rooms/${enc(room)}/event/${enc(target)}`, alice);
        return res.status === 200 && (res.body.content as Body).body === undefined ? true : undefined;
      });

      await restart();

      const retry = await redact(alice, target, 'redact-1');
      expect(retry.status).toBe(200);
      expect(retry.body.event_id).toBe(redactionId);
      // A new transaction ID is a new redaction.
      const other = await redact(alice, target2, 'redact-2');
      expect(other.status).toBe(200);
      expect(other.body.event_id).not.toBe(redactionId);
      // The transaction ID of a message is a separate transaction on /redact.
      const reused = await redact(alice, target2, 'shared-txn');
      expect(reused.status).toBe(200);
      expect([message, redactionId, other.body.event_id]).not.toContain(reused.body.event_id);
      await synced(reused.body.event_id as string);

      const chunk = await timeline();
      const redactsOf = (id: string) =>
        chunk.filter((e) => e.type === 'm.room.redaction' && (e.redacts === id || (e.content as Body | undefined)?.redacts === id)).map((e) => e.event_id);
      expect(redactsOf(target)).toEqual([redactionId]);
      expect(redactsOf(target2).sort()).toEqual([other.body.event_id, reused.body.event_id].sort());
      // The redacted message is still there, once, without its body.
      const redacted = chunk.filter((e) => e.event_id === target);
      expect(redacted).toHaveLength(1);
      expect((redacted[0]!.content as Body).body).toBeUndefined();
    });
  });
}
