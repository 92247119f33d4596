/**
 * The spec's checks on relations a client sends: no thread from an event that is itself a
 * relation (400 M_UNKNOWN, "Validation of m.thread relationships"), and no second identical
 * annotation by the same user (400 M_DUPLICATE_ANNOTATION, "Avoiding duplicate annotations")
 * unless the first was redacted. On SQLite and PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientRequester, registerUser, type TestServer, startTestServerOn, TEST_DIALECTS } from '../../test/harness.js';

for (const dialect of TEST_DIALECTS) {
  describe(`relation checks on send [${dialect}]`, () => {
    let t: TestServer;
    const req = clientRequester(() => t);
    const enc = encodeURIComponent;
    let alice: string;
    let bob: string;
    let roomId: string;
    let txn = 0;

    beforeAll(async () => {
      t = await startTestServerOn(dialect);
      alice = await registerUser(req, 'alice');
      bob = await registerUser(req, 'bob');
      roomId = (await req('POST', '/createRoom', alice, { preset: 'public_chat' })).body.room_id as string;
      expect((await req('POST', `/rooms/${enc(roomId)}/join`, bob, {})).status).toBe(200);
    });
    afterAll(() => t?.stop());

    const send = (token: string, type: string, content: unknown) => req('PUT', `/rooms/${enc(roomId)}/send/${type}/r${++txn}`, token, content);
    const react = (token: string, target: string, key: string) => send(token, 'm.reaction', { 'm.relates_to': { rel_type: 'm.annotation', event_id: target, key } });
    /** Waits until syncapi has indexed `child` as a relation of `parent`. */
    async function indexed(parent: string, child: string): Promise<void> {
      const end = Date.now() + 10_000;
      for (;;) {
        const chunk = ((await getRelations(parent)).chunk as Array<{ event_id: string }> | undefined) ?? [];
        if (chunk.some((e) => e.event_id === child)) return;
        if (Date.now() > end) throw new Error('never indexed');
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    const getRelations = async (parent: string) =>
      (await fetch(`${t.baseUrl}/_matrix/client/v1/rooms/${enc(roomId)}/relations/${enc(parent)}`, { headers: { Authorization: `Bearer ${alice}` } })).json() as Promise<Record<string, unknown>>;

    it('refuses a thread started from an event that is itself a relation', async () => {
      const root = (await send(alice, 'm.room.message', { msgtype: 'm.text', body: 'root' })).body.event_id as string;
      const inThread = await send(bob, 'm.room.message', { msgtype: 'm.text', body: 'reply', 'm.relates_to': { rel_type: 'm.thread', event_id: root } });
      expect(inThread.status).toBe(200);
      const nested = await send(alice, 'm.room.message', { msgtype: 'm.text', body: 'nested', 'm.relates_to': { rel_type: 'm.thread', event_id: inThread.body.event_id } });
      expect(nested.status).toBe(400);
      expect(nested.body.errcode).toBe('M_UNKNOWN');
      const reaction = (await react(alice, root, '🧵')).body.event_id as string;
      const fromReaction = await send(bob, 'm.room.message', { msgtype: 'm.text', body: 'x', 'm.relates_to': { rel_type: 'm.thread', event_id: reaction } });
      expect(fromReaction.body.errcode).toBe('M_UNKNOWN');
      // A rich reply to a thread event has no rel_type: it is taken.
      expect((await send(alice, 'm.room.message', { msgtype: 'm.text', body: 'plain', 'm.relates_to': { 'm.in_reply_to': { event_id: inThread.body.event_id } } })).status).toBe(200);
    });

    it('refuses the same annotation twice from one user, allows other keys, other users, and again after a redaction', async () => {
      const target = (await send(alice, 'm.room.message', { msgtype: 'm.text', body: 'react to me' })).body.event_id as string;
      const first = await react(alice, target, '👍');
      expect(first.status).toBe(200);
      await indexed(target, first.body.event_id as string);
      const again = await react(alice, target, '👍');
      expect(again.status).toBe(400);
      expect(again.body.errcode).toBe('M_DUPLICATE_ANNOTATION');
      expect((await react(alice, target, '🎉')).status).toBe(200);
      expect((await react(bob, target, '👍')).status).toBe(200);
      // Redacted, it no longer counts.
      expect((await req('PUT', `/rooms/${enc(roomId)}/redact/${enc(first.body.event_id as string)}/x${++txn}`, alice, {})).status).toBe(200);
      const end = Date.now() + 10_000;
      let status = 0;
      while (status !== 200 && Date.now() < end) {
        status = (await react(alice, target, '👍')).status;
        if (status !== 200) await new Promise((r) => setTimeout(r, 20));
      }
      expect(status).toBe(200);
    });
  });
}
