/**
 * Other servers' users joining and leaving our rooms: GET /make_join and /make_leave give an
 * event template on the room's latest events; PUT /send_join and /send_leave (v1 and v2) take
 * the signed event, put it through the roomserver, and answer a join with the room's state
 * before it and that state's auth chain.
 */
import type { Context, Hono } from 'hono';
import { MatrixError, forbidden, invalidParam, jsonResponse } from '../../internal/httputil/index.js';
import { authEventTypesNeeded, authEventsFromList, checkEventAuth } from '../../internal/matrix/auth/index.js';
import { Event, MatrixProtocolError, domainOf, roomVersion as lookupRoomVersion, type JsonObject, type PDUJson } from '../../internal/matrix/index.js';
import type { SigningIdentity } from '../../internal/signingidentity.js';
import type { HeaderedEvent } from '../../roomserver/api/index.js';
import { checkPDUs, type PDUKeys } from '../internal/pdus.js';
import type { RoomReader } from './events.js';
import type { FederationAuth } from './fedauth.js';

type Membership = 'join' | 'leave';

const pdu = (h: HeaderedEvent): JsonObject => h.pdu as unknown as JsonObject;

export function addJoinRoutes(fed: Hono, auth: FederationAuth, reader: RoomReader, identity: SigningIdentity, keys: PDUKeys): void {
  const { rsAPI } = reader;

  /** The template of a membership event of `userId` (a user of `origin`) on the room's latest events. */
  const makeMembership = async (c: Context, membership: Membership): Promise<Response> => {
    const { origin } = await auth.authenticate(c);
    const roomId = c.req.param('roomId') ?? '';
    const userId = c.req.param('userId') ?? '';
    if (!/^@[^:]+:.+$/.test(userId)) throw invalidParam(`${userId} is not a user ID`);
    if (domainOf(userId) !== origin) throw forbidden('The user does not belong to the requesting server');
    const { roomVersion } = await reader.requireRoomAccess(roomId, origin);
    if (membership === 'join') {
      const supported = c.req.queries('ver') ?? ['1'];
      if (!supported.includes(roomVersion)) {
        return jsonResponse({ errcode: 'M_INCOMPATIBLE_ROOM_VERSION', error: `The room is version ${roomVersion}`, room_version: roomVersion }, 400);
      }
    }
    // A room none of our users is in any more is not ours to let people into. Leaving (rejecting
    // an invite we sent before our last user left) needs no one here: we still hold the room's
    // state, and the invitee has no other server to ask (Synapse answers it too).
    if (membership === 'join' && !(await rsAPI.queryServersInRoom({ room_id: roomId })).servers.includes(identity.serverName)) {
      throw new MatrixError(404, 'M_NOT_FOUND', 'No user of this server is in the room');
    }
    const content: JsonObject = { membership };
    const fields = { type: 'm.room.member', stateKey: userId, sender: userId, content };
    const room = await rsAPI.queryLatestEventsAndState({ room_id: roomId, state_to_fetch: [] });
    const rv = lookupRoomVersion(roomVersion)!;
    const wanted = authEventTypesNeeded({ ...fields, roomVersion: rv });
    const state = await rsAPI.queryLatestEventsAndState({ room_id: roomId, state_to_fetch: [{ type: 'm.room.create', state_key: '' }, ...wanted.map((w) => ({ type: w.type, state_key: w.stateKey }))] });
    const stateEvents = state.state_events.map((h) => Event.fromPDU(h.pdu, h.room_version));
    const authIds = stateEvents.filter((e) => !(rv.roomIdFromCreateEvent && e.type === 'm.room.create')).filter((e) => wanted.some((w) => w.type === e.type && w.stateKey === e.stateKey)).map((e) => e.eventId);
    // Would the event be allowed now? Checked on a copy we sign, so that a refusal comes before
    // the other server builds anything; the copy also gives the references in the room version's format.
    let trial: Event;
    try {
      trial = identity.buildEvent({ type: 'm.room.member', state_key: userId, sender: userId, room_id: roomId, content, prev_events: room.latest_event_ids, auth_events: authIds, depth: room.depth + 1 }, roomVersion);
      checkEventAuth(trial, authEventsFromList(stateEvents));
    } catch (e) {
      if (e instanceof MatrixProtocolError) throw forbidden(`You are not allowed to ${membership} this room: ${e.message}`);
      throw e;
    }
    const built = trial.json as unknown as JsonObject;
    const template: JsonObject = {
      type: 'm.room.member',
      room_id: roomId,
      sender: userId,
      state_key: userId,
      content,
      prev_events: built['prev_events']!,
      auth_events: built['auth_events']!,
      depth: room.depth + 1,
      origin_server_ts: Date.now(),
      origin: identity.serverName,
    };
    return jsonResponse({ room_version: roomVersion, event: template });
  };

  /** Checks and inputs a signed membership event from `origin`; returns it. */
  const sendMembership = async (c: Context, membership: Membership): Promise<{ event: Event; origin: string }> => {
    const { origin, body } = await auth.authenticate(c);
    const roomId = c.req.param('roomId') ?? '';
    const eventId = c.req.param('eventId') ?? '';
    const { roomVersion } = await reader.requireRoomAccess(roomId, origin);
    const [checked] = await checkPDUs([body], roomVersion, keys);
    if (!checked) throw new MatrixError(400, 'M_BAD_JSON', 'No event');
    if (!checked.ok) throw checked.kind === 'signature' ? forbidden(`The event is not properly signed: ${checked.error}`) : new MatrixError(400, 'M_BAD_JSON', `The event is not valid: ${checked.error}`);
    const event = checked.event;
    if (event.eventId !== eventId) throw new MatrixError(400, 'M_BAD_JSON', 'The event ID does not match the path');
    if (event.roomId !== roomId) throw new MatrixError(400, 'M_BAD_JSON', 'The event is for another room');
    if (event.type !== 'm.room.member' || event.stateKey !== event.sender || event.content['membership'] !== membership) {
      throw new MatrixError(400, 'M_BAD_JSON', `The event is not a ${membership} of its sender`);
    }
    if (domainOf(event.sender) !== origin) throw forbidden('The event was not sent by a user of the requesting server');
    const [result] = (await rsAPI.inputRoomEvents({ events: [{ kind: 'new', event: { room_version: roomVersion, pdu: event.json as PDUJson }, origin }] })).results;
    if (!result || (result.status !== 'accepted' && result.status !== 'duplicate')) {
      throw forbidden(`The ${membership} was refused: ${result?.error ?? result?.status ?? 'no answer'}`);
    }
    return { event, origin };
  };

  const joinAnswer = async (event: Event): Promise<JsonObject> => {
    const { state, authChain } = await reader.stateBefore(event);
    const { servers } = await rsAPI.queryServersInRoom({ room_id: event.roomId });
    return {
      origin: identity.serverName,
      state: state.map(pdu),
      auth_chain: authChain.map(pdu),
      event: event.json as unknown as JsonObject,
      members_omitted: false,
      servers_in_room: servers,
    };
  };

  fed.get('/v1/make_join/:roomId/:userId', (c) => makeMembership(c, 'join'));
  fed.get('/v1/make_leave/:roomId/:userId', (c) => makeMembership(c, 'leave'));
  fed.put('/v1/send_join/:roomId/:eventId', async (c) => jsonResponse([200, await joinAnswer((await sendMembership(c, 'join')).event)]));
  fed.put('/v2/send_join/:roomId/:eventId', async (c) => jsonResponse(await joinAnswer((await sendMembership(c, 'join')).event)));
  fed.put('/v1/send_leave/:roomId/:eventId', async (c) => {
    await sendMembership(c, 'leave');
    return jsonResponse([200, {}]);
  });
  fed.put('/v2/send_leave/:roomId/:eventId', async (c) => {
    await sendMembership(c, 'leave');
    return jsonResponse({});
  });
}
