/**
 * Redacting an event: PUT /rooms/{roomId}/redact/{eventId}/{txnId}, idempotent per device, room
 * and transaction ID. The roomserver builds the m.room.redaction (with `redacts` at the top
 * level before room version 11, in `content` from 11 on) and applies it.
 *
 * The power to redact another user's event is checked here, not left to the roomserver: from
 * room version 3 on the auth rules accept any redaction a member may send, and "Handling
 * redactions" applies it when its sender is on the same server as the redacted event's sender,
 * which every local user is. The Client-Server API asks more of a local user: redacting
 * someone else's event needs the room's `redact` level (spec, "Redactions").
 */
import type { Logger } from 'pino';
import type { Context, Hono } from 'hono';
import { MatrixError, badJson, forbidden, invalidParam, jsonResponse, notFound, readJsonObject } from '../../internal/httputil/index.js';
import { powerLevelsOf, userPowerLevel } from '../../internal/matrix/auth/index.js';
import { Event, MAX_ID_BYTES, fitsBytes, isRoomIdOfAnyFormat, isValidEventId, type JsonObject } from '../../internal/matrix/index.js';
import type { HeaderedEvent, RoomserverInternalAPI } from '../../roomserver/api/index.js';
import type { ClientUserAPI } from '../../userapi/api/index.js';
import type { SyncInternalAPI } from '../../syncapi/api/index.js';
import { requireDevice } from '../auth/device.js';
import { clientRoute } from './paths.js';
import { eventIdOfTransaction } from './transactions.js';

const MAX_BODY = 65_536;
const TXN_TTL_MS = 30 * 60_000;
const TXN_LIMIT = 100_000;

/** An event ID in any of the three formats (room versions 1-2, 3, 4+). */
export function isEventIdOfAnyFormat(id: string): boolean {
  return fitsBytes(id, MAX_ID_BYTES) && (isValidEventId(id, 'v1') || isValidEventId(id, 'v2') || isValidEventId(id, 'v3'));
}

export function addRedactRoute(client: Hono, userAPI: ClientUserAPI, rsAPI: RoomserverInternalAPI, syncAPI?: Pick<SyncInternalAPI, 'queryEventIdForTransaction'>, log?: Logger): void {
  /**
   * device + room + transaction ID -> the redaction it produced. A retry that arrives while the
   * first request is still being processed waits for the same promise. This process's memory;
   * syncapi answers for the transactions before a restart.
   */
  const txns = new Map<string, { eventId: Promise<string>; ts: number }>();
  const remembered = (key: string): Promise<string> | undefined => {
    const seen = txns.get(key);
    return seen && Date.now() - seen.ts < TXN_TTL_MS ? seen.eventId : undefined;
  };
  const remember = (key: string, eventId: Promise<string>): void => {
    if (txns.size >= TXN_LIMIT) txns.delete(txns.keys().next().value!);
    txns.set(key, { eventId, ts: Date.now() });
  };

  const redact = async (userId: string, roomId: string, eventId: string, content: JsonObject, txn?: { device_id: string; transaction_id: string }): Promise<string> => {
    const { room_exists, state_events } = await rsAPI.queryLatestEventsAndState({
      room_id: roomId,
      state_to_fetch: [
        { type: 'm.room.create', state_key: '' },
        { type: 'm.room.power_levels', state_key: '' },
        { type: 'm.room.member', state_key: userId },
      ],
    });
    const byType = new Map(state_events.map((e) => [e.pdu.type, e]));
    const member = byType.get('m.room.member')?.pdu.content as JsonObject | undefined;
    if (!room_exists || member?.['membership'] !== 'join') throw forbidden('You are not in the room');

    const [target] = (await rsAPI.queryEventsById({ event_ids: [eventId] })).events;
    const targetEvent = target && !target.rejected ? Event.fromPDU(target.pdu, target.room_version) : undefined;
    if (!targetEvent) throw notFound('Event not found');
    // An event of another room cannot be redacted from this one (Sytest and Synapse expect 400).
    if (targetEvent.roomId !== roomId) throw invalidParam('The event is not in this room');

    if (targetEvent.sender !== userId) {
      const asEvent = (e: HeaderedEvent | undefined): Event | undefined => (e ? Event.fromPDU(e.pdu, e.room_version) : undefined);
      const create = asEvent(byType.get('m.room.create'));
      const levels = powerLevelsOf(asEvent(byType.get('m.room.power_levels')), create);
      if (userPowerLevel(userId, levels, create) < levels.redact) throw forbidden("You don't have the power level to redact other users' events");
    }

    const res = await rsAPI.performSendEvent({ user_id: userId, room_id: roomId, type: 'm.room.redaction', content, redacts: eventId, ...(txn ? { transaction_id: txn } : {}) });
    if (res.error === 'forbidden') throw forbidden(res.message);
    if (res.error === 'too_large') throw new MatrixError(413, 'M_TOO_LARGE', res.message);
    if (res.error !== undefined) throw new MatrixError(400, 'M_UNKNOWN', res.message);
    return res.event_id;
  };

  // The older form without a transaction ID (not idempotent), which Synapse and Sytest still use.
  /** The redaction's content: the body's reason, if any. */
  const reasonContent = async (c: Context): Promise<JsonObject> => {
    const body = await readJsonObject(c, { maxBytes: MAX_BODY, allowEmpty: true });
    if (body['reason'] === undefined) return {};
    if (typeof body['reason'] !== 'string') throw badJson('reason must be a string');
    return { reason: body['reason'] };
  };

  clientRoute(client, 'post', '/rooms/:roomId/redact/:eventId', async (c: Context) => {
    const me = await requireDevice(c, userAPI, { allowGuests: true });
    const roomId = c.req.param('roomId') ?? '';
    const eventId = c.req.param('eventId') ?? '';
    if (!isRoomIdOfAnyFormat(roomId)) throw invalidParam(`${roomId} is not a room ID`);
    if (!isEventIdOfAnyFormat(eventId)) throw invalidParam(`${eventId} is not an event ID`);
    return jsonResponse({ event_id: await redact(me.userId, roomId, eventId, await reasonContent(c)) });
  });

  clientRoute(client, 'put', '/rooms/:roomId/redact/:eventId/:txnId', async (c: Context) => {
    const me = await requireDevice(c, userAPI, { allowGuests: true });
    const roomId = c.req.param('roomId') ?? '';
    const eventId = c.req.param('eventId') ?? '';
    const txnId = c.req.param('txnId') ?? '';
    if (!isRoomIdOfAnyFormat(roomId)) throw invalidParam(`${roomId} is not a room ID`);
    if (!isEventIdOfAnyFormat(eventId)) throw invalidParam(`${eventId} is not an event ID`);

    const key = `${me.deviceId}\n${roomId}\n${txnId}`;
    const seen = remembered(key);
    if (seen) return jsonResponse({ event_id: await seen });
    // Before anything about the request is checked again: a retry is answered as the first try was.
    const known = await eventIdOfTransaction(syncAPI, { roomId, userId: me.userId, deviceId: me.deviceId, txnId, type: 'm.room.redaction' }, log);
    if (known !== undefined) {
      remember(key, Promise.resolve(known));
      return jsonResponse({ event_id: known });
    }

    const content = await reasonContent(c);
    // A retry may have started the redaction while this one waited for syncapi or the body.
    const started = remembered(key);
    if (started) return jsonResponse({ event_id: await started });
    const pending = redact(me.userId, roomId, eventId, content, { device_id: me.deviceId, transaction_id: txnId });
    remember(key, pending);
    try {
      return jsonResponse({ event_id: await pending });
    } catch (err) {
      // A failed request did not use its transaction ID: a retry is a new attempt.
      if (txns.get(key)?.eventId === pending) txns.delete(key);
      throw err;
    }
  });
}
