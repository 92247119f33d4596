import { Hono } from 'hono';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { jsonResponse, readJsonObject } from './json.js';
import { forbidden } from './matrixerror.js';
import { matrixErrorHandler } from './middleware/errors/index.js';

function app(): Hono {
  const a = new Hono();
  a.post('/echo', async (c) => jsonResponse(await readJsonObject(c, { maxBytes: 64 })));
  a.post('/echo-empty-ok', async (c) => jsonResponse(await readJsonObject(c, { maxBytes: 64, allowEmpty: true })));
  a.get('/forbidden', () => {
    throw forbidden('not yours');
  });
  a.get('/bug', () => {
    throw new TypeError('internal detail');
  });
  a.onError(matrixErrorHandler(pino({ level: 'silent' })));
  return a;
}

async function call(path: string, init?: RequestInit): Promise<{ status: number; type: string | null; body: Record<string, unknown> }> {
  const res = await app().request(path, init);
  return { status: res.status, type: res.headers.get('content-type'), body: (await res.json()) as Record<string, unknown> };
}

describe('JSON bodies and Matrix errors', () => {
  it('echoes a JSON object with Content-Type exactly application/json', async () => {
    const r = await call('/echo', { method: 'POST', body: '{"a":1}' });
    expect(r).toEqual({ status: 200, type: 'application/json', body: { a: 1 } });
  });
  it.each([
    ['{not json', 400, 'M_NOT_JSON'],
    ['', 400, 'M_NOT_JSON'],
    ['[1,2]', 400, 'M_BAD_JSON'],
    ['"string"', 400, 'M_BAD_JSON'],
    ['null', 400, 'M_BAD_JSON'],
    [JSON.stringify({ big: 'x'.repeat(100) }), 413, 'M_TOO_LARGE'],
  ])('refuses %j', async (body, status, errcode) => {
    const r = await call('/echo', { method: 'POST', body });
    expect(r.status).toBe(status);
    expect(r.body.errcode).toBe(errcode);
    expect(typeof r.body.error).toBe('string');
  });
  it('refuses a streamed body that grows past the limit without Content-Length', async () => {
    const stream = new ReadableStream<Uint8Array>({
      start(ctl) {
        for (let i = 0; i < 10; i++) ctl.enqueue(new TextEncoder().encode('{"k":"0123456789"}'));
        ctl.close();
      },
    });
    const r = await call('/echo', { method: 'POST', body: stream, duplex: 'half' } as RequestInit);
    expect(r.status).toBe(413);
  });
  it('refuses invalid UTF-8 as M_NOT_JSON, and takes valid multi-byte text', async () => {
    const bad = await call('/echo', { method: 'POST', body: Buffer.concat([Buffer.from('{"u":"a'), Buffer.from([0x81]), Buffer.from('"}')]) });
    expect(bad.status).toBe(400);
    expect(bad.body.errcode).toBe('M_NOT_JSON');
    expect((await call('/echo', { method: 'POST', body: '{"u":"é☃"}' })).body).toEqual({ u: 'é☃' });
  });

  it('reads an empty body as {} where allowed', async () => {
    expect((await call('/echo-empty-ok', { method: 'POST' })).body).toEqual({});
  });
  it('maps MatrixError to its status and a bug to 500 M_UNKNOWN without internals', async () => {
    expect(await call('/forbidden')).toMatchObject({ status: 403, body: { errcode: 'M_FORBIDDEN', error: 'not yours' } });
    const bug = await call('/bug');
    expect(bug.status).toBe(500);
    expect(bug.body.errcode).toBe('M_UNKNOWN');
    expect(JSON.stringify(bug.body)).not.toContain('internal detail');
  });
});
