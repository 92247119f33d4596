/**
 * Shapes shared by the whole protocol library. Auth rules and state resolution work on
 * `EventLike`, so that they need nothing but an event's fields; `event.ts` provides the
 * concrete, validated implementation.
 */
import type { RoomVersion } from './roomversion.js';

export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

/** `{"sha256": "<unpadded base64>"}` */
export type EventHashes = Record<string, string>;
/** server name -> key ID -> unpadded base64 signature */
export type Signatures = Record<string, Record<string, string>>;

/** An event as it travels over federation (the PDU), for every event format. */
export interface PDUJson {
  /** Present in event format v1 only (room versions 1 and 2). */
  event_id?: string;
  /** Absent from the create event in room version 12. */
  room_id?: string;
  sender: string;
  origin?: string;
  origin_server_ts: number;
  type: string;
  state_key?: string;
  content: JsonObject;
  /** v1 format: `[eventId, hashes][]`; later: event IDs. */
  prev_events: Array<string | [string, EventHashes]>;
  auth_events: Array<string | [string, EventHashes]>;
  depth: number;
  hashes: EventHashes;
  signatures: Signatures;
  unsigned?: JsonObject;
  /** Top level until room version 11, which moves it into content. */
  redacts?: string;
  [key: string]: JsonValue | undefined;
}

/** The view of an event that auth rules and state resolution need. */
export interface EventLike {
  readonly eventId: string;
  readonly roomId: string;
  readonly type: string;
  /** undefined for non-state events; "" is a valid state key. */
  readonly stateKey: string | undefined;
  readonly sender: string;
  readonly content: JsonObject;
  readonly prevEventIds: readonly string[];
  readonly authEventIds: readonly string[];
  readonly depth: number;
  readonly originServerTs: number;
  /** The event this redacts (top-level before v11, in content from v11). */
  readonly redacts: string | undefined;
  readonly roomVersion: RoomVersion;
}

/** A (type, state_key) pair encoded as one string: `type + "\u0000" + stateKey`. */
export type StateKeyTuple = string;

export function stateTuple(type: string, stateKey: string): StateKeyTuple {
  return `${type}\u0000${stateKey}`;
}

export function splitStateTuple(tuple: StateKeyTuple): [type: string, stateKey: string] {
  const i = tuple.indexOf('\u0000');
  return [tuple.slice(0, i), tuple.slice(i + 1)];
}

/** Room state: (type, state_key) -> event ID. */
export type StateMap = ReadonlyMap<StateKeyTuple, string>;

/** What the auth rules look up while checking one event: state events by (type, state_key). */
export interface AuthEventProvider {
  get(type: string, stateKey: string): EventLike | undefined;
}

/** Loads events by ID for pure algorithms (state resolution): the caller preloads them. */
export interface EventProvider {
  get(eventId: string): EventLike | undefined;
}

/**
 * The library's one typed error. `code` is stable and machine-readable; callers map it to a
 * Matrix errcode (M_BAD_JSON, M_FORBIDDEN, ...).
 */
export class MatrixProtocolError extends Error {
  constructor(
    readonly code: ProtocolErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'MatrixProtocolError';
  }
}

export type ProtocolErrorCode =
  | 'bad_json'
  | 'not_canonical'
  | 'bad_event'
  | 'too_large'
  | 'bad_signature'
  | 'bad_hash'
  | 'unsupported_room_version'
  | 'auth'
  | 'bad_key'
  | 'bad_request_auth';

/** Raised by the auth rules when an event is not allowed. */
export class AuthError extends MatrixProtocolError {
  constructor(message: string) {
    super('auth', message);
    this.name = 'AuthError';
  }
}
