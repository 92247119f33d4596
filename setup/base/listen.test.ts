import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { listen, parseBindAddress } from './listen.js';

describe('parseBindAddress', () => {
  it.each([
    ['localhost:8008', { host: 'localhost', port: 8008 }],
    [':8448', { host: undefined, port: 8448 }],
    ['8008', { host: undefined, port: 8008 }],
    ['[::1]:8008', { host: '::1', port: 8008 }],
  ])('%s', (text, expected) => expect(parseBindAddress(text)).toEqual(expected));
  it.each(['localhost', 'host:99999', 'a:b'])('refuses %j', (text) => expect(() => parseBindAddress(text)).toThrow(/invalid bind address/));
});

describe('Listener.close', () => {
  it('waits for handlers whose client has gone before it resolves', async () => {
    const app = new Hono();
    let handlerFinished = false;
    let started!: () => void;
    const handlerStarted = new Promise<void>((r) => (started = r));
    app.get('/slow', async (c) => {
      started();
      await new Promise((r) => setTimeout(r, 300));
      handlerFinished = true;
      return c.json({ ok: true });
    });
    const l = await listen(app, { host: '127.0.0.1', port: 0 });
    const abort = new AbortController();
    const request = fetch(`http://127.0.0.1:${l.address.port}/slow`, { signal: abort.signal }).catch(() => 'aborted');
    await handlerStarted;
    abort.abort();
    expect(await request).toBe('aborted');
    await l.close(2_000);
    // Shutdown steps after the listener (closing databases) run only now.
    expect(handlerFinished).toBe(true);
  });

  it('lets a connected client get its response during shutdown, then refuses new connections', async () => {
    const app = new Hono();
    app.get('/slow', async (c) => {
      await new Promise((r) => setTimeout(r, 200));
      return c.json({ done: true });
    });
    const l = await listen(app, { host: '127.0.0.1', port: 0 });
    const url = `http://127.0.0.1:${l.address.port}/slow`;
    const inflight = fetch(url).then((r) => r.json());
    await new Promise((r) => setTimeout(r, 50));
    await l.close(2_000);
    expect(await inflight).toEqual({ done: true });
    await expect(fetch(url)).rejects.toThrow();
  });

  it('cuts a request that outlives the grace period', async () => {
    const app = new Hono();
    app.get('/forever', () => new Promise<Response>(() => {}));
    const l = await listen(app, { host: '127.0.0.1', port: 0 });
    const request = fetch(`http://127.0.0.1:${l.address.port}/forever`).catch(() => 'cut');
    await new Promise((r) => setTimeout(r, 50));
    const t = Date.now();
    await l.close(200);
    expect(Date.now() - t).toBeLessThan(1_500);
    expect(await request).toBe('cut');
  });
});
