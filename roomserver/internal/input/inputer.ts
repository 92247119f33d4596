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
 *
 * Batches: the events of one room in one request (a federation transaction, a room's creation,
 * a join's state) share one transaction, up to MAX_BATCH at a time; a commit costs more than
 * processing a message event, so this is what makes a busy room fast. Each event still gets
 * its own verdict, and a rejected or soft-failed one is stored like any other. An event that
 * fails (an error: nothing may be written for it) rolls the transaction back; the events
 * before it are then processed again and committed, and the batch goes on after it (or, with
 * `stopAtError`, stops there). Outputs are published after the commit, event by event, in order.
 */
import type { Logger } from 'pino';
import { authEventsFromList, checkEventAuth, checkEventAuthAgainstAuthEvents, redactionTakesEffect } from '../../../internal/matrix/auth/index.js';
import { Event, MatrixProtocolError, redactEvent, roomVersion as lookupRoomVersion, type PDUJson } from '../../../internal/matrix/index.js';
import type { HeaderedEvent, InputResult, InputRoomEvent, OutputRoomEvent } from '../../api/index.js';
import { PLANNED_EVENT_NID, type BatchWrites, type EventStore, type NewEvent, type RoomInfo, type StoredEvent } from '../../storage/eventstore.js';
import { NotPlannable } from '../../storage/plan.js';
import type { StateSnapshotStore } from '../../storage/statesnapshots.js';
import type { EventLoader, LoadedEvent } from '../eventloader.js';
import { RoomState } from './roomstate.js';

export interface InputerDeps {
  /** Our server: invites of its users get their own outputs. */
  serverName: string;
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
  /** What earlier events of the transaction changed, not yet in the shared caches. */
  batch: BatchState;
}

/** A transaction's view of the caches: applied once it commits, dropped if it rolls back. */
interface BatchState {
  rooms: Map<string, RoomCache>;
  stateAfter: Map<number, number>;
  /** Events stored or redacted: the loader must not keep them if the transaction rolls back. */
  touched: number[];
  /** Events stored with state, for the loader once the transaction commits. */
  loaded: LoadedEvent[];
  /** Events redacted: their stored JSON is no longer the one they came with. */
  redacted: Set<number>;
  /**
   * Events looked up in the transaction, by ID (undefined: not stored), kept current as it
   * stores events: the batch's events, their auth and prev events are read in one query.
   */
  known: Map<string, StoredEvent | undefined>;
  /** Targets of pending redactions among the batch's events (and those the batch adds). */
  redactionTargets: Set<string>;
  /** Rooms whose forward extremities (and current state) the batch moved: written once, before commit. */
  moved: Map<number, { latest: number[]; stateSnapshotNid: number; stateChanged: boolean }>;
  /**
   * The batch skipped its first query (see shortcut()): it took the event for new, and asks for
   * redactions waiting for it when storing it. Finding it stored already undoes the batch.
   */
  shortcut: boolean;
}

/** A shortcut batch found its event stored already: it is done again the long way. */
class StoredAlready extends Error {}

/** One event of a batch: the request's input and the event parsed from it. */
interface BatchItem {
  input: InputRoomEvent;
  event: Event;
}

/** Events of one room sharing one transaction, at most. */
const MAX_BATCH = 100;

/** The verdict of the events after a failed one, with `stopAtError`. */
export const NOT_PROCESSED_AFTER_ERROR = 'not processed: an earlier event of its room in this request failed';

/** Why processing stopped without a verdict on the event (not a rejection). */
class InputError extends Error {}

/** What this process knows of a room's committed state (it is the rooms' only writer). */
interface RoomCache {
  info: RoomInfo;
  /** Forward extremities. */
  latest: Array<{ eventNid: number; eventId: string }>;
}

/** What one event's processing changes, applied to the caches once its transaction commits. */
interface Processed {
  verdict: InputResult;
  room?: RoomCache;
  stateAfter?: { eventNid: number; snapshotNid: number };
  /** Its outputs, for the outbox of its room. */
  outputs?: { roomNid: number; list: Array<{ msgId: string; output: OutputRoomEvent }> };
  /** The same, once in the outbox. */
  outbox?: Array<{ outboxNid: number; msgId: string; output: OutputRoomEvent }>;
}

const STATE_AFTER_CACHE_LIMIT = 100_000;
const STORED_CACHE_LIMIT = 50_000;

/** How long published outputs wait in the outbox for an input transaction to delete them. */
const OUTBOX_FLUSH_DELAY_MS = 20;

export class Inputer {
  private readonly queues = new Map<string, Promise<unknown>>();
  private readonly rooms = new Map<string, RoomCache>();
  /** The state after recent events, so the next event's state before costs nothing. */
  private readonly stateAfterCache = new Map<number, number>();
  /**
   * Committed events with state, by ID: recent auth and prev events, read again by the next
   * events. Such a row never changes (only an outlier's does, when it gets its state), until an
   * admin purge deletes the room (forgetRoom).
   */
  private readonly storedById = new Map<string, StoredEvent>();
  /** Outbox NIDs of published outputs, deleted by the next input transaction or flushOutbox. */
  private readonly published: number[] = [];
  private flushTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly deps: InputerDeps) {}

  /**
   * Processes events (each after every earlier event of its room) and returns their verdicts, in
   * order. A room's events go through together (see Batches above). With `stopAtError`, a room's
   * events after its first error are not processed (NOT_PROCESSED_AFTER_ERROR): for a submitter
   * that mends the failure (fetches what was missing) and then goes on in order.
   */
  async input(events: readonly InputRoomEvent[], opts: { stopAtError?: boolean } = {}): Promise<InputResult[]> {
    const results = new Array<InputResult>(events.length);
    const byRoom = new Map<string, Array<BatchItem & { index: number }>>();
    events.forEach((input, index) => {
      let event: Event;
      try {
        const rv = lookupRoomVersion(input.event.room_version);
        if (!rv) throw new InputError(`unsupported room version ${input.event.room_version}`);
        event = Event.fromPDU(input.event.pdu, rv);
      } catch (e) {
        const id = typeof input.event.pdu?.event_id === 'string' ? input.event.pdu.event_id : '';
        results[index] = { event_id: id, status: 'error', error: e instanceof Error ? e.message : String(e) };
        return;
      }
      // Queued by the room the event itself names (a v12 create event's is derived from it).
      let list = byRoom.get(event.roomId);
      if (!list) byRoom.set(event.roomId, (list = []));
      list.push({ input, event, index });
    });
    await Promise.all(
      [...byRoom].map(async ([roomId, items]) => {
        const verdicts = await this.enqueue(roomId, () => this.processRoomEvents(items, opts.stopAtError === true));
        items.forEach((item, i) => (results[item.index] = verdicts[i]!));
      }),
    );
    return results;
  }

  /**
   * Builds an event from the room as it is once everything queued before has been processed,
   * and processes it in the same turn: a local event then builds on the latest events, not on
   * ones that were current when it was asked for.
   */
  inputBuilt(roomId: string, build: () => Promise<InputRoomEvent | InputResult>): Promise<InputResult> {
    return this.enqueue(roomId, async () => {
      let built: InputRoomEvent | InputResult;
      try {
        built = await build();
      } catch (e) {
        return { event_id: '', status: 'error', error: e instanceof Error ? e.message : String(e) };
      }
      if ('status' in built) return built;
      const rv = lookupRoomVersion(built.event.room_version);
      if (!rv) return { event_id: '', status: 'error', error: `unsupported room version ${built.event.room_version}` };
      return (await this.processBatch([{ input: built, event: Event.fromPDU(built.event.pdu, rv) }]))[0]!;
    });
  }

  /**
   * As inputBuilt, for several events built in one turn of the room's queue (each may build on
   * the one before): processed in order, in as few transactions as MAX_BATCH allows. After the
   * first error, the rest are NOT_PROCESSED_AFTER_ERROR (they may build on the failed one).
   */
  inputBuiltMany(roomId: string, build: () => Promise<Array<InputRoomEvent | InputResult>>): Promise<InputResult[]> {
    return this.enqueue(roomId, async () => {
      const built = await build();
      const results = new Array<InputResult>(built.length);
      const items: Array<BatchItem & { index: number }> = [];
      built.forEach((b, index) => {
        if ('status' in b) {
          results[index] = b;
          return;
        }
        const rv = lookupRoomVersion(b.event.room_version);
        if (!rv) results[index] = { event_id: '', status: 'error', error: `unsupported room version ${b.event.room_version}` };
        else items.push({ input: b, event: Event.fromPDU(b.event.pdu, rv), index });
      });
      const verdicts = items.length > 0 ? await this.processRoomEvents(items, true) : [];
      items.forEach((item, i) => (results[item.index] = verdicts[i]!));
      return results;
    });
  }

  /**
   * What this process knows of a room's committed head without asking the database: its info
   * (current state snapshot), its forward extremities and their greatest depth. Only meaningful
   * within the room's queue (nothing else moves the head meanwhile); undefined when not known.
   */
  head(roomId: string): { info: RoomInfo; latestEventIds: string[]; depth: number } | undefined {
    const room = this.rooms.get(roomId);
    if (!room || room.info.stateSnapshotNid === 0 || room.latest.length === 0) return undefined;
    let depth = 0;
    for (const l of room.latest) {
      const stored = this.storedById.get(l.eventId);
      if (!stored) return undefined;
      depth = Math.max(depth, stored.depth);
    }
    return { info: room.info, latestEventIds: room.latest.map((l) => l.eventId), depth };
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

  /** Drops what is cached about a room whose rows were deleted (an admin purge), so that it starts afresh. */
  forgetRoom(roomId: string): void {
    this.rooms.delete(roomId);
    this.stateAfterCache.clear();
    this.storedById.clear();
  }

  /**
   * Deletes the room's state nodes that no event's state before and not the current state
   * use, between two of the room's events (its queue). Returns how many nodes went.
   */
  async collectGarbage(roomId: string): Promise<number> {
    return this.enqueue(roomId, async () => {
      const room = await this.deps.events.room(roomId);
      if (!room) return 0;
      // States after events are remembered as shortcuts only; they may be among what goes.
      this.stateAfterCache.clear();
      return this.deps.snapshots.collectGarbage(room.roomNid, await this.deps.events.snapshotsInUse(room.roomNid));
    });
  }

  /**
   * Records a membership of a local user in a room this server does not hold (an invite from
   * another server, or the leave that rejects it): the event is kept as an outlier, the user's
   * membership follows it, and syncapi hears of the invite (or of its end). A room known only
   * this way has no state; it does not count as existing for the rest of the API.
   */
  stubMembership(roomId: string, roomVersion: string, event: Event): Promise<InputResult> {
    return this.enqueue(roomId, async () => {
      const target = event.stateKey ?? '';
      const membership = typeof event.content['membership'] === 'string' ? event.content['membership'] : 'leave';
      let outputs: Array<{ outboxNid: number; msgId: string; output: OutputRoomEvent }> = [];
      try {
        outputs = await this.deps.events.db.transaction().execute(async (tx) => {
          const events = this.deps.events.inTransaction(tx);
          const room = await events.ensureRoom(roomId, roomVersion);
          if (room.stateSnapshotNid !== 0) throw new InputError(`room ${roomId} is held here: its memberships come through the room`);
          const before = await events.membership(room.roomNid, target);
          const { eventNid } = await events.storeEvent({
            roomNid: room.roomNid,
            eventId: event.eventId,
            type: event.type,
            stateKey: event.stateKey,
            depth: event.depth,
            json: JSON.stringify(event.json),
            authEventNids: [],
            stateSnapshotNid: null,
            rejectionReason: null,
          });
          const targetNid = (await events.stateKeyNids([target])).get(target)!;
          await events.setMembership(room.roomNid, targetNid, target, membership, eventNid);
          const headered: HeaderedEvent = { room_version: roomVersion, pdu: event.json as PDUJson };
          const list: Array<{ msgId: string; output: OutputRoomEvent }> = [];
          if (membership === 'invite') list.push({ msgId: `invite:${event.eventId}`, output: { type: 'new_invite_event', new_invite_event: { event: headered } } });
          else if (before?.membership === 'invite') {
            const [inviteEvent] = await events.eventsByNids([before.eventNid]);
            if (inviteEvent) {
              list.push({
                msgId: `retire:${inviteEvent.eventId}:${event.eventId}`,
                output: { type: 'retire_invite_event', retire_invite_event: { event_id: inviteEvent.eventId, target_user_id: target, membership, retired_by_event_id: event.eventId } },
              });
            }
          }
          const nids = await events.addToOutbox(room.roomNid, list.map((o) => ({ msgId: o.msgId, payload: JSON.stringify(o.output) })));
          return list.map((o, i) => ({ outboxNid: nids[i]!, ...o }));
        });
      } catch (e) {
        return { event_id: event.eventId, status: 'error', error: e instanceof Error ? e.message : String(e) };
      }
      try {
        for (const { outboxNid, msgId, output } of outputs) {
          await this.deps.publish(roomId, msgId, output);
          await this.deps.events.removeFromOutbox([outboxNid]);
        }
      } catch (err) {
        this.deps.log.warn({ err, room_id: roomId, event_id: event.eventId }, 'roomserver output not published yet');
      }
      return { event_id: event.eventId, status: 'accepted' };
    });
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

  /** A room's events of one request, in batches; one verdict each, in order. */
  private async processRoomEvents(items: readonly BatchItem[], stopAtError: boolean): Promise<InputResult[]> {
    const results: InputResult[] = [];
    while (results.length < items.length) {
      const got = await this.processBatch(items.slice(results.length, results.length + MAX_BATCH));
      results.push(...got);
      if (stopAtError && got.at(-1)!.status === 'error') {
        for (const item of items.slice(results.length)) results.push({ event_id: item.event.eventId, status: 'error', error: NOT_PROCESSED_AFTER_ERROR });
      }
    }
    return results;
  }

  /**
   * Processes events of one room in one transaction, in order, until one fails. Returns the
   * verdicts of the events committed and, when one failed, that one's error last: never empty,
   * possibly shorter than `items` (the caller goes on after the failed event).
   */
  private async processBatch(items: readonly BatchItem[], longWay = false): Promise<InputResult[]> {
    // SQLite work is synchronous: let waiting requests run between batches, so that a long
    // input (a big room's state on a join) does not stall the whole server.
    await new Promise<void>((resolve) => setImmediate(resolve));
    const shortcut = longWay ? undefined : this.shortcut(items);
    if (shortcut && this.plannable(items[0]!, shortcut)) {
      const planned = await this.processPlanned(items[0]!, shortcut);
      if (planned === 'long way') return this.processBatch(items, true);
      if (planned !== 'in a transaction') return planned;
    }
    const batch = newBatch(shortcut !== undefined);
    let failed: { at: number; error: unknown } | undefined;
    let txEvents: EventStore | undefined;
    /** Published outputs whose outbox rows this transaction deletes (taken now: the flush leaves them be). */
    const removing = this.published.splice(0);
    let done: Processed[];
    try {
      // One transaction for all of it, every query inside it (SQLite has one connection; a read
      // outside would wait for the transaction forever).
      done = await this.deps.events.db.transaction().execute(async (tx) => {
        const events = (txEvents = this.deps.events.inTransaction(tx));
        const snapshots = this.deps.snapshots.inTransaction(tx);
        const loader = this.deps.loader.over(events);
        const ctx: TxContext = { events, snapshots, loader, state: new RoomState(events, snapshots, loader), batch };
        if (shortcut) {
          for (const [id, e] of shortcut) batch.known.set(id, e);
        } else {
          // What the batch's events will ask for (themselves, their auth and prev events, and the
          // redactions waiting for them), in one query instead of two per event.
          const ids = [...new Set(items.flatMap(({ event }) => [event.eventId, ...event.authEventIds, ...event.prevEventIds]))];
          const first = await events.eventsAndRedactionTargets(ids, items.map(({ event }) => event.eventId));
          for (const id of ids) batch.known.set(id, undefined);
          for (const e of first.events) batch.known.set(e.eventId, e);
          batch.redactionTargets = first.redactionTargets;
        }
        const out: Processed[] = [];
        for (const [i, { input, event }] of items.entries()) {
          let p: Processed;
          try {
            p = await this.processIn(ctx, input, event);
          } catch (e) {
            failed = { at: i, error: e };
            throw e;
          }
          if (p.room) batch.rooms.set(p.room.info.roomId, p.room);
          if (p.stateAfter) batch.stateAfter.set(p.stateAfter.eventNid, p.stateAfter.snapshotNid);
          out.push(p);
        }
        // The room's new extremities and state, the outputs, and the removal of outputs published
        // earlier: together (on PostgreSQL one statement).
        withOutbox(out, await events.finishBatch(batchWrites(batch, out, removing)));
        return out;
      });
    } catch (e) {
      // Nothing was written. The events it stored or redacted must leave the loader's cache
      // (SQLite hands their NIDs out again), and what this process believed about the room may
      // be what failed. Published outputs it was to take out of the outbox are still there.
      this.published.push(...removing);
      for (const nid of batch.touched) this.deps.loader.forget(nid);
      const roomId = items[0]!.event.roomId;
      // A shortcut's failure, whatever it is, is the long way's to judge: a stored event is a
      // duplicate before anything else could be wrong with it.
      if (batch.shortcut && (failed?.error ?? e) instanceof StoredAlready) return this.processBatch(items, true);
      this.rooms.delete(roomId);
      if (batch.shortcut) return this.processBatch(items, true);
      const at = failed?.at ?? 0;
      const error = failed?.error ?? e;
      const item = items[at]!;
      if (!(error instanceof InputError) && !(error instanceof MatrixProtocolError)) {
        this.deps.log.error({ err: error, event_id: item.event.eventId, room_id: roomId }, 'roomserver input failed');
      }
      const verdict: InputResult = { event_id: item.event.eventId, status: 'error', error: error instanceof Error ? error.message : String(error) };
      if (at === 0) return [verdict];
      // The events before the failed one, again, without it.
      const before = await this.processBatch(items.slice(0, at));
      return before.length < at ? before : [...before, verdict];
    }
    return this.committed(items[0]!.event.roomId, batch, txEvents, done);
  }

  /** Once a batch's writes are committed: the caches learn what it did, and its outputs go out. */
  private async committed(roomId: string, batch: BatchState, store: EventStore | undefined, done: Processed[]): Promise<InputResult[]> {
    store?.keepCaches();
    for (const [id, e] of batch.known) if (e && e.stateSnapshotNid !== null) this.rememberStored(id, e);
    for (const l of batch.loaded) if (!batch.redacted.has(l.stored.eventNid)) this.deps.loader.prime(l);
    for (const [id, room] of batch.rooms) this.rooms.set(id, room);
    for (const [eventNid, snapshotNid] of batch.stateAfter) this.rememberStateAfter(eventNid, snapshotNid);
    await this.publishOutputs(roomId, done);
    return done.map((d) => d.verdict);
  }

  /**
   * Whether a shortcut event can go as one statement without a transaction (PostgreSQL): a
   * message-like event (no state key, not a redaction) on the room's only forward extremities,
   * whose state after is known and the same for all of them. Such an event writes only itself, the room's extremities and
   * its output; anything else it turns out to need makes the planned store refuse (NotPlannable).
   */
  private plannable(item: BatchItem, shortcut: Map<string, StoredEvent | undefined>): boolean {
    const { event } = item;
    if (this.deps.events.dialect !== 'postgres' || event.stateKey !== undefined || event.type === 'm.room.redaction') return false;
    const room = this.rooms.get(event.roomId);
    if (!room) return false;
    const prevNids = new Set<number>();
    // One state after all its prev events: states that differ would be resolved into a new
    // snapshot (a write), and resolving twice is what a merge must not cost.
    const states = new Set<number>();
    for (const id of event.prevEventIds) {
      const p = shortcut.get(id);
      const after = p && p.stateSnapshotNid !== null ? this.stateAfterCache.get(p.eventNid) : undefined;
      if (!p || after === undefined) return false;
      prevNids.add(p.eventNid);
      states.add(after);
    }
    return states.size === 1 && room.latest.every((l) => prevNids.has(l.eventNid));
  }

  /**
   * One event processed against the committed database with its writes held back, then written
   * as one statement (EventStore.finishPlanned): no BEGIN and COMMIT round trips. The statement
   * stores nothing if the event turns out to be stored already or awaited by a redaction: then
   * the long way decides ('long way'). A write the plan cannot hold back leaves it to an ordinary
   * transaction ('in a transaction'). Nothing is written in either case.
   */
  private async processPlanned(item: BatchItem, shortcut: Map<string, StoredEvent | undefined>): Promise<InputResult[] | 'long way' | 'in a transaction'> {
    const batch = newBatch(true);
    for (const [id, e] of shortcut) batch.known.set(id, e);
    const events = this.deps.events.planned();
    const snapshots = this.deps.snapshots.readOnly();
    const loader = this.deps.loader.over(events);
    const ctx: TxContext = { events, snapshots, loader, state: new RoomState(events, snapshots, loader), batch };
    const removing = this.published.splice(0);
    let done: Processed[] | undefined;
    let refused = false;
    try {
      const p = await this.processIn(ctx, item.input, item.event);
      const written = await events.finishPlanned(batchWrites(batch, [p], removing));
      if (written) {
        // The event went by a stand-in NID until the statement gave it its own.
        const nid = written.eventNid;
        const stored = batch.known.get(item.event.eventId);
        if (stored?.eventNid === PLANNED_EVENT_NID) stored.eventNid = nid;
        if (p.room) {
          for (const l of p.room.latest) if (l.eventNid === PLANNED_EVENT_NID) l.eventNid = nid;
          p.room.latest.sort((a, b) => a.eventNid - b.eventNid);
          batch.rooms.set(p.room.info.roomId, p.room);
        }
        if (p.stateAfter) batch.stateAfter.set(p.stateAfter.eventNid === PLANNED_EVENT_NID ? nid : p.stateAfter.eventNid, p.stateAfter.snapshotNid);
        done = withOutbox([p], written.outbox);
      }
    } catch (e) {
      // Anything else (an error, a verdict that depends on whether the event is stored) is the
      // long way's to judge.
      refused = e instanceof NotPlannable;
      if (!refused && !(e instanceof InputError) && !(e instanceof MatrixProtocolError)) {
        this.deps.log.warn({ err: e, event_id: item.event.eventId }, 'roomserver planned input failed; going the long way');
      }
    }
    if (!done) {
      this.published.push(...removing);
      for (const nid of batch.touched) this.deps.loader.forget(nid);
      return refused ? 'in a transaction' : 'long way';
    }
    return this.committed(item.event.roomId, batch, events, done);
  }

  /**
   * Publishes the committed events' outputs, in order, then has them taken out of the outbox. The
   * events are stored: their verdicts stand. An output that cannot be published now stays in the
   * outbox for the next start, and so do those after it (they must not overtake it).
   *
   * Taking them out is left to the next input transaction, which deletes them with its own writes
   * (a commit, and on PostgreSQL a flush to disk, fewer per event), or to a flush shortly after
   * when no input comes. A crash before that publishes them again at the next start, which
   * consumers recognise (same message IDs), as they do a crash between publishing and deleting.
   */
  private async publishOutputs(roomId: string, done: readonly Processed[]): Promise<void> {
    let published = 0;
    try {
      for (const d of done) {
        for (const { outboxNid, msgId, output } of d.outbox ?? []) {
          await this.deps.publish(roomId, msgId, output);
          this.published.push(outboxNid);
          published++;
        }
      }
    } catch (err) {
      this.deps.log.warn({ err, room_id: roomId }, 'roomserver output not published yet');
    }
    if (published > 0) this.scheduleOutboxFlush();
  }

  private scheduleOutboxFlush(): void {
    if (this.flushTimer !== undefined) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      void this.flushOutbox();
    }, OUTBOX_FLUSH_DELAY_MS);
    this.flushTimer.unref();
  }

  /** Deletes the outbox rows of published outputs that no input transaction has taken yet. */
  async flushOutbox(): Promise<void> {
    const nids = this.published.splice(0);
    if (nids.length === 0) return;
    try {
      await this.deps.events.removeFromOutbox(nids);
    } catch (err) {
      // Published twice at the next start, which consumers recognise (same message IDs).
      this.deps.log.warn({ err }, 'roomserver outbox not cleared');
    }
  }

  /**
   * For a request of one new event whose room, auth and prev events this process knows (the
   * common case: a client's send), what the batch's first query would return, and undefined
   * otherwise. Whether the event itself is stored is not known: storing it tells (StoredAlready).
   */
  private shortcut(items: readonly BatchItem[]): Map<string, StoredEvent | undefined> | undefined {
    if (items.length !== 1) return undefined;
    const { input, event } = items[0]!;
    if (input.kind !== 'new' || input.state_event_ids !== undefined || !this.rooms.has(event.roomId)) return undefined;
    if (this.storedById.has(event.eventId)) return undefined;
    const known = new Map<string, StoredEvent | undefined>();
    // In room version 12 the create event is not among the auth events but is read all the same.
    const create = event.roomVersion.roomIdFromCreateEvent ? [`$${event.roomId.slice(1)}`] : [];
    for (const id of [...event.authEventIds, ...event.prevEventIds, ...create]) {
      const e = this.storedById.get(id);
      if (!e) return undefined;
      known.set(id, e);
    }
    known.set(event.eventId, undefined);
    return known;
  }

  private rememberStored(eventId: string, e: StoredEvent): void {
    if (this.storedById.size >= STORED_CACHE_LIMIT && !this.storedById.has(eventId)) {
      let drop = STORED_CACHE_LIMIT / 4;
      for (const k of this.storedById.keys()) {
        this.storedById.delete(k);
        if (--drop <= 0) break;
      }
    }
    this.storedById.set(eventId, e);
  }

  private rememberStateAfter(eventNid: number, snapshotNid: number): void {
    if (this.stateAfterCache.size >= STATE_AFTER_CACHE_LIMIT) {
      let drop = STATE_AFTER_CACHE_LIMIT / 4;
      for (const k of this.stateAfterCache.keys()) {
        this.stateAfterCache.delete(k);
        if (--drop <= 0) break;
      }
    }
    this.stateAfterCache.set(eventNid, snapshotNid);
  }

  /** Stored events by ID, through the batch's record (a query only for IDs it has not seen). */
  private async lookup(ctx: TxContext, ids: readonly string[]): Promise<Map<string, StoredEvent>> {
    const { known } = ctx.batch;
    const missing = [...new Set(ids)].filter((id) => !known.has(id));
    if (missing.length > 0) {
      for (const id of missing) known.set(id, undefined);
      for (const s of await ctx.events.eventsByIds(missing)) known.set(s.eventId, s);
    }
    const out = new Map<string, StoredEvent>();
    for (const id of ids) {
      const s = known.get(id);
      if (s) out.set(id, s);
    }
    return out;
  }

  /** Stores an event, keeping the batch's record of it current. */
  private async store(ctx: TxContext, e: NewEvent, event: Event): Promise<number> {
    const res = await ctx.events.storeEvent(e, undefined, { askRedactions: ctx.batch.shortcut });
    if (ctx.batch.shortcut) {
      if (res.existed) throw new StoredAlready(`event ${e.eventId} is stored already`);
      if (res.redactionPending) ctx.batch.redactionTargets.add(e.eventId);
    }
    // An outlier taken into the DAG was updated: read again when asked for.
    if (res.stored) ctx.batch.known.set(e.eventId, res.stored);
    else ctx.batch.known.delete(e.eventId);
    // Its JSON as stored is the event's own: the loader can have it without reading it back.
    if (res.stored && res.stored.stateSnapshotNid !== null) ctx.batch.loaded.push({ stored: res.stored, event });
    ctx.batch.touched.push(res.eventNid);
    return res.eventNid;
  }

  private async stateAfter(ctx: TxContext, room: RoomInfo, e: StoredEvent): Promise<number> {
    return ctx.batch.stateAfter.get(e.eventNid) ?? this.stateAfterCache.get(e.eventNid) ?? ctx.state.stateAfter(room, e);
  }

  private async processIn(ctx: TxContext, input: InputRoomEvent, event: Event): Promise<Processed> {
    const { events, loader, state } = ctx;
    const rv = event.roomVersion;
    const eventId = event.eventId;

    // The event, its auth events and its prev events (read with the batch's).
    const known = await this.lookup(ctx, [eventId, ...event.authEventIds, ...event.prevEventIds]);
    const existing = known.get(eventId);
    if (existing && (existing.stateSnapshotNid !== null || input.kind === 'outlier')) return { verdict: { event_id: eventId, status: 'duplicate' } };

    // The room: a create event makes it; anything else needs it known (fetching it is federation's part).
    const cached = ctx.batch.rooms.get(event.roomId) ?? this.rooms.get(event.roomId);
    let room = cached?.info ?? (await events.room(event.roomId));
    if (!room) {
      if (event.type !== 'm.room.create' || event.stateKey !== '') throw new InputError(`room ${event.roomId} is not known here`);
      room = await events.ensureRoom(event.roomId, rv.id);
    }
    if (room.roomVersion !== rv.id) throw new InputError(`event is for room version ${rv.id}, the room is ${room.roomVersion}`);

    // Step 4: the event's own auth events.
    const missingAuth = event.authEventIds.filter((id) => !known.has(id));
    if (missingAuth.length > 0) throw new InputError(`missing auth events: ${missingAuth.join(', ')}`);
    const authLoaded = await loader.byNids(
      event.authEventIds.map((id) => known.get(id)!.eventNid),
      rv.id,
    );
    const authEvents = event.authEventIds.map((id) => authLoaded.get(known.get(id)!.eventNid)!);
    const create = rv.roomIdFromCreateEvent && event.type !== 'm.room.create' ? await this.createEventOf(ctx, room) : undefined;
    let rejection: string | null = null;
    try {
      checkEventAuthAgainstAuthEvents(
        event,
        authEvents.map((a) => a.event),
        { isRejected: (id) => known.get(id)?.isRejected ?? false, ...(create ? { create } : {}) },
      );
    } catch (e) {
      if (!(e instanceof MatrixProtocolError)) throw e;
      rejection = `auth events: ${e.message}`;
    }
    // A redaction can only ever redact an event of its own room. One naming a known event of
    // another room is a forgery or a mistake: rejected, so it never reaches the room's timeline
    // (an unknown target is checked when it arrives: see applyRedactions).
    if (rejection === null && event.type === 'm.room.redaction' && event.redacts !== undefined) {
      const target = (await this.lookup(ctx, [event.redacts])).get(event.redacts);
      if (target && target.roomNid !== room.roomNid) rejection = `redaction: ${event.redacts} is an event of another room`;
    }

    const base = {
      roomNid: room.roomNid,
      eventId,
      type: event.type,
      stateKey: event.stateKey,
      depth: event.depth,
      json: JSON.stringify(event.json),
      authEventNids: authEvents.map((a) => a.stored.eventNid),
      originServerTs: Number.isSafeInteger(event.originServerTs) ? event.originServerTs : null,
    };

    if (input.kind === 'outlier') {
      await this.store(ctx, { ...base, stateSnapshotNid: null, rejectionReason: rejection }, event);
      return { verdict: verdict(eventId, rejection, false) };
    }

    // The state before the event: given with it, or from its prev events.
    let stateBefore = 0;
    const prevs = event.prevEventIds.map((id) => known.get(id)).filter((p): p is StoredEvent => p !== undefined && p.stateSnapshotNid !== null);
    const roomNid = room.roomNid;
    /** A snapshot of the state events `ids` (stored already; rejected ones and other rooms' left out). */
    const snapshotOf = async (ids: readonly string[]): Promise<number> => {
      const wanted = [...new Set(ids)];
      const given = await events.eventsByIds(wanted);
      if (given.length !== wanted.length) {
        const have = new Set(given.map((g) => g.eventId));
        throw new InputError(`missing state events: ${wanted.filter((id) => !have.has(id)).join(', ')}`);
      }
      // One event per (type, state key): a state list naming two is not one the room ever had; the first stands.
      const entries = new Map<string, { typeNid: number; stateKeyNid: number; eventNid: number }>();
      for (const g of given) {
        if (g.isRejected || g.stateKeyNid === null || g.roomNid !== roomNid) continue;
        const key = `${g.typeNid}/${g.stateKeyNid}`;
        if (!entries.has(key)) entries.set(key, { typeNid: g.typeNid, stateKeyNid: g.stateKeyNid, eventNid: g.eventNid });
      }
      return ctx.snapshots.apply(roomNid, 0, [...entries.values()]);
    };
    if (input.state_event_ids !== undefined && event.type !== 'm.room.create') {
      stateBefore = await snapshotOf(input.state_event_ids);
    } else if (event.type !== 'm.room.create') {
      // Prev events without state here count with the state after them the sender gave, if it did.
      const bridged = input.prev_states ?? {};
      const missing = [...new Set(event.prevEventIds.filter((id) => !prevs.some((p) => p.eventId === id)))];
      const unbridged = missing.filter((id) => !Array.isArray(bridged[id]));
      if (unbridged.length > 0) throw new InputError(`missing prev events (or their state): ${unbridged.join(', ')}`);
      const sets = await Promise.all(prevs.map((p) => this.stateAfter(ctx, room!, p)));
      for (const id of missing) sets.push(await snapshotOf(bridged[id]!));
      stateBefore = await state.resolve(room, sets);
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
    // (A room with no current state yet, joined over federation, has nothing to soft-fail against.)
    if (rejection === null && input.kind === 'new' && event.type !== 'm.room.create' && room.stateSnapshotNid !== 0 && room.stateSnapshotNid !== stateBefore) {
      const inCurrent = await state.authEventsIn(room, room.stateSnapshotNid, event);
      try {
        checkEventAuth(event, authEventsFromList(inCurrent.map((l) => l.event)));
      } catch (e) {
        if (!(e instanceof MatrixProtocolError)) throw e;
        softFail = `current state: ${e.message}`;
      }
    }

    const eventNid = await this.store(ctx, { ...base, stateSnapshotNid: stateBefore, rejectionReason: rejection, softFailed: softFail !== null }, event);
    if (rejection !== null || softFail !== null) return { verdict: verdict(eventId, rejection, softFail !== null) };

    // The state after it, remembered for the events that will build on it.
    const stateAfter =
      event.stateKey === undefined
        ? stateBefore
        : await ctx.snapshots.apply(room.roomNid, stateBefore, [
            {
              typeNid: (await events.typeNids([event.type])).get(event.type)!,
              stateKeyNid: (await events.stateKeyNids([event.stateKey])).get(event.stateKey)!,
              eventNid,
            },
          ]);

    const headered: HeaderedEvent = { room_version: rv.id, pdu: event.json as PDUJson };
    let msgId: string;
    let output: OutputRoomEvent;
    let roomAfter: RoomCache | undefined = cached;
    const extra: Array<{ msgId: string; output: OutputRoomEvent }> = [];
    if (input.kind === 'old') {
      msgId = `old:${eventId}`;
      output = { type: 'old_room_event', old_room_event: { event: headered } };
    } else {
      const advanced = await this.advance(ctx, room, cached, { eventNid, eventId, event, prevs, stateAfter });
      roomAfter = advanced.room;
      extra.push(...advanced.invites);
      msgId = `new:${eventId}`;
      output = {
        type: 'new_room_event',
        new_room_event: {
          event: headered,
          adds_state_event_ids: advanced.adds,
          removes_state_event_ids: advanced.removes,
          latest_event_ids: advanced.room.latest.map((l) => l.eventId),
          ...(input.transaction_id ? { transaction_id: input.transaction_id } : {}),
        },
      };
    }
    return {
      verdict: verdict(eventId, null, false),
      ...(roomAfter ? { room: roomAfter } : {}),
      stateAfter: { eventNid, snapshotNid: stateAfter },
      outputs: { roomNid: room.roomNid, list: orderWithRedactions({ msgId, output }, extra, await this.applyRedactions(ctx, room, event, stateBefore)) },
    };
  }

  /**
   * Moves the forward extremities and the current state for an accepted new event. No stored
   * event with state can name this one as a prev event (it would have been refused for a prev
   * event without state), so the event is always a forward extremity.
   */
  private async advance(
    ctx: TxContext,
    room: RoomInfo,
    cached: RoomCache | undefined,
    e: { eventNid: number; eventId: string; event: Event; prevs: StoredEvent[]; stateAfter: number },
  ): Promise<{ adds: string[]; removes: string[]; room: RoomCache; invites: Array<{ msgId: string; output: OutputRoomEvent }> }> {
    const { events, snapshots, state, loader } = ctx;
    const before =
      cached?.latest ??
      (await events.eventsByNids(await events.forwardExtremities(room.roomNid))).map((x) => ({ eventNid: x.eventNid, eventId: x.eventId }));
    const prevNids = new Set(e.prevs.map((p) => p.eventNid));
    const others = before.filter((l) => !prevNids.has(l.eventNid));
    const latest = [...others, { eventNid: e.eventNid, eventId: e.eventId }].sort((a, b) => a.eventNid - b.eventNid);

    let current = e.stateAfter;
    if (others.length > 0) {
      const otherStored = await events.eventsByNids(others.map((o) => o.eventNid));
      current = await state.resolve(room, [e.stateAfter, ...(await Promise.all(otherStored.map((o) => this.stateAfter(ctx, room, o))))]);
    }
    const diff = await snapshots.diff(room.stateSnapshotNid, current);
    // Written before the commit, once for the batch (its later events read the room from it).
    const moved = ctx.batch.moved.get(room.roomNid);
    ctx.batch.moved.set(room.roomNid, {
      latest: latest.map((l) => l.eventNid),
      stateSnapshotNid: current,
      stateChanged: (moved?.stateChanged ?? false) || current !== room.stateSnapshotNid,
    });
    const names = await loader.byNids(
      [...diff.added, ...diff.removed].map((d) => d.eventNid).filter((n) => n !== e.eventNid),
      room.roomVersion,
    );
    const idOf = (nid: number): string => (nid === e.eventNid ? e.eventId : names.get(nid)!.stored.eventId);
    // Memberships follow the current state.
    const memberType = (await events.typeNids(['m.room.member'])).get('m.room.member')!;
    const stillThere = new Set<number>();
    const membershipOf = (ev: Event): string => (typeof ev.content['membership'] === 'string' ? ev.content['membership'] : 'leave');
    const previously = new Map(diff.removed.filter((r) => r.typeNid === memberType).map((r) => [r.stateKeyNid, names.get(r.eventNid)?.event]));
    const invites: Array<{ msgId: string; output: OutputRoomEvent }> = [];
    const local = (userId: string): boolean => userId.endsWith(`:${this.deps.serverName}`);
    for (const a of diff.added) {
      if (a.typeNid !== memberType) continue;
      const member = a.eventNid === e.eventNid ? e.event : names.get(a.eventNid)!.event;
      const membership = membershipOf(member);
      const target = member.stateKey ?? '';
      await events.setMembership(room.roomNid, a.stateKeyNid, target, membership, a.eventNid);
      stillThere.add(a.stateKeyNid);
      // Invites of local users, and their end, for the invitee's /sync.
      const old = previously.get(a.stateKeyNid);
      if (!local(target)) continue;
      if (membership === 'invite' && (old === undefined || membershipOf(old) !== 'invite')) {
        invites.push({ msgId: `invite:${member.eventId}`, output: { type: 'new_invite_event', new_invite_event: { event: { room_version: room.roomVersion, pdu: member.json as PDUJson } } } });
      } else if (membership !== 'invite' && old !== undefined && membershipOf(old) === 'invite') {
        invites.push({
          msgId: `retire:${old.eventId}:${member.eventId}`,
          output: { type: 'retire_invite_event', retire_invite_event: { event_id: old.eventId, target_user_id: target, membership, retired_by_event_id: member.eventId } },
        });
      }
    }
    for (const r of diff.removed) if (r.typeNid === memberType && !stillThere.has(r.stateKeyNid)) await events.removeMembership(room.roomNid, r.stateKeyNid);
    return {
      adds: diff.added.map((d) => idOf(d.eventNid)),
      removes: diff.removed.map((d) => idOf(d.eventNid)),
      room: { info: { ...room, stateSnapshotNid: current }, latest },
      invites,
    };
  }

  /**
   * Redactions ("Handling redactions"): an accepted redaction whose target is known redacts the
   * target's stored JSON when it takes effect; one whose target is unknown waits for it; an
   * event that arrives after its redaction is redacted on arrival. Each applied redaction is a
   * `redacted_event` output: `byEvent` those the event itself makes, `ofEvent` those that
   * redact the event on arrival.
   */
  private async applyRedactions(ctx: TxContext, room: RoomInfo, event: Event, stateBefore: number): Promise<{ byEvent: RedactionOutput[]; ofEvent: RedactionOutput[] }> {
    const { events, loader, state } = ctx;
    const pairs: Array<{ redaction: Event; redactionState: number | null; target: Event; targetNid: number }> = [];
    if (event.type === 'm.room.redaction' && event.redacts !== undefined) {
      const target = (await this.lookup(ctx, [event.redacts])).get(event.redacts);
      if (!target) {
        await events.addPendingRedaction(event.eventId, event.redacts);
        ctx.batch.redactionTargets.add(event.redacts);
      }
      else if (target.roomNid === room.roomNid) {
        const loaded = (await loader.byNids([target.eventNid], room.roomVersion)).get(target.eventNid);
        if (loaded) pairs.push({ redaction: event, redactionState: stateBefore, target: loaded.event, targetNid: target.eventNid });
      }
    }
    const pending = ctx.batch.redactionTargets.has(event.eventId) ? await events.takePendingRedactions(event.eventId) : [];
    for (const redactionId of pending) {
      const stored = (await this.lookup(ctx, [redactionId])).get(redactionId);
      if (!stored || stored.roomNid !== room.roomNid || stored.isRejected) continue;
      const loaded = (await loader.byNids([stored.eventNid], room.roomVersion)).get(stored.eventNid);
      const self = (await this.lookup(ctx, [event.eventId])).get(event.eventId);
      if (loaded && self) pairs.push({ redaction: loaded.event, redactionState: stored.stateSnapshotNid, target: event, targetNid: self.eventNid });
    }
    const byEvent: RedactionOutput[] = [];
    const ofEvent: RedactionOutput[] = [];
    for (const p of pairs) {
      // The redaction's power is judged by the state before it (its own auth events for an outlier).
      const authState =
        p.redactionState === null
          ? authEventsFromList([...(await loader.byIds(p.redaction.authEventIds, room.roomVersion)).values()].map((l) => l.event))
          : authEventsFromList((await state.authEventsIn(room, p.redactionState, p.redaction)).map((l) => l.event));
      if (!redactionTakesEffect(p.redaction, p.target, authState)) continue;
      await events.redact(p.targetNid, JSON.stringify(redactEvent(p.target.json, p.target.roomVersion)));
      loader.forget(p.targetNid);
      ctx.batch.touched.push(p.targetNid);
      ctx.batch.redacted.add(p.targetNid);
      (p.redaction === event ? byEvent : ofEvent).push({
        msgId: `redacted:${p.target.eventId}:${p.redaction.eventId}`,
        output: { type: 'redacted_event', redacted_event: { redacted_event_id: p.target.eventId, redacted_because: { room_version: room.roomVersion, pdu: p.redaction.json as PDUJson } } },
      });
    }
    return { byEvent, ofEvent };
  }

  private async createEventOf(ctx: TxContext, room: RoomInfo): Promise<Event | undefined> {
    // In room version 12 the room ID is the create event's ID with "!" for "$".
    const id = `$${room.roomId.slice(1)}`;
    const stored = (await this.lookup(ctx, [id])).get(id);
    return stored && (await ctx.loader.byNids([stored.eventNid], room.roomVersion)).get(stored.eventNid)?.event;
  }
}

type RedactionOutput = { msgId: string; output: OutputRoomEvent };

/**
 * An event's outputs in the order consumers must see them: the targets it redacts first (a
 * reader who sees the redaction must find its target redacted), then the event and what comes
 * with it, then its own redaction by an earlier redaction that waited for it (it must be stored
 * before it can be redacted).
 */
function orderWithRedactions(own: RedactionOutput, extra: readonly RedactionOutput[], redactions: { byEvent: RedactionOutput[]; ofEvent: RedactionOutput[] }): RedactionOutput[] {
  return [...redactions.byEvent, own, ...extra, ...redactions.ofEvent];
}

function newBatch(shortcut: boolean): BatchState {
  return { rooms: new Map(), stateAfter: new Map(), touched: [], loaded: [], redacted: new Set(), known: new Map(), redactionTargets: new Set(), moved: new Map(), shortcut };
}

/** The writes that end a batch: extremities and state of the rooms it moved, its outputs, and `removing` out of the outbox. */
function batchWrites(batch: BatchState, out: readonly Processed[], removing: readonly number[]): BatchWrites {
  const outputs = out.flatMap((p) => p.outputs?.list ?? []);
  const roomNid = out.find((p) => p.outputs)?.outputs?.roomNid;
  return {
    rooms: [...batch.moved].map(([nid, m]) => ({ roomNid: nid, latest: m.latest, ...(m.stateChanged ? { stateSnapshotNid: m.stateSnapshotNid } : {}) })),
    ...(roomNid !== undefined ? { outbox: { roomNid, items: outputs.map((o) => ({ msgId: o.msgId, payload: JSON.stringify(o.output) })) } } : {}),
    removeFromOutbox: removing,
  };
}

/** Gives each processed event's outputs their outbox NIDs (in order, as batchWrites listed them). */
function withOutbox(out: Processed[], nids: readonly number[]): Processed[] {
  let next = 0;
  for (const p of out) if (p.outputs) p.outbox = p.outputs.list.map((o) => ({ outboxNid: nids[next++]!, ...o }));
  return out;
}

function verdict(eventId: string, rejection: string | null, softFailed: boolean): InputResult {
  if (rejection !== null) return { event_id: eventId, status: 'rejected', error: rejection };
  if (softFailed) return { event_id: eventId, status: 'soft_failed' };
  return { event_id: eventId, status: 'accepted' };
}

