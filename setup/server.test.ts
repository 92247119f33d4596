import * as ed from '@noble/ed25519';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson, decodeBase64 } from '../internal/matrix/index.js';
import { getJson, startTestServer, testConfig, type TestServer } from '../test/harness.js';

ed.hashes.sha512 = (m: Uint8Array) => new Uint8Array(createHash('sha512').update(m).digest());

describe('monolith over HTTP', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(async () => {
    await t.stop();
  });

  it('serves /_matrix/client/versions as application/json with CORS', async () => {
    const r = await getJson(`${t.baseUrl}/_matrix/client/versions`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/json');
    expect(r.headers.get('access-control-allow-origin')).toBe('*');
    expect(r.body.versions).toContain('v1.12');
    expect(r.body.versions).toContain('r0.6.1');
  });

  it('answers CORS preflight on any path', async () => {
    const res = await fetch(`${t.baseUrl}/_matrix/client/v3/rooms/!x:y/send/m.room.message/1`, { method: 'OPTIONS' });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-methods')).toContain('PUT');
    expect(res.headers.get('access-control-allow-headers')).toContain('Authorization');
  });

  it('answers unknown endpoints with 404 M_UNRECOGNIZED and wrong methods with 405 M_UNRECOGNIZED', async () => {
    for (const p of ['/_matrix/client/v3/nonexistent', '/nothing/here', '/_matrix/media/v3/x']) {
      const r = await getJson(`${t.baseUrl}${p}`);
      expect(r.status, p).toBe(404);
      expect(r.body.errcode).toBe('M_UNRECOGNIZED');
      expect(r.headers.get('content-type')).toBe('application/json');
    }
    const wrong = await getJson(`${t.baseUrl}/_matrix/client/versions`, { method: 'POST', body: '{}' });
    expect(wrong.status).toBe(405);
    expect(wrong.body.errcode).toBe('M_UNRECOGNIZED');
    expect(wrong.headers.get('allow')).toContain('GET');
  });

  it('serves the federation version', async () => {
    const r = await getJson(`${t.baseUrl}/_matrix/federation/v1/version`);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ server: { name: 'dendrite-ts', version: expect.any(String) } });
  });

  it('publishes its signing key, self-signed and verifiable by an independent Ed25519', async () => {
    const r = await getJson(`${t.baseUrl}/_matrix/key/v2/server`);
    expect(r.status).toBe(200);
    const doc = r.body as { server_name: string; valid_until_ts: number; verify_keys: Record<string, { key: string }>; signatures: Record<string, Record<string, string>> };
    expect(doc.server_name).toBe('localhost:8008');
    expect(doc.valid_until_ts).toBeGreaterThan(Date.now());
    const [keyId, { key }] = Object.entries(doc.verify_keys)[0]!;
    expect(keyId).toBe(t.server.identity.keyId);
    const sig = doc.signatures['localhost:8008']?.[keyId];
    expect(sig).toBeTruthy();
    const { signatures: _s, ...unsigned } = doc;
    const msg = new TextEncoder().encode(canonicalJson(unsigned));
    expect(ed.verify(decodeBase64(sig!), msg, decodeBase64(key))).toBe(true);
    // Tampering breaks it.
    const tampered = new TextEncoder().encode(canonicalJson({ ...unsigned, valid_until_ts: doc.valid_until_ts + 1 }));
    expect(ed.verify(decodeBase64(sig!), tampered, decodeBase64(key))).toBe(false);
  });

  it('answers well-known with 404 when no delegation is configured', async () => {
    const r = await getJson(`${t.baseUrl}/.well-known/matrix/server`);
    expect(r.status).toBe(404);
    expect(r.body.errcode).toBe('M_NOT_FOUND');
  });

  it('reports every component through its internal API', async () => {
    const r = await getJson(`${t.baseUrl}/_dendrite/status`);
    const components = r.body.components as Record<string, { pid: number; component: string }>;
    expect(Object.keys(components).sort()).toEqual(['clientapi', 'federationapi', 'mediaapi', 'roomserver', 'syncapi', 'userapi']);
    for (const [name, s] of Object.entries(components)) expect(s).toMatchObject({ component: name, pid: process.pid });
  });
});

describe('well-known delegation', () => {
  it('serves configured delegation', async () => {
    const { cfg, dir } = testConfig((doc) => {
      doc.global!.well_known_server_name = 'matrix.example.org:443';
      doc.global!.well_known_client_name = 'https://matrix.example.org';
    });
    const t = await startTestServer({ cfg, dir });
    try {
      expect((await getJson(`${t.baseUrl}/.well-known/matrix/server`)).body).toEqual({ 'm.server': 'matrix.example.org:443' });
      expect((await getJson(`${t.baseUrl}/.well-known/matrix/client`)).body).toEqual({ 'm.homeserver': { base_url: 'https://matrix.example.org' } });
    } finally {
      await t.stop();
    }
  });
});

describe('metrics', () => {
  it('serves Prometheus metrics behind basic auth when enabled', async () => {
    const { cfg, dir } = testConfig((doc) => {
      doc.global!.metrics = { enabled: true, basic_auth: { username: 'm', password: 'secret' } };
    });
    const t = await startTestServer({ cfg, dir });
    try {
      await fetch(`${t.baseUrl}/_matrix/client/versions`);
      expect((await fetch(`${t.baseUrl}/metrics`)).status).toBe(401);
      const wrong = await fetch(`${t.baseUrl}/metrics`, { headers: { Authorization: `Basic ${Buffer.from('m:nope').toString('base64')}` } });
      expect(wrong.status).toBe(401);
      const ok = await fetch(`${t.baseUrl}/metrics`, { headers: { Authorization: `Basic ${Buffer.from('m:secret').toString('base64')}` } });
      expect(ok.status).toBe(200);
      const text = await ok.text();
      expect(text).toMatch(/dendrite_http_requests_total\{api="client",method="GET",status="200"\} [1-9]/);
    } finally {
      await t.stop();
    }
  });

  it('has no /metrics when disabled', async () => {
    const t = await startTestServer();
    try {
      expect((await fetch(`${t.baseUrl}/metrics`)).status).toBe(404);
    } finally {
      await t.stop();
    }
  });
});
