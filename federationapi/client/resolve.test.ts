import { describe, expect, it } from 'vitest';
import {
  parseServerName,
  ServerResolver,
  wellKnownTtlMs,
  WELL_KNOWN_DEFAULT_TTL_MS,
  WELL_KNOWN_MAX_TTL_MS,
  WELL_KNOWN_MIN_TTL_MS,
  type DnsClient,
  type SrvRecord,
  type WellKnownHttpResponse,
} from './resolve.js';
import { FederationClientError } from './errors.js';

const HOUR = 3600_000;

interface Fakes {
  srv?: Record<string, SrvRecord[]>;
  /** URL href → response (or an Error to throw). */
  wellKnown?: Record<string, WellKnownHttpResponse | Error>;
}

function setup(f: Fakes) {
  let now = 1_700_000_000_000;
  const fetched: string[] = [];
  const srvQueries: string[] = [];
  const dns: DnsClient = {
    async resolveSrv(name) {
      srvQueries.push(name);
      return f.srv?.[name] ?? [];
    },
    async lookup(host) {
      throw new Error(`no lookup expected for ${host}`);
    },
  };
  const resolver = new ServerResolver({
    dns,
    now: () => now,
    random: () => 0,
    fetchWellKnown: async (url) => {
      fetched.push(url.href);
      const r = f.wellKnown?.[url.href];
      if (r instanceof Error) throw r;
      return r ?? { status: 404, headers: {}, body: '{"errcode":"M_NOT_FOUND"}' };
    },
  });
  return {
    resolver,
    fetched,
    srvQueries,
    advance: (ms: number) => {
      now += ms;
    },
    now: () => now,
  };
}

const wk = (server: unknown, headers: Record<string, string> = {}): WellKnownHttpResponse => ({
  status: 200,
  headers,
  body: JSON.stringify({ 'm.server': server }),
});
const srv = (name: string, port: number, priority = 10, weight = 0): SrvRecord => ({ name, port, priority, weight });

const WK = (host: string) => `https://${host}/.well-known/matrix/server`;

describe('parseServerName', () => {
  it.each([
    ['example.org', { host: 'example.org', port: undefined, ipLiteral: false }],
    ['example.org:8000', { host: 'example.org', port: 8000, ipLiteral: false }],
    ['1.2.3.4', { host: '1.2.3.4', port: undefined, ipLiteral: true }],
    ['1.2.3.4:80', { host: '1.2.3.4', port: 80, ipLiteral: true }],
    ['[2001:db8::1]', { host: '2001:db8::1', port: undefined, ipLiteral: true }],
    ['[2001:db8::1]:8448', { host: '2001:db8::1', port: 8448, ipLiteral: true }],
  ])('%s', (name, want) => {
    expect(parseServerName(name)).toEqual(want);
  });
  it.each(['', 'a b', 'example.org:', 'example.org:0', 'example.org:70000', '2001:db8::1', '[nothost]', 'https://x'])('rejects %j', (name) => {
    expect(parseServerName(name)).toBeUndefined();
  });
});

describe('ServerResolver: the discovery steps', () => {
  const cases: Array<{ name: string; server: string; fakes: Fakes; want: object[]; fetches?: number }> = [
    {
      name: '1. IPv4 literal, default port',
      server: '1.2.3.4',
      fakes: {},
      want: [{ host: '1.2.3.4', port: 8448, hostHeader: '1.2.3.4', tlsServerName: '1.2.3.4', step: 'ip-literal' }],
      fetches: 0,
    },
    {
      name: '1. IPv4 literal with port',
      server: '1.2.3.4:8000',
      fakes: {},
      want: [{ host: '1.2.3.4', port: 8000, hostHeader: '1.2.3.4:8000', tlsServerName: '1.2.3.4', step: 'ip-literal' }],
      fetches: 0,
    },
    {
      name: '1. IPv6 literal, default port',
      server: '[2001:db8::1]',
      fakes: {},
      want: [{ host: '2001:db8::1', port: 8448, hostHeader: '[2001:db8::1]', tlsServerName: '2001:db8::1', step: 'ip-literal' }],
      fetches: 0,
    },
    {
      name: '1. IPv6 literal with port',
      server: '[2001:db8::1]:9000',
      fakes: {},
      want: [{ host: '2001:db8::1', port: 9000, hostHeader: '[2001:db8::1]:9000', tlsServerName: '2001:db8::1', step: 'ip-literal' }],
      fetches: 0,
    },
    {
      name: '2. host name with explicit port: no well-known, no SRV',
      server: 'example.org:8000',
      fakes: { wellKnown: { [WK('example.org')]: wk('elsewhere.org') }, srv: { '_matrix-fed._tcp.example.org': [srv('x.org', 1)] } },
      want: [{ host: 'example.org', port: 8000, hostHeader: 'example.org:8000', tlsServerName: 'example.org', step: 'explicit-port' }],
      fetches: 0,
    },
    {
      name: '3.1 well-known delegates to an IP literal',
      server: 'example.org',
      fakes: { wellKnown: { [WK('example.org')]: wk('10.1.2.3') } },
      want: [{ host: '10.1.2.3', port: 8448, hostHeader: '10.1.2.3', tlsServerName: '10.1.2.3', step: 'well-known-ip-literal' }],
    },
    {
      name: '3.1 well-known delegates to an IPv6 literal with port',
      server: 'example.org',
      fakes: { wellKnown: { [WK('example.org')]: wk('[2001:db8::2]:8443') } },
      want: [{ host: '2001:db8::2', port: 8443, hostHeader: '[2001:db8::2]:8443', tlsServerName: '2001:db8::2', step: 'well-known-ip-literal' }],
    },
    {
      name: '3.2 well-known delegates to a host name with port (SRV not consulted)',
      server: 'example.org',
      fakes: {
        wellKnown: { [WK('example.org')]: wk('matrix.example.org:443') },
        srv: { '_matrix-fed._tcp.matrix.example.org': [srv('wrong.org', 1)] },
      },
      want: [{ host: 'matrix.example.org', port: 443, hostHeader: 'matrix.example.org:443', tlsServerName: 'matrix.example.org', step: 'well-known-explicit-port' }],
    },
    {
      name: '3.3 well-known without port, then _matrix-fed SRV of the delegated name',
      server: 'example.org',
      fakes: {
        wellKnown: { [WK('example.org')]: wk('matrix.example.org') },
        srv: {
          '_matrix-fed._tcp.matrix.example.org': [srv('fed.example.net.', 1234)],
          '_matrix._tcp.matrix.example.org': [srv('legacy.example.net', 1)],
          '_matrix-fed._tcp.example.org': [srv('wrong.org', 1)],
        },
      },
      want: [{ host: 'fed.example.net', port: 1234, hostHeader: 'matrix.example.org', tlsServerName: 'matrix.example.org', step: 'well-known-srv' }],
    },
    {
      name: '3.4 well-known without port, then legacy _matrix SRV of the delegated name',
      server: 'example.org',
      fakes: {
        wellKnown: { [WK('example.org')]: wk('matrix.example.org') },
        srv: { '_matrix._tcp.matrix.example.org': [srv('legacy.example.net', 4321)] },
      },
      want: [{ host: 'legacy.example.net', port: 4321, hostHeader: 'matrix.example.org', tlsServerName: 'matrix.example.org', step: 'well-known-legacy-srv' }],
    },
    {
      name: '3.5 well-known without port and no SRV: delegated name on 8448',
      server: 'example.org',
      fakes: { wellKnown: { [WK('example.org')]: wk('matrix.example.org') } },
      want: [{ host: 'matrix.example.org', port: 8448, hostHeader: 'matrix.example.org', tlsServerName: 'matrix.example.org', step: 'well-known-default-port' }],
    },
    {
      name: '4. no well-known: _matrix-fed SRV wins over the legacy one',
      server: 'example.org',
      fakes: {
        srv: {
          '_matrix-fed._tcp.example.org': [srv('fed.example.org', 8449)],
          '_matrix._tcp.example.org': [srv('legacy.example.org', 8450)],
        },
      },
      want: [{ host: 'fed.example.org', port: 8449, hostHeader: 'example.org', tlsServerName: 'example.org', step: 'srv' }],
    },
    {
      name: '5. no well-known: legacy _matrix SRV',
      server: 'example.org',
      fakes: { srv: { '_matrix._tcp.example.org': [srv('legacy.example.org', 8450)] } },
      want: [{ host: 'legacy.example.org', port: 8450, hostHeader: 'example.org', tlsServerName: 'example.org', step: 'legacy-srv' }],
    },
    {
      name: '6. nothing at all: port 8448',
      server: 'example.org',
      fakes: {},
      want: [{ host: 'example.org', port: 8448, hostHeader: 'example.org', tlsServerName: 'example.org', step: 'default-port' }],
    },
    {
      name: 'well-known that is not JSON falls through to SRV',
      server: 'example.org',
      fakes: {
        wellKnown: { [WK('example.org')]: { status: 200, headers: {}, body: '<html>' } },
        srv: { '_matrix-fed._tcp.example.org': [srv('fed.example.org', 8449)] },
      },
      want: [{ host: 'fed.example.org', port: 8449, hostHeader: 'example.org', tlsServerName: 'example.org', step: 'srv' }],
    },
    {
      name: 'well-known with an invalid m.server falls through',
      server: 'example.org',
      fakes: { wellKnown: { [WK('example.org')]: wk('https://matrix.example.org') } },
      want: [{ host: 'example.org', port: 8448, hostHeader: 'example.org', tlsServerName: 'example.org', step: 'default-port' }],
    },
    {
      name: 'well-known with a non-string m.server falls through',
      server: 'example.org',
      fakes: { wellKnown: { [WK('example.org')]: wk(42) } },
      want: [{ host: 'example.org', port: 8448, hostHeader: 'example.org', tlsServerName: 'example.org', step: 'default-port' }],
    },
    {
      name: 'well-known fetch failing (network) falls through',
      server: 'example.org',
      fakes: { wellKnown: { [WK('example.org')]: new Error('ECONNREFUSED') } },
      want: [{ host: 'example.org', port: 8448, hostHeader: 'example.org', tlsServerName: 'example.org', step: 'default-port' }],
    },
    {
      name: 'well-known redirects are followed',
      server: 'example.org',
      fakes: {
        wellKnown: {
          [WK('example.org')]: { status: 301, headers: { location: 'https://www.example.org/.well-known/matrix/server' }, body: '' },
          [WK('www.example.org')]: { status: 302, headers: { location: '/wk2' }, body: '' },
          'https://www.example.org/wk2': wk('matrix.example.org:8443'),
        },
      },
      want: [{ host: 'matrix.example.org', port: 8443, hostHeader: 'matrix.example.org:8443', tlsServerName: 'matrix.example.org', step: 'well-known-explicit-port' }],
      fetches: 3,
    },
    {
      name: 'a redirect loop ends in failure (and falls through)',
      server: 'example.org',
      fakes: {
        wellKnown: {
          [WK('example.org')]: { status: 301, headers: { location: 'https://a.example.org/x' }, body: '' },
          'https://a.example.org/x': { status: 301, headers: { location: WK('example.org') }, body: '' },
        },
      },
      want: [{ host: 'example.org', port: 8448, hostHeader: 'example.org', tlsServerName: 'example.org', step: 'default-port' }],
      fetches: 2,
    },
    {
      name: 'redirects to plain HTTP are refused',
      server: 'example.org',
      fakes: {
        wellKnown: { [WK('example.org')]: { status: 301, headers: { location: 'http://example.org/.well-known/matrix/server' }, body: '' } },
      },
      want: [{ host: 'example.org', port: 8448, hostHeader: 'example.org', tlsServerName: 'example.org', step: 'default-port' }],
      fetches: 1,
    },
    {
      name: 'SRV records are ordered by priority; "." targets are skipped',
      server: 'example.org',
      fakes: {
        srv: {
          '_matrix-fed._tcp.example.org': [srv('b.example.org', 2, 20), srv('.', 9, 0), srv('a.example.org', 1, 10), srv('c.example.org', 3, 30)],
        },
      },
      want: [
        { host: 'a.example.org', port: 1, step: 'srv' },
        { host: 'b.example.org', port: 2, step: 'srv' },
        { host: 'c.example.org', port: 3, step: 'srv' },
      ],
    },
  ];

  it.each(cases)('$name', async ({ server, fakes, want, fetches }) => {
    const t = setup(fakes);
    const got = await t.resolver.resolve(server);
    expect(got).toHaveLength(want.length);
    want.forEach((w, i) => expect(got[i]).toMatchObject(w));
    if (fetches !== undefined) expect(t.fetched).toHaveLength(fetches);
  });

  it('SRV records of one priority are picked by weight', async () => {
    const t = setup({ srv: { '_matrix-fed._tcp.example.org': [srv('light.example.org', 1, 10, 1), srv('heavy.example.org', 2, 10, 99)] } });
    // random() = 0 picks the first record whose running weight passes 0: light (weight 1).
    expect((await t.resolver.resolve('example.org')).map((e) => e.host)).toEqual(['light.example.org', 'heavy.example.org']);
    const r2 = new ServerResolver({
      dns: { resolveSrv: async () => [srv('light.example.org', 1, 10, 1), srv('heavy.example.org', 2, 10, 99)], lookup: async () => [] },
      fetchWellKnown: async () => ({ status: 404, headers: {}, body: '' }),
      random: () => 0.5,
    });
    expect((await r2.resolve('example.org')).map((e) => e.host)).toEqual(['heavy.example.org', 'light.example.org']);
  });

  it('rejects invalid server names', async () => {
    const t = setup({});
    await expect(t.resolver.resolve('not a server')).rejects.toBeInstanceOf(FederationClientError);
    await expect(t.resolver.resolve('not a server')).rejects.toMatchObject({ code: 'bad_response' });
  });
});

describe('ServerResolver: caching', () => {
  it('caches a well-known answer for 24 h by default', async () => {
    const t = setup({ wellKnown: { [WK('example.org')]: wk('matrix.example.org:443') } });
    await t.resolver.resolve('example.org');
    t.advance(23 * HOUR);
    await t.resolver.resolve('example.org');
    expect(t.fetched).toHaveLength(1);
    t.advance(2 * HOUR);
    await t.resolver.resolve('example.org');
    expect(t.fetched).toHaveLength(2);
  });

  it('follows Cache-Control max-age', async () => {
    const t = setup({ wellKnown: { [WK('example.org')]: wk('matrix.example.org:443', { 'cache-control': 'public, max-age=3600' }) } });
    await t.resolver.resolve('example.org');
    t.advance(HOUR - 1000);
    await t.resolver.resolve('example.org');
    expect(t.fetched).toHaveLength(1);
    t.advance(2000);
    await t.resolver.resolve('example.org');
    expect(t.fetched).toHaveLength(2);
  });

  it('caps the cache time at 48 h', async () => {
    const t = setup({ wellKnown: { [WK('example.org')]: wk('matrix.example.org:443', { 'cache-control': 'max-age=31536000' }) } });
    await t.resolver.resolve('example.org');
    t.advance(47 * HOUR);
    await t.resolver.resolve('example.org');
    expect(t.fetched).toHaveLength(1);
    t.advance(2 * HOUR);
    await t.resolver.resolve('example.org');
    expect(t.fetched).toHaveLength(2);
  });

  it('follows Expires', async () => {
    const t = setup({});
    const expires = new Date(t.now() + 2 * HOUR).toUTCString();
    const r = new ServerResolver({
      dns: { resolveSrv: async () => [], lookup: async () => [] },
      now: t.now,
      fetchWellKnown: async (url) => {
        t.fetched.push(url.href);
        return wk('matrix.example.org:443', { expires });
      },
    });
    await r.resolve('example.org');
    t.advance(HOUR);
    await r.resolve('example.org');
    expect(t.fetched).toHaveLength(1);
    t.advance(HOUR + 1000);
    await r.resolve('example.org');
    expect(t.fetched).toHaveLength(2);
  });

  it('caches failures for an hour', async () => {
    const t = setup({ wellKnown: { [WK('example.org')]: { status: 500, headers: {}, body: '' } } });
    expect((await t.resolver.resolve('example.org'))[0]?.step).toBe('default-port');
    t.advance(59 * 60_000);
    await t.resolver.resolve('example.org');
    expect(t.fetched).toHaveLength(1);
    t.advance(2 * 60_000);
    await t.resolver.resolve('example.org');
    expect(t.fetched).toHaveLength(2);
  });

  it('caches network errors too', async () => {
    const t = setup({ wellKnown: { [WK('example.org')]: new Error('timeout') } });
    await t.resolver.resolve('example.org');
    await t.resolver.resolve('example.org');
    expect(t.fetched).toHaveLength(1);
  });

  it('caches SRV answers', async () => {
    const t = setup({ srv: { '_matrix-fed._tcp.example.org': [srv('fed.example.org', 8449)] } });
    await t.resolver.resolve('example.org');
    await t.resolver.resolve('example.org');
    expect(t.srvQueries).toEqual(['_matrix-fed._tcp.example.org']);
    t.advance(10 * 60_000);
    t.resolver.clearCache('example.org');
    await t.resolver.resolve('example.org');
    expect(t.srvQueries).toHaveLength(2);
  });

  it('shares one lookup between concurrent resolutions', async () => {
    const t = setup({ wellKnown: { [WK('example.org')]: wk('matrix.example.org:443') } });
    const [a, b] = await Promise.all([t.resolver.resolve('example.org'), t.resolver.resolve('example.org')]);
    expect(a).toEqual(b);
    expect(t.fetched).toHaveLength(1);
  });
});

describe('wellKnownTtlMs', () => {
  const now = Date.parse('2024-01-01T00:00:00Z');
  it.each([
    [{}, WELL_KNOWN_DEFAULT_TTL_MS],
    [{ 'cache-control': 'max-age=7200' }, 2 * HOUR],
    [{ 'cache-control': 'max-age=10' }, WELL_KNOWN_MIN_TTL_MS],
    [{ 'cache-control': 'no-store' }, WELL_KNOWN_MIN_TTL_MS],
    [{ 'cache-control': 'max-age=999999999' }, WELL_KNOWN_MAX_TTL_MS],
    [{ expires: 'Mon, 01 Jan 2024 03:00:00 GMT' }, 3 * HOUR],
    [{ expires: '0' }, WELL_KNOWN_MIN_TTL_MS],
    [{ 'cache-control': 'max-age=3600', expires: 'Mon, 01 Jan 2024 03:00:00 GMT' }, HOUR],
  ])('%j', (headers, want) => {
    expect(wellKnownTtlMs(headers, now)).toBe(want);
  });
});

describe('ServerResolver.lookup', () => {
  it('caches addresses for dnsTtlMs, not failures', async () => {
    let now = 0;
    let calls = 0;
    let fail = true;
    const r = new ServerResolver({
      now: () => now,
      dnsTtlMs: 1000,
      fetchWellKnown: async () => ({ status: 404, headers: {}, body: '' }),
      dns: {
        resolveSrv: async () => [],
        lookup: async () => {
          calls++;
          if (fail) throw new Error('ENOTFOUND');
          return ['192.0.2.1'];
        },
      },
    });
    await expect(r.lookup('a.test')).rejects.toThrow();
    fail = false;
    expect(await r.lookup('a.test')).toEqual(['192.0.2.1']);
    expect(await r.lookup('a.test')).toEqual(['192.0.2.1']);
    expect(calls).toBe(2);
    now += 1001;
    await r.lookup('a.test');
    expect(calls).toBe(3);
  });
});
