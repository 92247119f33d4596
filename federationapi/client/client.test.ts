import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKey } from '../../internal/matrix/keys.js';
import { verifyRequest } from '../../internal/matrix/xmatrix.js';
import type { JsonValue } from '../../internal/matrix/types.js';
import { generateTlsMaterial, type TlsMaterial } from '../../setup/tlscert.js';
import {
  createWellKnownFetcher,
  encodePathSegment,
  FederationClient,
  FederationClientError,
  FederationHttpError,
  NetworkPolicy,
  ServerResolver,
  withQuery,
  type DnsClient,
  type FederationClientOptions,
} from './index.js';
import { newAgent } from './transport.js';

const ORIGIN = 'origin.test';
const key = generateSigningKey();

interface Seen {
  method: string;
  url: string;
  host: string | undefined;
  sni: string | false | null | undefined;
  authorization: string | undefined;
  origin: string | undefined;
  body: JsonValue | undefined;
}

let tls: TlsMaterial;
let server: Server;
let port: number;
let connections = 0;
const seen: Seen[] = [];

/** The server name the test server thinks it is (the X-Matrix destination it checks). */
let expectedDestination = '';

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const raw = Buffer.concat(chunks).toString('utf8');
  const body = raw ? (JSON.parse(raw) as JsonValue) : undefined;
  const url = req.url ?? '';
  const send = (status: number, obj: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
    res.end(typeof obj === 'string' ? obj : JSON.stringify(obj));
  };
  let origin: string | undefined;
  if (req.headers.authorization !== undefined) {
    try {
      const host = req.headers.host ?? '';
      const v = await verifyRequest(
        { method: req.method ?? '', uri: url, content: body, authorization: req.headers.authorization },
        expectedDestination || host,
        (o, k) => (o === ORIGIN && k === key.keyId ? key.publicKey : undefined),
      );
      origin = v.origin;
    } catch (e) {
      send(401, { errcode: 'M_UNAUTHORIZED', error: String(e) });
      return;
    }
  }
  seen.push({
    method: req.method ?? '',
    url,
    host: req.headers.host,
    sni: (req.socket as TLSSocket).servername,
    authorization: req.headers.authorization,
    origin,
    body,
  });
  const path = url.split('?')[0] ?? '';
  if (path === '/_matrix/test/hang') return; // never answers
  if (path === '/_matrix/test/big') {
    send(200, { pad: 'x'.repeat(2 * 1024 * 1024) });
    return;
  }
  if (path === '/_matrix/test/big-chunked') {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.write('{"pad":"');
    for (let i = 0; i < 32; i++) res.write('y'.repeat(64 * 1024));
    res.end('"}');
    return;
  }
  if (path === '/_matrix/test/notjson') {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end('<html>hi</html>');
    return;
  }
  if (path === '/_matrix/test/html404') {
    res.writeHead(404, { 'Content-Type': 'text/html' });
    res.end('<html>not found</html>');
    return;
  }
  if (path === '/_matrix/test/missing') {
    send(404, { errcode: 'M_NOT_FOUND', error: 'nope' });
    return;
  }
  if (path === '/.well-known/matrix/server') {
    send(200, { 'm.server': 'delegated.test:1234' }, { 'Cache-Control': 'max-age=600' });
    return;
  }
  if (path === '/_matrix/key/v2/server') {
    send(200, { server_name: 'remote.test', valid_until_ts: 1, verify_keys: {}, old_verify_keys: {} });
    return;
  }
  if (path.startsWith('/_matrix/federation/v1/make_join/')) {
    send(200, { event: { type: 'm.room.member' }, room_version: '10' });
    return;
  }
  if (path.startsWith('/_matrix/federation/v1/send/')) {
    send(200, { pdus: {} });
    return;
  }
  if (path.startsWith('/_matrix/federation/v2/invite/')) {
    send(200, { event: (body as { event: JsonValue }).event });
    return;
  }
  send(200, { echo: true, method: req.method, url });
}

beforeAll(async () => {
  tls = await generateTlsMaterial({ hosts: ['127.0.0.1', 'remote.test', 'delegated.test'], keySize: 2048 });
  server = createServer({ key: tls.keyPem, cert: tls.certPem }, (req, res) => {
    handle(req, res).catch((e: unknown) => {
      res.writeHead(500);
      res.end(String(e));
    });
  });
  server.on('secureConnection', () => connections++);
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** DNS where `remote.test` and friends are 127.0.0.1. */
function fakeDns(hosts: Record<string, string[]> = {}): DnsClient {
  const table: Record<string, string[]> = { 'remote.test': ['127.0.0.1'], 'delegated.test': ['127.0.0.1'], ...hosts };
  return {
    resolveSrv: async () => [],
    lookup: async (h) => {
      const a = table[h];
      if (!a) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${h}`), { code: 'ENOTFOUND' });
      return a;
    },
  };
}

const clients: FederationClient[] = [];
function client(opts: Partial<FederationClientOptions> = {}): FederationClient {
  const c = new FederationClient({
    serverName: ORIGIN,
    keyId: key.keyId,
    signingKey: key,
    disableTlsValidation: false,
    trustedCa: tls.certPem,
    denyNetworks: [],
    allowNetworks: [],
    dns: fakeDns(),
    ...opts,
  });
  clients.push(c);
  return c;
}
afterAll(() => clients.forEach((c) => c.close()));

function last(): Seen {
  const s = seen.at(-1);
  if (!s) throw new Error('the server saw nothing');
  return s;
}

async function rejection(p: Promise<unknown>): Promise<FederationClientError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof FederationClientError) return e;
    throw e;
  }
  throw new Error('expected a rejection');
}

describe('FederationClient against a local HTTPS server', () => {
  it('signs with X-Matrix over the exact URI and body, to an IP literal destination', async () => {
    const dest = `127.0.0.1:${port}`;
    expectedDestination = dest;
    const c = client();
    const res = await c.request(dest, 'POST', '/_matrix/federation/v1/test/echo', { query: { a: 'b c', list: ['1', '2'] }, body: { hello: 'world', n: 1 } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ echo: true, url: '/_matrix/federation/v1/test/echo?a=b%20c&list=1&list=2' });
    const s = last();
    expect(s.origin).toBe(ORIGIN);
    expect(s.body).toEqual({ hello: 'world', n: 1 });
    expect(s.host).toBe(dest);
    expect(s.sni).toBeFalsy(); // no SNI for IP literals
  });

  it('uses the discovered Host header and SNI for a host name with explicit port', async () => {
    const dest = `remote.test:${port}`;
    expectedDestination = dest;
    const c = client();
    const res = await c.request(dest, 'GET', '/_matrix/federation/v1/version');
    expect(res.status).toBe(200);
    expect(last()).toMatchObject({ host: dest, sni: 'remote.test', origin: ORIGIN });
  });

  it('verifies certificates: a self-signed server is unreachable unless trusted', async () => {
    const dest = `127.0.0.1:${port}`;
    expectedDestination = dest;
    const untrusting = client({ trustedCa: undefined });
    expect((await rejection(untrusting.request(dest, 'GET', '/_matrix/federation/v1/version'))).code).toBe('unreachable');
    const lax = client({ trustedCa: undefined, disableTlsValidation: true });
    expect((await lax.request(dest, 'GET', '/_matrix/federation/v1/version')).status).toBe(200);
  });

  it('checks the certificate against the discovered TLS name', async () => {
    const dest = `other.test:${port}`;
    expectedDestination = dest;
    const c = client({ dns: fakeDns({ 'other.test': ['127.0.0.1'] }) });
    const e = await rejection(c.request(dest, 'GET', '/_matrix/federation/v1/version'));
    expect(e.code).toBe('unreachable');
    expect(e.message).toMatch(/other\.test|altname|ERR_TLS/i);
  });

  it('sends no Authorization to key endpoints', async () => {
    const dest = `127.0.0.1:${port}`;
    const keys = await client().getServerKeys(dest);
    expect(keys.server_name).toBe('remote.test');
    expect(last().authorization).toBeUndefined();
    expect(last().url).toBe('/_matrix/key/v2/server');
  });

  it('percent-encodes path segments and signs the encoded URI', async () => {
    const dest = `127.0.0.1:${port}`;
    expectedDestination = dest;
    const c = client();
    const res = await c.makeJoin(dest, '!room/x:remote.test', '@u ser+1:origin.test', ['10', '11']);
    expect(res.room_version).toBe('10');
    expect(last().url).toBe('/_matrix/federation/v1/make_join/%21room%2Fx%3Aremote.test/%40u%20ser%2B1%3Aorigin.test?ver=10&ver=11');
    expect(last().origin).toBe(ORIGIN);

    await c.getEvent(dest, '$abc/def+ghi=').catch(() => undefined);
    expect(last().url).toBe('/_matrix/federation/v1/event/%24abc%2Fdef%2Bghi%3D');

    await c.stateIds(dest, '!r:x', '$e?&=').catch(() => undefined);
    expect(last().url).toBe('/_matrix/federation/v1/state_ids/%21r%3Ax?event_id=%24e%3F%26%3D');

    await c.backfill(dest, '!r:x', ['$a', '$b'], 20).catch(() => undefined);
    expect(last().url).toBe('/_matrix/federation/v1/backfill/%21r%3Ax?v=%24a&v=%24b&limit=20');

    await c.queryProfile(dest, '@a:b', 'displayname');
    expect(last().url).toBe('/_matrix/federation/v1/query/profile?user_id=%40a%3Ab&field=displayname');
  });

  it('sends transactions and invites with the expected bodies', async () => {
    const dest = `127.0.0.1:${port}`;
    expectedDestination = dest;
    const c = client();
    const txn = { origin: ORIGIN, origin_server_ts: 1234, pdus: [{ type: 'm.room.message' }], edus: [] };
    expect(await c.sendTransaction(dest, 'txn/1', txn)).toEqual({ pdus: {} });
    expect(last()).toMatchObject({ method: 'PUT', url: '/_matrix/federation/v1/send/txn%2F1', body: txn, origin: ORIGIN });

    const inv = await c.invite(dest, '!r:x', '$e', { room_version: '10', event: { type: 'm.room.member' } });
    expect(inv.event).toEqual({ type: 'm.room.member' });
    expect(last()).toMatchObject({
      url: '/_matrix/federation/v2/invite/%21r%3Ax/%24e',
      body: { room_version: '10', event: { type: 'm.room.member' }, invite_room_state: [] },
    });
  });

  it('resolves non-2xx answers with their status; helpers throw FederationHttpError', async () => {
    const dest = `127.0.0.1:${port}`;
    const c = client();
    const res = await c.request(dest, 'GET', '/_matrix/test/missing');
    expect(res).toEqual({ status: 404, body: { errcode: 'M_NOT_FOUND', error: 'nope' } });
    expect(await c.request(dest, 'GET', '/_matrix/test/html404')).toEqual({ status: 404, body: undefined });
    const e = await c.queryDirectory(dest, '#a:b').then(
      () => undefined,
      (err: unknown) => err,
    );
    // The echo answer lacks room_id: a bad response, not an HTTP error.
    expect(e).toBeInstanceOf(FederationClientError);
    expect((e as FederationClientError).code).toBe('bad_response');
    const e2 = await c.getMissingEvents(dest, '!r:x', { earliest_events: [], latest_events: ['$x'] }).catch((err: unknown) => err);
    expect(e2).toBeInstanceOf(FederationClientError);
    const e3 = await c.userDevices(`127.0.0.1:${port}`, '@a:b').catch((err: unknown) => err);
    expect(e3).toBeInstanceOf(FederationClientError);
    expect(last().url).toBe('/_matrix/federation/v1/user/devices/%40a%3Ab');
  });

  it('FederationHttpError carries status and errcode', () => {
    const e = new FederationHttpError('x.test', 403, { errcode: 'M_FORBIDDEN', error: 'no' });
    expect(e).toMatchObject({ status: 403, errcode: 'M_FORBIDDEN', error: 'no' });
    expect(e.message).toContain('M_FORBIDDEN');
  });

  it('a 2xx answer that is not JSON is a bad_response', async () => {
    const e = await rejection(client().request(`127.0.0.1:${port}`, 'GET', '/_matrix/test/notjson'));
    expect(e.code).toBe('bad_response');
  });

  it('refuses denied networks before connecting', async () => {
    const before = connections;
    const c = client({ denyNetworks: undefined, allowNetworks: undefined }); // Dendrite's defaults
    const e = await rejection(c.request(`127.0.0.1:${port}`, 'GET', '/_matrix/federation/v1/version'));
    expect(e.code).toBe('denied');
    // A host name resolving to loopback is refused the same way.
    const e2 = await rejection(c.request(`remote.test:${port}`, 'GET', '/_matrix/federation/v1/version'));
    expect(e2.code).toBe('denied');
    // IPv4-mapped IPv6 does not slip through.
    const c2 = client({ denyNetworks: ['127.0.0.0/8'], allowNetworks: ['0.0.0.0/0', '::/0'], dns: fakeDns({ 'mapped.test': ['::ffff:127.0.0.1'] }) });
    expect((await rejection(c2.request(`mapped.test:${port}`, 'GET', '/_matrix/x'))).code).toBe('denied');
    // Not in the allow list.
    const c3 = client({ denyNetworks: [], allowNetworks: ['10.0.0.0/8'] });
    expect((await rejection(c3.request(`127.0.0.1:${port}`, 'GET', '/_matrix/x'))).code).toBe('denied');
    expect(connections).toBe(before);
    // In the allow list, not denied: connects.
    const c4 = client({ denyNetworks: ['10.0.0.0/8'], allowNetworks: ['127.0.0.1/32'] });
    expect((await c4.request(`127.0.0.1:${port}`, 'GET', '/_matrix/federation/v1/version')).status).toBe(200);
    expect(connections).toBeGreaterThan(before);
  });

  it('times out', async () => {
    const c = client({ timeoutMs: 300 });
    const started = Date.now();
    const e = await rejection(c.request(`127.0.0.1:${port}`, 'GET', '/_matrix/test/hang'));
    expect(e.code).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(5000);
    // A per-request deadline overrides the default.
    const e2 = await rejection(client().request(`127.0.0.1:${port}`, 'GET', '/_matrix/test/hang', { timeoutMs: 200 }));
    expect(e2.code).toBe('timeout');
  });

  it('refuses oversized responses, declared or streamed', async () => {
    const c = client({ maxResponseBytes: 1024 * 1024 });
    expect((await rejection(c.request(`127.0.0.1:${port}`, 'GET', '/_matrix/test/big'))).code).toBe('too_large');
    expect((await rejection(c.request(`127.0.0.1:${port}`, 'GET', '/_matrix/test/big-chunked'))).code).toBe('too_large');
    // A larger per-request limit (as send_join uses) lets it through.
    const ok = await c.request(`127.0.0.1:${port}`, 'GET', '/_matrix/test/big', { maxBytes: 4 * 1024 * 1024 });
    expect(ok.status).toBe(200);
  });

  it('reports unreachable servers and tries the next address', async () => {
    // Find a closed port: listen and close.
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const closedPort = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const c = client();
    expect((await rejection(c.request(`127.0.0.1:${closedPort}`, 'GET', '/_matrix/x'))).code).toBe('unreachable');
    expect((await rejection(c.request(`nowhere.test:${port}`, 'GET', '/_matrix/x'))).code).toBe('unreachable');
    // 127.0.0.2 refuses (the server listens on 127.0.0.1 only); the second address answers.
    expectedDestination = `remote2.test:${port}`;
    // The certificate is not for remote2.test: accept any for this test.
    const lax = client({ dns: fakeDns({ 'remote2.test': ['127.0.0.2', '127.0.0.1'] }), disableTlsValidation: true, trustedCa: undefined });
    expect((await lax.request(`remote2.test:${port}`, 'GET', '/_matrix/federation/v1/version')).status).toBe(200);
    expect(last().host).toBe(`remote2.test:${port}`);
  });

  it('reuses kept-alive connections', async () => {
    const c = client();
    const dest = `127.0.0.1:${port}`;
    await c.request(dest, 'GET', '/_matrix/federation/v1/version');
    const before = connections;
    await c.request(dest, 'GET', '/_matrix/federation/v1/version');
    await c.request(dest, 'GET', '/_matrix/federation/v1/version');
    expect(connections).toBe(before);
  });

  it('rejects paths outside /_matrix/', async () => {
    await expect(client().request(`127.0.0.1:${port}`, 'GET', '/etc/passwd')).rejects.toThrow(/_matrix/);
  });
});

describe('well-known over the transport', () => {
  it('fetches with the host name as SNI and Host, then resolves through it', async () => {
    const fetcher = createWellKnownFetcher({
      agent: newAgent({ keepAlive: false }),
      policy: new NetworkPolicy({ allowNetworks: [], denyNetworks: [] }),
      lookup: async () => ['127.0.0.1'],
      rejectUnauthorized: true,
      ca: tls.certPem,
      connectTimeoutMs: 2000,
      userAgent: 'test',
    });
    const r = new ServerResolver({
      dns: fakeDns(),
      // The spec's URL has no port; point it at the test server's.
      fetchWellKnown: (url) => fetcher(new URL(url.href.replace('remote.test/', `remote.test:${port}/`))),
    });
    const eps = await r.resolve('remote.test');
    expect(eps).toEqual([{ host: 'delegated.test', port: 1234, hostHeader: 'delegated.test:1234', tlsServerName: 'delegated.test', step: 'well-known-explicit-port' }]);
    expect(last()).toMatchObject({ url: '/.well-known/matrix/server', sni: 'remote.test', host: `remote.test:${port}` });
  });

  it('applies the network policy to the well-known fetch', async () => {
    const before = connections;
    const fetcher = createWellKnownFetcher({
      agent: newAgent({ keepAlive: false }),
      policy: new NetworkPolicy({ allowNetworks: ['0.0.0.0/0'], denyNetworks: ['127.0.0.0/8'] }),
      lookup: async () => ['127.0.0.1'],
      rejectUnauthorized: true,
      ca: tls.certPem,
      connectTimeoutMs: 2000,
      userAgent: 'test',
    });
    await expect(fetcher(new URL(`https://remote.test:${port}/.well-known/matrix/server`))).rejects.toMatchObject({ code: 'denied' });
    expect(connections).toBe(before);
  });
});

describe('encoding helpers', () => {
  it.each([
    ['!abc:example.org', '%21abc%3Aexample.org'],
    ['$ev/+=', '%24ev%2F%2B%3D'],
    ["a'(b)*~", 'a%27%28b%29%2A~'],
    ['@ü:x', '%40%C3%BC%3Ax'],
  ])('encodePathSegment(%j)', (input, want) => {
    expect(encodePathSegment(input)).toBe(want);
  });
  it('withQuery', () => {
    expect(withQuery('/p', { a: ['1', '2'], b: undefined, c: 3, d: true })).toBe('/p?a=1&a=2&c=3&d=true');
    expect(withQuery('/p', {})).toBe('/p');
  });
});

describe('NetworkPolicy', () => {
  const p = new NetworkPolicy({ allowNetworks: ['0.0.0.0/0', '::/0'], denyNetworks: ['10.0.0.0/8', '::1/128', 'fc00::/7', '::ffff:192.168.0.0/112'] });
  it.each([
    ['8.8.8.8', true],
    ['10.1.2.3', false],
    ['::1', false],
    ['fd00::1', false],
    ['2001:db8::1', true],
    ['::ffff:10.0.0.1', false],
    ['::ffff:8.8.8.8', true],
    ['192.168.4.4', false],
    ['not-an-ip', false],
  ])('%s → %s', (addr, want) => {
    expect(p.isAllowed(addr)).toBe(want);
  });
  it('open when both lists are empty; IPv4-only allow list excludes IPv6', () => {
    expect(new NetworkPolicy({ allowNetworks: [], denyNetworks: [] }).isAllowed('127.0.0.1')).toBe(true);
    expect(new NetworkPolicy({ allowNetworks: ['0.0.0.0/0'], denyNetworks: [] }).isAllowed('2001:db8::1')).toBe(false);
  });
  it('refuses malformed networks', () => {
    expect(() => new NetworkPolicy({ allowNetworks: [], denyNetworks: ['10.0.0.0/33'] })).toThrow();
    expect(() => new NetworkPolicy({ allowNetworks: ['nope'], denyNetworks: [] })).toThrow();
  });
});
