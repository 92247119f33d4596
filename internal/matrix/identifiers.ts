/**
 * Identifier grammar (spec appendices, "Identifier Grammar"): server names, user IDs, room IDs
 * and event IDs, with the forms each room version uses.
 *
 * Events carry identifiers minted by many servers over many years, so validation of received
 * events follows the *historical* user ID grammar (any code points but `:` and NUL, even an
 * empty localpart); `isValidUserId(id, { strict: true })` is the grammar for new accounts.
 */
import type { EventFormat } from './roomversion.js';

/** Identifiers of every kind, sigil and domain included, are limited to 255 bytes of UTF-8. */
export const MAX_ID_BYTES = 255;

// hostname = IPv4address / "[" IPv6address "]" / dns-name; IPv4 literals fit the dns-name set.
const SERVER_NAME = /^(?:\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9.-]{1,255})(?::[0-9]{1,5})?$/;
/**
 * Historical localparts: any code points except `:` and NUL. In a `u` regex the surrogate
 * range matches only lone surrogates (pairs are read as one astral code point), which the spec
 * excludes as "non-surrogate code points" only.
 */
const HISTORICAL_LOCALPART = /^[^:\u0000\ud800-\udfff]*$/u;
const STRICT_USER_LOCALPART = /^[a-z0-9._=\-/+]+$/;
const EVENT_ID_V2 = /^\$[A-Za-z0-9+/]{43}$/;
const EVENT_ID_V3 = /^\$[A-Za-z0-9_-]{43}$/;
const HASHED_ROOM_ID = /^![A-Za-z0-9_-]{43}$/;

/** UTF-8 length at most `max`, without encoding in the common case. */
export function fitsBytes(s: string, max: number): boolean {
  // A UTF-16 code unit never needs more than 3 bytes of UTF-8.
  return s.length * 3 <= max || Buffer.byteLength(s, 'utf8') <= max;
}

export function isValidServerName(name: string): boolean {
  return typeof name === 'string' && SERVER_NAME.test(name);
}

/**
 * Splits `<sigil><localpart>:<server name>` at the first colon, as the grammar requires
 * (localparts contain no colon). undefined when the shape or the server name is wrong.
 */
function splitDomainId(id: string, sigil: string): { localpart: string; domain: string } | undefined {
  if (typeof id !== 'string' || id[0] !== sigil || !fitsBytes(id, MAX_ID_BYTES)) return undefined;
  const colon = id.indexOf(':');
  if (colon < 0) return undefined;
  const localpart = id.slice(1, colon);
  const domain = id.slice(colon + 1);
  if (!HISTORICAL_LOCALPART.test(localpart) || !isValidServerName(domain)) return undefined;
  return { localpart, domain };
}

export interface UserIdOptions {
  /** The current grammar (a-z, 0-9, `._=-/+`, non-empty), for IDs we create. Default: historical. */
  strict?: boolean;
}

export function isValidUserId(id: string, options?: UserIdOptions): boolean {
  const parts = splitDomainId(id, '@');
  if (!parts) return false;
  return options?.strict ? STRICT_USER_LOCALPART.test(parts.localpart) : true;
}

/**
 * Room IDs as events of `roomIdFromCreateEvent` versions (12) carry them: `!` + the create
 * event's URL-safe reference hash. Other versions: `!localpart:domain`.
 */
export function isValidRoomId(id: string, hashed: boolean): boolean {
  if (hashed) return typeof id === 'string' && HASHED_ROOM_ID.test(id);
  return splitDomainId(id, '!') !== undefined;
}

/** Room IDs in any format, as clients and APIs may present them. */
export function isRoomIdOfAnyFormat(id: string): boolean {
  return isValidRoomId(id, true) || isValidRoomId(id, false);
}

/**
 * Event IDs per event format: v1 (room versions 1-2) `$opaque:domain`; v2 (room version 3)
 * `$` + 43 characters of standard base64; v3 (4+) `$` + 43 characters of URL-safe base64.
 */
export function isValidEventId(id: string, format: EventFormat): boolean {
  if (typeof id !== 'string') return false;
  switch (format) {
    case 'v1':
      return splitDomainId(id, '$') !== undefined;
    case 'v2':
      return EVENT_ID_V2.test(id);
    case 'v3':
      return EVENT_ID_V3.test(id);
  }
}

/** The server name of `@user:server`, `!room:server`, `$event:server` or `#alias:server`. */
export function domainOf(id: string): string | undefined {
  const colon = id.indexOf(':');
  return colon < 0 ? undefined : id.slice(colon + 1);
}
