/**
 * Sending an event as a local user (a message, a state change, a membership change of one's
 * own): built on the room's latest events with auth events from its current state, signed as
 * this server, and put through the input pipeline within the room's queue.
 */
import { authEventTypesNeeded, authEventsFromList, checkEventAuth } from '../../../internal/matrix/auth/index.js';
import { canonicalJson, canonicalOptionsFor, Event, MatrixProtocolError, roomVersion as lookupRoomVersion, type EventFields, type PDUJson } from '../../../internal/matrix/index.js';
import type { SigningIdentity } from '../../../internal/signingidentity.js';
import type { InputResult, InputRoomEvent, PerformSendEventRequest, PerformSendEventResponse, QueryLatestEventsAndStateResponse, QueryLatestEventsAndStateRequest } from '../../api/index.js';
import { NOT_PROCESSED_AFTER_ERROR, type Inputer } from '../input/inputer.js';

export class EventSender {
  constructor(
    private readonly identity: SigningIdentity,
    private readonly inputer: Inputer,
    private readonly latest: (req: QueryLatestEventsAndStateRequest) => Promise<QueryLatestEventsAndStateResponse>,
    /** The same, for use inside the room's input queue only (it may answer from what was committed last). */
    private readonly latestInQueue: (req: QueryLatestEventsAndStateRequest) => Promise<QueryLatestEventsAndStateResponse> = latest,
  ) {}

  /**
   * The event `req` asks for, built and signed on the room's latest events; or the existing
   * event when it would change nothing; or why it cannot be built.
   */
  private async build(req: PerformSendEventRequest, inQueue: boolean): Promise<{ event: Event; state: Event[] } | { existing: string } | { error: string; unbuildable?: PerformSendEventResponse }> {
    const latest = inQueue ? this.latestInQueue : this.latest;
    const room = await latest({ room_id: req.room_id, state_to_fetch: [] });
    if (!room.room_exists || room.room_version === undefined) return { error: 'unknown room' };
    const rv = lookupRoomVersion(room.room_version)!;
    if (req.state_key !== undefined) {
      // Setting a state event to what it already is, as the same sender, changes nothing: the existing event answers.
      const [current] = (await latest({ room_id: req.room_id, state_to_fetch: [{ type: req.type, state_key: req.state_key }] })).state_events;
      if (current && current.pdu.sender === req.user_id && canonicalJson(current.pdu.content ?? {}, canonicalOptionsFor(rv)) === canonicalJson(req.content, canonicalOptionsFor(rv))) {
        return { existing: typeof current.pdu.event_id === 'string' ? current.pdu.event_id : eventIdOf(current.pdu, current.room_version) };
      }
    }
    const fields = { type: req.type, stateKey: req.state_key, sender: req.user_id, content: req.content, roomVersion: rv };
    const needed = authEventTypesNeeded(fields);
    const wanted = needed.filter((w) => !(rv.roomIdFromCreateEvent && w.type === 'm.room.create'));
    const state = await latest({ room_id: req.room_id, state_to_fetch: [...needed.map((w) => ({ type: w.type, state_key: w.stateKey })), { type: 'm.room.create', state_key: '' }] });
    const stateEvents = state.state_events.map((e) => Event.fromPDU(e.pdu, e.room_version));
    const authIds = stateEvents.filter((e) => wanted.some((w) => w.type === e.type && w.stateKey === e.stateKey)).map((e) => e.eventId);
    const event = this.tryBuild(
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
    if (!(event instanceof Event)) return { error: event.message, unbuildable: event };
    return { event, state: stateEvents };
  }

  /** The event signed, or why it cannot be (too big, or malformed): the sender's mistake, not ours. */
  private tryBuild(fields: EventFields, roomVersion: string): Event | (PerformSendEventResponse & { error: 'too_large' | 'failed'; message: string }) {
    try {
      return this.identity.buildEvent(fields, roomVersion);
    } catch (e) {
      if (e instanceof MatrixProtocolError) return { error: e.code === 'too_large' ? 'too_large' : 'failed', message: e.message };
      throw e;
    }
  }

  /**
   * Messages waiting, per room, for the next group to be built and stored together: requests
   * that arrive while the room's queue is busy share one build and one transaction (one commit
   * for many messages, instead of one each).
   */
  private readonly waiting = new Map<string, Array<{ req: PerformSendEventRequest; done: (r: PerformSendEventResponse) => void; fail: (e: unknown) => void }>>();

  async send(req: PerformSendEventRequest): Promise<PerformSendEventResponse> {
    if (!req.build_only && req.state_key === undefined && req.redacts === undefined && req.type !== 'm.room.redaction') {
      return new Promise((done, fail) => {
        let list = this.waiting.get(req.room_id);
        if (!list) {
          this.waiting.set(req.room_id, (list = []));
          void this.sendGroup(req.room_id);
        }
        list.push({ req, done, fail });
      });
    }
    return this.sendOne(req);
  }

  /**
   * Builds every message waiting for the room when its turn in the queue comes, each on the one
   * before (the first on the room's latest events), checks each against the room's state (a
   * message changes no state, so it is the same for all), and stores them in one transaction. A
   * message the rules refuse is left out of the chain. Those after a failed one go on their own.
   */
  private async sendGroup(roomId: string): Promise<void> {
    let group: Array<{ req: PerformSendEventRequest; done: (r: PerformSendEventResponse) => void; fail: (e: unknown) => void }> = [];
    const answers: Array<PerformSendEventResponse | undefined> = [];
    /** Messages that could not be built at all: answered so, outside the chain. */
    const unbuildable = new Map<number, PerformSendEventResponse>();
    try {
      const results = await this.inputer.inputBuiltMany(roomId, async () => {
        group = this.waiting.get(roomId) ?? [];
        this.waiting.delete(roomId);
        // A message's auth events are the create event, the power levels and its sender's membership, whatever the room version.
        const needed = [{ type: 'm.room.create', state_key: '' }, { type: 'm.room.power_levels', state_key: '' }, ...new Set(group.map(({ req }) => req.user_id))].map((x) =>
          typeof x === 'string' ? { type: 'm.room.member', state_key: x } : x,
        );
        const room = await this.latestInQueue({ room_id: roomId, state_to_fetch: needed });
        const rv = room.room_exists && room.room_version !== undefined ? lookupRoomVersion(room.room_version) : undefined;
        if (!rv) return group.map(() => ({ event_id: '', status: 'rejected' as const, error: 'unknown room' }));
        const authTypes = group.map(({ req }) => authEventTypesNeeded({ type: req.type, stateKey: undefined, sender: req.user_id, content: req.content, roomVersion: rv }));
        const state = room.state_events.map((e) => Event.fromPDU(e.pdu, e.room_version));
        const authState = authEventsFromList(state);
        let prev = room.latest_event_ids;
        let depth = room.depth;
        return group.map(({ req }, i): InputRoomEvent | InputResult => {
          const wanted = authTypes[i]!.filter((w) => !(rv.roomIdFromCreateEvent && w.type === 'm.room.create'));
          const event = this.tryBuild(
            {
              type: req.type,
              sender: req.user_id,
              room_id: roomId,
              content: req.content,
              prev_events: prev,
              auth_events: state.filter((e) => wanted.some((w) => w.type === e.type && w.stateKey === e.stateKey)).map((e) => e.eventId),
              depth: depth + 1,
            },
            rv.id,
          );
          if (!(event instanceof Event)) {
            unbuildable.set(i, event);
            return { event_id: '', status: 'error', error: event.message };
          }
          try {
            checkEventAuth(event, authState);
          } catch (e) {
            if (e instanceof MatrixProtocolError) return { event_id: '', status: 'rejected', error: e.message };
            throw e;
          }
          prev = [event.eventId];
          depth += 1;
          return {
            kind: 'new',
            event: { room_version: rv.id, pdu: event.json as PDUJson },
            origin: this.identity.serverName,
            ...(req.transaction_id ? { transaction_id: req.transaction_id } : {}),
          };
        });
      });
      results.forEach((r, i) => {
        // Not processed because one before it in the chain failed: it goes again on its own.
        answers[i] = unbuildable.get(i) ?? (r.status === 'error' && r.error === NOT_PROCESSED_AFTER_ERROR ? undefined : verdictToResponse(r));
      });
    } catch (e) {
      for (const { fail } of group) fail(e);
      return;
    }
    group.forEach(({ req, done, fail }, i) => {
      const a = answers[i];
      if (a) done(a);
      else this.sendOne(req).then(done, fail);
    });
  }

  private async sendOne(req: PerformSendEventRequest): Promise<PerformSendEventResponse> {
    if (req.build_only) {
      // Not sent: checked against the current state here, as the input pipeline would.
      const built = await this.build(req, false);
      if ('error' in built) return built.unbuildable ?? { error: 'failed', message: built.error };
      if ('existing' in built) return { event_id: built.existing };
      try {
        checkEventAuth(built.event, authEventsFromList(built.state));
      } catch (e) {
        if (e instanceof MatrixProtocolError) return { error: 'forbidden', message: e.message };
        throw e;
      }
      return { event_id: built.event.eventId, event: { room_version: built.event.roomVersion.id, pdu: built.event.json as PDUJson } };
    }
    let unbuildable: PerformSendEventResponse | undefined;
    const result = await this.inputer.inputBuilt(req.room_id, async () => {
      const built = await this.build(req, true);
      unbuildable = 'unbuildable' in built ? built.unbuildable : undefined;
      if ('error' in built) return { event_id: '', status: 'rejected', error: built.error };
      if ('existing' in built) return { event_id: built.existing, status: 'duplicate' };
      return {
        kind: 'new',
        event: { room_version: built.event.roomVersion.id, pdu: built.event.json as PDUJson },
        origin: this.identity.serverName,
        ...(req.transaction_id ? { transaction_id: req.transaction_id } : {}),
      };
    });
    return unbuildable ?? verdictToResponse(result);
  }
}

function verdictToResponse(result: InputResult): PerformSendEventResponse {
  if (result.status === 'accepted' || (result.status === 'duplicate' && result.event_id !== '')) return { event_id: result.event_id };
  if (result.status === 'rejected' || result.status === 'soft_failed') return { error: 'forbidden', message: result.error ?? 'not allowed' };
  return { error: 'failed', message: result.error ?? result.status };
}

/** Event IDs of room versions 3 and later are not in the PDU: they are its reference hash. */
function eventIdOf(pdu: PDUJson, roomVersion: string): string {
  return Event.fromPDU(pdu, roomVersion).eventId;
}
