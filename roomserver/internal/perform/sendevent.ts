/**
 * Sending an event as a local user (a message, a state change, a membership change of one's
 * own): built on the room's latest events with auth events from its current state, signed as
 * this server, and put through the input pipeline within the room's queue.
 */
import { authEventTypesNeeded } from '../../../internal/matrix/auth/index.js';
import { canonicalJson, Event, roomVersion as lookupRoomVersion, type PDUJson } from '../../../internal/matrix/index.js';
import type { SigningIdentity } from '../../../internal/signingidentity.js';
import type { PerformSendEventRequest, PerformSendEventResponse, QueryLatestEventsAndStateResponse, QueryLatestEventsAndStateRequest } from '../../api/index.js';
import type { Inputer } from '../input/inputer.js';

export class EventSender {
  constructor(
    private readonly identity: SigningIdentity,
    private readonly inputer: Inputer,
    private readonly latest: (req: QueryLatestEventsAndStateRequest) => Promise<QueryLatestEventsAndStateResponse>,
  ) {}

  async send(req: PerformSendEventRequest): Promise<PerformSendEventResponse> {
    const result = await this.inputer.inputBuilt(req.room_id, async () => {
      const room = await this.latest({ room_id: req.room_id, state_to_fetch: [] });
      if (!room.room_exists || room.room_version === undefined) return { event_id: '', status: 'rejected', error: 'unknown room' };
      const rv = lookupRoomVersion(room.room_version)!;
      if (req.state_key !== undefined) {
        // Setting a state event to what it already is, as the same sender, changes nothing: the existing event answers.
        const [current] = (await this.latest({ room_id: req.room_id, state_to_fetch: [{ type: req.type, state_key: req.state_key }] })).state_events;
        if (current && current.pdu.sender === req.user_id && canonicalJson(current.pdu.content ?? {}) === canonicalJson(req.content)) {
          return { event_id: typeof current.pdu.event_id === 'string' ? current.pdu.event_id : eventIdOf(current.pdu, current.room_version), status: 'duplicate' };
        }
      }
      const fields = { type: req.type, stateKey: req.state_key, sender: req.user_id, content: req.content, roomVersion: rv };
      const wanted = authEventTypesNeeded(fields).filter((w) => !(rv.roomIdFromCreateEvent && w.type === 'm.room.create'));
      const state = await this.latest({ room_id: req.room_id, state_to_fetch: wanted.map((w) => ({ type: w.type, state_key: w.stateKey })) });
      const authIds = state.state_events.map((e) => (typeof e.pdu.event_id === 'string' ? e.pdu.event_id : eventIdOf(e.pdu, e.room_version)));
      const event = this.identity.buildEvent(
        {
          type: req.type,
          ...(req.state_key !== undefined ? { state_key: req.state_key } : {}),
          sender: req.user_id,
          room_id: req.room_id,
          content: req.content,
          prev_events: room.latest_event_ids,
          auth_events: authIds,
          depth: room.depth + 1,
          ...(req.redacts !== undefined ? { redacts: req.redacts } : {}),
        },
        rv.id,
      );
      return {
        kind: 'new',
        event: { room_version: rv.id, pdu: event.json as PDUJson },
        origin: this.identity.serverName,
        ...(req.transaction_id ? { transaction_id: req.transaction_id } : {}),
      };
    });
    if (result.status === 'accepted' || (result.status === 'duplicate' && result.event_id !== '')) return { event_id: result.event_id };
    if (result.status === 'rejected' || result.status === 'soft_failed') return { error: 'forbidden', message: result.error ?? 'not allowed' };
    return { error: 'failed', message: result.error ?? result.status };
  }
}

/** Event IDs of room versions 3 and later are not in the PDU: they are its reference hash. */
function eventIdOf(pdu: PDUJson, roomVersion: string): string {
  return Event.fromPDU(pdu, roomVersion).eventId;
}
