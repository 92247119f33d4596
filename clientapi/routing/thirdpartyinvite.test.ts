/**
 * Third-party invites on one server, against a fake identity server over HTTPS: inviting a
 * bound 3PID (POST /invite and createRoom's invite_3pid), an unbound one (the identity server
 * stores it; m.room.third_party_invite), redemption through /3pid/onbind and through /join's
 * third_party_signed, and the refusals: wrong signature, revoked key, unreachable identity
 * server, bad requests. On SQLite and PostgreSQL.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { clientRequester, registerUser, type TestServer, startTestServerOn, TEST_DIALECTS } from '../../test/harness.js';
import { FakeIdentityServer, ID_ACCESS_TOKEN } from '../../test/identityserver.js';

for (const dialect of TEST_DIALECTS) {
  describe(`third-party invites [${dialect}]`, () => {
    let t: TestServer;
    let is: FakeIdentityServer;
    const req = clientRequester(() => t);
    const enc = encodeURIComponent;
    let alice: string;
    let bob: string;
    let carol: string;
    const ALICE = '@alice:localhost:8008';
    const BOB = '@bob:localhost:8008';
    const CAROL = '@carol:localhost:8008';
    let n = 0;

    beforeAll(async () => {
      // The fake identity server's certificate is self-signed, as Sytest's is.
      t = await startTestServerOn(dialect, (doc) => {
        doc.federation_api!.disable_tls_validation = true;
      });
      alice = await registerUser(req, 'alice');
      bob = await registerUser(req, 'bob');
      carol = await registerUser(req, 'carol');
    });
    afterAll(() => t?.stop());
    beforeEach(async () => {
      is = await FakeIdentityServer.start();
      return () => is.close();
    });

    /** A fresh email address per test: bindings and invites stay apart. */
    const email = (): string => `lemur${n++}@monkeyworld.example`;
    const threePid = (address: string, extra: Record<string, unknown> = {}) => ({ id_server: is.name, id_access_token: ID_ACCESS_TOKEN, medium: 'email', address, ...extra });
    const newRoom = async (body: Record<string, unknown> = {}): Promise<string> => {
      const res = await req('POST', '/createRoom', alice, { visibility: 'private', ...body });
      expect(res.status).toBe(200);
      return res.body.room_id as string;
    };
    const memberOf = async (roomId: string, userId: string) => req('GET', `/rooms/${enc(roomId)}/state/m.room.member/${enc(userId)}`, alice);
    const stateOf = async (roomId: string) => (await req('GET', `/rooms/${enc(roomId)}/state`, alice)).body as unknown as Array<{ type: string; state_key: string; sender: string; content: Record<string, unknown> }>;
    const thirdPartyInviteOf = async (roomId: string) => (await stateOf(roomId)).find((e) => e.type === 'm.room.third_party_invite');

    describe('inviting a bound 3PID', () => {
      it('invites the user the identity server names, with a hashed lookup and the access token as Bearer', async () => {
        const address = email();
        await is.bind('email', address, BOB);
        const roomId = await newRoom();
        expect(await req('POST', `/rooms/${enc(roomId)}/invite`, alice, threePid(address))).toMatchObject({ status: 200 });
        expect((await memberOf(roomId, BOB)).body).toMatchObject({ membership: 'invite' });
        const lookup = is.requests.find((r) => r.path === '/_matrix/identity/v2/lookup');
        expect(lookup?.authorization).toBe(`Bearer ${ID_ACCESS_TOKEN}`);
        expect(lookup?.body).toMatchObject({ algorithm: 'sha256', pepper: 'matrixrocks' });
        // The address itself never reaches the identity server in a hashed lookup.
        expect(JSON.stringify(lookup?.body)).not.toContain(address);
        expect(is.invites).toHaveLength(0);
      });

      it('invites in createRoom (invite_3pid)', async () => {
        const address = email();
        await is.bind('email', address, BOB);
        const roomId = await newRoom({ invite_3pid: [threePid(address)] });
        expect((await memberOf(roomId, BOB)).body).toMatchObject({ membership: 'invite' });
      });

      it('lets a member without ops invite into a private_chat room (invite level 0)', async () => {
        const address = email();
        await is.bind('email', address, BOB);
        const roomId = await newRoom({ preset: 'private_chat', invite: [CAROL] });
        expect((await req('POST', `/rooms/${enc(roomId)}/join`, carol, {})).status).toBe(200);
        expect((await req('POST', `/rooms/${enc(roomId)}/invite`, carol, threePid(address))).status).toBe(200);
        expect((await memberOf(roomId, BOB)).body).toMatchObject({ membership: 'invite' });
      });
    });

    describe('inviting an unbound 3PID', () => {
      it('stores the invite at the identity server and sends m.room.third_party_invite', async () => {
        const address = email();
        const roomId = await newRoom({ name: 'Lemurs' });
        expect((await req('POST', `/rooms/${enc(roomId)}/invite`, alice, threePid(address))).status).toBe(200);
        expect(is.invites).toEqual([expect.objectContaining({ medium: 'email', address, room_id: roomId, sender: ALICE })]);
        const store = is.requests.find((r) => r.path === '/_matrix/identity/v2/store-invite');
        expect(store).toMatchObject({ authorization: `Bearer ${ID_ACCESS_TOKEN}`, body: { room_name: 'Lemurs', room_join_rules: 'invite' } });
        const tpi = await thirdPartyInviteOf(roomId);
        expect(tpi).toMatchObject({
          state_key: is.invites[0]!.token,
          sender: ALICE,
          content: {
            display_name: 'Bob',
            key_validity_url: `https://${is.name}/_matrix/identity/v2/pubkey/isvalid`,
            public_key: is.publicKeys[0],
            public_keys: [{ public_key: is.publicKeys[0] }, { public_key: is.publicKeys[1] }],
          },
        });
      });

      it('turns into an invite of the user once the 3PID is bound (onbind), and the user can join', async () => {
        const address = email();
        const roomId = await newRoom();
        await req('POST', `/rooms/${enc(roomId)}/invite`, alice, threePid(address));
        expect(await is.bind('email', address, BOB, t.baseUrl)).toBe(200);
        const member = (await memberOf(roomId, BOB)).body;
        expect(member).toMatchObject({ membership: 'invite', third_party_invite: { display_name: 'Bob', signed: { mxid: BOB, token: is.invites[0]!.token } } });
        // The invitee's /sync shows the invite.
        const sync = await req('GET', '/sync', bob);
        expect((sync.body as { rooms?: { invite?: Record<string, unknown> } }).rooms?.invite?.[roomId]).toBeDefined();
        expect((await req('POST', `/rooms/${enc(roomId)}/join`, bob, {})).status).toBe(200);
        expect((await memberOf(roomId, BOB)).body).toMatchObject({ membership: 'join' });
      });

      it('is redeemed even after the inviter has left the room', async () => {
        const address = email();
        const roomId = await newRoom({ invite: [CAROL] });
        await req('POST', `/rooms/${enc(roomId)}/join`, carol, {});
        await req('POST', `/rooms/${enc(roomId)}/invite`, alice, threePid(address));
        expect((await req('POST', `/rooms/${enc(roomId)}/leave`, alice, {})).status).toBe(200);
        await is.bind('email', address, BOB, t.baseUrl);
        expect((await req('POST', `/rooms/${enc(roomId)}/join`, bob, {})).status).toBe(200);
        expect((await req('GET', `/rooms/${enc(roomId)}/state/m.room.member/${enc(BOB)}`, carol)).body).toMatchObject({ membership: 'join' });
      });

      it('can be redeemed by the invitee with /join and third_party_signed (ephemeral key)', async () => {
        const roomId = await newRoom();
        await req('POST', `/rooms/${enc(roomId)}/invite`, alice, threePid(email()));
        const token = (await thirdPartyInviteOf(roomId))!.state_key;
        const proof = is.sign({ mxid: BOB, sender: ALICE, token }, { ephemeral: true });
        expect(await req('POST', `/join/${enc(roomId)}`, bob, { third_party_signed: proof })).toMatchObject({ status: 200, body: { room_id: roomId } });
        expect((await memberOf(roomId, BOB)).body).toMatchObject({ membership: 'join' });
      });

      it('refuses third_party_signed with a bad signature, for another user, or naming no invite', async () => {
        const roomId = await newRoom();
        await req('POST', `/rooms/${enc(roomId)}/invite`, alice, threePid(email()));
        const token = (await thirdPartyInviteOf(roomId))!.state_key;
        const proof = is.sign({ mxid: BOB, sender: ALICE, token });
        is.rotateKeys();
        const forged = is.sign({ mxid: BOB, sender: ALICE, token });
        expect(await req('POST', `/join/${enc(roomId)}`, bob, { third_party_signed: forged })).toMatchObject({ status: 403, body: { errcode: 'M_FORBIDDEN' } });
        expect(await req('POST', `/join/${enc(roomId)}`, carol, { third_party_signed: proof })).toMatchObject({ status: 403, body: { errcode: 'M_FORBIDDEN' } });
        const noInvite = is.sign({ mxid: BOB, sender: ALICE, token: 'nope' });
        expect(await req('POST', `/join/${enc(roomId)}`, bob, { third_party_signed: noInvite })).toMatchObject({ status: 403, body: { errcode: 'M_FORBIDDEN' } });
        expect(await req('POST', `/join/${enc(roomId)}`, bob, { third_party_signed: 'x' })).toMatchObject({ status: 400, body: { errcode: 'M_BAD_JSON' } });
        expect((await memberOf(roomId, BOB)).status).toBe(404);
      });
    });

    describe('redemptions that must fail', () => {
      /** Sytest's invite_should_fail: a 3PID invite, a bind that must not turn into an invite, a join that must fail. */
      const inviteShouldFail = async (bind: (address: string) => Promise<unknown>): Promise<void> => {
        const address = email();
        const roomId = await newRoom();
        expect((await req('POST', `/rooms/${enc(roomId)}/invite`, alice, threePid(address))).status).toBe(200);
        await bind(address);
        expect((await req('POST', `/rooms/${enc(roomId)}/join`, bob, {})).status).toBe(403);
        expect((await memberOf(roomId, BOB)).status).toBe(404);
      };

      it('a signature by keys other than the invite\'s', async () => {
        await inviteShouldFail(async (address) => {
          is.rotateKeys();
          // The identity server hears that the invite was not redeemed (Sytest relies on it).
          expect(await is.bind('email', address, BOB, t.baseUrl)).toBe(403);
        });
      });

      it('a valid signature by a key the identity server has since revoked', async () => {
        await inviteShouldFail((address) => is.bind('email', address, BOB, t.baseUrl, () => is.rotateKeys()));
        expect(is.requests.some((r) => r.path === '/_matrix/identity/v2/pubkey/isvalid')).toBe(true);
      });

      it('a valid signature when the identity server cannot be asked about its key', async () => {
        await inviteShouldFail((address) => is.bind('email', address, BOB, t.baseUrl, () => is.close()));
      });
    });

    describe('bad 3PID invites', () => {
      it('answers spec errors, never 500', async () => {
        const roomId = await newRoom();
        const invite = (body: Record<string, unknown>, token = alice) => req('POST', `/rooms/${enc(roomId)}/invite`, token, body);
        expect(await invite({ id_server: is.name, medium: 'email', address: 'a@b.example' })).toMatchObject({ status: 400, body: { errcode: 'M_MISSING_PARAM' } });
        expect(await invite(threePid('a@b.example', { address: 5 }))).toMatchObject({ status: 400, body: { errcode: 'M_BAD_JSON' } });
        expect(await invite(threePid('a@b.example', { id_server: 'not a server/' }))).toMatchObject({ status: 400, body: { errcode: 'M_INVALID_PARAM' } });
        // The identity server refuses the access token.
        expect(await invite(threePid('a@b.example', { id_access_token: 'wrong' }))).toMatchObject({ status: 403, body: { errcode: 'M_UNAUTHORIZED' } });
        // Not in the room: refused before the identity server hears of it.
        const before = is.requests.length;
        expect(await invite(threePid('a@b.example'), carol)).toMatchObject({ status: 403, body: { errcode: 'M_FORBIDDEN' } });
        expect(is.requests.length).toBe(before);
        expect(await req('POST', `/rooms/${enc('!nope:localhost:8008')}/invite`, alice, threePid('a@b.example'))).toMatchObject({ status: 404, body: { errcode: 'M_NOT_FOUND' } });
        // No identity server there at all.
        const name = is.name;
        await is.close();
        expect(await invite({ id_server: name, id_access_token: ID_ACCESS_TOKEN, medium: 'email', address: 'a@b.example' })).toMatchObject({ status: 502, body: { errcode: 'M_UNKNOWN' } });
        expect(await req('POST', '/createRoom', alice, { invite_3pid: [{ id_server: name, id_access_token: ID_ACCESS_TOKEN, medium: 'email', address: 'a@b.example' }] })).toMatchObject({ status: 502 });
        expect(await req('POST', '/createRoom', alice, { invite_3pid: [{ medium: 'email' }] })).toMatchObject({ status: 400, body: { errcode: 'M_MISSING_PARAM' } });
        expect(await req('POST', '/createRoom', alice, { invite_3pid: 'x' })).toMatchObject({ status: 400, body: { errcode: 'M_BAD_JSON' } });
        expect(await thirdPartyInviteOf(roomId)).toBeUndefined();
      });

      it('onbind answers bad bodies with errors and skips invites it cannot use', async () => {
        const onbind = (body: string) => fetch(`${t.baseUrl}/_matrix/federation/v1/3pid/onbind`, { method: 'PUT', body, headers: { 'Content-Type': 'application/json' } });
        expect((await onbind('{')).status).toBe(400);
        expect((await onbind(JSON.stringify({ invites: 'x' }))).status).toBe(400);
        expect((await onbind(JSON.stringify({ mxid: BOB }))).status).toBe(200);
        // Malformed invites and one of another server's user are skipped: nothing to try.
        const skipped = await onbind(JSON.stringify({ mxid: BOB, invites: [5, { mxid: '@x:elsewhere.example', room_id: '!x:localhost:8008', sender: ALICE, signed: { token: 't' } }] }));
        expect(skipped.status).toBe(200);
        // One for a room unknown here is tried, and its failure is the answer.
        const res = await onbind(JSON.stringify({ mxid: BOB, invites: [{ room_id: '!x:localhost:8008', sender: ALICE, signed: { mxid: BOB, token: 't' } }] }));
        expect(res.status).toBe(404);
        expect(((await res.json()) as { errcode: string }).errcode).toBe('M_NOT_FOUND');
      });
    });
  });
}
