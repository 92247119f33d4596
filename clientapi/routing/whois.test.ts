/** GET /admin/whois/{userId} over HTTP on both databases: for admins and for oneself. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientRequester, getJson, registerAdmin, registerUser, type TestServer, startTestServerOn, TEST_DIALECTS } from '../../test/harness.js';

type Body = Record<string, unknown>;
const enc = encodeURIComponent;

for (const dialect of TEST_DIALECTS) {
  describe(`GET /admin/whois [${dialect}]`, () => {
    let t: TestServer;
    const req = clientRequester(() => t);
    let admin: string;
    let alice: string;
    let bob: string;
    beforeAll(async () => {
      t = await startTestServerOn(dialect);
      admin = await registerAdmin(t, 'boss');
      alice = await registerUser(req, 'alice');
      bob = await registerUser(req, 'bob');
    }, 60_000);
    afterAll(() => t?.stop());

    const whois = (userId: string, token: string, userAgent = 'whois-test/1.0') =>
      getJson(`${t.baseUrl}/_matrix/client/v3/admin/whois/${enc(userId)}`, { headers: { Authorization: `Bearer ${token}`, 'User-Agent': userAgent } });

    it("lists a user's devices with where each was last seen from, to an admin and to the user", async () => {
      // Alice's device is seen with a user agent of its own.
      await getJson(`${t.baseUrl}/_matrix/client/v3/account/whoami`, { headers: { Authorization: `Bearer ${alice}`, 'User-Agent': 'alice-client/2.0' } });
      for (const token of [admin, alice]) {
        const r = await whois('@alice:localhost:8008', token);
        expect(r.status, JSON.stringify(r.body)).toBe(200);
        expect(r.body.user_id).toBe('@alice:localhost:8008');
        const devices = r.body.devices as Record<string, { sessions: Array<{ connections: Body[] }> }>;
        expect(Object.keys(devices)).toHaveLength(1);
        const [connection] = Object.values(devices)[0]!.sessions[0]!.connections;
        expect(connection).toMatchObject({ ip: '127.0.0.1', user_agent: expect.stringMatching(/^(alice-client\/2\.0|whois-test\/1\.0)$/) });
        expect(connection!.last_seen).toBeGreaterThan(Date.now() - 60_000);
      }
    });

    it('refuses other users, non-local and malformed user IDs, and requests without a token', async () => {
      const other = await whois('@alice:localhost:8008', bob);
      expect([other.status, other.body.errcode]).toEqual([403, 'M_FORBIDDEN']);
      const remote = await whois('@someone:elsewhere.example', admin);
      expect([remote.status, remote.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
      const bad = await whois('not-a-user', admin);
      expect([bad.status, bad.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
      const none = await getJson(`${t.baseUrl}/_matrix/client/v3/admin/whois/${enc('@alice:localhost:8008')}`);
      expect([none.status, none.body.errcode]).toEqual([401, 'M_MISSING_TOKEN']);
    });
  });
}
