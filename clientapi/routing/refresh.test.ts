/** Refresh tokens and soft logout over HTTP, with access tokens that live 400 ms. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { getJson, startTestServer, testConfig, type TestServer } from '../../test/harness.js';

const LIFETIME_MS = 400;
let t: TestServer;
const post = (path: string, body: unknown, token?: string) =>
  getJson(`${t.baseUrl}/_matrix/client/v3${path}`, {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
  });
const whoami = (token: string) => getJson(`${t.baseUrl}/_matrix/client/v3/account/whoami`, { headers: { Authorization: `Bearer ${token}` } });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  const { cfg, dir } = testConfig((doc) => {
    (doc.user_api as Record<string, unknown>).refreshable_access_token_lifetime_ms = LIFETIME_MS;
  });
  t = await startTestServer({ cfg, dir });
});
afterAll(async () => {
  await t.stop();
});

it('gives refresh tokens only to clients that ask, on registration and login', async () => {
  const plain = await post('/register', { auth: { type: 'm.login.dummy' }, username: 'plain', password: 'pw' });
  expect(plain.body.refresh_token).toBeUndefined();
  expect(plain.body.expires_in_ms).toBeUndefined();
  const reg = await post('/register', { auth: { type: 'm.login.dummy' }, username: 'refresher', password: 'pw', refresh_token: true });
  expect(reg.status).toBe(200);
  expect(reg.body.expires_in_ms).toBe(LIFETIME_MS);
  expect(String(reg.body.refresh_token)).toMatch(/^syr_/);
  const login = await post('/login', { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'refresher' }, password: 'pw', refresh_token: true });
  expect(login.body.expires_in_ms).toBe(LIFETIME_MS);
  expect(typeof login.body.refresh_token).toBe('string');
});

it('an expired access token is a soft logout; /refresh gives new tokens and keeps the device', async () => {
  const login = await post('/login', { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'refresher' }, password: 'pw', refresh_token: true, device_id: 'PHONE' });
  const access = login.body.access_token as string;
  expect((await whoami(access)).status).toBe(200);
  await sleep(LIFETIME_MS + 50);
  const expired = await whoami(access);
  expect(expired.status).toBe(401);
  expect(expired.body).toMatchObject({ errcode: 'M_UNKNOWN_TOKEN', soft_logout: true });

  const refreshed = await post('/refresh', { refresh_token: login.body.refresh_token });
  expect(refreshed.status).toBe(200);
  expect(refreshed.body.expires_in_ms).toBe(LIFETIME_MS);
  const me = await whoami(refreshed.body.access_token as string);
  expect(me.body).toMatchObject({ user_id: '@refresher:localhost:8008', device_id: 'PHONE' });
  // The old access token is gone for good, not soft-logged-out.
  const old = await whoami(access);
  expect(old.body.errcode).toBe('M_UNKNOWN_TOKEN');
  expect(old.body.soft_logout).toBeUndefined();
});

it('a lost /refresh answer can be retried with the old refresh token until the new tokens are used', async () => {
  const login = await post('/login', { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'refresher' }, password: 'pw', refresh_token: true });
  const first = login.body.refresh_token as string;
  const lost = await post('/refresh', { refresh_token: first });
  expect(lost.status).toBe(200);
  const retry = await post('/refresh', { refresh_token: first });
  expect(retry.status).toBe(200);
  // The answer that was lost is superseded by the retry.
  expect((await whoami(lost.body.access_token as string)).status).toBe(401);
  expect((await whoami(retry.body.access_token as string)).status).toBe(200);
  // Using the new access token retires the old refresh token.
  const again = await post('/refresh', { refresh_token: first });
  expect(again.status).toBe(401);
  expect(again.body.errcode).toBe('M_UNKNOWN_TOKEN');
  expect((await post('/refresh', { refresh_token: retry.body.refresh_token })).status).toBe(200);
});

it('refuses unknown and missing refresh tokens; logout ends the refresh token too', async () => {
  expect((await post('/refresh', { refresh_token: 'syr_nope' })).body.errcode).toBe('M_UNKNOWN_TOKEN');
  const missing = await post('/refresh', {});
  expect(missing.status).toBe(400);
  expect(missing.body.errcode).toBe('M_MISSING_PARAM');
  const login = await post('/login', { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'refresher' }, password: 'pw', refresh_token: true });
  expect((await post('/logout', {}, login.body.access_token as string)).status).toBe(200);
  expect((await post('/refresh', { refresh_token: login.body.refresh_token })).status).toBe(401);
});
