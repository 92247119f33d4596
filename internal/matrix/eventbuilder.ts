/**
 * Building our own events: fill in what the format of the room version wants (event_id in
 * v1-v2, origin before v11, `redacts` at the top level or in content), hash, sign, and
 * validate the result exactly as a received event would be.
 */
import { randomInt } from 'node:crypto';
import { Event } from './event.js';
import { signEvent } from './eventsigning.js';
import { roomVersion as lookupRoomVersion, type RoomVersion } from './roomversion.js';
import type { PrivateKeyInput } from './signing.js';
import { MatrixProtocolError, type EventHashes, type JsonObject } from './types.js';

/** An event reference: an event ID, or (format v1) an `[id, {sha256}]` pair from `Event.reference()`. */
export type EventReferenceInput = string | readonly [string, EventHashes];

export interface EventFields {
  type: string;
  /** Present for state events ("" is a valid state key). */
  state_key?: string;
  sender: string;
  /** Omit for the create event of room version 12, whose room ID derives from it. */
  room_id?: string;
  content: JsonObject;
  prev_events: readonly EventReferenceInput[];
  auth_events: readonly EventReferenceInput[];
  depth: number;
  /** Default: now. */
  origin_server_ts?: number;
  /** For m.room.redaction: placed at the top level before room version 11, in content from 11. */
  redacts?: string;
  unsigned?: JsonObject;
}

const ID_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

function randomLocalpart(length: number): string {
  let s = '';
  for (let i = 0; i < length; i++) s += ID_CHARS[randomInt(ID_CHARS.length)];
  return s;
}

/**
 * Builds, hashes and signs an event of `serverName`, and returns it validated. Throws
 * MatrixProtocolError when the result is not a valid event (bad IDs, too large...).
 */
export function buildEvent(
  fields: EventFields,
  version: RoomVersion | string,
  serverName: string,
  keyId: string,
  key: PrivateKeyInput,
): Event {
  const rv = typeof version === 'string' ? lookupRoomVersion(version) : version;
  if (!rv) throw new MatrixProtocolError('unsupported_room_version', `unsupported room version ${JSON.stringify(version)}`);

  const pdu: JsonObject = {
    type: fields.type,
    sender: fields.sender,
    content: fields.content,
    prev_events: fields.prev_events.map((r) => reference(r, rv)),
    auth_events: fields.auth_events.map((r) => reference(r, rv)),
    depth: fields.depth,
    origin_server_ts: fields.origin_server_ts ?? Date.now(),
    hashes: {},
    signatures: {},
  };
  if (fields.room_id !== undefined) pdu.room_id = fields.room_id;
  if (fields.state_key !== undefined) pdu.state_key = fields.state_key;
  if (fields.unsigned !== undefined) pdu.unsigned = fields.unsigned;
  // `origin` is protected by redaction only before v11 (MSC2176); later versions drop it.
  if (!rv.v11EventShape) pdu.origin = serverName;
  if (fields.redacts !== undefined) {
    if (rv.v11EventShape) pdu.content = { ...fields.content, redacts: fields.redacts };
    else pdu.redacts = fields.redacts;
  }
  if (rv.eventFormat === 'v1') pdu.event_id = `$${randomLocalpart(18)}:${serverName}`;

  return Event.fromPDU(signEvent(pdu, rv, serverName, keyId, key), rv);
}

/**
 * Format v1 wants `[id, {sha256: reference hash}]`; given a bare ID there, the hash is left
 * empty (`{}`): receivers ignore these hashes (Synapse and Dendrite read only the ID; Dendrite
 * itself sends garbage there).
 * Later formats want the bare ID.
 */
function reference(ref: EventReferenceInput, rv: RoomVersion): string | [string, JsonObject] {
  if (rv.eventFormat === 'v1') return typeof ref === 'string' ? [ref, {}] : [ref[0], { ...ref[1] }];
  return typeof ref === 'string' ? ref : ref[0];
}
