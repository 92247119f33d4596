/**
 * What syncapi consumes besides room events and account data: typing (into memory), receipts,
 * to-device messages and presence (into its tables). Each change wakes only the users who
 * would see it: a room's members, a device's owner, a user's room-mates.
 */
import type { Logger } from 'pino';
import type { Bus } from '../../setup/jetstream/index.js';
import type { OutputPresenceEvent, OutputReceiptEvent, OutputSendToDeviceEvent, OutputTypingEvent } from '../api/index.js';
import type { Notifier } from '../internal/notifier.js';
import { startNotificationConsumer } from './notifications.js';
import type { TypingCache } from '../internal/typing.js';
import type { EphemeralStore } from '../storage/ephemeral.js';
import type { SyncStore } from '../storage/syncstore.js';

export interface EphemeralConsumerDeps {
  bus: Bus;
  /** Our server: to-device messages for other servers' users are federationapi's to send. */
  serverName: string;
  prefix: string;
  store: SyncStore;
  ephemeral: EphemeralStore;
  typing: TypingCache;
  notifier: Notifier;
  log: Logger;
}

/** Joined members of a room. */
export async function joinedMembers(store: SyncStore, roomId: string): Promise<string[]> {
  return (await store.joinedMembersOf([roomId])).get(roomId) ?? [];
}

/** The user and everyone who shares a joined room with them. */
export async function roomMates(store: SyncStore, userId: string): Promise<Set<string>> {
  const users = new Set<string>([userId]);
  const rooms = (await store.roomsWithMembership(userId, ['join'])).map((r) => r.roomId);
  for (const members of (await store.joinedMembersOf(rooms)).values()) for (const u of members) users.add(u);
  return users;
}

export async function startEphemeralConsumers(d: EphemeralConsumerDeps): Promise<void> {
  const decoder = new TextDecoder();
  const parse = <T>(data: Uint8Array): T => JSON.parse(decoder.decode(data)) as T;

  await d.bus.consume({ stream: `${d.prefix}OutputTypingEvent`, durable: 'SyncAPITypingConsumer' }, async (msg) => {
    const e = parse<OutputTypingEvent>(msg.data);
    d.typing.set(e.room_id, e.user_id, e.typing, e.timeout_ms);
  });

  await d.bus.consume({ stream: `${d.prefix}OutputReceiptEvent`, durable: 'SyncAPIReceiptConsumer' }, async (msg) => {
    const e = parse<OutputReceiptEvent>(msg.data);
    const pos = await d.ephemeral.upsertReceipt({ roomId: e.room_id, receiptType: e.receipt_type, userId: e.user_id, threadId: e.thread_id ?? '', eventId: e.event_id, ts: e.ts });
    if (pos === 0) return;
    // A private receipt concerns only its owner.
    d.notifier.advance('receipt', pos, e.receipt_type === 'm.read.private' ? [e.user_id] : await joinedMembers(d.store, e.room_id));
  });

  await d.bus.consume({ stream: `${d.prefix}OutputSendToDeviceEvent`, durable: 'SyncAPISendToDeviceConsumer' }, async (msg) => {
    const e = parse<OutputSendToDeviceEvent>(msg.data);
    if (e.user_id.slice(e.user_id.indexOf(':') + 1) !== d.serverName) return;
    const pos = await d.ephemeral.addToDevice(e.user_id, e.device_id, { sender: e.sender, type: e.type, content: e.content });
    d.notifier.advance('toDevice', pos, [e.user_id]);
  });

  await d.bus.consume({ stream: `${d.prefix}OutputPresenceEvent`, durable: 'SyncAPIPresenceConsumer' }, async (msg) => {
    const e = parse<OutputPresenceEvent>(msg.data);
    const known = await d.ephemeral.presence(e.user_id);
    // Our own writes arrive here too; a message older than what is stored changes nothing.
    if (known && known.lastActiveTs >= e.last_active_ts && known.presence === e.presence && known.statusMsg === (e.status_msg ?? null)) return;
    if (known && known.lastActiveTs > e.last_active_ts) return;
    const pos = await d.ephemeral.setPresence({ userId: e.user_id, presence: e.presence, statusMsg: e.status_msg ?? null, lastActiveTs: e.last_active_ts });
    d.notifier.advance('presence', pos, await roomMates(d.store, e.user_id));
  });
  await startNotificationConsumer(d);
  d.log.debug('syncapi ephemeral consumers started');
}
