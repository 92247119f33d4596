/**
 * bench/protocol: throughput of the protocol library's hot paths, the ones every federated
 * event goes through: canonical JSON, strict parsing, Ed25519 signing and verification
 * (sequential on the main thread, and batched on the libuv thread pool), and validation of a
 * received PDU (Event.fromPDU + content hash + event ID).
 * Run: npm run build && node dist/bench/protocol/main.js
 */
import { availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';
import {
  Event,
  buildEvent,
  canonicalJson,
  checkEventsHashAndSignatures,
  generateSigningKey,
  parseJson,
  roomVersion,
  signBytes,
  signEvent,
  verifyBatch,
  verifyBytes,
  type EventFields,
  type JsonObject,
  type RoomVersion,
  type SigningKey,
} from '../../internal/matrix/index.js';

const SERVER = 'bench.example.org';

/** Calls `fn` repeatedly for about `ms` (after a warm-up) and returns calls per second. */
function rate(fn: (i: number) => void, ms = 1000): number {
  for (let i = 0; i < 2000; i++) fn(i);
  let n = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let k = 0; k < 200; k++) fn(n++);
    now = performance.now();
  }
  return Math.round((n * 1000) / (now - start));
}

/** As `rate`, for an async batch operation handling `perCall` items per call. */
async function asyncRate(fn: () => Promise<unknown>, perCall: number, ms = 1500): Promise<number> {
  for (let i = 0; i < 3; i++) await fn();
  let n = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    await fn();
    n += perCall;
    now = performance.now();
  }
  return Math.round((n * 1000) / (now - start));
}

function eventId(n: number): string {
  return '$' + Buffer.alloc(32, n).toString('base64url').replace(/=+$/, '');
}

/** A realistic mix: mostly messages, some membership and power-level events. */
function sampleEvents(rv: RoomVersion, key: SigningKey, count: number): Event[] {
  const events: Event[] = [];
  for (let i = 0; i < count; i++) {
    const kind = i % 10;
    const common = {
      sender: `@user${i % 50}:${SERVER}`,
      room_id: `!benchroom:${SERVER}`,
      prev_events: [eventId(i), eventId(i + 1)],
      auth_events: [eventId(1), eventId(2), eventId(3)],
      depth: 1000 + i,
      origin_server_ts: 1_700_000_000_000 + i,
    };
    const fields: EventFields =
      kind === 0
        ? { ...common, type: 'm.room.member', state_key: common.sender, content: { membership: 'join', displayname: `User ${i}`, avatar_url: `mxc://${SERVER}/abcdefghijklmnop${i}` } }
        : kind === 1
          ? {
              ...common,
              type: 'm.room.power_levels',
              state_key: '',
              content: {
                users: Object.fromEntries(Array.from({ length: 20 }, (_, u) => [`@user${u}:${SERVER}`, u === 0 ? 100 : 50])),
                events: { 'm.room.name': 50, 'm.room.power_levels': 100, 'm.room.history_visibility': 100 },
                ban: 50, kick: 50, redact: 50, invite: 0, events_default: 0, state_default: 50, users_default: 0,
              },
            }
          : {
              ...common,
              type: 'm.room.message',
              content: {
                msgtype: 'm.text',
                body: `Message number ${i}: the quick brown fox jumps over the lazy dog. `.repeat(3),
                format: 'org.matrix.custom.html',
                formatted_body: `<p>Message number <b>${i}</b></p>`,
                'm.mentions': {},
              },
            };
    events.push(buildEvent(fields, rv, SERVER, key.keyId, key));
  }
  return events;
}

export async function protocolBenches(): Promise<Record<string, number>> {
  const rv = roomVersion('10') as RoomVersion;
  const key = generateSigningKey();
  const events = sampleEvents(rv, key, 200);
  const jsons = events.map((e) => e.json as JsonObject);
  const texts = jsons.map((j) => JSON.stringify(j));
  const signedTexts = events.map((e) => Buffer.from(e.signedText(), 'utf8'));
  const signatures = signedTexts.map((t) => signBytes(t, key));
  const at = <T>(arr: readonly T[], i: number): T => arr[i % arr.length] as T;

  const figures: Record<string, number> = {};
  figures['average event size (bytes of canonical JSON)'] = Math.round(
    jsons.reduce((sum, j) => sum + Buffer.byteLength(canonicalJson(j)), 0) / jsons.length,
  );
  figures['canonical JSON events/s'] = rate((i) => canonicalJson(at(jsons, i)));
  figures['parseJson strict events/s'] = rate((i) => parseJson(at(texts, i), { strict: true }));
  figures['parseJson lenient events/s'] = rate((i) => parseJson(at(texts, i), { strict: false }));
  figures['sign/s (ed25519, event-sized input)'] = rate((i) => signBytes(at(signedTexts, i), key));
  figures['signEvent/s (content hash + redact + sign)'] = rate((i) => signEvent(at(jsons, i), rv, SERVER, key.keyId, key));
  figures['verify/s sequential'] = rate((i) => {
    if (!verifyBytes(at(signedTexts, i), at(signatures, i), key.publicKey)) throw new Error('verify failed');
  });

  const batch = (size: number) =>
    Array.from({ length: size }, (_, i) => ({ data: at(signedTexts, i), signature: at(signatures, i), publicKey: key.publicKey }));
  const batch50 = batch(50);
  const batch1000 = batch(1000);
  figures['verify/s batched on the thread pool (batches of 50)'] = await asyncRate(() => verifyBatch(batch50), 50);
  figures['verify/s batched on the thread pool (batches of 1000)'] = await asyncRate(() => verifyBatch(batch1000), 1000);

  figures['event validation/s (Event.fromPDU + content hash + event ID)'] = rate((i) => {
    const ev = Event.fromPDU(at(jsons, i), rv);
    if (!ev.contentHashMatches()) throw new Error('hash mismatch');
    void ev.eventId;
  });
  figures['event validation/s from text (parseJson strict + the above)'] = rate((i) => {
    const ev = Event.fromPDU(parseJson(at(texts, i), { strict: true }), rv);
    if (!ev.contentHashMatches()) throw new Error('hash mismatch');
    void ev.eventId;
  });

  // A federation transaction of 50 PDUs: parse, validate, hash, verify signatures in a batch.
  const lookup = () => key.publicKey;
  const txnTexts = texts.slice(0, 50);
  figures['received PDUs/s (text to checked event, transactions of 50)'] = await asyncRate(async () => {
    const evs = txnTexts.map((t) => Event.fromPDU(parseJson(t, { strict: true }), rv));
    const outcomes = await checkEventsHashAndSignatures(evs, lookup);
    if (outcomes.some((o) => o !== 'ok')) throw new Error('check failed');
  }, 50);
  figures['CPU cores'] = availableParallelism();
  figures['UV_THREADPOOL_SIZE'] = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
  return figures;
}

export function printFigures(title: string, figures: Record<string, number>): void {
  console.log(`# ${title}`);
  for (const [k, v] of Object.entries(figures)) console.log(`${k}: ${v}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  printFigures('protocol (room version 10 events)', await protocolBenches());
}
