/**
 * bench/syncapi: /sync over HTTP on a real monolith (embedded SQLite, in-process bus, CI
 * defaults: open registration, no rate limits, presence on). Each phase gets a fresh server in
 * this process; clients talk to it over loopback through keep-alive node:http agents.
 *
 *  1. wake: BENCH_WAKE_POLLERS users (4) long-poll /sync (timeout 30 s, lazy-loading filter)
 *     in a room; another user sends BENCH_WAKE_SENDS messages (250) one after another. Before
 *     each send the bench waits until every long-poll is in flight at the HTTP server (it counts
 *     /sync requests from the server's 'request' events) and 5 ms more. Figures: from the PUT's
 *     HTTP 200, and from its start, until each long-poll returns with that message.
 *  2. idle: BENCH_IDLE_CLIENTS devices (1,000) of users with BENCH_IDLE_DEVICES_PER_USER
 *     devices each (10; the extra ones from /login), all in one room, run by a child process
 *     (bench/syncapi/pollers.ts) so that this process's memory and CPU are the server's.
 *     Memory per waiting request: server heapUsed and RSS after forced GC with every device
 *     waiting in /sync?since=…&timeout=30000, minus the same with every device having synced
 *     once and idling on its open keep-alive connection, divided by the devices. Then each
 *     device re-polls with its new next_batch while messages go into the room:
 *       - paced: BENCH_IDLE_MESSAGES messages (5), each once every device waits again;
 *         syncs/s = devices / (PUT start until the last device's response);
 *       - burst: BENCH_IDLE_BURST PUTs (5) at once, then one more to mark the end;
 *         syncs/s = responses carrying messages / (first PUT until every device has the end).
 *  3. initial: a user in BENCH_SYNC_ROOMS rooms (100) with BENCH_SYNC_EVENTS messages each
 *     (1,000; plus ~10 state events per room), from 5 senders, with BENCH_SYNC_CONCURRENCY
 *     PUTs (32) in flight spread over the rooms (the roomserver orders each room's events but
 *     works on rooms in parallel). At the full size the setup takes minutes (~200-450 sends/s
 *     on 2 cores). Then BENCH_SYNC_SAMPLES (10) initial syncs with the lazy-loading filter
 *     {"room":{"state":{"lazy_load_members":true},"timeline":{"limit":20}}}: latency and bytes;
 *     incremental /sync with nothing new (since=next_batch, timeout=0) under autocannon
 *     (8 connections); /messages?dir=b&limit=50 in one of the rooms.
 * BENCH_SYNC_PHASES (wake,idle,initial) picks phases; BENCH_SYNC_PRESENCE=off turns presence
 * off. Syncapi consumes room events asynchronously, so setups poll /sync until the last event
 * sent is visible. Progress goes to stderr; each phase prints what its figures mean first.
 * Run: npm run bench -- syncapi  (or: npm run build && node dist/bench/syncapi/main.js)
 */
import { fork, type ChildProcess } from 'node:child_process';
import type { Server } from 'node:http';
import { fileURLToPath, pathToFileURL } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import autocannon from 'autocannon';
import { type ConfigDocument, envInt, percentile, round2, withBenchServer } from '../common.js';
import { CLIENT, Client, Http, nowMs, timelineBodies, timelineIds, type SyncBody } from './client.js';
import type { PollerCommand, PollerReport, PollerStats } from './pollers.js';

/** The filter the issue quotes: lazy-loaded members, 20 timeline events per room. */
const LAZY_FILTER = JSON.stringify({ room: { state: { lazy_load_members: true }, timeline: { limit: 20 } } });


const sleep = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));

function progress(text: string): void {
  process.stderr.write(`  [syncapi] ${text}\n`);
}

interface Running {
  base: string;
  requests: SyncRequests;
}

async function withServer<T>(fn: (r: Running) => Promise<T>): Promise<T> {
  // Presence on, as in the CI config, unless BENCH_SYNC_PRESENCE=off: a room-mate's presence change wakes every sync.
  const configure = (doc: ConfigDocument): void => {
    if (process.env['BENCH_SYNC_PRESENCE'] === 'off') doc.global!.presence = { enable_inbound: false, enable_outbound: false };
  };
  return withBenchServer('syncapi', { configure }, (base, server) => fn({ base, requests: new SyncRequests(server.http!.server) }));
}

/**
 * /sync requests the HTTP server holds, seen from its 'request' events: how the bench knows
 * that long-polls have reached the server before it sends what should wake them.
 */
class SyncRequests {
  inFlight = 0;
  lastFinish = performance.now();

  constructor(server: Server) {
    server.on('request', (req, res) => {
      if (!req.url?.startsWith(`${CLIENT}/sync`)) return;
      this.inFlight++;
      res.once('close', () => {
        this.inFlight--;
        this.lastFinish = performance.now();
      });
    });
  }

  async until(ok: () => boolean, what: string, deadlineMs = 60_000): Promise<void> {
    const until = performance.now() + deadlineMs;
    while (!ok()) {
      if (performance.now() > until) throw new Error(`${what}: not after ${deadlineMs} ms (${this.inFlight} /sync in flight)`);
      await sleep(1);
    }
  }
}

/** Nearest-rank percentile of an ascending array. */


function summarize(out: Record<string, number>, prefix: string, values: number[]): void {
  const sorted = [...values].sort((a, b) => a - b);
  out[`${prefix}_p50_ms`] = round2(percentile(sorted, 50));
  out[`${prefix}_p99_ms`] = round2(percentile(sorted, 99));
}

/** Runs `fn` on `items` with at most `limit` calls in flight. */
async function pool<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      for (let i = next++; i < items.length; i = next++) await fn(items[i]!, i);
    }),
  );
}

/** GC on demand: node's --expose-gc when given, else the same switched on at run time. */
function gcFunction(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed) return exposed;
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

/** heapUsed and RSS after full GCs, the median of five samples. */
async function memory(gc: () => void): Promise<{ heapUsed: number; rss: number }> {
  const heap: number[] = [];
  const rss: number[] = [];
  for (let i = 0; i < 5; i++) {
    gc();
    gc();
    const m = process.memoryUsage();
    heap.push(m.heapUsed);
    rss.push(m.rss);
    await sleep(100);
  }
  const med = (a: number[]): number => a.sort((x, y) => x - y)[2]!;
  return { heapUsed: med(heap), rss: med(rss) };
}

/** Phase 1: wake-up latency of long-polls, over many sequential sends. */
async function wakeUp({ base, requests }: Running, out: Record<string, number>): Promise<void> {
  const sends = envInt('BENCH_WAKE_SENDS', 250);
  const nPollers = envInt('BENCH_WAKE_POLLERS', 4);
  const http = new Http(base, nPollers + 16);
  try {
    const sender = await Client.register(http, 'sender');
    const roomId = await sender.createRoom();
    const pollers: Client[] = [];
    for (let i = 0; i < nPollers; i++) {
      const c = await Client.register(http, `poller${i}`);
      await c.join(roomId);
      pollers.push(c);
    }
    const settle = await sender.send(roomId, 'settle');
    const since = new Map<Client, string>();
    for (const c of pollers) {
      await c.waitForEvent(roomId, settle);
      since.set(c, (await c.sync({ filter: LAZY_FILTER, timeout: '0' })).body.next_batch);
    }
    // Drain what arrived after those tokens (the others' presence) so that the first round starts quiet.
    for (const c of pollers) since.set(c, (await c.sync({ since: since.get(c)!, filter: LAZY_FILTER, timeout: '0' })).body.next_batch);

    const afterOk: number[] = [];
    const fromStart: number[] = [];
    const sendMs: number[] = [];
    let early = 0;
    let before200 = 0;
    for (let round = 0; round < sends; round++) {
      const marker = `wake ${round}`;
      const polls = pollers.map(async (c) => {
        // Until the round's message shows up; a return for anything else (presence) counts as early.
        for (;;) {
          const { body } = await c.sync({ since: since.get(c)!, timeout: '30000', filter: LAZY_FILTER });
          const done = performance.now();
          since.set(c, body.next_batch);
          // Matched by body: a poll may return before the send's own answer does.
          if (timelineBodies(body, roomId).includes(marker)) return done;
          early++;
        }
      });
      await requests.until(() => requests.inFlight >= nPollers, 'wake-up: long-polls in flight');
      // From "request arrived" to "waiting in the notifier" is auth plus a look for news: a few ms.
      await sleep(5);
      const start = performance.now();
      await sender.send(roomId, marker);
      const ok = performance.now();
      sendMs.push(ok - start);
      for (const done of await Promise.all(polls)) {
        afterOk.push(done - ok);
        fromStart.push(done - start);
        if (done < ok) before200++;
      }
    }
    out['wakeup_sends'] = sends;
    out['wakeup_longpollers'] = nPollers;
    out['wakeup_samples'] = afterOk.length;
    summarize(out, 'wakeup_after_send_200', afterOk);
    out['wakeup_after_send_200_max_ms'] = round2(Math.max(...afterOk));
    summarize(out, 'wakeup_from_send_start', fromStart);
    summarize(out, 'wakeup_send_put', sendMs);
    out['wakeup_returned_before_send_200'] = before200;
    out['wakeup_early_returns'] = early;
  } finally {
    http.close();
  }
}

/** The child process running the idle long-pollers, with a way to await its reports. */
class Pollers {
  private readonly child: ChildProcess;
  private readonly waiters: Array<(r: PollerReport) => boolean> = [];
  private readonly exited: Promise<void>;

  constructor() {
    this.child = fork(fileURLToPath(new URL('./pollers.js', import.meta.url)), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.exited = new Promise((res) => this.child.once('exit', () => res()));
    this.child.on('message', (r: PollerReport) => {
      if (r.type === 'error') progress(`poller error: ${r.message}`);
      const i = this.waiters.findIndex((w) => w(r));
      if (i >= 0) this.waiters.splice(i, 1);
    });
  }

  send(cmd: PollerCommand): void {
    this.child.send(cmd);
  }

  /** The next report that `pick` accepts. */
  next<T>(pick: (r: PollerReport) => T | undefined, what: string, deadlineMs = 300_000): Promise<T> {
    const p = new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`pollers: no ${what} after ${deadlineMs} ms`)), deadlineMs);
      this.waiters.push((r) => {
        const v = pick(r);
        if (v === undefined) return false;
        clearTimeout(timer);
        resolve(v);
        return true;
      });
    });
    // Awaited later, maybe after the deadline: the rejection must not count as unhandled meanwhile.
    p.catch(() => undefined);
    return p;
  }

  stats(): Promise<PollerStats> {
    const p = this.next((r) => (r.type === 'stats' ? r : undefined), 'stats');
    this.send({ cmd: 'stats' });
    return p;
  }

  /** Epoch times at which each device received `marker`. */
  all(marker: string): Promise<number[]> {
    return this.next((r) => (r.type === 'all' && r.marker === marker ? r.times : undefined), `delivery of "${marker}" to every device`);
  }

  async stop(): Promise<PollerStats> {
    const p = this.next((r) => (r.type === 'stats' ? r : undefined), 'final stats');
    this.send({ cmd: 'stop' });
    const s = await p;
    await this.exited;
    return s;
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill();
  }
}

/** Phase 2: 1,000 idle long-polls: memory per waiting request, then how fast a room message reaches them all. */
async function idleLongPolls({ base, requests }: Running, out: Record<string, number>): Promise<void> {
  const nClients = envInt('BENCH_IDLE_CLIENTS', 1000);
  const perUser = envInt('BENCH_IDLE_DEVICES_PER_USER', 10);
  const paced = envInt('BENCH_IDLE_MESSAGES', 5);
  const burst = envInt('BENCH_IDLE_BURST', 5);
  const gc = gcFunction();
  const http = new Http(base, 32);
  const pollers = new Pollers();
  try {
    const t0 = performance.now();
    const announcer = await Client.register(http, 'announcer');
    const roomId = await announcer.createRoom();
    const users: Client[] = [];
    await pool(
      Array.from({ length: Math.ceil(nClients / perUser) }, (_, i) => i),
      8,
      async (i) => {
        const u = await Client.register(http, `idle${i}`);
        await u.join(roomId);
        users[i] = u;
      },
    );
    const devices: Client[] = [];
    await pool(users, 8, async (u) => {
      devices.push(u);
      for (let d = 1; d < perUser && devices.length < nClients; d++) devices.push(await u.login());
    });
    devices.length = nClients;
    const last = await announcer.send(roomId, 'everyone is in');
    await users[users.length - 1]!.waitForEvent(roomId, last);
    out['idle_devices'] = nClients;
    out['idle_users'] = users.length;
    out['idle_setup_s'] = round2((performance.now() - t0) / 1000);
    progress(`idle: ${users.length} users, ${nClients} devices in one room (${out['idle_setup_s']} s)`);

    const ready = pollers.next((r) => (r.type === 'ready' ? r : undefined), 'initial syncs');
    pollers.send({ cmd: 'init', base, roomId, filter: LAZY_FILTER, clients: devices.map((d) => ({ token: d.token, userId: d.userId, deviceId: d.deviceId })) });
    out['idle_initial_syncs_all_at_once_s'] = round2((await ready).initialSyncMs / 1000);
    await sleep(500);
    const before = await memory(gc);

    pollers.send({ cmd: 'poll' });
    // All waiting, and none returned for a second: the first syncs' presence updates have woken who they wake.
    await requests.until(() => requests.inFlight === nClients && performance.now() - requests.lastFinish > 1000, 'idle: every device waiting', 120_000);
    const after = await memory(gc);
    const waiting = requests.inFlight;
    out['idle_longpolls_waiting'] = waiting;
    out['idle_heap_used_mb_before'] = round2(before.heapUsed / 2 ** 20);
    out['idle_heap_used_mb_waiting'] = round2(after.heapUsed / 2 ** 20);
    out['idle_heap_bytes_per_waiting_request'] = Math.round((after.heapUsed - before.heapUsed) / waiting);
    out['idle_rss_mb_before'] = round2(before.rss / 2 ** 20);
    out['idle_rss_mb_waiting'] = round2(after.rss / 2 ** 20);
    out['idle_rss_bytes_per_waiting_request'] = Math.round((after.rss - before.rss) / waiting);
    progress(`idle: ${waiting} long-polls waiting; paced fan-out of ${paced} messages`);

    // Paced: one message at a time, once every device waits again. Timed from the PUT's start:
    // its 200 comes back only after most of the fan-out (the woken syncs share the event loop with it).
    const lastDevice: number[] = [];
    const perDevice: number[] = [];
    const putMs: number[] = [];
    let woken = 0;
    let windowMs = 0;
    let allResponses = 0;
    for (let i = 0; i < paced; i++) {
      await requests.until(() => requests.inFlight === nClients, 'idle: every device waiting again');
      await sleep(20);
      const marker = `fanout ${i}`;
      const delivered = pollers.all(marker);
      const before = (await pollers.stats()).responses;
      const start = nowMs();
      await announcer.send(roomId, marker);
      putMs.push(nowMs() - start);
      const times = await delivered;
      const lastAt = Math.max(...times) - start;
      lastDevice.push(lastAt);
      for (const t of times) perDevice.push(t - start);
      woken += times.length;
      windowMs += lastAt;
      allResponses += (await pollers.stats()).responses - before;
    }
    out['fanout_paced_messages'] = paced;
    out['fanout_paced_syncs_per_s'] = Math.round((woken / windowMs) * 1000);
    // Counting also the responses in those windows that other news (presence) woke.
    out['fanout_paced_all_responses_per_s'] = Math.round((allResponses / windowMs) * 1000);
    summarize(out, 'fanout_paced_from_put_start_per_device', perDevice);
    summarize(out, 'fanout_paced_from_put_start_last_device', lastDevice);
    summarize(out, 'fanout_paced_put', putMs);

    // Burst: every PUT at once while the devices keep re-polling, then one more to mark the end.
    progress(`idle: burst of ${burst} messages`);
    await requests.until(() => requests.inFlight === nClients, 'idle: every device waiting before the burst');
    const s0 = await pollers.stats();
    const endDelivered = pollers.all('burst end');
    const start = nowMs();
    await Promise.all(Array.from({ length: burst }, (_, k) => announcer.send(roomId, `burst ${k}`)));
    await announcer.send(roomId, 'burst end');
    const end = Math.max(...(await endDelivered));
    const s1 = await pollers.stats();
    const responses = s1.withMessages - s0.withMessages;
    const messages = s1.messages - s0.messages;
    out['fanout_burst_messages'] = burst + 1;
    out['fanout_burst_s'] = round2((end - start) / 1000);
    out['fanout_burst_syncs_per_s'] = Math.round((responses / (end - start)) * 1000);
    out['fanout_burst_message_deliveries_per_s'] = Math.round((messages / (end - start)) * 1000);
    out['fanout_burst_messages_per_sync'] = round2(messages / responses);
    out['fanout_burst_undelivered'] = nClients * (burst + 1) - messages;
    const final = await pollers.stop();
    out['idle_responses_without_messages'] = final.responses - final.withMessages;
    out['idle_responses_presence_only'] = final.presenceOnly;
    out['idle_client_errors'] = final.errors;
  } finally {
    pollers.kill();
    http.close();
  }
}

/** Phase 3: a user in many rooms full of history: lazy-loading initial sync, empty incremental sync, /messages. */
async function bigAccount({ base }: Running, out: Record<string, number>, seconds: number): Promise<void> {
  const nRooms = envInt('BENCH_SYNC_ROOMS', 100);
  const perRoom = envInt('BENCH_SYNC_EVENTS', 1000);
  const samples = envInt('BENCH_SYNC_SAMPLES', 10);
  const concurrency = envInt('BENCH_SYNC_CONCURRENCY', 32);
  const http = new Http(base, concurrency + 16);
  try {
    const t0 = performance.now();
    const syncer = await Client.register(http, 'syncer');
    const senders: Client[] = [];
    for (let i = 0; i < 5; i++) senders.push(await Client.register(http, `sender${i}`));
    const rooms: string[] = [];
    await pool(
      Array.from({ length: nRooms }, (_, i) => i),
      concurrency,
      async (i) => {
        const roomId = await senders[0]!.createRoom();
        for (const c of [syncer, ...senders.slice(1)]) await c.join(roomId);
        rooms[i] = roomId;
      },
    );
    progress(`initial: ${nRooms} rooms created (${round2((performance.now() - t0) / 1000)} s); sending ${nRooms * perRoom} messages`);

    // Message k of every room before message k+1 of any: the PUTs in flight are in different rooms.
    const fill = nRooms * (perRoom - 1);
    const tFill = performance.now();
    let done = 0;
    await pool(
      Array.from({ length: fill }, (_, j) => j),
      concurrency,
      async (j) => {
        const k = Math.floor(j / nRooms);
        await senders[k % senders.length]!.send(rooms[j % nRooms]!, `message ${k} of room ${j % nRooms}`);
        if (++done % 10_000 === 0) progress(`initial: ${done} sent, ${Math.round(done / ((performance.now() - tFill) / 1000))}/s`);
      },
    );
    const lastIds: string[] = [];
    await pool(rooms, concurrency, async (roomId, i) => {
      lastIds[i] = await senders[(perRoom - 1) % senders.length]!.send(roomId, `last message of room ${i}`);
    });
    const sendSeconds = (performance.now() - tFill) / 1000;
    // Syncapi catches up asynchronously: wait until every room's newest event is visible.
    for (;;) {
      const { body } = await syncer.sync({ filter: LAZY_FILTER, timeout: '0' });
      if (rooms.every((r, i) => timelineIds(body, r).at(-1) === lastIds[i])) break;
      await sleep(500);
    }
    out['initial_rooms'] = nRooms;
    out['initial_messages_per_room'] = perRoom;
    out['initial_setup_s'] = round2((performance.now() - t0) / 1000);
    out['initial_setup_sends_per_s'] = Math.round((nRooms * perRoom) / sendSeconds);
    progress(`initial: setup done in ${out['initial_setup_s']} s; ${samples} initial syncs`);

    const times: number[] = [];
    let bytes = 0;
    let first: SyncBody | undefined;
    for (let i = 0; i < samples; i++) {
      const s = performance.now();
      const r = await syncer.sync({ filter: LAZY_FILTER, timeout: '0' });
      times.push(performance.now() - s);
      bytes = r.bytes;
      first ??= r.body;
    }
    const joined = Object.values(first!.rooms?.join ?? {});
    if (joined.length !== nRooms) throw new Error(`initial /sync returned ${joined.length} joined rooms, not ${nRooms}`);
    for (const room of joined) {
      if (room.timeline?.events?.length !== 20 || room.timeline.limited !== true) throw new Error(`initial /sync: a timeline of ${room.timeline?.events?.length} events, limited ${room.timeline?.limited} (want 20, true)`);
    }
    const members = joined.reduce((n, r) => n + (r.state?.events ?? []).filter((e) => e.type === 'm.room.member').length, 0);
    out['initial_sync_lazy_samples'] = samples;
    summarize(out, 'initial_sync_lazy', times);
    out['initial_sync_lazy_bytes'] = bytes;
    out['initial_sync_lazy_member_events_per_room'] = round2(members / nRooms);

    // Incremental: nothing happens after next_batch, so every response is empty.
    const since = (await syncer.sync({ filter: LAZY_FILTER, timeout: '0' })).body.next_batch;
    const check = await syncer.sync({ since, timeout: '0' });
    if (Object.keys(check.body.rooms?.join ?? {}).length !== 0) throw new Error(`incremental /sync is not empty: ${JSON.stringify(check.body).slice(0, 300)}`);
    const r = await autocannon({
      url: `${base}${CLIENT}/sync?${new URLSearchParams({ since, timeout: '0' }).toString()}`,
      headers: { Authorization: `Bearer ${syncer.token}` },
      connections: 8,
      duration: seconds,
      workers: 1,
    });
    if (r.non2xx > 0 || r.errors > 0) throw new Error(`incremental /sync: ${r.non2xx} non-2xx, ${r.errors} errors`);
    out['incremental_sync_empty_requests_per_s'] = Math.round(r.requests.average);
    out['incremental_sync_empty_p50_ms'] = r.latency.p50;
    out['incremental_sync_empty_p99_ms'] = r.latency.p99;

    const p = `/rooms/${encodeURIComponent(rooms[0]!)}/messages?dir=b&limit=50`;
    const mtimes: number[] = [];
    for (let i = 0; i < 50; i++) {
      const s = performance.now();
      const chunk = ((await syncer.request('GET', p)) as { chunk: Array<{ event_id: string }> }).chunk;
      mtimes.push(performance.now() - s);
      if (chunk.length !== 50 || chunk[0]!.event_id !== lastIds[0]) throw new Error(`/messages returned ${chunk.length} events, newest ${chunk[0]?.event_id} (want 50, ${lastIds[0]})`);
    }
    summarize(out, 'messages_backwards_50', mtimes);
  } finally {
    http.close();
  }
}

/** What the figures of each phase mean, printed before them. */
const LEGEND: Record<string, string[]> = {
  wake: [
    'wakeup_after_send_200: from the HTTP 200 of PUT /send to a long-polling /sync of another user returning with that message, one sample per send and poller (negative: the sync came first)',
  ],
  idle: [
    'idle_*_bytes_per_waiting_request: server-process heapUsed / RSS after GC with every device waiting in /sync, minus the same with every device idle on its open keep-alive connection, / devices (RSS is coarse)',
    'fanout_paced_syncs_per_s: /sync responses per second when one message wakes every waiting device: devices / (PUT start to the last device\'s response), over all paced messages',
    'fanout_burst_syncs_per_s: /sync responses carrying messages per second, all burst PUTs at once while every device re-polls: responses / (first PUT to the last device having the last message)',
  ],
  initial: ['initial_sync_lazy: initial /sync with the filter {"room":{"state":{"lazy_load_members":true},"timeline":{"limit":20}}}; with few samples p99 is their maximum'],
};

export async function syncapiBenches(seconds = 5): Promise<Record<string, number>> {
  const phases = (process.env['BENCH_SYNC_PHASES'] ?? 'wake,idle,initial').split(',').map((s) => s.trim());
  for (const p of phases) if (!['wake', 'idle', 'initial'].includes(p)) throw new Error(`BENCH_SYNC_PHASES: unknown phase "${p}" (known: wake, idle, initial)`);
  const out: Record<string, number> = {};
  if (phases.includes('wake')) await withServer((r) => wakeUp(r, out));
  if (phases.includes('idle')) await withServer((r) => idleLongPolls(r, out));
  if (phases.includes('initial')) await withServer((r) => bigAccount(r, out, seconds));
  for (const p of phases) for (const line of LEGEND[p] ?? []) console.log(`(${line})`);
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const [k, v] of Object.entries(await syncapiBenches())) console.log(`${k}: ${v}`);
}
