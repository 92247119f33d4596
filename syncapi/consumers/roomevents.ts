/**
 * The common OutputRoomEvents (`new_room_event`, `old_room_event`) handled a batch at a time:
 * the batch's events are stored in one database transaction, in stream order, and the /sync
 * requests they concern are woken once, after the commit. Each event is stored exactly as it
 * would be on its own (positions in batch order, current state, gaps, relations); what the
 * batch shares is the commit, and what it reads once per room instead of once per event:
 * the room's audience (joined and invited members, read again after a state change) and its
 * peekers (read again after a join ended some peeks).
 *
 * Nothing inside the transaction waits on the roomserver (on SQLite the transaction holds the
 * one connection, which a roomserver on the same file would need): the state events a batch
 * lacks are fetched before it begins. The search index is written after the commit, in one
 * call, and stays best effort as before.
 */
import type { Logger } from 'pino';
import { Event } from '../../internal/matrix/index.js';
import type { PDUJson } from '../../internal/matrix/index.js';
import type { HeaderedEvent, OutputRoomEvent, RoomserverInternalAPI } from '../../roomserver/api/index.js';
import { storeHistorical } from '../internal/backfill.js';
import type { Notifier } from '../internal/notifier.js';
import { PeekStore } from '../storage/peeks.js';
import { parseRelation, RelationsStore } from '../storage/relations.js';
import { searchDocument, type SearchDocument, type SearchIndex } from '../storage/search.js';
import type { SyncStore } from '../storage/syncstore.js';

export type BatchedRoomEvent = Extract<OutputRoomEvent, { type: 'new_room_event' | 'old_room_event' }>;

export function isBatchedRoomEvent(out: OutputRoomEvent): out is BatchedRoomEvent {
  return out.type === 'new_room_event' || out.type === 'old_room_event';
}

export interface RoomEventDeps {
  store: SyncStore;
  notifier: Notifier;
  rsAPI: Pick<RoomserverInternalAPI, 'queryEventsById'>;
  log: Logger;
  search?: SearchIndex;
  /** After the commit: a join ended peeks in this room (its last peeker may be gone). */
  peeksEnded(roomId: string): Promise<void>;
}

interface Prepared {
  headered: HeaderedEvent;
  event: Event;
  /** new_room_event only. */
  fresh?: { adds: string[]; removes: string[]; txn: { device_id: string; transaction_id: string } | undefined; missing: Set<string> };
}

function parse(e: HeaderedEvent): Event {
  return Event.fromPDU(e.pdu, e.room_version);
}

/** Stores a run of new and old room events in one transaction and wakes their audience once. */
export async function storeRoomEvents(d: RoomEventDeps, outs: readonly BatchedRoomEvent[]): Promise<void> {
  const prepared: Prepared[] = outs.map((out) => {
    if (out.type === 'old_room_event') return { headered: out.old_room_event.event, event: parse(out.old_room_event.event) };
    const n = out.new_room_event;
    return { headered: n.event, event: parse(n.event), fresh: { adds: n.adds_state_event_ids, removes: n.removes_state_event_ids, txn: n.transaction_id, missing: new Set() } };
  });
  const fetched = await fetchMissingState(d, prepared);

  const docs: SearchDocument[] = [];
  const wake = { pos: undefined as number | undefined, users: new Set<string>() };
  const peeksEnded = new Set<string>();
  await d.store.inTransaction(async (store) => {
    const relations = new RelationsStore(store.db);
    const peeks = new PeekStore(store.db);
    const audiences = new Map<string, string[]>();
    const peekersOf = new Map<string, string[]>();
    /** Joined and invited users of a room: who must hear of its events. Kept until its state changes. */
    const audience = async (roomId: string): Promise<string[]> => {
      let a = audiences.get(roomId);
      if (!a) audiences.set(roomId, (a = (await store.membersOf([roomId], ['join', 'invite'])).get(roomId) ?? []));
      return a;
    };
    const peekers = async (roomId: string): Promise<string[]> => {
      let p = peekersOf.get(roomId);
      if (!p) peekersOf.set(roomId, (p = await peeks.peekers(roomId)));
      return p;
    };

    for (const { headered, event, fresh } of prepared) {
      if (!fresh) {
        // History (backfilled): stored below the stream (never new to /sync, wakes no one),
        // changing no current state; /messages finds it by its depth. A backfill that /messages
        // waited for stored it already.
        const { pos } = await storeHistorical(store, headered, event);
        index(docs, event, pos);
        await addRelation(relations, event, pos);
        continue;
      }
      const before = await audience(event.roomId);
      // State the roomserver added that this component has not seen (the state a remote join or
      // a peek over federation brought, or state resolution picked) is stored as history, below
      // the stream, as Synapse keeps it as outliers: it goes into the current state with this
      // event, and was state before it (a timeline starting here has it in its state section),
      // but it is never timeline (Sytest "State from remote users is included in the state in
      // the initial sync"); /messages finds it by depth, and backfill fills around it.
      const asHistory = new Set<string>();
      for (const h of fetched) {
        if (!fresh.missing.has(h.event.eventId)) continue;
        const { pos } = await storeHistorical(store, h.headered, h.event);
        if (pos < 0) asHistory.add(h.event.eventId);
      }
      const { adds, removes, txn } = fresh;
      const { pos } = await store.insertEvent({
        roomId: event.roomId,
        eventId: event.eventId,
        type: event.type,
        sender: event.sender,
        stateKey: event.stateKey ?? null,
        json: JSON.stringify(event.json),
        roomVersion: headered.room_version,
        addsState: adds.filter((id) => !asHistory.has(id)),
        removesState: removes,
        ...(txn ? { txn: { deviceId: txn.device_id, txnId: txn.transaction_id } } : {}),
        depth: event.depth,
        prevEventIds: event.prevEventIds,
      });
      index(docs, event, pos);
      await addRelation(relations, event, pos);
      let after = before;
      if (adds.length > 0 || removes.length > 0) {
        const stored = await store.events(adds);
        await store.updateCurrentState(
          event.roomId,
          stored
            .filter((s) => s.stateKey !== null)
            .map((s) => {
              const content = (JSON.parse(s.json) as PDUJson).content as Record<string, unknown> | undefined;
              return { eventId: s.eventId, type: s.type, stateKey: s.stateKey!, membership: s.type === 'm.room.member' && typeof content?.['membership'] === 'string' ? content['membership'] : null };
            }),
          removes,
          pos,
        );
        audiences.delete(event.roomId);
        after = await audience(event.roomId);
      }
      // A join turns the user's peeks into the join (their syncs give the room under `join`).
      if (event.type === 'm.room.member' && event.stateKey !== undefined && (event.content as { membership?: unknown }).membership === 'join') {
        if (await peeks.removeUser(event.stateKey, event.roomId)) {
          peeksEnded.add(event.roomId);
          peekersOf.delete(event.roomId);
        }
      }
      for (const u of before) wake.users.add(u);
      for (const u of after) wake.users.add(u);
      for (const u of await peekers(event.roomId)) wake.users.add(u);
      // The target of a membership change hears of it whatever it is (a knock, a rejected invite).
      if (event.type === 'm.room.member' && event.stateKey !== undefined) wake.users.add(event.stateKey);
      wake.pos = Math.max(wake.pos ?? pos, pos);
    }
  });

  // Search is best effort: a failure is logged (POST /_dendrite/admin/fulltext/reindex repairs it), /sync goes on.
  // Indexed before the wake-up, so that a client that sees an event can find it.
  if (d.search && docs.length > 0) {
    await d.search.index(docs).catch((err: unknown) => d.log.error({ err, events: docs.length, first: docs[0]!.eventId }, 'search: cannot index the events'));
  }
  for (const roomId of peeksEnded) await d.peeksEnded(roomId);
  // One wake-up for the batch, at its last position: each woken /sync reads everything up to it.
  if (wake.pos !== undefined) d.notifier.advance('pdu', wake.pos, wake.users);
}

/**
 * The state events each new event adds that syncapi will not hold by the time the event is
 * stored (not stored already, nor stored earlier in the batch), fetched from the roomserver
 * in one call before the transaction; `missing` of each event is filled in.
 */
async function fetchMissingState(d: RoomEventDeps, prepared: Prepared[]): Promise<Array<{ headered: HeaderedEvent; event: Event }>> {
  const others = new Set<string>();
  for (const p of prepared) for (const id of p.fresh?.adds ?? []) if (id !== p.event.eventId) others.add(id);
  if (others.size === 0) return [];
  const held = new Set((await d.store.events([...others])).map((e) => e.eventId));
  const wanted = new Set<string>();
  for (const p of prepared) {
    if (p.fresh) {
      for (const id of p.fresh.adds) {
        if (id === p.event.eventId || held.has(id)) continue;
        p.fresh.missing.add(id);
        wanted.add(id);
        held.add(id);
      }
    }
    held.add(p.event.eventId);
  }
  if (wanted.size === 0) return [];
  const { events } = await d.rsAPI.queryEventsById({ event_ids: [...wanted] });
  return events.map((h) => ({ headered: h, event: parse(h) }));
}

function index(docs: SearchDocument[], event: Event, pos: number): void {
  const doc = searchDocument({ eventId: event.eventId, roomId: event.roomId, sender: event.sender, type: event.type, stateKey: event.stateKey, content: event.content, pos });
  if (doc) docs.push(doc);
}

async function addRelation(relations: RelationsStore, event: Event, pos: number): Promise<void> {
  const rel = parseRelation(event.content);
  if (rel) await relations.add({ roomId: event.roomId, eventId: rel.eventId, childEventId: event.eventId, childType: event.type, relType: rel.relType, sender: event.sender, originTs: event.originServerTs, pos });
}
