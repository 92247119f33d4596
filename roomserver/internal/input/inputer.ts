/**
 * The input pipeline: the one writer of rooms. Events of one room are processed strictly one
 * after another (a promise chain per room); rooms run in parallel.
 *
 * For each event (Server-Server API, "Checks performed on receipt of a PDU", steps 4-6; format,
 * signatures and hashes are checked by whoever received it):
 * - already stored with state: a duplicate, nothing to do;
 * - auth against its own auth events, else it is rejected (stored, never part of state);
 * - `outlier`: stored without state;
 * - `new` / `old`: the state before it comes from its prev events (resolved when they
 *   disagree); auth against that state, else rejected; a `new` event is also checked against
 *   the current state, and soft-failed (stored, not shown, not a forward extremity) if that
 *   refuses it;
 * - an accepted `new` event moves the forward extremities and the current state, and an
 *   OutputRoomEvent says which state events that adds and removes.
 *
 * The event, the room's new extremities and state, and its outputs are written in one
 * transaction; outputs go to an outbox first and are published after commit, so a crash in
 * between publishes them on restart (with the event ID as message ID, so JetStream drops a
 * repeat within its window and consumers can recognise one by the event ID after it).
 */
import type { Logger } from 'pino';
import { checkEventAuth, checkEventAuthAgainstAuthEvents, authEventsFromList } from '../../../internal/matrix/auth/index.js';
import { Event, MatrixProtocolError, roomVersion as lookupRoomVersion, type PDUJson } from '../../../internal/matrix/index.js';
import type { HeaderedEvent, InputResult, InputRoomEvent, OutputRoomEvent } from '../../api/index.js';
import type { EventStore, RoomInfo } from '../../storage/eventstore.js';
import type { StateSnapshotStore } from '../../storage/statesnapshots.js';
import type { EventLoader } from '../eventloader.js';
import { RoomState } from './roomstate.js';

export interface InputerDeps {
  events: EventStore;
  snapshots: StateSnapshotStore;
  loader: EventLoader;
  /** Publishes one OutputRoomEvent for a room; msgId deduplicates a repeat. */
  publish: (roomId: string, msgId: string, output: OutputRoomEvent) => Promise<void>;
  log: Logger;
}

/** The stores of one input transaction. */
interface TxContext {
  events: EventStore;
  snapshots: StateSnapshotStore;
  loader: EventLoader;
  state: RoomState;
}

/** Why processing stopped without a verdict on the event (not a rejection). */
class InputError extends Error {}

export class Inputer {
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(private readonly deps: InputerDeps) {}

  /** Processes events (each after every earlier event of its room) and returns their verdicts, in order. */
  async input(events: readonly InputRoomEvent[]): Promise<InputResult[]> {
    return Promise.all(
      events.map((input) => {
        let event: Event;
        try {
          const rv = lookupRoomVersion(input.event.room_version);
          if (!rv) throw new InputError(`unsupported room version ${input.event.room_version}`);
          event = Event.fromPDU(input.event.pdu, rv);
        } catch (e) {
          const id = typeof input.event.pdu?.event_id === 'string' ? input.event.pdu.event_id : '';
          return Promise.resolve<InputResult>({ event_id: id, status: 'error', error: e instanceof Error ? e.message : String(e) });
        }
        // Queued by the room the event itself names (a v12 create event's is derived from it).
        return this.enqueue(event.roomId, () => this.processOne(input, event));
      }),
    );
  }

  /** Runs `fn` after everything queued for the room; the chain never breaks on a failure. */
  enqueue<T>(roomId: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.queues.get(roomId) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.queues.set(roomId, tail);
    void tail.then(() => {
      if (this.queues.get(roomId) === tail) this.queues.delete(roomId);
    });
    return next;
  }

  /** Publishes outputs left in the outbox by a crash (call at start-up, before new input). */
  async recover(): Promise<number> {
    const rows = await this.deps.events.outbox();
    const rooms = new Map<number, string>();
    for (const r of rows) {
      if (!rooms.has(r.roomNid)) rooms.set(r.roomNid, (await this.deps.events.roomByNid(r.roomNid))?.roomId ?? '');
      await this.deps.publish(rooms.get(r.roomNid)!, r.msgId, JSON.parse(r.payload) as OutputRoomEvent);
      await this.deps.events.removeFromOutbox([r.outboxNid]);
    }
    return rows.length;
  }

  private async processOne(input: InputRoomEvent, event: Event): Promise<InputResult> {
    try {
      // One transaction for all of it, every query inside it (SQLite has one connection; a read
      // outside would wait for the transaction forever).
      const { verdict: result, room } = await this.deps.events.db.transaction().execute(async (tx) => {
        const events = this.deps.events.inTransaction(tx);
        const snapshots = this.deps.snapshots.inTransaction(tx);
        const loader = this.deps.loader.over(events);
        return this.processIn({ events, snapshots, loader, state: new RoomState(events, snapshots, loader) }, input, event);
      });
      if (room) {
        // The event is stored: its verdict stands. An output that cannot be published now stays
        // in the outbox for the room's next event or the next start.
        await this.flush(room).catch((err: unknown) => this.deps.log.warn({ err, room_id: room.roomId }, 'roomserver output not published yet'));
      }
      return result;
    } catch (e) {
      if (!(e instanceof InputError) && !(e instanceof MatrixProtocolError)) {
        this.deps.log.error({ err: e, event_id: event.eventId, room_id: event.roomId }, 'roomserver input failed');
      }
      return { event_id: event.eventId, status: 'error', error: e instanceof Error ? e.message : String(e) };
    }
  }

  private async processIn(ctx: TxContext, input: InputRoomEvent, event: Event): Promise<{ verdict: InputResult; room?: RoomInfo }> {
    const { events, loader, state } = ctx;
    const rv = event.roomVersion;
    const eventId = event.eventId;

    const [existing] = await events.eventsByIds([eventId]);
    if (existing && (existing.stateSnapshotNid !== null || input.kind === 'outlier')) return { verdict: { event_id: eventId, status: 'duplicate' } };

    // The room: a create event makes it; anything else needs it known (fetching it is federation's part).
    let room = await events.room(event.roomId);
    if (!room) {
      if (event.type !== 'm.room.create' || event.stateKey !== '') throw new InputError(`room ${event.roomId} is not known here`);
      room = await events.ensureRoom(event.roomId, rv.id);
    }
    if (room.roomVersion !== rv.id) throw new InputError(`event is for room version ${rv.id}, the room is ${room.roomVersion}`);

    // Step 4: the event's own auth events.
    const authStored = await events.eventsByIds(event.authEventIds);
    const authById = new Map(authStored.map((a) => [a.eventId, a]));
    const missingAuth = event.authEventIds.filter((id) => !authById.has(id));
    if (missingAuth.length > 0) throw new InputError(`missing auth events: ${missingAuth.join(', ')}`);
    const authLoaded = await loader.byNids(
      authStored.map((a) => a.eventNid),
      rv.id,
    );
    const authEvents = event.authEventIds.map((id) => authLoaded.get(authById.get(id)!.eventNid)!);
    const create = rv.roomIdFromCreateEvent && event.type !== 'm.room.create' ? await this.createEventOf(loader, room) : undefined;
    let rejection: string | null = null;
    try {
      checkEventAuthAgainstAuthEvents(
        event,
        authEvents.map((a) => a.event),
        { isRejected: (id) => authById.get(id)?.isRejected ?? false, ...(create ? { create } : {}) },
      );
    } catch (e) {
      if (!(e instanceof MatrixProtocolError)) throw e;
      rejection = `auth events: ${e.message}`;
    }

    const base = {
      roomNid: room.roomNid,
      eventId,
      type: event.type,
      stateKey: event.stateKey,
      depth: event.depth,
      json: JSON.stringify(event.json),
      authEventNids: authEvents.map((a) => a.stored.eventNid),
      prevEventIds: event.prevEventIds,
    };

    if (input.kind === 'outlier') {
      await events.storeEvent({ ...base, stateSnapshotNid: null, rejectionReason: rejection });
      return { verdict: verdict(eventId, rejection, false) };
    }

    // The state before the event, from its prev events.
    let stateBefore = 0;
    if (event.type !== 'm.room.create') {
      const prevs = await events.eventsByIds(event.prevEventIds);
      const missing = event.prevEventIds.filter((id) => !prevs.some((p) => p.eventId === id && p.stateSnapshotNid !== null));
      if (missing.length > 0) throw new InputError(`missing prev events (or their state): ${missing.join(', ')}`);
      stateBefore = await state.resolve(room, await Promise.all(prevs.map((p) => state.stateAfter(room!, p))));
    }

    // Step 5: the state before the event.
    if (rejection === null && event.type !== 'm.room.create') {
      const inState = await state.authEventsIn(room, stateBefore, event);
      try {
        checkEventAuth(event, authEventsFromList(inState.map((l) => l.event)));
      } catch (e) {
        if (!(e instanceof MatrixProtocolError)) throw e;
        rejection = `state before the event: ${e.message}`;
      }
    }

    // Step 6: the current state, for new events only.
    let softFail: string | null = null;
    if (rejection === null && input.kind === 'new' && event.type !== 'm.room.create' && room.stateSnapshotNid !== stateBefore) {
      const inCurrent = await state.authEventsIn(room, room.stateSnapshotNid, event);
      try {
        checkEventAuth(event, authEventsFromList(inCurrent.map((l) => l.event)));
      } catch (e) {
        if (!(e instanceof MatrixProtocolError)) throw e;
        softFail = `current state: ${e.message}`;
      }
    }

    const { eventNid } = await events.storeEvent({ ...base, stateSnapshotNid: stateBefore, rejectionReason: rejection, softFailed: softFail !== null });
    if (rejection !== null || softFail !== null) return { verdict: verdict(eventId, rejection, softFail !== null) };

    const headered: HeaderedEvent = { room_version: rv.id, pdu: event.json as PDUJson };
    let output: { msgId: string; output: OutputRoomEvent };
    if (input.kind === 'old') {
      output = { msgId: `old:${eventId}`, output: { type: 'old_room_event', old_room_event: { event: headered } } };
    } else {
      const current = await this.advance(ctx, room, eventNid, event);
      output = {
        msgId: `new:${eventId}`,
        output: {
          type: 'new_room_event',
          new_room_event: {
            event: headered,
            adds_state_event_ids: current.adds,
            removes_state_event_ids: current.removes,
            latest_event_ids: current.latest,
            ...(input.transaction_id ? { transaction_id: input.transaction_id } : {}),
          },
        },
      };
    }
    await events.addToOutbox(room.roomNid, [{ msgId: output.msgId, payload: JSON.stringify(output.output) }]);
    return { verdict: verdict(eventId, null, false), room };
  }

  /** Moves the forward extremities and the current state for an accepted new event. */
  private async advance(ctx: TxContext, room: RoomInfo, eventNid: number, event: Event): Promise<{ adds: string[]; removes: string[]; latest: string[] }> {
    const { events, snapshots, state } = ctx;
    const prevNids = new Set((await events.eventsByIds(event.prevEventIds)).map((p) => p.eventNid));
    const latest = (await events.forwardExtremities(room.roomNid)).filter((nid) => !prevNids.has(nid));
    // An event some stored event already builds on is behind the edge, not at it.
    if (!(await events.isReferenced(event.eventId))) latest.push(eventNid);
    await events.setForwardExtremities(room.roomNid, latest);

    const latestStored = await events.eventsByNids(latest);
    const current = await state.resolve(room, await Promise.all(latestStored.map((e) => state.stateAfter(room, e))));
    const diff = await snapshots.diff(room.stateSnapshotNid, current);
    await events.setCurrentState(room.roomNid, current);
    const [adds, removes] = await Promise.all([state.eventIds(diff.added), state.eventIds(diff.removed)]);
    return { adds, removes, latest: latestStored.sort((a, b) => a.eventNid - b.eventNid).map((e) => e.eventId) };
  }

  /** Publishes the room's outbox, oldest first, removing each output once published. */
  private async flush(room: RoomInfo): Promise<void> {
    for (const row of await this.deps.events.outbox(room.roomNid)) {
      await this.deps.publish(room.roomId, row.msgId, JSON.parse(row.payload) as OutputRoomEvent);
      await this.deps.events.removeFromOutbox([row.outboxNid]);
    }
  }

  private async createEventOf(loader: EventLoader, room: RoomInfo): Promise<Event | undefined> {
    // In room version 12 the room ID is the create event's ID with "!" for "$".
    const loaded = await loader.byIds([`$${room.roomId.slice(1)}`], room.roomVersion);
    return [...loaded.values()][0]?.event;
  }
}

function verdict(eventId: string, rejection: string | null, softFailed: boolean): InputResult {
  if (rejection !== null) return { event_id: eventId, status: 'rejected', error: rejection };
  if (softFailed) return { event_id: eventId, status: 'soft_failed' };
  return { event_id: eventId, status: 'accepted' };
}

