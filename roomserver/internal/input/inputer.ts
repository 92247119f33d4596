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
import type { EventStore, NewEvent, RoomInfo, StoredEvent } from '../../storage/eventstore.js';
import type { StateSnapshotStore } from '../../storage/statesnapshots.js';
import type { EventLoader } from '../eventloader.js';
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
  /**
   * Events looked up in the transaction, by ID (undefined: not stored), kept current as it
   * stores events: the batch's events, their auth and prev events are read in one query.
   */
  known: Map<string, StoredEvent | undefined>;
  /** Targets of pending redactions among the batch's events (and those the batch adds). */
  redactionTargets: Set<string>;
  /** Rooms whose forward extremities (and current state) the batch moved: written once, before commit. */
  moved: Map<number, { latest: number[]; stateSnapshotNid: number; stateChanged: boolean }>;
}

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

export class Inputer {
  private readonly queues = new Map<string, Promise<unknown>>();
  private readonly rooms = new Map<string, RoomCache>();
  /** The state after recent events, so the next event's state before costs nothing. */
  private readonly stateAfterCache = new Map<number, number>();

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
  private async processBatch(items: readonly BatchItem[]): Promise<InputResult[]> {
    // SQLite work is synchronous: let waiting requests run between batches, so that a long
    // input (a big room's state on a join) does not stall the whole server.
    await new Promise<void>((resolve) => setImmediate(resolve));
    const batch: BatchState = { rooms: new Map(), stateAfter: new Map(), touched: [], known: new Map(), redactionTargets: new Set(), moved: new Map() };
    let failed: { at: number; error: unknown } | undefined;
    let txEvents: EventStore | undefined;
    let done: Processed[];
    try {
      // One transaction for all of it, every query inside it (SQLite has one connection; a read
      // outside would wait for the transaction forever).
      done = await this.deps.events.db.transaction().execute(async (tx) => {
        const events = (txEvents = this.deps.events.inTransaction(tx));
        const snapshots = this.deps.snapshots.inTransaction(tx);
        const loader = this.deps.loader.over(events);
        const ctx: TxContext = { events, snapshots, loader, state: new RoomState(events, snapshots, loader), batch };
        // What the batch's events will ask for, in two queries instead of two per event.
        await this.lookup(
          ctx,
          items.flatMap(({ event }) => [event.eventId, ...event.authEventIds, ...event.prevEventIds]),
        );
        batch.redactionTargets = await events.pendingRedactionTargets(items.map(({ event }) => event.eventId));
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
        for (const [roomNid, m] of batch.moved) {
          await events.setForwardExtremities(roomNid, m.latest);
          if (m.stateChanged) await events.setCurrentState(roomNid, m.stateSnapshotNid);
        }
        const outputs = out.flatMap((p) => p.outputs?.list ?? []);
        const roomNid = out.find((p) => p.outputs)?.outputs?.roomNid;
        if (roomNid !== undefined) {
          const nids = await events.addToOutbox(
            roomNid,
            outputs.map((o) => ({ msgId: o.msgId, payload: JSON.stringify(o.output) })),
          );
          let next = 0;
          for (const p of out) if (p.outputs) p.outbox = p.outputs.list.map((o) => ({ outboxNid: nids[next++]!, ...o }));
        }
        return out;
      });
    } catch (e) {
      // Nothing was written. The events it stored or redacted must leave the loader's cache
      // (SQLite hands their NIDs out again), and what this process believed about the room may
      // be what failed.
      for (const nid of batch.touched) this.deps.loader.forget(nid);
      const roomId = items[0]!.event.roomId;
      this.rooms.delete(roomId);
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
    txEvents?.keepCaches();
    for (const [roomId, room] of batch.rooms) this.rooms.set(roomId, room);
    for (const [eventNid, snapshotNid] of batch.stateAfter) this.rememberStateAfter(eventNid, snapshotNid);
    await this.publishOutputs(items[0]!.event.roomId, done);
    return done.map((d) => d.verdict);
  }

  /**
   * Publishes the committed events' outputs, in order, then takes them out of the outbox. The
   * events are stored: their verdicts stand. An output that cannot be published now stays in the
   * outbox for the next start, and so do those after it (they must not overtake it).
   */
  private async publishOutputs(roomId: string, done: readonly Processed[]): Promise<void> {
    const published: number[] = [];
    try {
      for (const d of done) {
        for (const { outboxNid, msgId, output } of d.outbox ?? []) {
          await this.deps.publish(roomId, msgId, output);
          published.push(outboxNid);
        }
      }
    } catch (err) {
      this.deps.log.warn({ err, room_id: roomId }, 'roomserver output not published yet');
    }
    try {
      await this.deps.events.removeFromOutbox(published);
    } catch (err) {
      // Published twice at the next start, which consumers recognise (same message IDs).
      this.deps.log.warn({ err, room_id: roomId }, 'roomserver outbox not cleared');
    }
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
  private async store(ctx: TxContext, e: NewEvent): Promise<number> {
    const res = await ctx.events.storeEvent(e);
    // An outlier taken into the DAG was updated: read again when asked for.
    if (res.stored) ctx.batch.known.set(e.eventId, res.stored);
    else ctx.batch.known.delete(e.eventId);
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
      await this.store(ctx, { ...base, stateSnapshotNid: null, rejectionReason: rejection });
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

    const eventNid = await this.store(ctx, { ...base, stateSnapshotNid: stateBefore, rejectionReason: rejection, softFailed: softFail !== null });
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
      outputs: { roomNid: room.roomNid, list: [{ msgId, output }, ...extra, ...(await this.applyRedactions(ctx, room, event, stateBefore))] },
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
   * `redacted_event` output.
   */
  private async applyRedactions(ctx: TxContext, room: RoomInfo, event: Event, stateBefore: number): Promise<Array<{ msgId: string; output: OutputRoomEvent }>> {
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
    const outputs: Array<{ msgId: string; output: OutputRoomEvent }> = [];
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
      outputs.push({
        msgId: `redacted:${p.target.eventId}:${p.redaction.eventId}`,
        output: { type: 'redacted_event', redacted_event: { redacted_event_id: p.target.eventId, redacted_because: { room_version: room.roomVersion, pdu: p.redaction.json as PDUJson } } },
      });
    }
    return outputs;
  }

  private async createEventOf(ctx: TxContext, room: RoomInfo): Promise<Event | undefined> {
    // In room version 12 the room ID is the create event's ID with "!" for "$".
    const id = `$${room.roomId.slice(1)}`;
    const stored = (await this.lookup(ctx, [id])).get(id);
    return stored && (await ctx.loader.byNids([stored.eventNid], room.roomVersion)).get(stored.eventNid)?.event;
  }
}

function verdict(eventId: string, rejection: string | null, softFailed: boolean): InputResult {
  if (rejection !== null) return { event_id: eventId, status: 'rejected', error: rejection };
  if (softFailed) return { event_id: eventId, status: 'soft_failed' };
  return { event_id: eventId, status: 'accepted' };
}

