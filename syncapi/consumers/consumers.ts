/**
 * What syncapi consumes: OutputRoomEvent (events, state changes, invites, redactions),
 * OutputClientData (account data) and OutputKeyChangeEvent (device lists). Each handler is
 * idempotent: a redelivered message finds its event stored and changes nothing twice.
 */
import type { Logger } from 'pino';
import { Event } from '../../internal/matrix/index.js';
import type { HeaderedEvent, OutputRoomEvent, RoomserverInternalAPI } from '../../roomserver/api/index.js';
import type { Bus } from '../../setup/jetstream/index.js';
import type { OutputClientData, OutputKeyChangeEvent } from '../../userapi/api/index.js';
import type { Notifier } from '../internal/notifier.js';
import type { PeekStore } from '../storage/peeks.js';
import type { PeekActivity } from '../internal/peekactivity.js';
import { purgeRoomRows } from '../storage/purge.js';
import type { RelationsStore } from '../storage/relations.js';
import { isBatchedRoomEvent, storeRoomEvents, type BatchedRoomEvent, type RoomEventDeps } from './roomevents.js';
import type { SearchIndex } from '../storage/search.js';
import type { SyncStore } from '../storage/syncstore.js';

export interface ConsumerDeps {
  bus: Bus;
  prefix: string;
  store: SyncStore;
  notifier: Notifier;
  rsAPI: RoomserverInternalAPI;
  log: Logger;
  /** Local peeks: peeking devices hear of a room's events; a join ends the user's peeks. */
  peeks: PeekStore;
  /** Who still peeks: told of new peeks, and tells the roomserver when a room's last peeker goes. */
  peekActivity?: PeekActivity;
  /** The full-text index, when search is enabled. */
  search?: SearchIndex;
  /** Event relationships (m.relates_to), for /relations, /threads and bundled aggregations. */
  relations: RelationsStore;
}

function parse(e: HeaderedEvent): Event {
  return Event.fromPDU(e.pdu, e.room_version);
}

/** Joined and invited users of a room: who must hear of its events. */
async function audience(store: SyncStore, roomId: string): Promise<string[]> {
  return (await store.membersOf([roomId], ['join', 'invite'])).get(roomId) ?? [];
}

/**
 * Stores the leave that rejected an invite into a room syncapi knows nothing of (another
 * server's), as that room's only state here. A room syncapi holds hears of the leave as a room event.
 */
async function storeOutOfBandLeave(d: ConsumerDeps, eventId: string, userId: string): Promise<void> {
  const [headered] = (await d.rsAPI.queryEventsById({ event_ids: [eventId] })).events;
  if (!headered) return;
  const leave = parse(headered);
  if (leave.type !== 'm.room.member' || leave.stateKey !== userId) return;
  // Held rooms send their leave as a room event. (Not syncapi's own state: an earlier rejected invite into the same room left some.)
  if ((await d.rsAPI.queryLatestEventsAndState({ room_id: leave.roomId, state_to_fetch: [] })).room_exists) return;
  const { pos, existed } = await d.store.insertEvent({
    roomId: leave.roomId,
    eventId: leave.eventId,
    type: leave.type,
    sender: leave.sender,
    stateKey: userId,
    json: JSON.stringify(leave.json),
    roomVersion: headered.room_version,
    addsState: [leave.eventId],
    removesState: [],
  });
  if (existed) return;
  await d.store.updateCurrentState(leave.roomId, [{ eventId: leave.eventId, type: leave.type, stateKey: userId, membership: 'leave' }], [], pos);
  d.notifier.advance('pdu', pos, [userId]);
}

/** Room events stored per transaction, at most. */
const ROOM_EVENT_BATCH = 100;

export async function startConsumers(d: ConsumerDeps): Promise<void> {
  const decoder = new TextDecoder();
  /** A room nobody here peeks any more: its federated peek can end. */
  const lastPeekerCheck = async (roomId: string): Promise<void> => {
    if ((await d.peeks.peekers(roomId)).length === 0) await d.peekActivity?.gone(roomId);
  };

  const roomEvents: RoomEventDeps = {
    store: d.store,
    notifier: d.notifier,
    rsAPI: d.rsAPI,
    log: d.log,
    ...(d.search ? { search: d.search } : {}),
    peeksEnded: lastPeekerCheck,
  };
  /** The outputs other than new and old room events, one at a time. */
  const handleOther = async (out: OutputRoomEvent): Promise<void> => {
    if (out.type === 'redacted_event') {
      await d.search?.remove([out.redacted_event.redacted_event_id]);
      // A redacted child leaves its parent's relations; a redacted parent bundles no edit.
      const redaction = parse(out.redacted_event.redacted_because);
      await d.relations.redacted(redaction.roomId, out.redacted_event.redacted_event_id, redaction.eventId);
      const [stored] = await d.store.events([out.redacted_event.redacted_event_id]);
      if (!stored) return;
      const { events } = await d.rsAPI.queryEventsById({ event_ids: [stored.eventId] });
      if (events[0]) await d.store.redact(stored.eventId, JSON.stringify(events[0].pdu));
      return;
    }
    if (out.type === 'new_invite_event') {
      const e = parse(out.new_invite_event.event);
      const pos = await d.store.addInvite({ eventId: e.eventId, roomId: e.roomId, targetUserId: e.stateKey ?? '', json: JSON.stringify(e.json), roomVersion: out.new_invite_event.event.room_version });
      if (pos > 0) d.notifier.advance('invite', pos, [e.stateKey ?? '']);
      return;
    }
    // Peeks (MSC2753), as the roomserver allowed or ended them, in the room's event order: a new
    // peek begins after the events (the state fetched over federation) that came before it.
    if (out.type === 'new_peek') {
      const p = out.new_peek;
      await d.peeks.add(p.user_id, p.device_id, p.room_id, d.notifier.current.pdu);
      d.peekActivity?.confirm(p.room_id);
      // A long-polling /sync of the device wakes to give the room.
      d.notifier.advance('pdu', d.notifier.current.pdu, [p.user_id]);
      return;
    }
    if (out.type === 'retire_peek') {
      const p = out.retire_peek;
      if (await d.peeks.remove(p.user_id, p.device_id, p.room_id)) await lastPeekerCheck(p.room_id);
      return;
    }
    if (out.type === 'retire_invite_event') {
      const r = out.retire_invite_event;
      const pos = await d.store.retireInvite(r.event_id);
      if (pos > 0) d.notifier.advance('invite', pos, [r.target_user_id]);
      // An invite into a room this server does not hold, rejected: no room event will ever tell
      // syncapi of the leave, so it goes into the stream here and the room shows among the
      // invitee's left rooms, as after leaving any room.
      if (r.membership === 'leave' && r.retired_by_event_id !== '') await storeOutOfBandLeave(d, r.retired_by_event_id, r.target_user_id);
    }
    if (out.type === 'purge_room') {
      const roomId = out.purge_room.room_id;
      const events = await purgeRoomRows(d.store.db, roomId);
      await d.search?.removeRoom(roomId);
      d.log.info({ room_id: roomId, events }, 'syncapi: room purged');
    }
  };

  // Room events come in batches: a run of new and old room events is stored in one
  // transaction (roomevents.ts); any other output is handled on its own, in its place.
  await d.bus.consumeBatch({ stream: `${d.prefix}OutputRoomEvent`, durable: 'SyncAPIRoomServerConsumer', maxBatch: ROOM_EVENT_BATCH }, async (msgs) => {
    const run: BatchedRoomEvent[] = [];
    for (const msg of msgs) {
      const out = JSON.parse(decoder.decode(msg.data)) as OutputRoomEvent;
      if (isBatchedRoomEvent(out)) {
        run.push(out);
        continue;
      }
      if (run.length > 0) break;
      await handleOther(out);
      return 1;
    }
    await storeRoomEvents(roomEvents, run);
    return run.length;
  });

  await d.bus.consume({ stream: `${d.prefix}OutputClientData`, durable: 'SyncAPIClientDataConsumer' }, async (msg) => {
    const data = JSON.parse(decoder.decode(msg.data)) as OutputClientData;
    const pos = await d.store.accountDataChanged(data.user_id, data.room_id, data.type);
    d.notifier.advance('accountData', pos, [data.user_id]);
  });

  await d.bus.consume({ stream: `${d.prefix}OutputKeyChangeEvent`, durable: 'SyncAPIKeyChangeConsumer' }, async (msg) => {
    const change = JSON.parse(decoder.decode(msg.data)) as OutputKeyChangeEvent;
    // Everyone who shares a room with the user, and the user (their other devices).
    const rooms = await d.store.roomsWithMembership(change.user_id, ['join']);
    const users = new Set<string>([change.user_id]);
    for (const r of rooms) for (const u of await audience(d.store, r.roomId)) users.add(u);
    d.notifier.advance('deviceList', change.offset, users);
  });
  d.log.debug('syncapi consumers started');
}
