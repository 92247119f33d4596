/**
 * A room joined over federation, on SQLite and PostgreSQL: the state the join brought
 * (send_join's state) is state, not timeline (Sytest 31sync/06state.pl "State from remote users
 * is included in the state in the initial sync"): an initial sync filtered to a custom state
 * type shows that event once, in `state`, with an empty timeline; state sent after the join shows
 * in the timeline.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../internal/sqlutil/testing.js';
import { databaseFor } from '../../setup/config/config.js';
import { nodeRequest, registerOn, startFederatingNode, type FederatingNode } from '../../test/federation.js';
import { waitFor } from '../../test/harness.js';

type Body = Record<string, unknown>;
const enc = encodeURIComponent;

const client = nodeRequest;
const register = registerOn;
const until = waitFor;

/** A federating node on its own database: embedded SQLite, or one PostgreSQL database for every component (the -db form of generate-config). */
const startNode = async (pg: TestDatabase | undefined): Promise<FederatingNode> =>
  startFederatingNode((doc) => {
    if (!pg) return;
    doc.global!.database = { connection_string: pg.connectionString, max_open_conns: 20, max_idle_conns: 2, conn_max_lifetime: -1 };
    for (const [section, key] of [['app_service_api', 'database'], ['federation_api', 'database'], ['media_api', 'database'], ['mscs', 'database'], ['room_server', 'database'], ['sync_api', 'database'], ['user_api', 'account_database']] as const) {
      delete (doc[section] as Record<string, unknown> | undefined)?.[key];
    }
  });

for (const dialect of ['sqlite', 'postgres'] as const) {
  describe(`state of a remote join in /sync [${dialect}]`, () => {
    let pgA: TestDatabase | undefined;
    let pgB: TestDatabase | undefined;
    let a: FederatingNode;
    let b: FederatingNode;
    let alice: string;
    let bob: string;

    beforeAll(async () => {
      if (dialect === 'postgres') [pgA, pgB] = await Promise.all([createTestDatabase('postgres'), createTestDatabase('postgres')]);
      [a, b] = await Promise.all([startNode(pgA), startNode(pgB)]);
      // Each node's syncapi is on the database meant for it (not the embedded default).
      expect(databaseFor(a.t.cfg, 'syncapi').connectionString).toEqual(pgA?.connectionString ?? expect.stringMatching(/^file:/));
      expect(databaseFor(b.t.cfg, 'syncapi').connectionString).toEqual(pgB?.connectionString ?? expect.stringMatching(/^file:/));
      alice = await register(a, 'alice');
      bob = await register(b, 'bob');
    }, 90_000);
    afterAll(async () => {
      await Promise.all([a?.t.stop(), b?.t.stop()]);
      await Promise.all([pgA?.drop(), pgB?.drop()]);
    });

    it('shows the state a remote join brought in state only, and later state in the timeline', async () => {
      const filter = { room: { timeline: { types: ['a.madeup.test.state'] }, state: { types: ['a.madeup.test.state'] }, ephemeral: { types: [] } }, presence: { types: [] } };
      const filterId = (await client(b, 'POST', `/user/${enc(`@bob:${b.name}`)}/filter`, bob, filter)).body.filter_id as string;
      const roomId = (await client(a, 'POST', '/createRoom', alice, { preset: 'private_chat' })).body.room_id as string;
      expect((await client(a, 'PUT', `/rooms/${enc(roomId)}/state/a.madeup.test.state`, alice, { my_key: 1 })).status).toBe(200);
      expect((await client(a, 'POST', `/rooms/${enc(roomId)}/invite`, alice, { user_id: `@bob:${b.name}` })).status).toBe(200);
      await until(async () => (((((await client(b, 'GET', '/sync?timeout=0', bob)).body.rooms as Body).invite as Body)[roomId] ? true : undefined)));
      expect((await client(b, 'POST', `/join/${enc(roomId)}`, bob, {})).status).toBe(200);

      const room = await until(async () => (((await client(b, 'GET', `/sync?timeout=0&filter=${filterId}`, bob)).body.rooms as Body).join as Record<string, Body>)[roomId]);
      const state = (room.state as { events: Body[] }).events;
      expect(state).toHaveLength(1);
      expect(state[0]).toMatchObject({ type: 'a.madeup.test.state', content: { my_key: 1 } });
      expect((room.timeline as { events: Body[] }).events).toEqual([]);

      // State sent after the join arrives as timeline.
      const next = (await client(b, 'GET', `/sync?timeout=0&filter=${filterId}`, bob)).body.next_batch as string;
      expect((await client(a, 'PUT', `/rooms/${enc(roomId)}/state/a.madeup.test.state`, alice, { my_key: 2 })).status).toBe(200);
      const later = await until(async () => {
        const s = (await client(b, 'GET', `/sync?timeout=500&filter=${filterId}&since=${next}`, bob)).body;
        const events = ((((s.rooms as Body).join as Record<string, Body>)[roomId]?.timeline as { events: Body[] } | undefined)?.events ?? []);
        return events.length > 0 ? events : undefined;
      });
      expect(later.map((e) => (e.content as Body).my_key)).toEqual([2]);
      // And paging back from the join finds the room's history (the state it brought is history too).
      const back = (await client(b, 'GET', `/rooms/${enc(roomId)}/messages?dir=b&limit=50`, bob)).body;
      expect(((back.chunk as Body[]) ?? []).some((e) => e.type === 'm.room.create')).toBe(true);
    });
  });
}
