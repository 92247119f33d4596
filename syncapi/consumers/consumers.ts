/**
 * What syncapi consumes: OutputRoomEvent (events, state changes, invites, redactions),
 * OutputClientData (account data) and OutputKeyChangeEvent (device lists). Each handler is
 * idempotent: a redelivered message finds its event stored and changes nothing twice.
 */
import type { Logger } from 'pino';
import { Event, type PDUJson } from '../../internal/matrix/index.js';
import type { HeaderedEvent, OutputRoomEvent, RoomserverInternalAPI } from '../../roomserver/api/index.js';
import type { Bus } from '../../setup/jetstream/index.js';
import type { OutputClientData, OutputKeyChangeEvent } from '../../userapi/api/index.js';
import type { Notifier } from '../internal/notifier.js';
import type { PeekStore } from '../storage/peeks.js';
import { purgeRoomRows } from '../storage/purge.js';
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
  /** The full-text index, when search is enabled. */
  search?: SearchIndex;
}

function parse(e: HeaderedEvent): Event {
  return Event.fromPDU(e.pdu, e.room_version);
}

/** Joined and invited users of a room: who must hear of its events. */
async function audience(store: SyncStore, roomId: string): Promise<string[]> {
  return (await store.membersOf([roomId], ['join', 'invite'])).get(roomId) ?? [];
}

export async function startConsumers(d: ConsumerDeps): Promise<void> {
  const decoder = new TextDecoder();

  await d.bus.consume({ stream: `${d.prefix}OutputRoomEvent`, durable: 'SyncAPIRoomServerConsumer' }, async (msg) => {
    const out = JSON.parse(decoder.decode(msg.data)) as OutputRoomEvent;
    if (out.type === 'new_room_event' || out.type === 'old_room_event') {
      const headered = out.type === 'new_room_event' ? out.new_room_event.event : out.old_room_event.event;
      const event = parse(headered);
      const adds = out.type === 'new_room_event' ? out.new_room_event.adds_state_event_ids : [];
      const removes = out.type === 'new_room_event' ? out.new_room_event.removes_state_event_ids : [];
      const txn = out.type === 'new_room_event' ? out.new_room_event.transaction_id : undefined;
      const before = await audience(d.store, event.roomId);
      const { pos } = await d.store.insertEvent({
        roomId: event.roomId,
        eventId: event.eventId,
        type: event.type,
        sender: event.sender,
        stateKey: event.stateKey ?? null,
        json: JSON.stringify(event.json),
        roomVersion: headered.room_version,
        addsState: adds,
        removesState: removes,
        ...(txn ? { txn: { deviceId: txn.device_id, txnId: txn.transaction_id } } : {}),
      });
      // Search is best effort: a failure is logged (POST /_dendrite/admin/fulltext/reindex repairs it), /sync goes on.
      await d.search
        ?.indexEvent({ eventId: event.eventId, roomId: event.roomId, sender: event.sender, type: event.type, stateKey: event.stateKey, content: event.content, pos })
        .catch((err: unknown) => d.log.error({ err, eventId: event.eventId }, 'search: cannot index the event'));
      if (adds.length > 0 || removes.length > 0) {
        // State the roomserver added that this component has not seen (from state resolution) is fetched.
        const known = new Map((await d.store.events(adds)).map((e) => [e.eventId, e]));
        const missing = adds.filter((id) => !known.has(id));
        if (missing.length > 0) {
          const { events } = await d.rsAPI.queryEventsById({ event_ids: missing });
          for (const h of events) {
            const e = parse(h);
            await d.store.insertEvent({ roomId: e.roomId, eventId: e.eventId, type: e.type, sender: e.sender, stateKey: e.stateKey ?? null, json: JSON.stringify(e.json), roomVersion: h.room_version, addsState: [], removesState: [] });
          }
        }
        const stored = await d.store.events(adds);
        await d.store.updateCurrentState(
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
      }
      const after = await audience(d.store, event.roomId);
      // A join turns the user's peeks into the join (their syncs give the room under `join`).
      if (event.type === 'm.room.member' && event.stateKey !== undefined && (event.content as { membership?: unknown }).membership === 'join') await d.peeks.removeUser(event.stateKey, event.roomId);
      const woken = new Set([...before, ...after, ...(await d.peeks.peekers(event.roomId))]);
      // The target of a membership change hears of it whatever it is (a knock, a rejected invite).
      if (event.type === 'm.room.member' && event.stateKey !== undefined) woken.add(event.stateKey);
      d.notifier.advance('pdu', pos, woken);
      return;
    }
    if (out.type === 'redacted_event') {
      await d.search?.remove([out.redacted_event.redacted_event_id]);
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
    if (out.type === 'retire_invite_event') {
      const pos = await d.store.retireInvite(out.retire_invite_event.event_id);
      if (pos > 0) d.notifier.advance('invite', pos, [out.retire_invite_event.target_user_id]);
    }
    if (out.type === 'purge_room') {
      const roomId = out.purge_room.room_id;
      const events = await purgeRoomRows(d.store.db, roomId);
      await d.search?.removeRoom(roomId);
      d.log.info({ room_id: roomId, events }, 'syncapi: room purged');
    }
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
