/**
 * The redaction algorithm of each room version (rooms/v1, v6, v8, v9, v11 "Redactions";
 * v12 inherits v11), for PDUs and for events in the client format.
 *
 * The result is a new top-level object, but kept values (prev_events, hashes, kept content
 * values...) are shared with the input, not copied: event JSON is treated as immutable
 * throughout this library, and redaction runs for every event ID and signature check.
 */
import type { RoomVersion } from './roomversion.js';
import type { JsonObject, JsonValue } from './types.js';

/** Top-level keys every room version keeps. */
const KEPT_KEYS = [
  'event_id',
  'type',
  'room_id',
  'sender',
  'state_key',
  'content',
  'hashes',
  'signatures',
  'depth',
  'prev_events',
  'auth_events',
  'origin_server_ts',
] as const;
/** Kept until room version 11 (MSC2176 dropped them). */
const KEPT_KEYS_BEFORE_V11 = ['prev_state', 'origin', 'membership'] as const;

/** Any event JSON: a JsonObject or a PDUJson (whose optional fields may be undefined). */
export type EventJsonInput = { readonly [key: string]: JsonValue | undefined };

const POWER_LEVELS_KEPT = ['ban', 'events', 'events_default', 'kick', 'redact', 'state_default', 'users', 'users_default'];

/** The content keys a version keeps for `type`; 'all' keeps the whole content. */
export function keptContentKeys(type: string, rv: RoomVersion): readonly string[] | 'all' {
  switch (type) {
    case 'm.room.member': {
      const keys = ['membership'];
      if (rv.redactionKeepsAuthorisedVia) keys.push('join_authorised_via_users_server');
      return keys; // third_party_invite.signed (v11+) is handled in redactContent
    }
    case 'm.room.create':
      return rv.v11EventShape ? 'all' : ['creator'];
    case 'm.room.join_rules':
      return rv.redactionKeepsJoinRulesAllow ? ['join_rule', 'allow'] : ['join_rule'];
    case 'm.room.power_levels':
      return rv.v11EventShape ? [...POWER_LEVELS_KEPT, 'invite'] : POWER_LEVELS_KEPT;
    case 'm.room.aliases':
      return rv.redactionKeepsAliases ? ['aliases'] : [];
    case 'm.room.history_visibility':
      return ['history_visibility'];
    case 'm.room.redaction':
      return rv.v11EventShape ? ['redacts'] : [];
    default:
      return [];
  }
}

/** The redacted form of an event's content. */
export function redactContent(type: string, content: JsonValue | undefined, rv: RoomVersion): JsonObject {
  if (typeof content !== 'object' || content === null || Array.isArray(content)) return {};
  const kept = keptContentKeys(type, rv);
  if (kept === 'all') return content;
  const out: JsonObject = {};
  for (const key of kept) {
    const value = content[key];
    if (value !== undefined) out[key] = value;
  }
  if (type === 'm.room.member' && rv.v11EventShape) {
    // v11 (MSC3821): keep `signed` of a third-party invite. As Synapse does, an object
    // `third_party_invite` stays (possibly empty) even when it has no `signed`.
    const invite = content.third_party_invite;
    if (typeof invite === 'object' && invite !== null && !Array.isArray(invite)) {
      out.third_party_invite = invite.signed === undefined ? {} : { signed: invite.signed };
    }
  }
  return out;
}

/**
 * Redacts a PDU: keeps the top-level keys of the room version and the protected content. The
 * `unsigned` section goes too (hashes and signatures never cover it). In room version 12 the
 * create event has no room_id; one that carries it anyway loses it here, as in Synapse.
 */
export function redactEvent(pdu: EventJsonInput, rv: RoomVersion): JsonObject {
  const type = typeof pdu.type === 'string' ? pdu.type : '';
  const out: JsonObject = {};
  for (const key of KEPT_KEYS) {
    const value = pdu[key];
    if (value !== undefined) out[key] = value;
  }
  if (!rv.v11EventShape) {
    for (const key of KEPT_KEYS_BEFORE_V11) {
      const value = pdu[key];
      if (value !== undefined) out[key] = value;
    }
  }
  if (rv.roomIdFromCreateEvent && type === 'm.room.create') delete out.room_id;
  out.content = redactContent(type, pdu.content, rv);
  return out;
}

/** Keys of a client event's `unsigned` that describe the server's view, not the redacted content. */
const CLIENT_UNSIGNED_KEPT = ['age', 'redacted_because', 'membership', 'replaces_state'] as const;

/**
 * Redacts an event in the client format (ClientEvent): the same key rules, but `unsigned`
 * keeps what the server computed (age, membership, replaces_state) and gains
 * `redacted_because`, as the spec asks servers to serve it. From room version 11, a redaction
 * keeps `redacts` in content, and its top-level copy for older clients stays too.
 */
export function redactClientEvent(event: EventJsonInput, rv: RoomVersion, redactedBecause?: JsonObject): JsonObject {
  const out = redactEvent(event, rv);
  const type = typeof event.type === 'string' ? event.type : '';
  if (rv.v11EventShape && type === 'm.room.redaction' && typeof out.content === 'object') {
    const redacts = (out.content as JsonObject).redacts;
    if (typeof redacts === 'string') out.redacts = redacts;
  }
  const unsigned: JsonObject = {};
  const old = event.unsigned;
  if (typeof old === 'object' && old !== null && !Array.isArray(old)) {
    for (const key of CLIENT_UNSIGNED_KEPT) {
      const value = old[key];
      if (value !== undefined) unsigned[key] = value;
    }
  }
  if (redactedBecause) unsigned.redacted_because = redactedBecause;
  if (Object.keys(unsigned).length > 0) out.unsigned = unsigned;
  // Client events carry no federation fields; redactEvent copied only what was there.
  return out;
}
