/**
 * HTTP and HTTPS listeners on @hono/node-server. `listen` resolves once the port accepts
 * connections (Sytest treats a successful TCP connect as "ready") and rejects with a
 * one-line reason when it cannot bind.
 */
import { createAdaptorServer } from '@hono/node-server';
import { createServer as createHttpsServer } from 'node:https';
import type { Server } from 'node:http';
import type { Hono } from 'hono';

export interface BindAddress {
  host: string | undefined;
  port: number;
}

/** "host:port", ":port", "[::1]:port", or "port". An empty host means all interfaces. */
export function parseBindAddress(text: string): BindAddress {
  const m = /^(?:(\[[^\]]+\]|[^:]*):)?(\d{1,5})$/.exec(text.trim());
  const port = Number(m?.[2]);
  if (!m || port > 65535) throw new Error(`invalid bind address "${text}" (expected host:port)`);
  const host = m[1]?.replace(/^\[|\]$/g, '') || undefined;
  return { host, port };
}

export interface Listener {
  readonly server: Server;
  readonly address: BindAddress;
  /** Stops accepting, lets in-flight requests finish for up to `graceMs`, then cuts the rest. */
  close(graceMs: number): Promise<void>;
}

export async function listen(
  app: Hono,
  bind: BindAddress,
  tls?: { cert: Buffer; key: Buffer },
): Promise<Listener> {
  // Handlers still running, whether or not their client is still connected: shutdown must
  // not close the databases under them.
  let inFlight = 0;
  let onIdle: Array<() => void> = [];
  const fetch = async (req: Request, env: unknown): Promise<Response> => {
    inFlight++;
    try {
      return await app.fetch(req, env);
    } finally {
      if (--inFlight === 0) for (const f of onIdle.splice(0)) f();
    }
  };
  const handlersDone = (ms: number): Promise<void> =>
    inFlight === 0
      ? Promise.resolve()
      : new Promise((resolve) => {
          const timer = setTimeout(resolve, ms);
          timer.unref();
          onIdle.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
  const server = createAdaptorServer({
    fetch,
    ...(tls ? { createServer: createHttpsServer, serverOptions: { cert: tls.cert, key: tls.key } } : {}),
  }) as Server;
  // Long-polls (/sync) hold requests open; keep-alive sockets must not outlive shutdown.
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      const where = `${bind.host ?? '*'}:${bind.port}`;
      if (err.code === 'EADDRINUSE') reject(new Error(`cannot listen on ${where}: the port is already in use`));
      else if (err.code === 'EACCES') reject(new Error(`cannot listen on ${where}: permission denied`));
      else if (err.code === 'ENOTFOUND' || err.code === 'EADDRNOTAVAIL') reject(new Error(`cannot listen on ${where}: no such local address`));
      else reject(new Error(`cannot listen on ${where}: ${err.message}`));
    };
    server.once('error', onError);
    server.listen(bind.port, bind.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const actual = server.address();
  const address = typeof actual === 'object' && actual ? { host: bind.host, port: actual.port } : bind;
  return {
    server,
    address,
    close: async (graceMs) => {
      let isClosed = false;
      const closed = new Promise<void>((resolve) =>
        server.close(() => {
          isClosed = true;
          resolve();
        }),
      );
      server.closeIdleConnections();
      // Let running requests finish; their responses are written just after the handler
      // returns, so keep closing connections as they fall idle for a moment before cutting
      // what is left (long-polls).
      await handlersDone(graceMs);
      const deadline = Date.now() + Math.min(graceMs, 1_000);
      while (!isClosed && Date.now() < deadline) {
        server.closeIdleConnections();
        await Promise.race([closed, new Promise((r) => setTimeout(r, 20))]);
      }
      server.closeAllConnections();
      await Promise.all([closed, handlersDone(graceMs)]);
      onIdle = [];
    },
  };
}
