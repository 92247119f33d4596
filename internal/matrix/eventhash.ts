/**
 * Event hashes and IDs (server-server API "Signing Events", "Calculating the reference hash",
 * "Calculating the content hash"; room versions' "Event IDs"):
 *
 * - content hash: SHA-256 of the canonical JSON of the event without `unsigned`, `signatures`
 *   and `hashes`; stored as `hashes.sha256`, it covers what redaction removes.
 * - reference hash: SHA-256 of the canonical JSON of the *redacted* event without `signatures`
 *   and `unsigned`. These are also exactly the bytes the event's signatures cover.
 * - event ID: given in the event (format v1), else `$` + reference hash in standard (v2) or
 *   URL-safe (v3) unpadded base64.
 * - room ID (v12, MSC4291): `!` + the create event's reference hash, URL-safe.
 */
import { hash as oneShotHash } from 'node:crypto';
import { decodeBase64, encodeBase64, encodeBase64Url } from './base64.js';
import { canonicalJson, type CanonicalJsonOptions } from './canonicaljson.js';
import { redactEvent, type EventJsonInput } from './redaction.js';
import type { RoomVersion } from './roomversion.js';
import { MatrixProtocolError, type JsonObject } from './types.js';

const STRICT: CanonicalJsonOptions = { allowOutOfRangeIntegers: false };
const RELAXED: CanonicalJsonOptions = { allowOutOfRangeIntegers: true, allowFloats: true };

/**
 * Canonical JSON rules for a room version's events: strict from v6 (rooms/v6 "Canonical JSON":
 * integers within ±(2^53-1) only, so an event with a float or a bigger integer is invalid);
 * before, out-of-range integers and floats are tolerated (rooms/v1 "Canonical JSON": servers
 * must not enforce the rules). This is the one place that decides it: Event.fromPDU, hashes and
 * signatures all take their options from here.
 */
export function canonicalOptionsFor(rv: RoomVersion): CanonicalJsonOptions {
  return rv.strictCanonicalJson ? STRICT : RELAXED;
}

/** SHA-256 of a string (as UTF-8) or bytes. The one-shot crypto.hash skips createHash's object. */
export function sha256(data: string | Uint8Array): Buffer {
  return oneShotHash('sha256', data, 'buffer');
}

/** The canonical JSON the content hash covers. */
export function contentHashText(pdu: EventJsonInput, rv: RoomVersion): string {
  const rest: Record<string, unknown> = { ...pdu };
  delete rest.unsigned;
  delete rest.signatures;
  delete rest.hashes;
  return canonicalJson(rest, canonicalOptionsFor(rv));
}

export function computeContentHash(pdu: EventJsonInput, rv: RoomVersion): Buffer {
  return sha256(contentHashText(pdu, rv));
}

/**
 * The canonical JSON of the redacted event without signatures and unsigned: the input of the
 * reference hash, and the bytes every signature on the event covers.
 */
export function referenceHashText(pdu: EventJsonInput, rv: RoomVersion): string {
  const redacted = redactEvent(pdu, rv);
  delete redacted.signatures;
  delete redacted.unsigned;
  return canonicalJson(redacted, canonicalOptionsFor(rv));
}

export function computeReferenceHash(pdu: EventJsonInput, rv: RoomVersion): Buffer {
  return sha256(referenceHashText(pdu, rv));
}

/** `$` + the reference hash in the room version's alphabet. Not for event format v1. */
export function eventIdFromReferenceHash(hash: Uint8Array, rv: RoomVersion): string {
  switch (rv.eventFormat) {
    case 'v1':
      throw new MatrixProtocolError('bad_event', `room version ${rv.id}: event IDs are not derived from hashes`);
    case 'v2':
      return '$' + encodeBase64(hash);
    case 'v3':
      return '$' + encodeBase64Url(hash);
  }
}

/**
 * The event ID of a PDU: its `event_id` in format v1 (room versions 1-2), else derived from
 * the reference hash. Throws MatrixProtocolError('bad_event') for a v1 event without one.
 */
export function computeEventId(pdu: EventJsonInput, rv: RoomVersion): string {
  if (rv.eventFormat === 'v1') {
    if (typeof pdu.event_id !== 'string') {
      throw new MatrixProtocolError('bad_event', `room version ${rv.id}: event has no event_id`);
    }
    return pdu.event_id;
  }
  return eventIdFromReferenceHash(computeReferenceHash(pdu, rv), rv);
}

/** Room version 12: the room ID a create event with this event ID creates (`$` becomes `!`). */
export function roomIdFromCreateEventId(createEventId: string): string {
  if (createEventId[0] !== '$') {
    throw new MatrixProtocolError('bad_event', `not an event ID: ${JSON.stringify(createEventId)}`);
  }
  return '!' + createEventId.slice(1);
}

/** Room version 12: the room ID of a create event's room. */
export function computeRoomIdOfCreateEvent(createPdu: EventJsonInput, rv: RoomVersion): string {
  if (!rv.roomIdFromCreateEvent) {
    throw new MatrixProtocolError('bad_event', `room version ${rv.id}: room IDs are not derived from create events`);
  }
  return roomIdFromCreateEventId(computeEventId(createPdu, rv));
}

/** A copy of the PDU with `hashes.sha256` set to its content hash (other hashes kept). */
export function addContentHash(pdu: EventJsonInput, rv: RoomVersion): JsonObject {
  const hash = encodeBase64(computeContentHash(pdu, rv));
  const old = pdu.hashes;
  const hashes: JsonObject = typeof old === 'object' && old !== null && !Array.isArray(old) ? { ...old } : {};
  hashes.sha256 = hash;
  return { ...pdu, hashes };
}

/** true when `hashes.sha256` is present, decodes, and equals the content hash. */
export function contentHashMatches(pdu: EventJsonInput, rv: RoomVersion): boolean {
  return hashMatches(pdu.hashes, contentHashText(pdu, rv));
}

/** Compares the `hashes` field of an event with the SHA-256 of its content-hash text. */
export function hashMatches(hashes: unknown, text: string): boolean {
  if (typeof hashes !== 'object' || hashes === null) return false;
  const expected = (hashes as Record<string, unknown>).sha256;
  if (typeof expected !== 'string') return false;
  let given: Buffer;
  try {
    given = decodeBase64(expected);
  } catch {
    return false;
  }
  return given.equals(sha256(text));
}
