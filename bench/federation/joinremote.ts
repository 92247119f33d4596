/**
 * Child process of bench/federation/main.ts: a fake remote server holding a room of N members
 * (create, the creator's join, power levels, public join rules, then N joins, all signed by
 * this server), answering make_join and v2 send_join from memory. Running apart from the
 * benchmarked server keeps this room out of that process' memory; it also samples that
 * process' RSS from /proc every 100 ms, which its own busy event loop cannot delay.
 *
 * argv: <members> <pid to sample>. Messages to the parent: JoinRemoteMessage.
 */
import { readFileSync } from 'node:fs';
import type { Event, JsonObject } from '../../internal/matrix/index.js';
import { FakeRemote, remoteEvent, type RemoteRequest } from './remote.js';

export type JoinRemoteMessage =
  | { kind: 'ready'; serverName: string; roomId: string; buildMs: number; sendJoinBytes: number }
  | { kind: 'request'; method: string; path: string; at: number }
  | { kind: 'send_join_answered'; at: number }
  | { kind: 'peak'; peakRss: number; samples: number };

export type JoinParentMessage = { kind: 'reset_peak' } | { kind: 'get_peak' } | { kind: 'stop' };

const VERSION = '10';
const members = Number(process.argv[2] ?? '1000');
const watchedPid = Number(process.argv[3] ?? process.ppid);
const post = (m: JoinRemoteMessage) => process.send?.(m);

/** Filled in once the room is built, before the parent is told the remote is ready. */
const room = { id: '', sendJoinBody: '' } as { id: string; sendJoinBody: string; create: Event; power: Event; rules: Event; last: Event };

const handler = (req: RemoteRequest) => {
  post({ kind: 'request', method: req.method, path: req.path, at: Date.now() });
  const parts = req.path.split('/').map(decodeURIComponent);
  if (req.method === 'GET' && req.path.startsWith('/_matrix/federation/v1/make_join/')) {
    const [roomArg, userId] = parts.slice(-2);
    if (roomArg !== room.id) return { status: 404, body: { errcode: 'M_NOT_FOUND', error: 'unknown room' } };
    const event: JsonObject = {
      type: 'm.room.member',
      room_id: room.id,
      sender: userId!,
      state_key: userId!,
      content: { membership: 'join' },
      prev_events: [room.last.eventId],
      auth_events: [room.create.eventId, room.rules.eventId, room.power.eventId],
      depth: room.last.depth + 1,
      origin_server_ts: Date.now(),
    };
    return { status: 200, body: { room_version: VERSION, event } };
  }
  if (req.method === 'PUT' && req.path.startsWith('/_matrix/federation/v2/send_join/')) {
    setImmediate(() => post({ kind: 'send_join_answered', at: Date.now() }));
    return { status: 200, body: room.sendJoinBody };
  }
  if (req.method === 'PUT' && req.path.startsWith('/_matrix/federation/v1/send/')) return { status: 200, body: { pdus: {} } };
  return undefined;
};

const remote = await FakeRemote.start(handler);
const t0 = performance.now();
const name = remote.serverName;
const creator = `@creator:${name}`;
const roomId = `!bench${Math.random().toString(36).slice(2, 12)}:${name}`;
const ev = (fields: Parameters<typeof remoteEvent>[2]) => remoteEvent(remote, VERSION, fields);
const create = ev({ type: 'm.room.create', state_key: '', sender: creator, room_id: roomId, content: { creator, room_version: VERSION }, prev_events: [], auth_events: [], depth: 1 });
const creatorJoin = ev({ type: 'm.room.member', state_key: creator, sender: creator, room_id: roomId, content: { membership: 'join' }, prev_events: [create.eventId], auth_events: [create.eventId], depth: 2 });
const power = ev({
  type: 'm.room.power_levels',
  state_key: '',
  sender: creator,
  room_id: roomId,
  content: { users: { [creator]: 100 }, users_default: 0, events_default: 0, state_default: 50, ban: 50, kick: 50, redact: 50, invite: 0 },
  prev_events: [creatorJoin.eventId],
  auth_events: [create.eventId, creatorJoin.eventId],
  depth: 3,
});
const rules = ev({
  type: 'm.room.join_rules',
  state_key: '',
  sender: creator,
  room_id: roomId,
  content: { join_rule: 'public' },
  prev_events: [power.eventId],
  auth_events: [create.eventId, creatorJoin.eventId, power.eventId],
  depth: 4,
});
const state: unknown[] = [create.json, creatorJoin.json, power.json, rules.json];
let last = rules;
for (let i = 0; i < members; i++) {
  const user = `@member${i}:${name}`;
  last = ev({
    type: 'm.room.member',
    state_key: user,
    sender: user,
    room_id: roomId,
    content: { membership: 'join', displayname: `Member ${i}` },
    prev_events: [last.eventId],
    auth_events: [create.eventId, rules.eventId, power.eventId],
    depth: last.depth + 1,
  });
  state.push(last.json);
}
const sendJoinBody = JSON.stringify({
  origin: name,
  state,
  auth_chain: [create.json, creatorJoin.json, power.json, rules.json],
  members_omitted: false,
  servers_in_room: [name],
});
Object.assign(room, { id: roomId, sendJoinBody, create, power, rules, last });
post({ kind: 'ready', serverName: name, roomId, buildMs: Math.round(performance.now() - t0), sendJoinBytes: Buffer.byteLength(sendJoinBody) });

let peakRss = 0;
let samples = 0;
const sample = () => {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${watchedPid}/status`, 'utf8'));
    if (m) {
      peakRss = Math.max(peakRss, Number(m[1]) * 1024);
      samples++;
    }
  } catch {
    // the process is gone or /proc is unavailable
  }
};
const timer = setInterval(sample, 100);

process.on('message', (m: JoinParentMessage) => {
  if (m.kind === 'reset_peak') {
    peakRss = 0;
    samples = 0;
    sample();
  } else if (m.kind === 'get_peak') {
    sample();
    post({ kind: 'peak', peakRss, samples });
  } else {
    clearInterval(timer);
    void remote.close().then(() => process.exit(0));
  }
});
