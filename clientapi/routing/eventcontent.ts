/**
 * The content of an event a client sends (PUT /send, PUT /state, POST /createRoom), read from
 * the request body with the room version's number rules applied.
 *
 * From room version 6 an event may hold only integers within ±(2^53-1) (rooms/v6 "Canonical
 * JSON"): a float or a bigger integer in the content is answered 400 M_BAD_JSON, as Synapse and
 * Dendrite answer it (Sytest 'Invalid JSON integers', 'Invalid JSON floats'). The check reads
 * the body's text, not the parsed value, because JSON.parse has already turned `1.0` into 1 and
 * `9007199254740993` into 2^53. Room versions 1-5 still take such numbers. A number JSON.parse
 * cannot represent at all (`1e400` reads as Infinity) is refused in every room version: no
 * canonical JSON exists for it, so no event could be signed.
 */
import type { Context } from 'hono';
import { badJson, notJson, readBody } from '../../internal/httputil/index.js';
import { firstNonCanonicalNumber, roomVersion as lookupRoomVersion, type JsonObject, type NonCanonicalNumber, type RoomVersion } from '../../internal/matrix/index.js';
import type { RoomserverInternalAPI } from '../../roomserver/api/index.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Reads a JSON object body whose values become event content (an empty body is `{}`). A number
 * without a finite value is refused here whatever the room; `badNumber` is the first number
 * that only room versions 1-5 take, for the caller to judge once it knows the room version.
 */
export async function readEventJson(c: Context, maxBytes: number): Promise<{ body: JsonObject; badNumber: NonCanonicalNumber | undefined }> {
  const buf = await readBody(c, maxBytes);
  if (buf.length === 0) return { body: {}, badNumber: undefined };
  let text: string;
  let parsed: unknown;
  try {
    text = utf8.decode(buf);
    parsed = JSON.parse(text);
  } catch {
    throw notJson('Content not JSON.');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw badJson('The request body must be a JSON object.');
  const badNumber = firstNonCanonicalNumber(text);
  if (badNumber !== undefined && !badNumber.finite) throw badJson(`The JSON has a number too large to represent: ${badNumber.reason}.`);
  return { body: parsed as JsonObject, badNumber };
}

/** Refuses `badNumber` with 400 M_BAD_JSON when room version `rv` forbids it in events. */
export function checkNumbersForRoomVersion(badNumber: NonCanonicalNumber | undefined, rv: RoomVersion | undefined): void {
  if (badNumber !== undefined && rv?.strictCanonicalJson) throw badJson(`Room version ${rv.id} does not allow this number in an event: ${badNumber.reason}.`);
}

/** Reads the body as the content of an event in `roomId`, refusing numbers the room's version forbids. */
export async function readEventContent(
  c: Context,
  opts: { maxBytes: number; roomId: string; rsAPI: Pick<RoomserverInternalAPI, 'queryLatestEventsAndState'> },
): Promise<JsonObject> {
  const { body, badNumber } = await readEventJson(c, opts.maxBytes);
  if (badNumber !== undefined) {
    // Only now is the room's version worth a query: almost no content has such a number.
    const room = await opts.rsAPI.queryLatestEventsAndState({ room_id: opts.roomId, state_to_fetch: [] });
    checkNumbersForRoomVersion(badNumber, room.room_version === undefined ? undefined : lookupRoomVersion(room.room_version));
  }
  return body;
}
