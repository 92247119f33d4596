/**
 * `Event`: a PDU validated against its room version's event format, with the derived values
 * (event ID, room ID in v12, the canonical texts behind hashes and signatures) computed at
 * most once.
 *
 * What `Event.fromPDU` checks (rooms/vN "Event format", client-server "Size limits"):
 * - the fields of the format, with their types: type, sender, content, origin_server_ts, depth,
 *   hashes (with `sha256`), signatures (server -> key ID -> string), prev_events (≤ 20),
 *   auth_events (≤ 10), optional state_key, unsigned, origin, and top-level `redacts` before v11;
 * - identifier grammar: sender (historical user ID grammar), room_id, event IDs of the room
 *   version's format (v1 `$x:domain` pairs with hashes; v3 standard base64; v4+ URL-safe);
 * - byte limits: 255 for type, state_key, sender, room_id, event_id; 65,536 for the canonical
 *   JSON of the whole PDU, signatures and unsigned included;
 * - canonical JSON: from room version 6 every number is an integer within ±(2^53-1);
 * - room version 12: the create event has no room_id (its room ID is `!` + its reference hash),
 *   every other event has a room_id of that hashed form.
 *
 * What it cannot check alone: that a v12 event's room_id is its room's create event (auth rule 2,
 * checked by the auth rules, which hold the create event), signatures (eventsigning.ts, needs
 * keys) and the content hash (`contentHashMatches`, whose failure means "redact", not "drop").
 */
import {
  canonicalOptionsFor,
  contentHashText,
  eventIdFromReferenceHash,
  hashMatches,
  referenceHashText,
  sha256,
} from './eventhash.js';
import { canonicalJson } from './canonicaljson.js';
import { domainOf, fitsBytes, isValidEventId, isValidRoomId, isValidUserId } from './identifiers.js';
import { redactClientEvent, redactEvent } from './redaction.js';
import { roomVersion as lookupRoomVersion, type RoomVersion } from './roomversion.js';
import {
  MatrixProtocolError,
  type EventHashes,
  type EventLike,
  type JsonObject,
  type PDUJson,
  type Signatures,
} from './types.js';

export const MAX_PDU_BYTES = 65_536;
export const MAX_TYPE_BYTES = 255;
export const MAX_STATE_KEY_BYTES = 255;
export const MAX_PREV_EVENTS = 20;
export const MAX_AUTH_EVENTS = 10;

/** `client`: with room_id (ClientEvent); `sync`: without (ClientEventWithoutRoomID). */
export type ClientEventFormat = 'client' | 'sync';

export interface FromPDUOptions {
  /**
   * Fail unless the event's ID is this one, for events fetched by ID (GET /event/{eventId},
   * missing prev events...). Throws MatrixProtocolError('bad_event') on mismatch.
   */
  expectedEventId?: string;
}

export class Event implements EventLike {
  readonly type: string;
  readonly stateKey: string | undefined;
  readonly sender: string;
  readonly content: JsonObject;
  readonly prevEventIds: readonly string[];
  readonly authEventIds: readonly string[];
  readonly depth: number;
  readonly originServerTs: number;
  readonly redacts: string | undefined;

  #eventId: string | undefined;
  #roomId: string | undefined;
  /** Canonical JSON without unsigned, signatures, hashes: what the content hash covers. */
  #contentText: string | undefined;
  /** Canonical JSON of the redacted event without signatures, unsigned: reference hash input, signed bytes. */
  #signedText: string | undefined;

  private constructor(
    /** The PDU, as received or built. Treat as immutable: derived values are cached. */
    readonly json: PDUJson,
    readonly roomVersion: RoomVersion,
    eventId: string | undefined,
    contentText: string | undefined,
    f: EventFields = extractFields(json, roomVersion),
  ) {
    this.type = f.type;
    this.stateKey = f.stateKey;
    this.sender = f.sender;
    this.content = f.content;
    this.prevEventIds = f.prevEventIds;
    this.authEventIds = f.authEventIds;
    this.depth = f.depth;
    this.originServerTs = f.originServerTs;
    this.redacts = f.redacts;
    this.#eventId = eventId ?? (roomVersion.eventFormat === 'v1' ? (json.event_id as string) : undefined);
    this.#roomId = json.room_id;
    this.#contentText = contentText;
  }

  /**
   * Validates a PDU for a room version and wraps it. Throws MatrixProtocolError: 'bad_event'
   * (format), 'too_large' (size), 'not_canonical' (numbers, from room version 6),
   * 'unsupported_room_version'.
   */
  static fromPDU(json: unknown, version: RoomVersion | string, options?: FromPDUOptions): Event {
    const rv = resolveRoomVersion(version);
    const { pdu, fields } = validatePDUShape(json, rv);
    const contentText = checkSizeAndCanonical(pdu, rv);
    const event = new Event(pdu, rv, undefined, contentText, fields);
    if (options?.expectedEventId !== undefined && event.eventId !== options.expectedEventId) {
      throw new MatrixProtocolError(
        'bad_event',
        `event ID mismatch: expected ${options.expectedEventId}, the event's is ${event.eventId}`,
      );
    }
    return event;
  }

  /**
   * Wraps an event this server already validated and stored, with its known ID: no size,
   * canonical or hash work. Field types are still checked (a bad row fails loudly here rather
   * than later). Throws MatrixProtocolError('bad_event').
   */
  static fromStored(json: PDUJson, version: RoomVersion | string, eventId: string): Event {
    const rv = resolveRoomVersion(version);
    return new Event(json, rv, eventId, undefined);
  }

  get eventId(): string {
    if (this.#eventId === undefined) {
      this.#eventId = eventIdFromReferenceHash(sha256(this.signedText()), this.roomVersion);
    }
    return this.#eventId;
  }

  /** The room ID; for a room version 12 create event, derived from its event ID. */
  get roomId(): string {
    if (this.#roomId === undefined) {
      // Only a v12 create event lacks room_id after validation.
      this.#roomId = '!' + this.eventId.slice(1);
    }
    return this.#roomId;
  }

  /** The server of the sender: the server that must sign the event. */
  get senderDomain(): string {
    return domainOf(this.sender) ?? '';
  }

  get hashes(): EventHashes {
    return this.json.hashes;
  }

  get signatures(): Signatures {
    return this.json.signatures;
  }

  get unsigned(): JsonObject | undefined {
    return this.json.unsigned;
  }

  isState(): boolean {
    return this.stateKey !== undefined;
  }

  /** true for a state event of this type and state key. */
  isStateOf(type: string, stateKey = ''): boolean {
    return this.type === type && this.stateKey === stateKey;
  }

  /** The canonical JSON the content hash covers. */
  contentHashText(): string {
    this.#contentText ??= contentHashText(this.json, this.roomVersion);
    return this.#contentText;
  }

  /** true when `hashes.sha256` is the content hash. A mismatch means: use `redacted()`. */
  contentHashMatches(): boolean {
    return hashMatches(this.json.hashes, this.contentHashText());
  }

  /**
   * The bytes the event's signatures cover and its reference hash is taken of: the canonical
   * JSON of the redacted event without signatures and unsigned.
   */
  signedText(): string {
    this.#signedText ??= referenceHashText(this.json, this.roomVersion);
    return this.#signedText;
  }

  referenceHash(): Buffer {
    return sha256(this.signedText());
  }

  /** For events of format v1: `[event_id, {sha256: reference hash}]`, how later events cite it. */
  reference(): [string, EventHashes] {
    return [this.eventId, { sha256: this.referenceHash().toString('base64').replace(/=+$/, '') }];
  }

  /** This event after redaction, with the same event ID (redaction keeps the reference hash). */
  redacted(): Event {
    const redacted = new Event(redactEvent(this.json, this.roomVersion) as PDUJson, this.roomVersion, this.eventId, undefined);
    redacted.#roomId = this.roomId;
    redacted.#signedText = this.#signedText;
    return redacted;
  }

  /** A copy with a different `unsigned` section (which no hash or signature covers). */
  withUnsigned(unsigned: JsonObject | undefined): Event {
    const json: PDUJson = { ...this.json, unsigned };
    if (unsigned === undefined) delete json.unsigned;
    const copy = new Event(json, this.roomVersion, this.#eventId, this.#contentText);
    copy.#roomId = this.#roomId;
    copy.#signedText = this.#signedText;
    return copy;
  }

  /**
   * The client format of the event (client-server API "Room event format"). `unsigned` is what
   * the server wants the client to see (age, prev_content, transaction_id...); a PDU's own
   * `unsigned` comes from other servers and is not passed on. From room version 11, a
   * redaction's `redacts` (in content) is also copied to the top level, for older clients.
   */
  toClientEvent(format: ClientEventFormat = 'client', unsigned?: JsonObject): JsonObject {
    const out: JsonObject = {
      content: this.content,
      event_id: this.eventId,
      origin_server_ts: this.originServerTs,
      sender: this.sender,
      type: this.type,
    };
    if (format === 'client') out.room_id = this.roomId;
    if (this.stateKey !== undefined) out.state_key = this.stateKey;
    if (this.redacts !== undefined && this.type === 'm.room.redaction') out.redacts = this.redacts;
    if (unsigned !== undefined && Object.keys(unsigned).length > 0) out.unsigned = unsigned;
    return out;
  }

  /** The client format of this event once redacted, with `redacted_because` in unsigned. */
  toRedactedClientEvent(format: ClientEventFormat = 'client', redactedBecause?: JsonObject, unsigned?: JsonObject): JsonObject {
    return redactClientEvent(this.toClientEvent(format, unsigned), this.roomVersion, redactedBecause);
  }
}

function resolveRoomVersion(version: RoomVersion | string): RoomVersion {
  if (typeof version !== 'string') return version;
  const rv = lookupRoomVersion(version);
  if (!rv) throw new MatrixProtocolError('unsupported_room_version', `unsupported room version ${JSON.stringify(version)}`);
  return rv;
}

// ---------------------------------------------------------------------------------------------
// Validation

function bad(message: string): never {
  throw new MatrixProtocolError('bad_event', `event: ${message}`);
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

interface EventFields {
  type: string;
  stateKey: string | undefined;
  sender: string;
  content: JsonObject;
  prevEventIds: string[];
  authEventIds: string[];
  depth: number;
  originServerTs: number;
  redacts: string | undefined;
}

/** Reads the fields every Event exposes, checking only their types (cheap; runs for stored events too). */
function extractFields(json: PDUJson, rv: RoomVersion): EventFields {
  if (!isObject(json)) bad('not a JSON object');
  const { type, sender, content, depth } = json;
  const stateKey = json.state_key;
  const ts = json.origin_server_ts;
  if (typeof type !== 'string') bad('type must be a string');
  if (stateKey !== undefined && typeof stateKey !== 'string') bad('state_key must be a string');
  if (typeof sender !== 'string') bad('sender must be a string');
  if (!isObject(content)) bad('content must be an object');
  if (typeof depth !== 'number' || !Number.isInteger(depth)) bad('depth must be an integer');
  if (typeof ts !== 'number' || !Number.isInteger(ts)) bad('origin_server_ts must be an integer');
  let redacts: string | undefined;
  if (rv.v11EventShape) {
    redacts = type === 'm.room.redaction' && typeof content.redacts === 'string' ? content.redacts : undefined;
  } else if (json.redacts !== undefined) {
    if (typeof json.redacts !== 'string') bad('redacts must be a string');
    redacts = json.redacts;
  }
  return {
    type,
    stateKey,
    sender,
    content,
    prevEventIds: referencedIds(json.prev_events, 'prev_events', rv),
    authEventIds: referencedIds(json.auth_events, 'auth_events', rv),
    depth,
    originServerTs: ts,
    redacts,
  };
}

/** Event IDs of prev_events/auth_events: plain IDs, or `[id, hashes]` pairs in format v1. */
function referencedIds(refs: unknown, field: string, rv: RoomVersion): string[] {
  if (!Array.isArray(refs)) bad(`${field} must be an array`);
  const ids: string[] = new Array<string>(refs.length);
  for (let i = 0; i < refs.length; i++) {
    const ref: unknown = refs[i];
    if (rv.eventFormat === 'v1') {
      if (!Array.isArray(ref) || ref.length !== 2 || typeof ref[0] !== 'string' || !isObject(ref[1])) {
        bad(`${field}[${i}] must be an [event ID, hashes] pair in room version ${rv.id}`);
      }
      ids[i] = ref[0];
    } else {
      if (typeof ref !== 'string') bad(`${field}[${i}] must be an event ID string in room version ${rv.id}`);
      ids[i] = ref;
    }
  }
  return ids;
}

/** Full format validation of a received PDU, short of canonical JSON and size. */
function validatePDUShape(json: unknown, rv: RoomVersion): { pdu: PDUJson; fields: EventFields } {
  if (!isObject(json)) bad('not a JSON object');
  const pdu = json as PDUJson;
  const f = extractFields(pdu, rv);

  if (!fitsBytes(f.type, MAX_TYPE_BYTES)) bad(`type is longer than ${MAX_TYPE_BYTES} bytes`);
  if (f.stateKey !== undefined && !fitsBytes(f.stateKey, MAX_STATE_KEY_BYTES)) {
    bad(`state_key is longer than ${MAX_STATE_KEY_BYTES} bytes`);
  }
  if (!isValidUserId(f.sender)) bad(`sender ${short(f.sender)} is not a valid user ID`);
  if (f.depth < 0) bad('depth must not be negative');
  if (f.depth > Number.MAX_SAFE_INTEGER) bad('depth is too large');

  // room_id
  const roomId = pdu.room_id;
  const isV12Create = rv.roomIdFromCreateEvent && f.type === 'm.room.create' && f.stateKey === '';
  if (isV12Create) {
    // Its room ID is derived from its own hash; one that names a room is malformed.
    if (roomId !== undefined) bad(`room version ${rv.id}: m.room.create must not have a room_id`);
  } else if (typeof roomId !== 'string' || !isValidRoomId(roomId, rv.roomIdFromCreateEvent)) {
    bad(`room_id ${short(roomId)} is not a valid room ID for room version ${rv.id}`);
  }

  // event_id: part of the event in format v1 only (elsewhere an extra key, covered by hashes).
  if (rv.eventFormat === 'v1') {
    if (typeof pdu.event_id !== 'string' || !isValidEventId(pdu.event_id, 'v1')) {
      bad(`event_id ${short(pdu.event_id)} is not a valid event ID for room version ${rv.id}`);
    }
  }

  // prev_events / auth_events
  if (f.prevEventIds.length > MAX_PREV_EVENTS) bad(`more than ${MAX_PREV_EVENTS} prev_events`);
  if (f.authEventIds.length > MAX_AUTH_EVENTS) bad(`more than ${MAX_AUTH_EVENTS} auth_events`);
  for (const id of f.prevEventIds) {
    if (!isValidEventId(id, rv.eventFormat)) bad(`prev_events: ${short(id)} is not a valid event ID`);
  }
  for (const id of f.authEventIds) {
    if (!isValidEventId(id, rv.eventFormat)) bad(`auth_events: ${short(id)} is not a valid event ID`);
  }
  if (f.redacts !== undefined && !rv.v11EventShape && !isValidEventId(f.redacts, rv.eventFormat)) {
    bad(`redacts ${short(f.redacts)} is not a valid event ID`);
  }

  // hashes, signatures, unsigned, origin
  if (!isObject(pdu.hashes) || typeof pdu.hashes.sha256 !== 'string') bad('hashes.sha256 must be a string');
  if (!isObject(pdu.signatures)) bad('signatures must be an object');
  for (const [server, byKey] of Object.entries(pdu.signatures)) {
    if (!isObject(byKey)) bad(`signatures.${short(server)} must be an object`);
    for (const sig of Object.values(byKey)) {
      if (typeof sig !== 'string') bad(`signatures.${short(server)} values must be strings`);
    }
  }
  if (pdu.unsigned !== undefined && !isObject(pdu.unsigned)) bad('unsigned must be an object');
  if (pdu.origin !== undefined && typeof pdu.origin !== 'string') bad('origin must be a string');
  return { pdu, fields: f };
}

const SIZE_EXTRA_KEYS = ['hashes', 'signatures', 'unsigned'] as const;

/**
 * Enforces canonical JSON and the 65,536-byte limit on the canonical JSON of the whole PDU.
 * The whole PDU's canonical text is the content-hash text plus three members, so its size is
 * computed from the parts instead of encoding the event twice. Returns the content-hash text.
 */
function checkSizeAndCanonical(pdu: PDUJson, rv: RoomVersion): string {
  const options = canonicalOptionsFor(rv);
  const base = contentHashText(pdu, rv);
  const parts: string[] = [base];
  let members = base === '{}' ? 0 : 1;
  let extra = 0;
  for (const key of SIZE_EXTRA_KEYS) {
    const value = pdu[key];
    if (value === undefined) continue;
    const text = canonicalJson(value, options);
    parts.push(text);
    // `,"key":` before the value (no comma before the first member).
    extra += key.length + 3 + (members > 0 ? 1 : 0);
    members++;
  }
  let upperBound = extra;
  for (const p of parts) upperBound += p.length * 3;
  if (upperBound > MAX_PDU_BYTES) {
    let bytes = extra;
    for (const p of parts) bytes += Buffer.byteLength(p, 'utf8');
    if (bytes > MAX_PDU_BYTES) {
      throw new MatrixProtocolError('too_large', `event: ${bytes} bytes of canonical JSON, over the ${MAX_PDU_BYTES} limit`);
    }
  }
  return base;
}

function short(v: unknown): string {
  const s = typeof v === 'string' ? v : String(JSON.stringify(v));
  return JSON.stringify(s.length > 80 ? s.slice(0, 80) + '…' : s);
}
