/**
 * Binding and unbinding 3PIDs through the homeserver (/account/3pid/bind, /unbind, /delete,
 * and /account/deactivate), against fake identity servers over HTTPS that check the
 * homeserver's X-Matrix signature on /3pid/unbind with the key it publishes. Success and the
 * refusals: bad requests, identity servers that refuse or cannot be reached. On SQLite and
 * PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientRequester, getJson, registerUser, startTestServerOn, TEST_DIALECTS, type TestServer } from '../../test/harness.js';
import { FakeIdentityServer, ID_ACCESS_TOKEN } from '../../test/identityserver.js';

const SERVER = 'localhost:8008';

for (const dialect of TEST_DIALECTS) {
  describe(`3PID binding through the homeserver [${dialect}]`, () => {
    let t: TestServer;
    let isA: FakeIdentityServer;
    let isB: FakeIdentityServer;
    const req = clientRequester(() => t);
    /** Under /_matrix/client/unstable, where Sytest calls bind and unbind. */
    const unstable = (path: string, token: string, body: unknown) =>
      getJson(`${t.baseUrl}/_matrix/client/unstable${path}`, { method: 'POST', body: JSON.stringify(body), headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` } });
    let n = 0;
    const email = (): string => `bob${n++}@example.org`;
    const secret = 'ClientSecret.=_-1';

    beforeAll(async () => {
      // The fake identity servers' certificates are self-signed, as Sytest's is.
      t = await startTestServerOn(dialect, (doc) => {
        doc.federation_api!.disable_tls_validation = true;
      });
      isA = await FakeIdentityServer.start();
      isB = await FakeIdentityServer.start();
      for (const is of [isA, isB]) is.homeservers.set(SERVER, t.baseUrl);
    });
    afterAll(async () => {
      await isA?.close();
      await isB?.close();
      await t?.stop();
    });

    /** Validates `address` at `is` out of band, then binds it through the homeserver. */
    const bind = async (token: string, address: string, is = isA, path = '/account/3pid/bind') => {
      const sid = is.validateSession('email', address, secret);
      const body = { id_server: is.name, id_access_token: ID_ACCESS_TOKEN, sid, client_secret: secret };
      return path.startsWith('/unstable') ? unstable(path.slice('/unstable'.length), token, body) : req('POST', path, token, body);
    };

    describe('bind', () => {
      it('has the identity server bind the session to the user (v3 and unstable), and lists no account 3PIDs', async () => {
        const alice = await registerUser(req, 'alice');
        const a1 = email();
        const a2 = email();
        expect(await bind(alice, a1)).toMatchObject({ status: 200, body: {} });
        expect(await bind(alice, a2, isA, '/unstable/account/3pid/bind')).toMatchObject({ status: 200, body: {} });
        expect(isA.boundTo('email', a1)).toBe(`@alice:${SERVER}`);
        expect(isA.boundTo('email', a2)).toBe(`@alice:${SERVER}`);
        const call = isA.requests.find((r) => r.path === '/_matrix/identity/v2/3pid/bind');
        expect(call).toMatchObject({ method: 'POST', authorization: `Bearer ${ID_ACCESS_TOKEN}`, body: { client_secret: secret, mxid: `@alice:${SERVER}` } });
        // The spec keeps bindings apart from the account's own 3PIDs.
        expect((await req('GET', '/account/3pid', alice)).body).toEqual({ threepids: [] });
      });

      it('refuses bad requests before calling any identity server', async () => {
        const carol = await registerUser(req, 'carol');
        const before = isA.requests.length;
        const good = { id_server: isA.name, id_access_token: ID_ACCESS_TOKEN, sid: 'session_x', client_secret: secret };
        const cases: Array<[Record<string, unknown>, number, string]> = [
          [{ ...good, id_server: 'not a/server' }, 400, 'M_INVALID_PARAM'],
          [{ ...good, id_server: 7 }, 400, 'M_BAD_JSON'],
          [{ ...good, id_server: undefined }, 400, 'M_MISSING_PARAM'],
          [{ ...good, sid: undefined }, 400, 'M_MISSING_PARAM'],
          [{ ...good, sid: '' }, 400, 'M_INVALID_PARAM'],
          [{ ...good, id_access_token: undefined }, 400, 'M_MISSING_PARAM'],
          [{ ...good, id_access_token: ['x'] }, 400, 'M_BAD_JSON'],
          [{ ...good, client_secret: undefined }, 400, 'M_MISSING_PARAM'],
          [{ ...good, client_secret: 'has space' }, 400, 'M_INVALID_PARAM'],
        ];
        for (const [body, status, errcode] of cases) {
          const r = await req('POST', '/account/3pid/bind', carol, body);
          expect([r.status, r.body.errcode], JSON.stringify(body)).toEqual([status, errcode]);
        }
        const notJson = await getJson(`${t.baseUrl}/_matrix/client/v3/account/3pid/bind`, { method: 'POST', body: '[1]', headers: { Authorization: `Bearer ${carol}` } });
        expect(notJson.status).toBe(400);
        // An oversized body is refused without being read to the end.
        for (const path of ['/account/3pid/bind', '/account/3pid/unbind', '/account/3pid/delete']) {
          const big = await req('POST', path, carol, { ...good, medium: 'email', address: 'a@example.org', padding: 'x'.repeat(128 * 1024) });
          expect([big.status, big.body.errcode], path).toEqual([413, 'M_TOO_LARGE']);
        }
        const anon = await req('POST', '/account/3pid/bind', '', good);
        expect([anon.status, anon.body.errcode]).toEqual([401, 'M_MISSING_TOKEN']);
        expect((await unstable('/account/3pid/bind', 'bogus', good)).body.errcode).toBe('M_UNKNOWN_TOKEN');
        expect(isA.requests.length).toBe(before);
      });

      it('maps the identity server refusing or failing to spec errors, and records nothing', async () => {
        const dave = await registerUser(req, 'dave');
        const address = email();
        const sid = isA.validateSession('email', address, secret);
        const body = { id_server: isA.name, id_access_token: ID_ACCESS_TOKEN, sid, client_secret: secret };
        // No validated session with that secret.
        const wrongSecret = await req('POST', '/account/3pid/bind', dave, { ...body, client_secret: 'other' });
        expect([wrongSecret.status, wrongSecret.body.errcode]).toEqual([400, 'M_THREEPID_AUTH_FAILED']);
        // The identity server does not know the access token: 403, never a 401 that would log the client out.
        const badToken = await req('POST', '/account/3pid/bind', dave, { ...body, id_access_token: 'nope' });
        expect([badToken.status, badToken.body.errcode]).toEqual([403, 'M_UNAUTHORIZED']);
        isA.overrides.set('/_matrix/identity/v2/3pid/bind', { status: 403, body: { errcode: 'M_TERMS_NOT_SIGNED', error: 'agree first' } });
        const terms = await req('POST', '/account/3pid/bind', dave, body);
        expect([terms.status, terms.body.errcode]).toEqual([403, 'M_TERMS_NOT_SIGNED']);
        isA.overrides.set('/_matrix/identity/v2/3pid/bind', { status: 500, body: { errcode: 'M_UNKNOWN', error: 'oops' } });
        expect(await req('POST', '/account/3pid/bind', dave, body)).toMatchObject({ status: 502, body: { errcode: 'M_UNKNOWN' } });
        isA.overrides.set('/_matrix/identity/v2/3pid/bind', { status: 200, body: { mxid: `@dave:${SERVER}` } });
        expect(await req('POST', '/account/3pid/bind', dave, body)).toMatchObject({ status: 502, body: { errcode: 'M_UNKNOWN' } });
        isA.overrides.delete('/_matrix/identity/v2/3pid/bind');
        // Unreachable: a closed port.
        const gone = await FakeIdentityServer.start();
        const goneName = gone.name;
        await gone.close();
        const unreachable = await req('POST', '/account/3pid/bind', dave, { ...body, id_server: goneName });
        expect([unreachable.status, unreachable.body.errcode]).toEqual([502, 'M_UNKNOWN']);
        expect(isA.boundTo('email', address)).toBeUndefined();
        // Nothing was recorded, so there is nothing to unbind.
        expect((await req('POST', '/account/3pid/unbind', dave, { medium: 'email', address })).body).toEqual({ id_server_unbind_result: 'no-support' });
      });
    });

    describe('unbind and delete', () => {
      it('delete unbinds where the 3PID was bound, signed by the homeserver; then nothing is left to unbind', async () => {
        const erin = await registerUser(req, 'erin');
        const address = email();
        expect((await bind(erin, address)).status).toBe(200);
        const r = await req('POST', '/account/3pid/delete', erin, { medium: 'email', address });
        expect(r).toMatchObject({ status: 200, body: { id_server_unbind_result: 'success' } });
        expect(isA.boundTo('email', address)).toBeUndefined();
        expect(isA.unbinds.at(-1)).toEqual({ origin: SERVER, mxid: `@erin:${SERVER}`, medium: 'email', address });
        const unbindsBefore = isA.unbinds.length;
        expect((await req('POST', '/account/3pid/delete', erin, { medium: 'email', address })).body).toEqual({ id_server_unbind_result: 'no-support' });
        expect(isA.unbinds.length).toBe(unbindsBefore);
      });

      it('unbinds on every server the 3PID was bound on, with the address in any case', async () => {
        const frank = await registerUser(req, 'frank');
        const address = email();
        expect((await bind(frank, address, isA)).status).toBe(200);
        expect((await bind(frank, address, isB)).status).toBe(200);
        const r = await unstable('/account/3pid/unbind', frank, { medium: 'email', address: address.toUpperCase() });
        expect(r.body).toEqual({ id_server_unbind_result: 'success' });
        expect(isA.boundTo('email', address)).toBeUndefined();
        expect(isB.boundTo('email', address)).toBeUndefined();
      });

      it('unbinds on the server the client names, even when bound out of band', async () => {
        const gina = await registerUser(req, 'gina');
        const address = email();
        await isB.bind('email', address, `@gina:${SERVER}`);
        const r = await req('POST', '/account/3pid/delete', gina, { medium: 'email', address, id_server: isB.name });
        expect(r.body).toEqual({ id_server_unbind_result: 'success' });
        expect(isB.boundTo('email', address)).toBeUndefined();
        // Naming one server leaves a binding recorded on another alone.
        const other = email();
        expect((await bind(gina, other, isA)).status).toBe(200);
        expect((await unstable('/account/3pid/unbind', gina, { medium: 'email', address: other, id_server: isB.name })).body).toEqual({ id_server_unbind_result: 'no-support' });
        expect(isA.boundTo('email', other)).toBe(`@gina:${SERVER}`);
        expect((await unstable('/account/3pid/unbind', gina, { medium: 'email', address: other })).body).toEqual({ id_server_unbind_result: 'success' });
      });

      it("passes the identity server's Matrix error on, keeping the record; a server that cannot unbind is no-support", async () => {
        const hank = await registerUser(req, 'hank');
        const address = email();
        expect((await bind(hank, address)).status).toBe(200);
        isA.overrides.set('/_matrix/identity/v2/3pid/unbind', { status: 403, body: { errcode: 'M_FORBIDDEN', error: 'Invalid homeserver signature' } });
        const forbidden = await req('POST', '/account/3pid/unbind', hank, { medium: 'email', address });
        expect([forbidden.status, forbidden.body.errcode]).toEqual([403, 'M_FORBIDDEN']);
        isA.overrides.set('/_matrix/identity/v2/3pid/unbind', { status: 501 });
        expect((await req('POST', '/account/3pid/unbind', hank, { medium: 'email', address })).body).toEqual({ id_server_unbind_result: 'no-support' });
        isA.overrides.delete('/_matrix/identity/v2/3pid/unbind');
        // The 501 answer ended the record: the binding itself stays at the identity server.
        expect(isA.boundTo('email', address)).toBe(`@hank:${SERVER}`);
        expect((await req('POST', '/account/3pid/unbind', hank, { medium: 'email', address })).body).toEqual({ id_server_unbind_result: 'no-support' });
      });

      it('checks the request, and answers 502 for an identity server it cannot reach', async () => {
        const ivan = await registerUser(req, 'ivan');
        for (const path of ['/account/3pid/delete', '/account/3pid/unbind']) {
          const cases: Array<[Record<string, unknown>, number, string]> = [
            [{ address: 'a@example.org' }, 400, 'M_MISSING_PARAM'],
            [{ medium: 'email' }, 400, 'M_MISSING_PARAM'],
            [{ medium: 3, address: 'a@example.org' }, 400, 'M_BAD_JSON'],
            [{ medium: 'email', address: 'a@example.org', id_server: 5 }, 400, 'M_BAD_JSON'],
            [{ medium: 'email', address: 'a@example.org', id_server: 'https://is.example' }, 400, 'M_INVALID_PARAM'],
          ];
          for (const [body, status, errcode] of cases) {
            const r = await req('POST', path, ivan, body);
            expect([r.status, r.body.errcode], `${path} ${JSON.stringify(body)}`).toEqual([status, errcode]);
          }
          expect((await req('POST', path, '', { medium: 'email', address: 'a@example.org' })).status).toBe(401);
        }
        const gone = await FakeIdentityServer.start();
        const goneName = gone.name;
        await gone.close();
        const r = await req('POST', '/account/3pid/delete', ivan, { medium: 'email', address: 'a@example.org', id_server: goneName });
        expect([r.status, r.body.errcode]).toEqual([502, 'M_UNKNOWN']);
      });
    });

    describe('deactivation', () => {
      const deactivate = (token: string, user: string, extra: Record<string, unknown> = {}) =>
        req('POST', '/account/deactivate', token, { auth: { type: 'm.login.password', identifier: { type: 'm.id.user', user }, password: 'pw' }, ...extra });

      it('unbinds every bound 3PID where it was bound', async () => {
        const judy = await registerUser(req, 'judy');
        const a1 = email();
        const a2 = email();
        expect((await bind(judy, a1, isA)).status).toBe(200);
        expect((await bind(judy, a2, isB)).status).toBe(200);
        const r = await deactivate(judy, 'judy');
        expect(r).toMatchObject({ status: 200, body: { id_server_unbind_result: 'success' } });
        expect(isA.boundTo('email', a1)).toBeUndefined();
        expect(isB.boundTo('email', a2)).toBeUndefined();
      });

      it('goes ahead when an identity server cannot be reached, answering no-support', async () => {
        const kim = await registerUser(req, 'kim');
        const reachable = email();
        const stranded = email();
        const doomed = await FakeIdentityServer.start();
        doomed.homeservers.set(SERVER, t.baseUrl);
        expect((await bind(kim, stranded, doomed)).status).toBe(200);
        expect((await bind(kim, reachable, isA)).status).toBe(200);
        await doomed.close();
        const r = await deactivate(kim, 'kim');
        expect(r).toMatchObject({ status: 200, body: { id_server_unbind_result: 'no-support' } });
        expect(isA.boundTo('email', reachable)).toBeUndefined();
        expect((await req('GET', '/account/whoami', kim)).status).toBe(401);
      });

      it('unbinds from the identity server the client names, and checks id_server before asking for the password', async () => {
        const liam = await registerUser(req, 'liam');
        const address = email();
        expect((await bind(liam, address, isA)).status).toBe(200);
        await isB.bind('email', address, `@liam:${SERVER}`);
        const bad = await req('POST', '/account/deactivate', liam, { id_server: 'bad/name' });
        expect([bad.status, bad.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
        expect((await deactivate(liam, 'liam', { id_server: isB.name })).body).toEqual({ id_server_unbind_result: 'success' });
        expect(isB.boundTo('email', address)).toBeUndefined();
        // Only the named server was asked.
        expect(isA.boundTo('email', address)).toBe(`@liam:${SERVER}`);
      });
    });
  });
}
