/**
 * Ephemeral writes: PUT /rooms/{roomId}/typing/{userId}, POST /rooms/{roomId}/receipt/{type}/{eventId},
 * POST /rooms/{roomId}/read_markers and PUT /sendToDevice/{eventType}/{txnId}. Each checks
 * the request and publishes it for syncapi; none touches a room's DAG.
 */
import type { Context, Hono } from 'hono';
import { badJson, forbidden, invalidParam, jsonResponse, readJsonObject } from '../../internal/httputil/index.js';
import type { JsonObject } from '../../internal/matrix/index.js';
import type { RoomserverInternalAPI } from '../../roomserver/api/index.js';
import type { ClientUserAPI } from '../../userapi/api/index.js';
import { requireDevice } from '../auth/device.js';
import type { EphemeralProducer } from '../../syncapi/api/producer.js';
import { clientRoute } from './paths.js';

const ROOM_ID = /^![^:]+(:.+)?$/;
const EVENT_ID = /^\$.+/;
const USER_ID = /^@[^:]+:.+$/;
const MAX_BODY = 65_536;
/** To-device bodies may fan out to many devices; Synapse allows this much too. */
const MAX_TO_DEVICE_BODY = 1024 * 1024;
const RECEIPT_TYPES = new Set(['m.read', 'm.read.private']);
const TXN_TTL_MS = 30 * 60_000;
const TXN_LIMIT = 100_000;

export type EphemeralRoomserverAPI = Pick<RoomserverInternalAPI, 'queryMembershipForUser' | 'queryEventsById'>;
export type EphemeralUserAPI = ClientUserAPI;

function roomIdOf(c: Context): string {
  const roomId = c.req.param('roomId') ?? '';
  if (!ROOM_ID.test(roomId)) throw invalidParam(`${roomId} is not a room ID`);
  return roomId;
}

export function addEphemeralRoutes(client: Hono, serverName: string, userAPI: EphemeralUserAPI, rsAPI: EphemeralRoomserverAPI, producer: EphemeralProducer): void {
  const requireJoined = async (userId: string, roomId: string): Promise<void> => {
    const m = await rsAPI.queryMembershipForUser({ room_id: roomId, user_id: userId });
    if (m.membership !== 'join') throw forbidden('You are not in this room');
  };

  /** A receipt names an event ID; one the roomserver knows must be of this room (unknown ones may still be on their way). */
  const requireRoomEvent = async (roomId: string, eventId: string): Promise<void> => {
    if (!EVENT_ID.test(eventId)) throw invalidParam(`${eventId} is not an event ID`);
    const { events } = await rsAPI.queryEventsById({ event_ids: [eventId] });
    if (events[0]?.pdu.room_id !== undefined && events[0].pdu.room_id !== roomId) throw invalidParam(`${eventId} is not in ${roomId}`);
  };

  const sendReceipt = async (userId: string, roomId: string, type: string, eventId: string, threadId?: string): Promise<void> => {
    await producer.receipt({ room_id: roomId, user_id: userId, event_id: eventId, receipt_type: type, ...(threadId !== undefined ? { thread_id: threadId } : {}), ts: Date.now() });
  };

  clientRoute(client, 'put', '/rooms/:roomId/typing/:userId', async (c) => {
    const me = await requireDevice(c, userAPI, { allowGuests: true });
    const roomId = roomIdOf(c);
    if ((c.req.param('userId') ?? '') !== me.userId) throw forbidden('You may only set your own typing state');
    const body = await readJsonObject(c, { maxBytes: MAX_BODY });
    const typing = body['typing'];
    if (typeof typing !== 'boolean') throw badJson('typing must be a boolean');
    const timeout = body['timeout'];
    if (typing && timeout !== undefined && (typeof timeout !== 'number' || !Number.isFinite(timeout) || timeout < 0)) throw badJson('timeout must be a non-negative number');
    await requireJoined(me.userId, roomId);
    await producer.typing({ room_id: roomId, user_id: me.userId, typing, ...(typing ? { timeout_ms: typeof timeout === 'number' ? timeout : 30_000 } : {}) });
    return jsonResponse({});
  });

  clientRoute(client, 'post', '/rooms/:roomId/receipt/:receiptType/:eventId', async (c) => {
    const me = await requireDevice(c, userAPI, { allowGuests: true });
    const roomId = roomIdOf(c);
    const type = c.req.param('receiptType') ?? '';
    const eventId = c.req.param('eventId') ?? '';
    const body = await readJsonObject(c, { maxBytes: MAX_BODY, allowEmpty: true });
    const threadId = body['thread_id'];
    if (threadId !== undefined && (typeof threadId !== 'string' || threadId === '')) throw badJson('thread_id must be a non-empty string');
    await requireJoined(me.userId, roomId);
    if (type === 'm.fully_read') {
      // A fully-read marker is room account data, not a receipt.
      if (threadId !== undefined) throw invalidParam('m.fully_read takes no thread_id');
      await requireRoomEvent(roomId, eventId);
      await userAPI.performAccountDataUpdate({ userId: me.userId, roomId, type: 'm.fully_read', content: { event_id: eventId } });
      return jsonResponse({});
    }
    if (!RECEIPT_TYPES.has(type)) throw invalidParam(`Unknown receipt type ${type}`);
    await requireRoomEvent(roomId, eventId);
    await sendReceipt(me.userId, roomId, type, eventId, threadId);
    return jsonResponse({});
  });

  clientRoute(client, 'post', '/rooms/:roomId/read_markers', async (c) => {
    const me = await requireDevice(c, userAPI, { allowGuests: true });
    const roomId = roomIdOf(c);
    const body = await readJsonObject(c, { maxBytes: MAX_BODY, allowEmpty: true });
    const wanted: Array<[string, string]> = [];
    for (const key of ['m.fully_read', 'm.read', 'm.read.private']) {
      const v = body[key];
      if (v === undefined || v === null) continue;
      if (typeof v !== 'string') throw badJson(`${key} must be an event ID`);
      wanted.push([key, v]);
    }
    await requireJoined(me.userId, roomId);
    for (const [, eventId] of wanted) await requireRoomEvent(roomId, eventId);
    for (const [key, eventId] of wanted) {
      if (key === 'm.fully_read') await userAPI.performAccountDataUpdate({ userId: me.userId, roomId, type: 'm.fully_read', content: { event_id: eventId } });
      else await sendReceipt(me.userId, roomId, key, eventId);
    }
    return jsonResponse({});
  });

  /** device + transaction ID -> when it was handled (a retry is answered without resending). */
  const txns = new Map<string, number>();
  clientRoute(client, 'put', '/sendToDevice/:eventType/:txnId', async (c) => {
    const me = await requireDevice(c, userAPI, { allowGuests: true });
    const type = c.req.param('eventType') ?? '';
    const key = `${me.userId}\n${me.deviceId}\n${c.req.param('txnId') ?? ''}`;
    const seen = txns.get(key);
    if (seen !== undefined && Date.now() - seen < TXN_TTL_MS) return jsonResponse({});
    const body = await readJsonObject(c, { maxBytes: MAX_TO_DEVICE_BODY });
    const messages = body['messages'];
    if (typeof messages !== 'object' || messages === null || Array.isArray(messages)) throw badJson('messages must be an object');
    // Check everything before sending anything, so a bad entry sends nothing.
    const targets: Array<{ userId: string; devices: Record<string, unknown> }> = [];
    for (const [userId, devices] of Object.entries(messages as Record<string, unknown>)) {
      if (!USER_ID.test(userId)) throw badJson(`${userId} is not a user ID`);
      if (typeof devices !== 'object' || devices === null || Array.isArray(devices)) throw badJson(`messages for ${userId} must be an object`);
      for (const content of Object.values(devices)) if (typeof content !== 'object' || content === null || Array.isArray(content)) throw badJson('each message must be an object');
      targets.push({ userId, devices: devices as Record<string, unknown> });
    }
    for (const { userId, devices } of targets) {
      // A remote user's messages go out as they are (device ID or '*'): federationapi sends them to the user's server.
      if (userId.slice(userId.indexOf(':') + 1) !== serverName) {
        for (const [deviceId, content] of Object.entries(devices)) await producer.sendToDevice({ sender: me.userId, user_id: userId, device_id: deviceId, type, content: content as JsonObject });
        continue;
      }
      let all: string[] | undefined;
      for (const [deviceId, content] of Object.entries(devices)) {
        const ids = deviceId === '*' ? (all ??= (await userAPI.queryDevices({ userId })).devices.map((d) => d.deviceId)) : [deviceId];
        for (const id of ids) await producer.sendToDevice({ sender: me.userId, user_id: userId, device_id: id, type, content: content as JsonObject });
      }
    }
    if (txns.size >= TXN_LIMIT) txns.delete(txns.keys().next().value!);
    txns.set(key, Date.now());
    return jsonResponse({});
  });
}
