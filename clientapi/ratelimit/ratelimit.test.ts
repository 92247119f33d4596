/** RateLimiter on a fake clock, and the middleware's route selection and caller keys. */
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { RateLimiter } from './ratelimit.js';
import { limitedRoute, rateLimitMiddleware } from './middleware.js';

function clock(start = 1000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('RateLimiter', () => {
  it('gives each caller threshold slots, then refuses with the time until the earliest slot frees', () => {
    const c = clock();
    const rl = new RateLimiter({ threshold: 3, cooloffMs: 2000, now: c.now });
    expect(rl.take('a')).toEqual({ allowed: true });
    c.advance(100);
    expect(rl.take('a')).toEqual({ allowed: true });
    c.advance(100);
    expect(rl.take('a')).toEqual({ allowed: true });
    c.advance(300);
    // Earliest slot was taken 500 ms ago: it frees in 1500 ms.
    expect(rl.take('a')).toEqual({ allowed: false, retryAfterMs: 1500 });
    // A refused request takes no slot: the wait keeps shrinking with the clock.
    c.advance(1000);
    expect(rl.take('a')).toEqual({ allowed: false, retryAfterMs: 500 });
    // Another caller is unaffected.
    expect(rl.take('b')).toEqual({ allowed: true });
  });

  it('gives a slot back exactly cooloff after its request started, one at a time', () => {
    const c = clock();
    const rl = new RateLimiter({ threshold: 2, cooloffMs: 1000, now: c.now });
    rl.take('a');
    c.advance(400);
    rl.take('a');
    c.advance(599);
    expect(rl.take('a')).toEqual({ allowed: false, retryAfterMs: 1 });
    c.advance(1);
    // The first slot is free again (t = 1000 after it), the second still busy.
    expect(rl.take('a')).toEqual({ allowed: true });
    expect(rl.take('a')).toEqual({ allowed: false, retryAfterMs: 400 });
    c.advance(400);
    expect(rl.take('a')).toEqual({ allowed: true });
  });

  it('rounds fractional waits up to a whole, positive number of ms', () => {
    const c = clock(0.25);
    const rl = new RateLimiter({ threshold: 1, cooloffMs: 10, now: c.now });
    rl.take('a');
    c.advance(2.2);
    expect(rl.take('a')).toEqual({ allowed: false, retryAfterMs: 8 });
    c.advance(7.3);
    expect(rl.take('a')).toEqual({ allowed: false, retryAfterMs: 1 });
  });

  it('knows the exempt users', () => {
    const rl = new RateLimiter({ threshold: 1, cooloffMs: 10, exemptUserIds: ['@bot:hs'] });
    expect(rl.isExempt('@bot:hs')).toBe(true);
    expect(rl.isExempt('@alice:hs')).toBe(false);
  });

  it('never limits when cooloff is 0', () => {
    const c = clock();
    const rl = new RateLimiter({ threshold: 1, cooloffMs: 0, now: c.now });
    for (let i = 0; i < 10; i++) expect(rl.take('a').allowed).toBe(true);
    expect(rl.size).toBeLessThanOrEqual(1);
  });

  it('holds no state for callers whose slots have all freed', () => {
    const c = clock();
    const rl = new RateLimiter({ threshold: 5, cooloffMs: 1000, now: c.now });
    for (let i = 0; i < 10_000; i++) {
      rl.take(`device${i}`);
      c.advance(0.1);
    }
    // All 10,000 took a slot within the last 1000 ms: all still busy.
    expect(rl.size).toBe(10_000);
    c.advance(500);
    // Device 0..~4999 are idle now; one arrival evicts them all.
    rl.take('late');
    expect(rl.size).toBeGreaterThan(4000);
    expect(rl.size).toBeLessThan(6000);
    c.advance(1000);
    rl.take('later');
    expect(rl.size).toBe(1);
    c.advance(1000);
    rl.take('last');
    expect(rl.size).toBe(1);
  });

  it('keeps a caller that takes a new slot behind those that went idle (eviction order follows the newest slot)', () => {
    const c = clock();
    const rl = new RateLimiter({ threshold: 3, cooloffMs: 1000, now: c.now });
    rl.take('a'); // a first in the map
    c.advance(10);
    rl.take('b');
    c.advance(10);
    rl.take('a'); // a's newest slot is now the newest of all
    c.advance(995); // b idle (took its slot 1005 ms ago), a's second slot still busy
    expect(rl.take('c')).toEqual({ allowed: true });
    expect(rl.size).toBe(2); // a and c; b dropped
    rl.take('a');
    rl.take('a');
    // a's first slot freed (1015 ms ago); the second (995 ms ago) and the two just taken are busy.
    expect(rl.take('a')).toEqual({ allowed: false, retryAfterMs: 5 });
  });

  it('rejects a threshold below 1', () => {
    expect(() => new RateLimiter({ threshold: 0, cooloffMs: 10 })).toThrow(/threshold/);
  });
});

describe('limitedRoute', () => {
  const P = '/_matrix/client';
  it.each([
    ['POST', `${P}/v3/register`, 'ip'],
    ['POST', `${P}/r0/login`, 'ip'],
    ['POST', `${P}/v3/createRoom`, 'device'],
    ['POST', `${P}/v3/join/%23room%3Ahs`, 'device'],
    ['POST', `${P}/v3/rooms/!r%3Ahs/join`, 'device'],
    ['POST', `${P}/r0/rooms/!r%3Ahs/invite`, 'device'],
    ['POST', `${P}/v3/rooms/!r%3Ahs/kick`, 'device'],
    ['POST', `${P}/v3/rooms/!r%3Ahs/ban`, 'device'],
    ['POST', `${P}/v3/rooms/!r%3Ahs/unban`, 'device'],
    ['POST', `${P}/v3/rooms/!r%3Ahs/leave`, 'device'],
    ['POST', `${P}/v3/rooms/!r%3Ahs/forget`, 'device'],
    ['POST', `${P}/v3/knock/!r%3Ahs`, 'device'],
    ['PUT', `${P}/v3/rooms/!r%3Ahs/send/m.room.message/t1`, 'device'],
    ['POST', `${P}/v3/rooms/!r%3Ahs/send/m.room.message`, 'device'],
    ['PUT', `${P}/v3/rooms/!r%3Ahs/state/m.room.name`, 'device'],
    ['PUT', `${P}/v3/rooms/!r%3Ahs/state/m.room.name/`, 'device'],
    ['PUT', `${P}/v3/rooms/!r%3Ahs/state/m.room.member/%40a%3Ahs`, 'device'],
    ['PUT', `${P}/v3/rooms/!r%3Ahs/redact/%24e/t1`, 'device'],
    ['POST', `${P}/v3/rooms/!r%3Ahs/redact/%24e`, 'device'],
    ['PUT', `${P}/v3/profile/%40a%3Ahs/displayname`, 'device'],
    ['PUT', `${P}/v3/profile/%40a%3Ahs/avatar_url`, 'device'],
    ['PUT', `${P}/v3/sendToDevice/m.x/t1`, 'device'],
    ['PUT', `${P}/v3/rooms/!r%3Ahs/typing/%40a%3Ahs`, 'device'],
    ['POST', `${P}/v3/rooms/!r%3Ahs/receipt/m.read/%24e`, 'device'],
    ['POST', `${P}/v3/rooms/!r%3Ahs/read_markers`, 'device'],
    ['POST', `${P}/v3/keys/upload`, 'device'],
    ['POST', `${P}/v3/keys/claim`, 'device'],
    ['POST', `${P}/v3/rooms/!r%3Ahs/upgrade`, 'device'],
    ['POST', `${P}/v3/rooms/!r%3Ahs/report/%24e`, 'device'],
    ['PUT', `${P}/v3/directory/room/%23a%3Ahs`, 'device'],
  ])('%s %s is limited per %s', (method, path, kind) => {
    expect(limitedRoute(method, path)).toBe(kind);
  });

  it.each([
    ['GET', `${P}/v3/sync`],
    ['GET', `${P}/v3/login`],
    ['GET', `${P}/v3/rooms/!r%3Ahs/messages`],
    ['GET', `${P}/v3/rooms/!r%3Ahs/state/m.room.name/`],
    ['GET', `${P}/v3/profile/%40a%3Ahs/displayname`],
    ['POST', `${P}/v3/keys/query`],
    ['POST', `${P}/v3/logout`],
    ['DELETE', `${P}/v3/directory/room/%23a%3Ahs`],
    ['PUT', `${P}/v3/rooms/!r%3Ahs/send/m.room.message`],
    ['POST', `${P}/v1/rooms/!r%3Ahs/send/m.room.message`],
    ['POST', `${P}/v3/createRoom/extra`],
    ['POST', `/_matrix/media/v3/register`],
    ['OPTIONS', `${P}/v3/createRoom`],
  ])('%s %s is not limited', (method, path) => {
    expect(limitedRoute(method, path)).toBeUndefined();
  });
});

describe('rateLimitMiddleware', () => {
  const devices: Record<string, { userId: string; deviceId: string; isGuest: boolean }> = {
    ta: { userId: '@a:hs', deviceId: 'A', isGuest: false },
    tb: { userId: '@a:hs', deviceId: 'B', isGuest: false },
    tg: { userId: '@g:hs', deviceId: 'G', isGuest: true },
    tx: { userId: '@exempt:hs', deviceId: 'X', isGuest: false },
  };
  let lookups = 0;
  const tokens = {
    queryAccessToken: async ({ accessToken }: { accessToken: string }) => {
      lookups++;
      return devices[accessToken] ? { device: devices[accessToken] } : {};
    },
  };
  function app(): { app: Hono; clk: ReturnType<typeof clock> } {
    const clk = clock();
    const limiter = new RateLimiter({ threshold: 2, cooloffMs: 1000, exemptUserIds: ['@exempt:hs'], now: clk.now });
    const client = new Hono();
    client.use('*', rateLimitMiddleware({ limiter, tokens }));
    // A stand-in route that refuses unknown tokens the way real routes do.
    const route = (c: import('hono').Context) => (c.req.header('authorization') === 'Bearer bad' ? c.json({ errcode: 'M_UNKNOWN_TOKEN' }, 401) : c.json({ ok: true }));
    client.put('/v3/rooms/:r/send/:t/:txn', route);
    client.get('/v3/sync', route);
    client.post('/v3/register', route);
    const root = new Hono();
    root.route('/_matrix/client', client);
    return { app: root, clk };
  }
  const send = (a: Hono, token: string) => a.request('/_matrix/client/v3/rooms/r/send/m.t/1', { method: 'PUT', headers: { Authorization: `Bearer ${token}` } });

  it('limits per device, answers 429 M_LIMIT_EXCEEDED with retry_after_ms, and lets the device go after the cooloff', async () => {
    const { app: a, clk } = app();
    expect((await send(a, 'ta')).status).toBe(200);
    clk.advance(250);
    expect((await send(a, 'ta')).status).toBe(200);
    const res = await send(a, 'ta');
    expect(res.status).toBe(429);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.headers.get('retry-after')).toBe('1');
    expect(await res.json()).toEqual({ errcode: 'M_LIMIT_EXCEEDED', error: expect.any(String), retry_after_ms: 750 });
    // The same user's other device has slots of its own; guests are limited too.
    expect((await send(a, 'tb')).status).toBe(200);
    expect((await send(a, 'tg')).status).toBe(200);
    expect((await send(a, 'tg')).status).toBe(200);
    expect((await send(a, 'tg')).status).toBe(429);
    // Reads are not limited.
    expect((await a.request('/_matrix/client/v3/sync', { headers: { Authorization: 'Bearer ta' } })).status).toBe(200);
    clk.advance(750);
    expect((await send(a, 'ta')).status).toBe(200);
  });

  it('never limits exempt users', async () => {
    const { app: a } = app();
    for (let i = 0; i < 10; i++) expect((await send(a, 'tx')).status).toBe(200);
  });

  it('passes requests with unknown or missing tokens to the route, which gives its own 401', async () => {
    const { app: a } = app();
    for (let i = 0; i < 5; i++) expect((await send(a, 'bad')).status).toBe(401);
    const before = lookups;
    for (let i = 0; i < 5; i++) expect((await a.request('/_matrix/client/v3/sync')).status).toBe(200);
    // Unlimited routes cost no token lookup.
    expect(lookups).toBe(before);
  });

  it('limits /register per client address (one shared key without a socket)', async () => {
    const { app: a } = app();
    const reg = () => a.request('/_matrix/client/v3/register', { method: 'POST' });
    expect((await reg()).status).toBe(200);
    expect((await reg()).status).toBe(200);
    expect((await reg()).status).toBe(429);
  });
});
