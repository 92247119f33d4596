/**
 * Sending events: PUT /rooms/{roomId}/send/{eventType}/{txnId} (idempotent per device and
 * transaction ID), PUT /rooms/{roomId}/state/{eventType}/{stateKey}, and POST
 * /rooms/{roomId}/leave. The roomserver builds, signs and checks the event.
 */
import type { Logger } from 'pino';
import type { Context, Hono } from 'hono';
import { MatrixError, forbidden, invalidParam, jsonResponse, readJsonObject } from '../../internal/httputil/index.js';
import type { JsonObject } from '../../internal/matrix/index.js';
import type { FederationInternalAPI } from '../../federationapi/api/index.js';
import type { PerformSendEventRequest, RoomserverInternalAPI } from '../../roomserver/api/index.js';
import type { ClientUserAPI } from '../../userapi/api/index.js';
import type { SyncInternalAPI } from '../../syncapi/api/index.js';
import { requireDevice } from '../auth/device.js';
import { readEventContent } from './eventcontent.js';
import { clientRoute } from './paths.js';
import { eventIdOfTransaction } from './transactions.js';

/** An event's content cannot be bigger than the event (65,536 bytes). */
const MAX_BODY = 65_536;
const TXN_TTL_MS = 30 * 60_000;
const TXN_LIMIT = 100_000;

export function addSendEventRoutes(
  client: Hono,
  serverName: string,
  userAPI: ClientUserAPI,
  rsAPI: RoomserverInternalAPI,
  fedAPI: Pick<FederationInternalAPI, 'performLeave'>,
  syncAPI?: Pick<SyncInternalAPI, 'queryAnnotationExists' | 'queryEventIdForTransaction'>,
  log?: Logger,
): void {
  /**
   * device + room + transaction ID -> the event it produced (the answer to a retry). This
   * process's memory; syncapi, which stores each event's transaction, answers for the
   * transactions before a restart. The map still comes first: it knows an event before
   * syncapi has consumed it.
   */
  const txns = new Map<string, { eventId: string; ts: number }>();
  const remember = (key: string, eventId: string): void => {
    if (txns.size >= TXN_LIMIT) txns.delete(txns.keys().next().value!);
    txns.set(key, { eventId, ts: Date.now() });
  };

  /**
   * The spec's checks on a relation a client sends ("Threading", "Event annotations"): a thread
   * cannot start from an event that is itself a relation (400 M_UNKNOWN), and a user may not
   * annotate an event twice the same way (400 M_DUPLICATE_ANNOTATION; syncapi keeps the index).
   */
  const checkRelation = async (roomId: string, sender: string, type: string, content: JsonObject): Promise<void> => {
    const rel = content['m.relates_to'];
    if (typeof rel !== 'object' || rel === null || Array.isArray(rel)) return;
    const { rel_type: relType, event_id: target, key } = rel as Record<string, unknown>;
    if (typeof target !== 'string') return;
    if (relType === 'm.thread') {
      const [parent] = (await rsAPI.queryEventsById({ event_ids: [target] })).events;
      const parentRel = parent?.pdu.content?.['m.relates_to'];
      if (typeof parentRel === 'object' && parentRel !== null && typeof (parentRel as Record<string, unknown>)['rel_type'] === 'string') {
        throw new MatrixError(400, 'M_UNKNOWN', 'Cannot start a thread from an event that is itself a relation');
      }
    }
    if (relType === 'm.annotation' && typeof key === 'string' && syncAPI) {
      const { exists } = await syncAPI.queryAnnotationExists({ room_id: roomId, event_id: target, sender, type, key });
      if (exists) throw new MatrixError(400, 'M_DUPLICATE_ANNOTATION', 'You have already sent this annotation for this event');
    }
  };

  const send = async (req: PerformSendEventRequest): Promise<string> => {
    if (!/^![^:]+(:.+)?$/.test(req.room_id)) throw invalidParam(`${req.room_id} is not a room ID`);
    // The spec's size limits on an event's fields (Synapse and Dendrite answer 413 too).
    if (Buffer.byteLength(req.type, 'utf8') > 255) throw new MatrixError(413, 'M_TOO_LARGE', 'The event type is longer than 255 bytes');
    if (req.state_key !== undefined && Buffer.byteLength(req.state_key, 'utf8') > 255) throw new MatrixError(413, 'M_TOO_LARGE', 'The state key is longer than 255 bytes');
    if (req.state_key === undefined) await checkRelation(req.room_id, req.user_id, req.type, req.content);
    const res = await rsAPI.performSendEvent(req);
    if (res.error === 'forbidden') throw forbidden(res.message);
    if (res.error === 'too_large') throw new MatrixError(413, 'M_TOO_LARGE', res.message);
    if (res.error !== undefined) throw new MatrixError(400, 'M_UNKNOWN', res.message);
    return res.event_id;
  };

  clientRoute(client, 'put', '/rooms/:roomId/send/:eventType/:txnId', async (c: Context) => {
    const me = await requireDevice(c, userAPI, { allowGuests: true });
    const roomId = c.req.param('roomId') ?? '';
    const txnId = c.req.param('txnId') ?? '';
    const key = `${me.deviceId}\n${roomId}\n${txnId}`;
    const type = c.req.param('eventType') ?? '';
    const seen = txns.get(key);
    if (seen && Date.now() - seen.ts < TXN_TTL_MS) return jsonResponse({ event_id: seen.eventId });
    // Before anything about the request is checked again: a retry is answered as the first try was.
    const known = await eventIdOfTransaction(syncAPI, { roomId, userId: me.userId, deviceId: me.deviceId, txnId, type }, log);
    if (known !== undefined) {
      remember(key, known);
      return jsonResponse({ event_id: known });
    }
    const content = await readEventContent(c, { maxBytes: MAX_BODY, roomId, rsAPI });
    const eventId = await send({
      user_id: me.userId,
      room_id: roomId,
      type,
      content,
      transaction_id: { device_id: me.deviceId, transaction_id: txnId },
    });
    remember(key, eventId);
    return jsonResponse({ event_id: eventId });
  });

  // The older form without a transaction ID (not idempotent), which Synapse and Dendrite still serve.
  clientRoute(client, 'post', '/rooms/:roomId/send/:eventType', async (c: Context) => {
    const me = await requireDevice(c, userAPI, { allowGuests: true });
    const roomId = c.req.param('roomId') ?? '';
    const content = await readEventContent(c, { maxBytes: MAX_BODY, roomId, rsAPI });
    return jsonResponse({ event_id: await send({ user_id: me.userId, room_id: roomId, type: c.req.param('eventType') ?? '', content }) });
  });

  /** A canonical alias event may only name well-formed aliases, and those of this server must point at the room. */
  const checkCanonicalAlias = async (roomId: string, content: Record<string, unknown>): Promise<void> => {
    const alt = content['alt_aliases'];
    if (alt !== undefined && (!Array.isArray(alt) || alt.some((a) => typeof a !== 'string'))) throw new MatrixError(400, 'M_INVALID_PARAM', 'alt_aliases must be a list of aliases');
    const aliases = [...(typeof content['alias'] === 'string' ? [content['alias']] : []), ...((alt as string[] | undefined) ?? [])];
    if (content['alias'] !== undefined && content['alias'] !== null && typeof content['alias'] !== 'string') throw new MatrixError(400, 'M_INVALID_PARAM', 'alias must be a string');
    for (const alias of aliases) {
      if (!/^#[^:]+:.+$/.test(alias)) throw new MatrixError(400, 'M_INVALID_PARAM', `${alias} is not a room alias`);
      if (alias.slice(alias.indexOf(':') + 1) !== serverName) continue;
      const { room_id } = await rsAPI.queryRoomIdForAlias({ alias });
      if (room_id !== roomId) throw new MatrixError(400, 'M_BAD_ALIAS', `${alias} does not point to this room`);
    }
  };

  const putState = async (c: Context, stateKey: string): Promise<Response> => {
    const me = await requireDevice(c, userAPI);
    const roomId = c.req.param('roomId') ?? '';
    const content = await readEventContent(c, { maxBytes: MAX_BODY, roomId, rsAPI });
    if ((c.req.param('eventType') ?? '') === 'm.room.canonical_alias' && stateKey === '') await checkCanonicalAlias(roomId, content);
    const type = c.req.param('eventType') ?? '';
    const eventId = await send({ user_id: me.userId, room_id: roomId, type, state_key: stateKey, content });
    if (type === 'm.room.guest_access' && stateKey === '' && content['guest_access'] !== 'can_join') await removeGuests(roomId);
    return jsonResponse({ event_id: eventId });
  };

  /**
   * Guest access revoked: this server's guests in the room leave it, as in Synapse (a guest may
   * only be in rooms that let guests in). Best effort: one guest that cannot leave stops no other.
   */
  const removeGuests = async (roomId: string): Promise<void> => {
    const { members } = await rsAPI.queryMembershipsForRoom({ room_id: roomId, memberships: ['join'] });
    const local = members.map((m) => m.user_id).filter((u) => u.slice(u.indexOf(':') + 1) === serverName);
    if (local.length === 0) return;
    const { guests } = await userAPI.queryGuests({ userIds: local });
    for (const guest of guests) {
      await rsAPI.performSendEvent({ user_id: guest, room_id: roomId, type: 'm.room.member', state_key: guest, content: { membership: 'leave' } });
    }
  };
  clientRoute(client, 'put', '/rooms/:roomId/state/:eventType', (c) => putState(c, ''));
  clientRoute(client, 'put', '/rooms/:roomId/state/:eventType/', (c) => putState(c, ''));
  clientRoute(client, 'put', '/rooms/:roomId/state/:eventType/:stateKey', (c) => putState(c, c.req.param('stateKey') ?? ''));

  clientRoute(client, 'post', '/rooms/:roomId/leave', async (c: Context) => {
    const me = await requireDevice(c, userAPI, { allowGuests: true });
    const body = await readJsonObject(c, { maxBytes: MAX_BODY, allowEmpty: true });
    const content: JsonObject = { membership: 'leave' };
    if (typeof body['reason'] === 'string') content['reason'] = body['reason'];
    const roomId = c.req.param('roomId') ?? '';
    // Rejecting an invite into a room this server does not hold goes through the inviting server.
    const m = await rsAPI.queryMembershipForUser({ room_id: roomId, user_id: me.userId });
    if (!m.room_exists && m.membership === 'invite') {
      const res = await fedAPI.performLeave({ room_id: roomId, user_id: me.userId });
      if (res.error === undefined) return jsonResponse({});
      if (res.error === 'forbidden') throw forbidden(res.message);
      throw new MatrixError(502, 'M_UNKNOWN', `Could not reject the invite: ${res.message}`);
    }
    await send({ user_id: me.userId, room_id: c.req.param('roomId') ?? '', type: 'm.room.member', state_key: me.userId, content });
    return jsonResponse({});
  });
}
