/**
 * The Client-Server API as bench/syncapi uses it: plain node:http over a keep-alive agent (one
 * socket per request in flight, so a thousand long-polls need a thousand sockets and no
 * request queues behind another), JSON in and out, and the response size in bytes.
 */
import { Agent, request } from 'node:http';

export const CLIENT = '/_matrix/client/v3';

export interface SyncEvent {
  event_id: string;
  type?: string;
  state_key?: string;
  content?: { body?: unknown };
}

export interface SyncBody {
  next_batch: string;
  rooms?: { join?: Record<string, { timeline?: { events?: SyncEvent[]; limited?: boolean }; state?: { events?: SyncEvent[] } }> };
  presence?: { events?: unknown[] };
}

export interface HttpAnswer {
  status: number;
  text: string;
  bytes: number;
}

/** A keep-alive connection pool to one server. */
export class Http {
  readonly agent: Agent;

  constructor(
    readonly base: string,
    maxSockets: number,
  ) {
    this.agent = new Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets, scheduling: 'lifo' });
  }

  call(method: string, path: string, token?: string, body?: unknown): Promise<HttpAnswer> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string | number> = {};
    if (token) headers['Authorization'] = `Bearer ${token}`;
    if (payload) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = payload.length;
    }
    return new Promise((resolve, reject) => {
      const req = request(`${this.base}${path}`, { method, headers, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const buf = Buffer.concat(chunks);
          resolve({ status: res.statusCode ?? 0, text: buf.toString('utf8'), bytes: buf.length });
        });
      });
      req.on('error', reject);
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** One device of one user. */
export class Client {
  private txn = 0;

  constructor(
    readonly http: Http,
    readonly token: string,
    readonly userId: string,
    readonly deviceId: string,
  ) {}

  static async register(http: Http, username: string): Promise<Client> {
    const r = await http.call('POST', `${CLIENT}/register`, undefined, { auth: { type: 'm.login.dummy' }, username, password: 'bench-password' });
    if (r.status !== 200) throw new Error(`register ${username}: ${r.status} ${r.text}`);
    const body = JSON.parse(r.text) as { access_token: string; user_id: string; device_id: string };
    return new Client(http, body.access_token, body.user_id, body.device_id);
  }

  /** A new device of the same user (POST /login with the password). */
  async login(): Promise<Client> {
    const r = await this.http.call('POST', `${CLIENT}/login`, undefined, { type: 'm.login.password', identifier: { type: 'm.id.user', user: this.userId }, password: 'bench-password' });
    if (r.status !== 200) throw new Error(`login ${this.userId}: ${r.status} ${r.text}`);
    const body = JSON.parse(r.text) as { access_token: string; user_id: string; device_id: string };
    return new Client(this.http, body.access_token, body.user_id, body.device_id);
  }

  async request(method: string, path: string, body?: unknown): Promise<unknown> {
    const r = await this.http.call(method, `${CLIENT}${path}`, this.token, body);
    if (r.status !== 200) throw new Error(`${method} ${path}: ${r.status} ${r.text}`);
    return JSON.parse(r.text) as unknown;
  }

  async createRoom(extra: Record<string, unknown> = {}): Promise<string> {
    return ((await this.request('POST', '/createRoom', { preset: 'public_chat', ...extra })) as { room_id: string }).room_id;
  }

  async join(roomId: string): Promise<void> {
    await this.request('POST', `/rooms/${encodeURIComponent(roomId)}/join`, {});
  }

  async send(roomId: string, body: string): Promise<string> {
    const p = `/rooms/${encodeURIComponent(roomId)}/send/m.room.message/b${this.deviceId}.${++this.txn}`;
    return ((await this.request('PUT', p, { msgtype: 'm.text', body })) as { event_id: string }).event_id;
  }

  /** GET /sync with these query parameters: the parsed body and its size. */
  async sync(query: Record<string, string>): Promise<{ body: SyncBody; bytes: number }> {
    const p = `${CLIENT}/sync?${new URLSearchParams(query).toString()}`;
    const r = await this.http.call('GET', p, this.token);
    if (r.status !== 200) throw new Error(`GET ${p}: ${r.status} ${r.text.slice(0, 300)}`);
    return { body: JSON.parse(r.text) as SyncBody, bytes: r.bytes };
  }

  /** Polls a one-room /sync until `eventId` is in the room's timeline (syncapi consumes events asynchronously). */
  async waitForEvent(roomId: string, eventId: string, deadlineMs = 120_000): Promise<void> {
    const filter = JSON.stringify({ room: { rooms: [roomId], timeline: { limit: 5 }, state: { lazy_load_members: true } }, presence: { types: [] }, account_data: { types: [] } });
    const until = Date.now() + deadlineMs;
    for (;;) {
      const { body } = await this.sync({ filter });
      if (timelineIds(body, roomId).includes(eventId)) return;
      if (Date.now() > until) throw new Error(`${this.userId}: ${eventId} not in /sync of ${roomId} after ${deadlineMs} ms`);
      await new Promise((res) => setTimeout(res, 50));
    }
  }
}

export function timelineIds(s: SyncBody, roomId: string): string[] {
  return (s.rooms?.join?.[roomId]?.timeline?.events ?? []).map((e) => e.event_id);
}

export function timelineBodies(s: SyncBody, roomId: string): unknown[] {
  return (s.rooms?.join?.[roomId]?.timeline?.events ?? []).map((e) => e.content?.body);
}

/** Epoch milliseconds with sub-millisecond precision, comparable between processes. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}
