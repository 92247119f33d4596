/**
 * Another server inviting one of our users (PUT /v1/invite and /v2/invite): the invite must be
 * a well-formed, signed member event of the origin's user making our user `invite`. We add
 * our signature, record the invite (with the stripped room state it came with) for the
 * invitee's /sync, and hand the event back.
 */
import type { Context, Hono } from 'hono';
import type { Logger } from 'pino';
import { MatrixError, forbidden, jsonResponse } from '../../internal/httputil/index.js';
import { domainOf, isSupportedRoomVersion, type JsonObject, type PDUJson } from '../../internal/matrix/index.js';
import type { SigningIdentity } from '../../internal/signingidentity.js';
import type { RoomserverInternalAPI } from '../../roomserver/api/index.js';
import { checkPDUs, type PDUKeys } from '../internal/pdus.js';
import { serverAllowedByAcl } from '../internal/acl.js';
import type { FederationAuth } from './fedauth.js';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function addInviteRoutes(
  fed: Hono,
  auth: FederationAuth,
  identity: SigningIdentity,
  keys: PDUKeys,
  rsAPI: Pick<RoomserverInternalAPI, 'performStubMembership' | 'inputRoomEvents' | 'queryLatestEventsAndState'>,
  log?: Logger,
): void {
  const invite = async (c: Context, version: 1 | 2): Promise<JsonObject> => {
    const { origin, body } = await auth.authenticate(c);
    if (!isObject(body)) throw new MatrixError(400, 'M_BAD_JSON', 'The body must be a JSON object');
    // v1 carries the event itself (rooms of version 1 and 2 only); v2 wraps it with the room version.
    const roomVersion = version === 2 ? body['room_version'] : '1';
    const raw = version === 2 ? body['event'] : body;
    if (!isSupportedRoomVersion(roomVersion)) {
      throw new MatrixError(400, 'M_INCOMPATIBLE_ROOM_VERSION', `Room version ${String(roomVersion)} is not supported here`, { room_version: String(roomVersion) });
    }
    const [checked] = await checkPDUs([raw], roomVersion, keys);
    if (!checked) throw new MatrixError(400, 'M_BAD_JSON', 'No event');
    if (!checked.ok) throw checked.kind === 'signature' ? forbidden(`The invite is not properly signed: ${checked.error}`) : new MatrixError(400, 'M_BAD_JSON', `The invite is not a valid event: ${checked.error}`);
    const event = checked.event;
    if (event.eventId !== c.req.param('eventId') || event.roomId !== c.req.param('roomId')) throw new MatrixError(400, 'M_BAD_JSON', 'The event does not match the path');
    if (event.type !== 'm.room.member' || event.content['membership'] !== 'invite' || event.stateKey === undefined) throw new MatrixError(400, 'M_BAD_JSON', 'The event is not an invite');
    if (domainOf(event.stateKey) !== identity.serverName) throw new MatrixError(400, 'M_BAD_JSON', 'The invitee is not a user of this server');
    if (domainOf(event.sender) !== origin) throw forbidden('The invite was not sent by a user of the requesting server');

    const strippedRaw = version === 2 ? body['invite_room_state'] : (isObject(body['unsigned']) ? body['unsigned']['invite_room_state'] : undefined);
    const stripped = Array.isArray(strippedRaw) ? strippedRaw.filter(isObject) : [];
    const signed = identity.signEvent(event.json as unknown as JsonObject, roomVersion);
    const stored = { ...signed, unsigned: { ...(isObject(signed['unsigned']) ? signed['unsigned'] : {}), invite_room_state: stripped } } as JsonObject;

    // An invite into a room we hold goes through the room like any event (from a server its ACL
    // allows); otherwise it is kept on its own.
    const room = await rsAPI.queryLatestEventsAndState({ room_id: event.roomId, state_to_fetch: [{ type: 'm.room.server_acl', state_key: '' }] });
    if (room.room_exists && !serverAllowedByAcl(room.state_events[0]?.pdu.content as Record<string, unknown> | undefined, origin)) {
      throw forbidden('Server is banned from this room by its ACL');
    }
    if (room.room_exists) {
      const [res] = (await rsAPI.inputRoomEvents({ events: [{ kind: 'new', event: { room_version: roomVersion, pdu: stored as unknown as PDUJson }, origin }] })).results;
      if (!res || res.status === 'error') throw forbidden(`The invite could not be taken: ${res?.error ?? 'no answer'}`);
      // One the room's rules reject (the inviter lacks the power, say) is kept as rejected and
      // shown to no one; it is still signed, as the invited server's part is only to sign (as
      // Synapse and Dendrite do), and the room refuses it again when it arrives through /send.
      if (res.status === 'rejected' || res.status === 'soft_failed') log?.info({ origin, roomId: event.roomId, eventId: event.eventId, reason: res.error }, 'federation: an invite the room rejects was signed');
    } else {
      const res = await rsAPI.performStubMembership({ event: { room_version: roomVersion, pdu: stored as unknown as PDUJson } });
      if (res.error !== undefined) throw new MatrixError(400, 'M_UNKNOWN', `The invite could not be stored: ${res.error}`);
    }
    return { event: signed };
  };
  fed.put('/v1/invite/:roomId/:eventId', async (c) => jsonResponse([200, await invite(c, 1)]));
  fed.put('/v2/invite/:roomId/:eventId', async (c) => jsonResponse(await invite(c, 2)));
}
