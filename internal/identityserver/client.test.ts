/** The identity server client: network policy, answers it refuses, deadlines; and the redemption check. */
import { createServer, type Server } from 'node:http';
import { generateKeyPairSync, sign } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson } from '../matrix/index.js';
import { NetworkPolicy } from '../netpolicy/index.js';
import { IdentityServerClient, IdentityServerError } from './client.js';
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
