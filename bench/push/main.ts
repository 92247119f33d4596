/**
 * bench/push: push rule evaluations/s (the predefined rules, compiled once per user, for a
 * plain message: the walk reaches the underride rules, the common worst case), and the added
 * cost per event of push in a 1,000-member room whose members are all local: 1,000
 * evaluations plus storing 1,000 notifications and their counts (SQLite, embedded default).
 * Run: npm run build && node dist/bench/push/main.js
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pino from 'pino';
import type { PDUJson } from '../../internal/matrix/index.js';
import { compileRuleset, defaultRuleset, type EvaluationContext } from '../../internal/pushrules/index.js';
import { openDatabase, runMigrations } from '../../internal/sqlutil/index.js';
import type { HeaderedEvent } from '../../roomserver/api/index.js';
import { PushService } from '../../userapi/internal/push.js';
import { PushGatewayClient } from '../../userapi/internal/pushgateway.js';
import { userapiMigrations } from '../../userapi/storage/migrations.js';
import { PushStore } from '../../userapi/storage/push.js';
import type { UserapiDatabase } from '../../userapi/storage/tables.js';

const ROOM = '!bench:bench.local';
const pdu = (i: number, extra: Partial<PDUJson> = {}): PDUJson =>
  ({
    type: 'm.room.message',
    room_id: ROOM,
    sender: '@sender:bench.local',
    content: { msgtype: 'm.text', body: `message number ${i} about nothing in particular` },
    prev_events: [],
    auth_events: [],
    depth: i + 10,
    origin_server_ts: 1_700_000_000_000 + i,
    hashes: { sha256: 'x' },
    signatures: {},
    ...extra,
  }) as unknown as PDUJson;

function evaluationsPerSecond(): number {
  const rules = compileRuleset(defaultRuleset('@user:bench.local'));
  const ctx: EvaluationContext = { memberCount: () => 1000, displayName: () => 'User Name', senderMayNotify: () => false };
  const event = pdu(1) as unknown as Record<string, unknown>;
  const n = 300_000;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) rules.evaluate(event, ctx);
  return Math.round(n / ((performance.now() - t0) / 1000));
}

async function roomCost(members: number, events: number): Promise<{ perEventMs: number; evaluationsPerSecond: number }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-push-'));
  const db = openDatabase<UserapiDatabase>(`file:${path.join(dir, 'push.db')}`);
  await runMigrations(db.db as never, db.dialect, 'userapi', userapiMigrations);
  const memberList = Array.from({ length: members }, (_, i) => {
    const user_id = `@u${i}:bench.local`;
    return { user_id, membership: 'join', event: { room_version: '10', pdu: pdu(0, { type: 'm.room.member', state_key: user_id, sender: user_id, content: { membership: 'join', displayname: `User ${i}` } }) } as HeaderedEvent };
  });
  const gateway = new PushGatewayClient({ disableTlsValidation: false, log: pino({ level: 'silent' }), onRejected: async () => {} });
  const push = new PushService({
    serverName: 'bench.local',
    store: new PushStore(db.db),
    rsAPI: {
      queryMembershipsForRoom: async () => ({ room_exists: true, members: memberList }),
      queryLatestEventsAndState: async () => ({ room_exists: true, latest_event_ids: [], depth: 0, state_events: [] }),
      queryEventsById: async () => ({ events: [] }),
    },
    pushRulesContent: async () => undefined,
    publish: async () => {},
    gateway,
    log: pino({ level: 'silent' }),
  });
  const out = (i: number) => ({ type: 'new_room_event' as const, new_room_event: { event: { room_version: '10', pdu: pdu(i) }, adds_state_event_ids: [], removes_state_event_ids: [], latest_event_ids: [] } });
  await push.onRoomEvent(out(0)); // warm: room read, rules compiled
  const t0 = performance.now();
  for (let i = 1; i <= events; i++) await push.onRoomEvent(out(i));
  const ms = (performance.now() - t0) / events;
  gateway.close();
  await db.close();
  return { perEventMs: Math.round(ms * 100) / 100, evaluationsPerSecond: Math.round((members * 1000) / ms) };
}

export async function pushBenches(): Promise<Record<string, number>> {
  const room = await roomCost(1000, 50);
  return {
    'push rule evaluations/s (predefined rules, message event)': evaluationsPerSecond(),
    'added cost per event, 1,000 local members, ms (evaluate + store 1,000 notifications)': room.perEventMs,
    'effective evaluations/s in that room (including storage)': room.evaluationsPerSecond,
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  for (const [k, v] of Object.entries(await pushBenches())) console.log(`${k}: ${v}`);
}
