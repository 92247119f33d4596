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
import { authEventsFromList, checkEventAuth, checkEventAuthAgainstAuthEvents, redactionTakesEffect } from '../../../internal/matrix/auth/index.js';
import { Event, MatrixProtocolError, redactEvent, roomVersion as lookupRoomVersion, type PDUJson } from '../../../internal/matrix/index.js';
import type { HeaderedEvent, InputResult, InputRoomEvent, OutputRoomEvent } from '../../api/index.js';
import type { EventStore, RoomInfo, StoredEvent } from '../../storage/eventstore.js';
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
}

/** Why processing stopped without a verdict on the event (not a rejection). */
class InputError extends Error {}

/** What this process knows of a room's committed state (it is the rooms' only writer). */
interface RoomCache {
  info: RoomInfo;
  /** Forward extremities. */
  latest: Array<{ eventNid: number; eventId: string }>;
}

/** What one event's transaction changes, applied to the caches once it commits. */
interface Processed {
  verdict: InputResult;
  room?: RoomCache;
  stateAfter?: { eventNid: number; snapshotNid: number };
  outbox?: Array<{ outboxNid: number; msgId: string; output: OutputRoomEvent }>;
}

const STATE_AFTER_CACHE_LIMIT = 100_000;

export class Inputer {
  private readonly queues = new Map<string, Promise<unknown>>();
  private readonly rooms = new Map<string, RoomCache>();
  /** The state after recent events, so the next event's state before costs nothing. */
  private readonly stateAfterCache = new Map<number, number>();

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
      return this.processOne(built, Event.fromPDU(built.event.pdu, rv));
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

  private async processOne(input: InputRoomEvent, event: Event): Promise<InputResult> {
    // SQLite work is synchronous: let waiting requests run between events, so that a long
    // batch (a big room's state on a join) does not stall the whole server.
    await new Promise<void>((resolve) => setImmediate(resolve));
    let done: Processed;
    try {
      // One transaction for all of it, every query inside it (SQLite has one connection; a read
      // outside would wait for the transaction forever).
      done = await this.deps.events.db.transaction().execute(async (tx) => {
        const events = this.deps.events.inTransaction(tx);
        const snapshots = this.deps.snapshots.inTransaction(tx);
        const loader = this.deps.loader.over(events);
        return this.processIn({ events, snapshots, loader, state: new RoomState(events, snapshots, loader) }, input, event);
      });
    } catch (e) {
      // Nothing was written; what this process believed about the room may be what failed.
      this.rooms.delete(event.roomId);
      if (!(e instanceof InputError) && !(e instanceof MatrixProtocolError)) {
        this.deps.log.error({ err: e, event_id: event.eventId, room_id: event.roomId }, 'roomserver input failed');
      }
      return { event_id: event.eventId, status: 'error', error: e instanceof Error ? e.message : String(e) };
    }
    if (done.room) this.rooms.set(done.room.info.roomId, done.room);
    if (done.stateAfter) this.rememberStateAfter(done.stateAfter.eventNid, done.stateAfter.snapshotNid);
    // The event is stored: its verdict stands. An output that cannot be published now stays
    // in the outbox for the next start.
    try {
      for (const { outboxNid, msgId, output } of done.outbox ?? []) {
        await this.deps.publish(event.roomId, msgId, output);
        await this.deps.events.removeFromOutbox([outboxNid]);
      }
    } catch (err) {
      this.deps.log.warn({ err, room_id: event.roomId, event_id: event.eventId }, 'roomserver output not published yet');
    }
    return done.verdict;
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

  private async stateAfter(ctx: TxContext, room: RoomInfo, e: StoredEvent): Promise<number> {
    return this.stateAfterCache.get(e.eventNid) ?? ctx.state.stateAfter(room, e);
  }

  private async processIn(ctx: TxContext, input: InputRoomEvent, event: Event): Promise<Processed> {
    const { events, loader, state } = ctx;
    const rv = event.roomVersion;
    const eventId = event.eventId;

    // The event, its auth events and its prev events, in one query.
    const known = new Map((await events.eventsByIds([eventId, ...event.authEventIds, ...event.prevEventIds])).map((e) => [e.eventId, e]));
    const existing = known.get(eventId);
    if (existing && (existing.stateSnapshotNid !== null || input.kind === 'outlier')) return { verdict: { event_id: eventId, status: 'duplicate' } };

    // The room: a create event makes it; anything else needs it known (fetching it is federation's part).
    const cached = this.rooms.get(event.roomId);
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
    const create = rv.roomIdFromCreateEvent && event.type !== 'm.room.create' ? await this.createEventOf(loader, room) : undefined;
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
    };

    if (input.kind === 'outlier') {
      await events.storeEvent({ ...base, stateSnapshotNid: null, rejectionReason: rejection });
      return { verdict: verdict(eventId, rejection, false) };
    }

    // The state before the event: given with it, or from its prev events.
    let stateBefore = 0;
    const prevs = event.prevEventIds.map((id) => known.get(id)).filter((p): p is StoredEvent => p !== undefined && p.stateSnapshotNid !== null);
    if (input.state_event_ids !== undefined && event.type !== 'm.room.create') {
      const wanted = [...new Set(input.state_event_ids)];
      const given = await events.eventsByIds(wanted);
      if (given.length !== wanted.length) {
        const have = new Set(given.map((g) => g.eventId));
        throw new InputError(`missing state events: ${wanted.filter((id) => !have.has(id)).join(', ')}`);
      }
      // One event per (type, state key): a state list naming two is not one the room ever had; the first stands.
      const entries = new Map<string, { typeNid: number; stateKeyNid: number; eventNid: number }>();
      for (const g of given) {
        if (g.isRejected || g.stateKeyNid === null || g.roomNid !== room.roomNid) continue;
        const key = `${g.typeNid}/${g.stateKeyNid}`;
        if (!entries.has(key)) entries.set(key, { typeNid: g.typeNid, stateKeyNid: g.stateKeyNid, eventNid: g.eventNid });
      }
      stateBefore = await ctx.snapshots.apply(room.roomNid, 0, [...entries.values()]);
    } else if (event.type !== 'm.room.create') {
      if (prevs.length !== new Set(event.prevEventIds).size) {
        const missing = event.prevEventIds.filter((id) => !prevs.some((p) => p.eventId === id));
        throw new InputError(`missing prev events (or their state): ${missing.join(', ')}`);
      }
      stateBefore = await state.resolve(room, await Promise.all(prevs.map((p) => this.stateAfter(ctx, room!, p))));
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

    const { eventNid } = await events.storeEvent({ ...base, stateSnapshotNid: stateBefore, rejectionReason: rejection, softFailed: softFail !== null });
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
    const outputs = [{ msgId, output }, ...extra, ...(await this.applyRedactions(ctx, room, event, stateBefore))];
    const nids = await events.addToOutbox(
      room.roomNid,
      outputs.map((o) => ({ msgId: o.msgId, payload: JSON.stringify(o.output) })),
    );
    return {
      verdict: verdict(eventId, null, false),
      ...(roomAfter ? { room: roomAfter } : {}),
      stateAfter: { eventNid, snapshotNid: stateAfter },
      outbox: outputs.map((o, i) => ({ outboxNid: nids[i]!, ...o })),
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
    await events.setForwardExtremities(
      room.roomNid,
      latest.map((l) => l.eventNid),
    );

    let current = e.stateAfter;
    if (others.length > 0) {
      const otherStored = await events.eventsByNids(others.map((o) => o.eventNid));
      current = await state.resolve(room, [e.stateAfter, ...(await Promise.all(otherStored.map((o) => this.stateAfter(ctx, room, o))))]);
    }
    const diff = await snapshots.diff(room.stateSnapshotNid, current);
    if (current !== room.stateSnapshotNid) await events.setCurrentState(room.roomNid, current);
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
      const [target] = await events.eventsByIds([event.redacts]);
      if (!target) await events.addPendingRedaction(event.eventId, event.redacts);
      else if (target.roomNid === room.roomNid) {
        const loaded = (await loader.byNids([target.eventNid], room.roomVersion)).get(target.eventNid);
        if (loaded) pairs.push({ redaction: event, redactionState: stateBefore, target: loaded.event, targetNid: target.eventNid });
      }
    }
    for (const redactionId of await events.takePendingRedactions(event.eventId)) {
      const [stored] = await events.eventsByIds([redactionId]);
      if (!stored || stored.roomNid !== room.roomNid || stored.isRejected) continue;
      const loaded = (await loader.byNids([stored.eventNid], room.roomVersion)).get(stored.eventNid);
      const [self] = await events.eventsByIds([event.eventId]);
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
      outputs.push({
        msgId: `redacted:${p.target.eventId}:${p.redaction.eventId}`,
        output: { type: 'redacted_event', redacted_event: { redacted_event_id: p.target.eventId, redacted_because: { room_version: room.roomVersion, pdu: p.redaction.json as PDUJson } } },
      });
    }
    return outputs;
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

