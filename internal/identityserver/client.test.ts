/** The identity server client: network policy, answers it refuses, deadlines; and the redemption check. */
import { createServer, type Server } from 'node:http';
import { generateKeyPairSync, sign } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ed from '@noble/ed25519';
import { canonicalJson, generateSigningKey, parseXMatrixHeader, signJson, type JsonObject } from '../matrix/index.js';
import { NetworkPolicy } from '../netpolicy/index.js';
import { FakeIdentityServer, ID_ACCESS_TOKEN } from '../../test/identityserver.js';
import { IdentityServerClient, IdentityServerError, identityServerAuthorization, type HomeserverSigner } from './client.js';
import { checkThirdPartySigned, invitePublicKeys, keyThatSigned, ThirdPartyInviteRejected } from './signed.js';

let server: Server;
let base = '';
let answer: (path: string, res: import('node:http').ServerResponse) => void = () => {};
let hits = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    hits++;
    answer(req.url ?? '', res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

const open = new NetworkPolicy({ denyNetworks: [], allowNetworks: [] });
const client = (policy = open, timeoutMs = 2_000) => new IdentityServerClient({ policy, rejectUnauthorized: true, timeoutMs });
const failure = async (p: Promise<unknown>): Promise<IdentityServerError> => {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(IdentityServerError);
  return e as IdentityServerError;
};

describe('IdentityServerClient', () => {
  it('asks key_validity_url with the public key and reads "valid"', async () => {
    let asked = '';
    answer = (path, res) => {
      asked = path;
      res.end(JSON.stringify({ valid: path.includes('public_key=abc%2B') }));
    };
    expect(await client().isKeyValid(`${base}/_matrix/identity/v2/pubkey/isvalid`, 'abc+')).toBe(true);
    expect(asked).toBe('/_matrix/identity/v2/pubkey/isvalid?public_key=abc%2B');
    expect(await client().isKeyValid(`${base}/isvalid`, 'other')).toBe(false);
  });

  it('refuses addresses the network policy denies, without connecting', async () => {
    const before = hits;
    const deny = new NetworkPolicy({ denyNetworks: ['127.0.0.0/8'], allowNetworks: ['0.0.0.0/0'] });
    expect((await failure(client(deny).isKeyValid(`${base}/isvalid`, 'k'))).kind).toBe('unreachable');
    expect((await failure(client(deny).isKeyValid(`http://localhost:${new URL(base).port}/isvalid`, 'k'))).kind).toBe('unreachable');
    expect((await failure(client(deny).lookup(new URL(base).host, 't', 'email', 'a@b.example'))).kind).toBe('unreachable');
    expect(hits).toBe(before);
  });

  it('tells refusals, bad answers, oversized answers and timeouts apart', async () => {
    answer = (_p, res) => {
      res.writeHead(403, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ errcode: 'M_TERMS_NOT_SIGNED', error: 'sign the terms' }));
    };
    expect(await failure(client().isKeyValid(`${base}/x`, 'k'))).toMatchObject({ kind: 'refused', status: 403, errcode: 'M_TERMS_NOT_SIGNED' });
    answer = (_p, res) => res.end('not json');
    expect((await failure(client().isKeyValid(`${base}/x`, 'k'))).kind).toBe('bad_response');
    answer = (_p, res) => res.end(JSON.stringify({ valid: 'yes' }));
    expect((await failure(client().isKeyValid(`${base}/x`, 'k'))).kind).toBe('bad_response');
    answer = (_p, res) => res.end(JSON.stringify({ valid: true, pad: 'x'.repeat(100_000) }));
    expect((await failure(client().isKeyValid(`${base}/x`, 'k'))).kind).toBe('unreachable');
    answer = () => {}; // never answers
    const started = Date.now();
    expect((await failure(client(open, 200).isKeyValid(`${base}/x`, 'k'))).kind).toBe('unreachable');
    expect(Date.now() - started).toBeLessThan(1_500);
    expect((await failure(client().isKeyValid('ftp://example.org/x', 'k'))).kind).toBe('bad_response');
    expect((await failure(client().isKeyValid('not a url', 'k'))).kind).toBe('bad_response');
    expect(() => client().baseUrl('bad/name')).toThrow(IdentityServerError);
  });
});

describe('third-party invite signatures', () => {
  const pair = () => {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    return { pub: Buffer.from(publicKey.export({ format: 'jwk' }).x as string, 'base64url').toString('base64').replace(/=+$/, ''), privateKey };
  };
  const a = pair();
  const b = pair();
  const signWith = (k: ReturnType<typeof pair>, obj: Record<string, unknown>) => ({
    ...obj,
    signatures: { 'is.example': { 'ed25519:0': sign(null, Buffer.from(canonicalJson(obj as never)), k.privateKey).toString('base64').replace(/=+$/, '') } },
  });
  const content = { display_name: 'Bob', public_key: a.pub, key_validity_url: 'https://is.example/v', public_keys: [{ public_key: b.pub, key_validity_url: 'https://is.example/w' }] };

  it('finds the key that signed, with its validity URL', () => {
    expect(invitePublicKeys(content)).toEqual([{ public_key: a.pub, key_validity_url: 'https://is.example/v' }, { public_key: b.pub, key_validity_url: 'https://is.example/w' }]);
    expect(keyThatSigned(signWith(b, { mxid: '@u:hs', token: 't' }), invitePublicKeys(content))).toEqual({ public_key: b.pub, key_validity_url: 'https://is.example/w' });
    // A changed field breaks the signature; so does an unknown key.
    expect(keyThatSigned({ ...signWith(a, { mxid: '@u:hs', token: 't' }), token: 'u' }, invitePublicKeys(content))).toBeUndefined();
    expect(keyThatSigned(signWith(pair(), { mxid: '@u:hs', token: 't' }), invitePublicKeys(content))).toBeUndefined();
    expect(keyThatSigned({ mxid: '@u:hs', token: 't' }, invitePublicKeys(content))).toBeUndefined();
  });

  it('asks the identity server about the key that signed, and rejects a revoked or unverifiable one', async () => {
    const asked: string[] = [];
    const valid = (answerValid: boolean | Error) => ({
      isKeyValid: async (url: string, key: string) => {
        asked.push(`${url} ${key}`);
        if (answerValid instanceof Error) throw answerValid;
        return answerValid;
      },
    });
    const signed = signWith(b, { mxid: '@u:hs', token: 't' });
    await expect(checkThirdPartySigned(signed, content, valid(true))).resolves.toMatchObject({ public_key: b.pub });
    expect(asked).toEqual([`https://is.example/w ${b.pub}`]);
    await expect(checkThirdPartySigned(signed, content, valid(false))).rejects.toBeInstanceOf(ThirdPartyInviteRejected);
    await expect(checkThirdPartySigned(signed, content, valid(new IdentityServerError('unreachable', 'down')))).rejects.toThrow(/down/);
    await expect(checkThirdPartySigned(signWith(pair(), { mxid: '@u:hs', token: 't' }), content, valid(true))).rejects.toBeInstanceOf(ThirdPartyInviteRejected);
    // A key without a validity URL needs no asking.
    asked.length = 0;
    await expect(checkThirdPartySigned(signWith(a, { mxid: '@u:hs', token: 't' }), { public_key: a.pub }, valid(false))).resolves.toMatchObject({ public_key: a.pub });
    expect(asked).toEqual([]);
  });
});

describe('binding and unbinding 3PIDs', () => {
  // A homeserver's signing key, published the way /_matrix/key/v2/server does.
  const hsKey = generateSigningKey();
  const signer: HomeserverSigner = {
    serverName: 'hs.test',
    keyId: hsKey.keyId,
    signJson: <T extends JsonObject>(obj: T): T => signJson(obj, 'hs.test', hsKey.keyId, hsKey) as T,
  };
  let keyServer: Server;
  let is: FakeIdentityServer;
  // The fake identity server's certificate is self-signed.
  const tlsClient = (policy = open) => new IdentityServerClient({ policy, rejectUnauthorized: false, timeoutMs: 2_000 });
  beforeAll(async () => {
    keyServer = createServer((_req, res) => res.end(JSON.stringify({ server_name: 'hs.test', verify_keys: { [hsKey.keyId]: { key: hsKey.publicKeyBase64 } } })));
    await new Promise<void>((r) => keyServer.listen(0, '127.0.0.1', r));
    is = await FakeIdentityServer.start();
    is.homeservers.set('hs.test', `http://127.0.0.1:${(keyServer.address() as { port: number }).port}`);
  });
  afterAll(async () => {
    await is.close();
    keyServer.closeAllConnections();
    await new Promise<void>((r) => keyServer.close(() => r()));
  });

  it('signs {method, uri, origin, destination_is, content} into an X-Matrix header', async () => {
    const content = { mxid: '@u:hs.test', threepid: { medium: 'email', address: 'u@example.org' } };
    const header = identityServerAuthorization(signer, 'POST', '/_matrix/identity/v2/3pid/unbind', 'is.example:8443', content);
    const auth = parseXMatrixHeader(header);
    expect(auth).toEqual({ origin: 'hs.test', key: hsKey.keyId, sig: auth.sig });
    const signed = (obj: JsonObject) => Buffer.from(canonicalJson(obj), 'utf8');
    const sig = Buffer.from(auth.sig, 'base64');
    const base = { method: 'POST', uri: '/_matrix/identity/v2/3pid/unbind', origin: 'hs.test', content };
    expect(await ed.verifyAsync(sig, signed({ ...base, destination_is: 'is.example:8443' }), hsKey.publicKey)).toBe(true);
    // Not the federation form, and not for another identity server.
    expect(await ed.verifyAsync(sig, signed({ ...base, destination: 'is.example:8443' }), hsKey.publicKey)).toBe(false);
    expect(await ed.verifyAsync(sig, signed({ ...base, destination_is: 'other.example' }), hsKey.publicKey)).toBe(false);
  });

  it('binds a validated session with the access token as Bearer, and returns the 3PID bound', async () => {
    const sid = is.validateSession('email', 'bound@example.org', 'secret');
    expect(await tlsClient().bind(is.name, ID_ACCESS_TOKEN, { sid, client_secret: 'secret', mxid: '@u:hs.test' })).toEqual({ medium: 'email', address: 'bound@example.org', mxid: '@u:hs.test' });
    const call = is.requests.find((r) => r.path === '/_matrix/identity/v2/3pid/bind');
    expect(call).toMatchObject({ method: 'POST', authorization: `Bearer ${ID_ACCESS_TOKEN}`, body: { sid, client_secret: 'secret', mxid: '@u:hs.test' } });
    expect(is.boundTo('email', 'bound@example.org')).toBe('@u:hs.test');
  });

  it('tells apart the ways a bind fails', async () => {
    const sid = is.validateSession('email', 'fail@example.org', 'secret');
    const bind = (over: Partial<{ sid: string; client_secret: string }> = {}, token = ID_ACCESS_TOKEN, client = tlsClient()) =>
      failure(client.bind(is.name, token, { sid, client_secret: 'secret', mxid: '@u:hs.test', ...over }));
    expect(await bind({ client_secret: 'wrong' })).toMatchObject({ kind: 'refused', status: 404, errcode: 'M_NO_VALID_SESSION' });
    expect(await bind({}, 'not-the-token')).toMatchObject({ kind: 'refused', status: 401, errcode: 'M_UNAUTHORIZED' });
    is.overrides.set('/_matrix/identity/v2/3pid/bind', { status: 200, body: { mxid: '@u:hs.test' } });
    expect((await bind()).kind).toBe('bad_response');
    is.overrides.set('/_matrix/identity/v2/3pid/bind', { status: 200, body: { medium: 'email', address: 'fail@example.org', mxid: '@mallory:hs.test' } });
    expect((await bind()).kind).toBe('bad_response');
    is.overrides.delete('/_matrix/identity/v2/3pid/bind');
    const deny = new NetworkPolicy({ denyNetworks: ['127.0.0.0/8'], allowNetworks: ['0.0.0.0/0'] });
    expect((await bind({}, ID_ACCESS_TOKEN, tlsClient(deny))).kind).toBe('unreachable');
    expect(is.boundTo('email', 'fail@example.org')).toBeUndefined();
  });

  it('unbinds with the homeserver signature; an identity server without unbinding is not_supported', async () => {
    await is.bind('email', 'unbind@example.org', '@u:hs.test');
    const threepid = { medium: 'email', address: 'unbind@example.org' };
    expect(await tlsClient().unbind(is.name, signer, '@u:hs.test', threepid)).toBe('unbound');
    expect(is.unbinds.at(-1)).toEqual({ origin: 'hs.test', mxid: '@u:hs.test', ...threepid });
    expect(is.boundTo('email', 'unbind@example.org')).toBeUndefined();
    // Bound to no one here: the fake answers 404 without a Matrix error.
    expect(await tlsClient().unbind(is.name, signer, '@u:hs.test', threepid)).toBe('not_supported');
    for (const [status, body] of [[501, undefined], [400, { errcode: 'M_UNRECOGNIZED', error: 'no' }], [400, undefined]] as const) {
      is.overrides.set('/_matrix/identity/v2/3pid/unbind', { status, body });
      expect(await tlsClient().unbind(is.name, signer, '@u:hs.test', threepid), String(status)).toBe('not_supported');
    }
    // A 2xx answer is an unbind whatever its body.
    is.overrides.set('/_matrix/identity/v2/3pid/unbind', { status: 200 });
    expect(await tlsClient().unbind(is.name, signer, '@u:hs.test', threepid)).toBe('unbound');
    is.overrides.set('/_matrix/identity/v2/3pid/unbind', { status: 404, body: { errcode: 'M_NOT_FOUND', error: 'no such binding' } });
    expect(await failure(tlsClient().unbind(is.name, signer, '@u:hs.test', threepid))).toMatchObject({ kind: 'refused', status: 404, errcode: 'M_NOT_FOUND' });
    is.overrides.set('/_matrix/identity/v2/3pid/unbind', { status: 500 });
    expect(await failure(tlsClient().unbind(is.name, signer, '@u:hs.test', threepid))).toMatchObject({ kind: 'refused', status: 500 });
    is.overrides.delete('/_matrix/identity/v2/3pid/unbind');
  });

  it('is refused by an identity server that cannot verify the signature', async () => {
    await is.bind('email', 'forged@example.org', '@u:hs.test');
    const other = generateSigningKey();
    const forger: HomeserverSigner = { ...signer, signJson: <T extends JsonObject>(obj: T): T => signJson(obj, 'hs.test', hsKey.keyId, other) as T };
    expect(await failure(tlsClient().unbind(is.name, forger, '@u:hs.test', { medium: 'email', address: 'forged@example.org' }))).toMatchObject({ kind: 'refused', status: 403, errcode: 'M_FORBIDDEN' });
    // Nor may a homeserver unbind another server's user.
    expect(await failure(tlsClient().unbind(is.name, signer, '@u:elsewhere.test', { medium: 'email', address: 'forged@example.org' }))).toMatchObject({ status: 403 });
    expect(is.boundTo('email', 'forged@example.org')).toBe('@u:hs.test');
  });
});
