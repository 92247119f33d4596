/**
 * Reporting content: POST /rooms/{roomId}/report/{eventId} (Client-Server API v1.12,
 * "Reporting content"). The reporter must be joined to the room and able to see the event;
 * otherwise the answer is 404 whatever the reason, so a report reveals nothing about rooms and
 * events the reporter cannot see. There is no admin API for reports yet: each one is a log line
 * at warn level, for the server's operators.
 */
import type { Context, Hono } from 'hono';
import type { Logger } from 'pino';
import { badJson, invalidParam, jsonResponse, notFound, readJsonObject } from '../../internal/httputil/index.js';
import { Event, isRoomIdOfAnyFormat } from '../../internal/matrix/index.js';
import type { RoomserverInternalAPI } from '../../roomserver/api/index.js';
import type { ClientUserAPI } from '../../userapi/api/index.js';
import { requireDevice } from '../auth/device.js';
import { clientRoute } from './paths.js';
import { isEventIdOfAnyFormat } from './redact.js';

const MAX_BODY = 16 * 1024;
/** Longer reasons are cut in the log line. */
const MAX_REASON_LOGGED = 2_000;

export function addReportRoute(client: Hono, userAPI: ClientUserAPI, rsAPI: RoomserverInternalAPI, log: Logger): void {
  clientRoute(client, 'post', '/rooms/:roomId/report/:eventId', async (c: Context) => {
    const me = await requireDevice(c, userAPI);
    const roomId = c.req.param('roomId') ?? '';
    const eventId = c.req.param('eventId') ?? '';
    const body = await readJsonObject(c, { maxBytes: MAX_BODY, allowEmpty: true });
    const reason = body['reason'];
    if (reason !== undefined && typeof reason !== 'string') throw badJson('reason must be a string');
    const score = body['score'];
    if (score !== undefined && (typeof score !== 'number' || !Number.isInteger(score) || score < -100 || score > 0)) {
      throw invalidParam('score must be an integer from -100 to 0');
    }

    const missing = notFound('The event was not found or you are not joined to the room');
    if (!isRoomIdOfAnyFormat(roomId) || !isEventIdOfAnyFormat(eventId)) throw missing;
    const m = await rsAPI.queryMembershipForUser({ room_id: roomId, user_id: me.userId });
    if (m.membership !== 'join') throw missing;
    const [found] = (await rsAPI.queryEventsById({ event_ids: [eventId] })).events;
    const event = found && !found.rejected ? Event.fromPDU(found.pdu, found.room_version) : undefined;
    if (!event || event.roomId !== roomId) throw missing;
    const { visible_event_ids } = await rsAPI.queryVisibleEvents({ event_ids: [eventId], user_id: me.userId });
    if (!visible_event_ids.includes(eventId)) throw missing;

    log.warn(
      {
        report: 'event',
        reporter: me.userId,
        reporter_device: me.deviceId,
        room_id: roomId,
        event_id: eventId,
        event_sender: event.sender,
        event_type: event.type,
        ...(reason !== undefined ? { reason: reason.slice(0, MAX_REASON_LOGGED) } : {}),
        ...(score !== undefined ? { score } : {}),
      },
      'content reported',
    );
    return jsonResponse({});
  });
}
