/**
 * The child process of bench/syncapi's idle long-poll phase: many devices, each looping on
 * GET /sync?since=…&timeout=30000 with the next_batch of its last response, as a client does.
 * It runs apart from the server so that the server process's memory figures hold no client
 * sockets or buffers, and its CPU goes to the other core.
 *
 * Driven over IPC by bench/syncapi/main.ts (see PollerCommand / PollerReport). Each timeline
 * message body is a marker; once every device has received a marker, the child reports the
 * epoch time at which each device received it.
 */
import { Client, Http, nowMs, timelineBodies } from './client.js';

export interface PollerCreds {
  token: string;
  userId: string;
  deviceId: string;
}

export type PollerCommand =
  | { cmd: 'init'; base: string; roomId: string; filter: string; clients: PollerCreds[] }
  | { cmd: 'poll' }
  | { cmd: 'stats' }
  | { cmd: 'stop' };

export interface PollerStats {
  /** /sync responses received since `poll`. */
  responses: number;
  /** Those with at least one new message of the room in their timeline. */
  withMessages: number;
  /** Those without messages but with presence updates (a room-mate's presence refresh wakes everyone). */
  presenceOnly: number;
  /** Messages received, over all responses. */
  messages: number;
  errors: number;
}

export type PollerReport =
  | { type: 'ready'; initialSyncMs: number }
  | { type: 'all'; marker: string; times: number[] }
  | ({ type: 'stats' } & PollerStats)
  | { type: 'error'; message: string };

function report(r: PollerReport): void {
  process.send!(r);
}

let http: Http | undefined;
let roomId = '';
let filter = '';
let clients: Client[] = [];
const since = new Map<Client, string>();
const received = new Map<string, number[]>();
const stats: PollerStats = { responses: 0, withMessages: 0, presenceOnly: 0, messages: 0, errors: 0 };
let stopping = false;

async function loop(c: Client): Promise<void> {
  while (!stopping) {
    let body;
    try {
      ({ body } = await c.sync({ since: since.get(c)!, timeout: '30000', filter }));
    } catch (err) {
      if (stopping) return;
      stats.errors++;
      if (stats.errors <= 3) report({ type: 'error', message: `${c.deviceId}: ${String(err)}` });
      await new Promise((res) => setTimeout(res, 100));
      continue;
    }
    const at = nowMs();
    stats.responses++;
    since.set(c, body.next_batch);
    const markers = timelineBodies(body, roomId).filter((b): b is string => typeof b === 'string');
    if (markers.length === 0) {
      if ((body.presence?.events?.length ?? 0) > 0) stats.presenceOnly++;
      continue;
    }
    stats.withMessages++;
    stats.messages += markers.length;
    for (const m of markers) {
      let times = received.get(m);
      if (!times) received.set(m, (times = []));
      times.push(at);
      if (times.length === clients.length) report({ type: 'all', marker: m, times });
    }
  }
}

// The bench process gone (finished or crashed): nothing left to do.
process.on('disconnect', () => process.exit(0));

process.on('message', (msg: PollerCommand) => {
  void (async () => {
    switch (msg.cmd) {
      case 'init': {
        // One socket per device: the long-polls are all in flight at once.
        http = new Http(msg.base, msg.clients.length + 16);
        roomId = msg.roomId;
        filter = msg.filter;
        clients = msg.clients.map((c) => new Client(http!, c.token, c.userId, c.deviceId));
        const t0 = performance.now();
        // All at once, so each device opens its own keep-alive connection now, before the memory baseline.
        await Promise.all(clients.map(async (c) => since.set(c, (await c.sync({ filter, timeout: '0' })).body.next_batch)));
        report({ type: 'ready', initialSyncMs: performance.now() - t0 });
        break;
      }
      case 'poll':
        for (const c of clients) void loop(c);
        break;
      case 'stats':
        report({ type: 'stats', ...stats });
        break;
      case 'stop':
        stopping = true;
        http?.close();
        report({ type: 'stats', ...stats });
        process.disconnect();
        break;
    }
  })().catch((err: unknown) => report({ type: 'error', message: String(err) }));
});
