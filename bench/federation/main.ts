/**
 * bench/federation: our server (a real monolith, embedded SQLite, named `127.0.0.1:<port>`,
 * federation over HTTPS on loopback, deny_networks empty, TLS validation off) against fake
 * remote servers (bench/federation/remote.ts) that sign their keys, requests and events:
 *  - inbound PUT /_matrix/federation/v1/send: a remote user joins a room of ours through
 *    make_join and v2 send_join, then the remote sends transactions of 50 m.room.message PDUs,
 *    each chained on the previous one, one transaction at a time (as a server sends to one
 *    destination): PDUs/s over 2,000 PDUs (after one transaction of warm-up) and p50/p99
 *    transaction latency; and PDUs/s until the room's /messages shows the last PDU (the
 *    consumers of the roomserver's output caught up). Transactions are built and signed before
 *    the clock starts. Also the process's CPU time per 1,000 PDUs (steadier than the rates on a
 *    shared machine) and how busy the event loop was; BENCH_CPU_PROFILE=<file> writes a CPU
 *    profile of the sending window.
 *  - joining a remote room of 1,000 and of 10,000 members: a remote in a child process
 *    (bench/federation/joinremote.ts) holds the room and answers make_join and send_join (v2,
 *    the full state and auth chain) from memory; our user joins with
 *    POST /_matrix/client/v3/join/{roomId}?server_name=<remote>. Wall time of that request,
 *    RSS of this process before and after, and the peak RSS sampled every 100 ms both by a
 *    timer here and by the child from /proc (which a blocked event loop here cannot delay).
 *    A join not done after 3 minutes is reported with its progress (what the remote saw, how
 *    many events our roomserver stored) instead.
 * Run: npm run build && node dist/bench/federation/main.js
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { Session } from 'node:inspector/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import pino from 'pino';
import { Event, formatMatrixKeyPem, generateSigningKey, type JsonObject, type PDUJson } from '../../internal/matrix/index.js';
import { parseConfig } from '../../setup/config/config.js';
import { generateConfigDocument } from '../../setup/config/generate.js';
import { startServer, type RunningServer } from '../../setup/server.js';
import { generateTlsMaterial } from '../../setup/tlscert.js';
import type { JoinParentMessage, JoinRemoteMessage } from './joinremote.js';
import { FakeRemote, remoteEvent, type Destination } from './remote.js';

const enc = encodeURIComponent;
const MB = 1024 * 1024;
const JOIN_GIVE_UP_MS = 3 * 60 * 1000;
const began = performance.now();
/** Progress on stderr, apart from the figures. */
const phase = (what: string) => console.error(`[federation bench +${((performance.now() - began) / 1000).toFixed(1)} s] ${what}`);

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

interface Ours extends Destination {
  server: RunningServer;
  dir: string;
  base: string;
}

async function startOurs(): Promise<Ours> {
  const port = await freePort();
  const name = `127.0.0.1:${port}`;
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-federation-'));
  const doc = generateConfigDocument({ ci: true, dir, serverName: name }) as Record<string, Record<string, unknown>>;
  doc.logging = [{ type: 'std', level: 'warn' }] as unknown as Record<string, unknown>;
  doc.federation_api!.disable_tls_validation = true;
  doc.federation_api!.deny_networks = [];
  const { keyId, seed } = generateSigningKey();
  writeFileSync(path.join(dir, 'matrix_key.pem'), formatMatrixKeyPem(keyId, seed));
  const tls = await generateTlsMaterial({ hosts: ['127.0.0.1', 'localhost'], keySize: 2048 });
  writeFileSync(path.join(dir, 'tls.crt'), tls.certPem);
  writeFileSync(path.join(dir, 'tls.key'), tls.keyPem);
  const server = await startServer({
    cfg: parseConfig(doc, dir),
    // Warnings (refused events, state that could not be stored) go to stderr, apart from the figures.
    logger: pino({ level: 'warn' }, pino.destination(2)),
    httpBind: { host: '127.0.0.1', port: 0 },
    tls: { certFile: path.join(dir, 'tls.crt'), keyFile: path.join(dir, 'tls.key') },
    httpsBind: { host: '127.0.0.1', port },
  });
  return { server, dir, name, port, base: `http://127.0.0.1:${server.http!.address.port}` };
}

/** A client API call; no timeout (a big join may take minutes). */
function client(ours: Ours, method: string, p: string, token: string, body?: unknown): Promise<{ status: number; body: JsonObject }> {
  return new Promise((resolve, reject) => {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const r = httpRequest(
      `${ours.base}/_matrix/client/v3${p}`,
      { method, headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(text !== undefined ? { 'Content-Type': 'application/json' } : {}) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const t = Buffer.concat(chunks).toString('utf8');
          try {
            resolve({ status: res.statusCode ?? 0, body: t ? (JSON.parse(t) as JsonObject) : {} });
          } catch {
            resolve({ status: res.statusCode ?? 0, body: { raw: t } });
          }
        });
        res.on('error', reject);
      },
    );
    r.on('error', reject);
    r.end(text);
  });
}

async function register(ours: Ours, username: string): Promise<string> {
  const r = await client(ours, 'POST', '/register', '', { auth: { type: 'm.login.dummy' }, username, password: 'bench-password' });
  if (r.status !== 200) throw new Error(`register ${username}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body['access_token'] as string;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

// ---------------------------------------------------------------------------------------------
// Inbound /send

async function sendBenches(out: Record<string, number>, txns = 40, perTxn = 50): Promise<void> {
  phase('inbound /send: starting our server');
  const ours = await startOurs();
  const remote = await FakeRemote.start((req) => (req.method === 'PUT' && req.path.startsWith('/_matrix/federation/v1/send/') ? { status: 200, body: { pdus: {} } } : undefined));
  try {
    const alice = await register(ours, 'alice');
    const created = await client(ours, 'POST', '/createRoom', alice, { preset: 'public_chat' });
    if (created.status !== 200) throw new Error(`createRoom: ${created.status} ${JSON.stringify(created.body)}`);
    const roomId = created.body['room_id'] as string;
    const bob = `@bob:${remote.serverName}`;

    // The remote user joins through make_join and v2 send_join.
    const made = await remote.request(ours, 'GET', `/_matrix/federation/v1/make_join/${enc(roomId)}/${enc(bob)}?ver=10&ver=11`);
    if (made.status !== 200) throw new Error(`make_join: ${made.status} ${JSON.stringify(made.body)}`);
    const { room_version: version, event: t } = made.body as { room_version: string; event: JsonObject };
    const join = remoteEvent(remote, version, {
      type: 'm.room.member',
      state_key: bob,
      sender: bob,
      room_id: roomId,
      content: { membership: 'join' },
      prev_events: t['prev_events'] as string[],
      auth_events: t['auth_events'] as string[],
      depth: t['depth'] as number,
    });
    const sent = await remote.request(ours, 'PUT', `/_matrix/federation/v2/send_join/${enc(roomId)}/${enc(join.eventId)}`, join.json as unknown as JsonObject);
    if (sent.status !== 200) throw new Error(`send_join: ${sent.status} ${JSON.stringify(sent.body)}`);
    const state = ((sent.body as { state?: unknown[] }).state ?? []).map((pdu) => Event.fromPDU(pdu as PDUJson, version));
    const stateId = (type: string) => {
      const e = state.find((s) => s.type === type && s.stateKey === '');
      if (!e) throw new Error(`send_join answer has no ${type}`);
      return e.eventId;
    };

    // Messages: auth events are the create event, the power levels and bob's join; each
    // follows the previous one.
    const msgAuth = [stateId('m.room.create'), stateId('m.room.power_levels'), join.eventId];
    const transactions: Array<{ uri: string; body: string; authorization: string; last: string }> = [];
    let prev: Event = join;
    for (let i = 0; i <= txns; i++) {
      const pdus: unknown[] = [];
      for (let j = 0; j < perTxn; j++) {
        prev = remoteEvent(remote, version, {
          type: 'm.room.message',
          sender: bob,
          room_id: roomId,
          content: { msgtype: 'm.text', body: `message ${i}.${j} from the fake remote` },
          prev_events: [prev.eventId],
          auth_events: msgAuth,
          depth: prev.depth + 1,
        });
        pdus.push(prev.json);
      }
      const body = { origin: remote.serverName, origin_server_ts: Date.now(), pdus } as unknown as JsonObject;
      const uri = `/_matrix/federation/v1/send/bench${i}`;
      transactions.push({ uri, body: JSON.stringify(body), authorization: remote.authorization(ours, 'PUT', uri, body), last: prev.eventId });
    }

    phase('inbound /send: transactions built; sending');
    const times: number[] = [];
    let started = 0;
    let cpuAtStart = process.cpuUsage();
    let eluAtStart = performance.eventLoopUtilization();
    const profiler = process.env['BENCH_CPU_PROFILE'] ? await WindowProfiler.start() : undefined;
    for (const [i, tx] of transactions.entries()) {
      if (i === 1) {
        started = performance.now();
        cpuAtStart = process.cpuUsage();
        eluAtStart = performance.eventLoopUtilization();
      }
      const t0 = performance.now();
      const r = await remote.raw(ours, 'PUT', tx.uri, tx.authorization, tx.body);
      if (i > 0) times.push(performance.now() - t0);
      if (r.status !== 200) throw new Error(`send ${tx.uri}: ${r.status} ${JSON.stringify(r.body)}`);
      const results = Object.entries((r.body as { pdus: Record<string, { error?: string }> }).pdus);
      const failed = results.filter(([, v]) => v.error !== undefined);
      if (results.length !== perTxn || failed.length > 0) throw new Error(`send ${tx.uri}: ${results.length} results, ${failed.length} errors, first: ${JSON.stringify(failed[0])}`);
    }
    const elapsed = performance.now() - started;
    const cpuSending = process.cpuUsage(cpuAtStart);
    const eluSending = performance.eventLoopUtilization(eluAtStart);
    // The consumers (syncapi, push, the sender) work behind the roomserver: the rate at which a
    // reader of the room sees the PDUs is the one the server can keep up.
    const lastId = transactions.at(-1)!.last;
    for (;;) {
      const page = await client(ours, 'GET', `/rooms/${enc(roomId)}/messages?dir=b&limit=1`, alice);
      if ((page.body['chunk'] as Array<{ event_id?: string }> | undefined)?.[0]?.event_id === lastId) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    const seenAll = performance.now() - started;
    const cpuAll = process.cpuUsage(cpuAtStart);
    await profiler?.stop(process.env['BENCH_CPU_PROFILE']!);
    const latest = await ours.server.apis.roomserver.queryLatestEventsAndState({ room_id: roomId, state_to_fetch: [] });
    if (latest.latest_event_ids.join() !== transactions.at(-1)!.last) {
      throw new Error(`after the transactions the room's latest events are ${JSON.stringify(latest.latest_event_ids)}, not the last PDU sent`);
    }
    times.sort((a, b) => a - b);
    out[`inbound /send: PDUs/s (${txns * perTxn} PDUs, ${perTxn} per transaction, sequential)`] = Math.round((txns * perTxn) / (elapsed / 1000));
    out['inbound /send: transaction latency p50 ms'] = round(percentile(times, 50));
    out['inbound /send: transaction latency p99 ms'] = round(percentile(times, 99));
    out['inbound /send: PDUs/s until /messages shows the last PDU (syncapi caught up)'] = Math.round((txns * perTxn) / (seenAll / 1000));
    // CPU time is steadier than rates on a shared machine: what the work costs, whoever else runs.
    const cpuMs = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000;
    out['inbound /send: process CPU ms per 1,000 PDUs while sending (all threads)'] = Math.round(cpuMs(cpuSending) / ((txns * perTxn) / 1000));
    out['inbound /send: process CPU ms per 1,000 PDUs until syncapi caught up (all threads)'] = Math.round(cpuMs(cpuAll) / ((txns * perTxn) / 1000));
    out['inbound /send: event loop busy while sending %'] = Math.round(eluSending.utilization * 100);
    if (remote.unhandled.length) console.error(`inbound /send: requests our server made that the remote did not serve: ${[...new Set(remote.unhandled)].join(', ')}`);
  } finally {
    phase('inbound /send: shutting down');
    await remote.close();
    await ours.server.shutdown('bench done');
    rmSync(ours.dir, { recursive: true, force: true });
    phase('inbound /send: done');
  }
}

/**
 * With BENCH_CPU_PROFILE=<file>, a CPU profile of the sending window alone (not the start-up
 * nor the building of the transactions), for Chrome DevTools or any .cpuprofile reader.
 */
class WindowProfiler {
  private constructor(private readonly session: Session) {}

  static async start(): Promise<WindowProfiler> {
    const session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
    return new WindowProfiler(session);
  }

  async stop(file: string): Promise<void> {
    const { profile } = await this.session.post('Profiler.stop');
    writeFileSync(file, JSON.stringify(profile));
    this.session.disconnect();
    console.error(`inbound /send: CPU profile of the sending window written to ${file}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Joining a big remote room

class RemoteChild {
  readonly seen: Array<{ method: string; path: string; at: number }> = [];
  sendJoinAnsweredAt = 0;
  ready!: Extract<JoinRemoteMessage, { kind: 'ready' }>;
  private peakWaiter: ((m: Extract<JoinRemoteMessage, { kind: 'peak' }>) => void) | undefined;

  private constructor(readonly child: ChildProcess) {
    child.on('message', (m: JoinRemoteMessage) => {
      if (m.kind === 'request') this.seen.push(m);
      else if (m.kind === 'send_join_answered') this.sendJoinAnsweredAt = m.at;
      else if (m.kind === 'peak') this.peakWaiter?.(m);
    });
  }

  static async start(members: number): Promise<RemoteChild> {
    const file = fileURLToPath(new URL('./joinremote.js', import.meta.url));
    const child = fork(file, [String(members), String(process.pid)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const rc = new RemoteChild(child);
    rc.ready = await new Promise((resolve, reject) => {
      child.on('message', (m: JoinRemoteMessage) => m.kind === 'ready' && resolve(m));
      child.once('exit', (code) => reject(new Error(`the fake remote exited (${code}) before it was ready`)));
    });
    return rc;
  }

  send(m: JoinParentMessage): void {
    this.child.send(m);
  }

  peak(): Promise<Extract<JoinRemoteMessage, { kind: 'peak' }>> {
    return new Promise((resolve) => {
      this.peakWaiter = resolve;
      this.send({ kind: 'get_peak' });
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.send({ kind: 'stop' });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 5000)))]);
    clearTimeout(timer);
    if (this.child.exitCode === null) this.child.kill();
  }
}

function storedEvents(dir: string): number {
  const db = new Database(path.join(dir, 'dendrite_roomserver.db'), { readonly: true, fileMustExist: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM roomserver_events').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

async function joinBench(members: number, out: Record<string, number>): Promise<void> {
  const label = `join a remote room of ${members.toLocaleString('en')} members`;
  phase(`${label}: starting our server`);
  const ours = await startOurs();
  phase(`${label}: building the remote room`);
  const remote = await RemoteChild.start(members);
  phase(`${label}: joining`);
  let finished = false;
  try {
    const carol = await register(ours, 'carol');
    const { serverName, roomId } = remote.ready;
    out[`${label}: remote's send_join answer MB`] = round(remote.ready.sendJoinBytes / MB);
    await new Promise((r) => setTimeout(r, 500));
    const rssBefore = process.memoryUsage().rss;
    let peak = rssBefore;
    let maxGap = 0;
    let lastTick = performance.now();
    const sampler = setInterval(() => {
      const now = performance.now();
      maxGap = Math.max(maxGap, now - lastTick);
      lastTick = now;
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 100);
    remote.send({ kind: 'reset_peak' });
    const t0 = performance.now();
    const startedAt = Date.now();
    const joining = client(ours, 'POST', `/join/${enc(roomId)}?server_name=${enc(serverName)}`, carol, {}).then((r) => {
      finished = true;
      return r;
    });
    let giveUp: NodeJS.Timeout | undefined;
    const res = await Promise.race([joining, new Promise<undefined>((r) => (giveUp = setTimeout(() => r(undefined), JOIN_GIVE_UP_MS)))]);
    clearTimeout(giveUp);
    const wall = performance.now() - t0;
    clearInterval(sampler);
    peak = Math.max(peak, process.memoryUsage().rss);
    const rssAfter = process.memoryUsage().rss;
    const childPeak = await remote.peak();
    const sentJoinAt = remote.seen.find((s) => s.path.startsWith('/_matrix/federation/v2/send_join/'))?.at;
    if (res === undefined) {
      out[`${label}: NOT DONE after s`] = round(wall / 1000);
      out[`${label}: send_join received by the remote after s`] = sentJoinAt ? round((sentJoinAt - startedAt) / 1000) : -1;
      out[`${label}: send_join answered by the remote after s`] = remote.sendJoinAnsweredAt ? round((remote.sendJoinAnsweredAt - startedAt) / 1000) : -1;
      out[`${label}: events in our roomserver so far`] = storedEvents(ours.dir);
      out[`${label}: RSS growth so far MB`] = round((rssAfter - rssBefore) / MB);
      out[`${label}: peak RSS growth so far MB (sampled here)`] = round((peak - rssBefore) / MB);
      out[`${label}: peak RSS growth so far MB (sampled by the remote)`] = round((childPeak.peakRss - rssBefore) / MB);
      return;
    }
    if (res.status !== 200 || res.body['room_id'] !== roomId) throw new Error(`${label}: ${res.status} ${JSON.stringify(res.body)}`);
    const joined = await client(ours, 'GET', `/rooms/${enc(roomId)}/joined_members`, carol);
    const count = Object.keys((joined.body['joined'] as Record<string, unknown> | undefined) ?? {}).length;
    out[`${label}: wall time s`] = round(wall / 1000, 2);
    if (remote.sendJoinAnsweredAt) {
      out[`${label}: of which until the remote answered send_join s`] = round((remote.sendJoinAnsweredAt - startedAt) / 1000, 2);
    }
    out[`${label}: RSS before MB`] = round(rssBefore / MB);
    out[`${label}: RSS growth MB`] = round((rssAfter - rssBefore) / MB);
    out[`${label}: peak RSS growth MB (sampled here every 100 ms)`] = round((peak - rssBefore) / MB);
    out[`${label}: longest gap between samples here ms`] = Math.round(maxGap);
    out[`${label}: peak RSS growth MB (sampled by the remote every 100 ms)`] = round((childPeak.peakRss - rssBefore) / MB);
    out[`${label}: joined members seen by our server`] = count;
    if (count !== members + 2) console.error(`${label}: joined_members lists ${count} members, expected ${members + 2}`);
    // Besides make_join and send_join, our server is expected to send its join (PUT /send).
    const other = remote.seen.filter((s) => !/\/(make_join|send_join|send)\//.test(s.path));
    if (other.length) console.error(`${label}: other requests the remote saw: ${[...new Set(other.map((s) => `${s.method} ${s.path.replace(/[^/]+$/, '…')}`))].join(', ')}`);
  } finally {
    phase(`${label}: shutting down`);
    await remote.stop();
    if (finished) await ours.server.shutdown('bench done');
    else {
      // The join is still running inside the server; shut down, but do not wait for ever.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([ours.server.shutdown('bench done').catch(() => {}), new Promise((r) => (timer = setTimeout(r, 30_000)))]);
      clearTimeout(timer);
    }
    rmSync(ours.dir, { recursive: true, force: true });
    phase(`${label}: done`);
  }
}

export async function federationBenches(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  await sendBenches(out);
  await joinBench(1_000, out);
  await joinBench(10_000, out);
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  // `send` or `join` alone runs only that part (for profiling: node --cpu-prof ... send).
  const out: Record<string, number> = {};
  if (process.argv[2] === 'send') await sendBenches(out);
  else if (process.argv[2] === 'join') {
    await joinBench(1_000, out);
    await joinBench(10_000, out);
  } else Object.assign(out, await federationBenches());
  for (const [k, v] of Object.entries(out)) console.log(`${k}: ${v}`);
}
