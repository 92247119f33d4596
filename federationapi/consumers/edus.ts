/**
 * Sends our users' ephemeral data to other servers as EDUs (Server-Server API, "EDUs"):
 *
 * - OutputTypingEvent → m.typing, to the other servers in the room;
 * - OutputReceiptEvent → m.receipt (m.read only: private receipts stay home), likewise;
 * - OutputPresenceEvent → m.presence (when outbound presence is on), to every server sharing
 *   a joined room with the user;
 * - OutputSendToDeviceEvent → m.direct_to_device, to the target user's server (messages for
 *   our own users are syncapi's);
 * - OutputKeyChangeEvent → m.device_list_update (device keys) or m.signing_key_update
 *   (cross-signing keys), to every server sharing a joined room with the user.
 *
 * The same streams carry what other servers sent us (federationapi publishes their EDUs for
 * syncapi): only our own users' data is sent on, so nothing echoes back.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { domainOf, type JsonObject, type JsonValue } from '../../internal/matrix/index.js';
import type { RoomserverInternalAPI } from '../../roomserver/api/index.js';
import type { Bus } from '../../setup/jetstream/index.js';
import type { OutputPresenceEvent, OutputReceiptEvent, OutputSendToDeviceEvent, OutputTypingEvent } from '../../syncapi/api/index.js';
import type { ClientUserAPI, OutputKeyChangeEvent } from '../../userapi/api/index.js';
import type { OutboundSender } from '../internal/sender.js';

/** A user counts as currently active for this long after their last activity while online (as syncapi reports it). */
const CURRENTLY_ACTIVE_MS = 60_000;

export interface EDUConsumerDeps {
  bus: Bus;
  prefix: string;
  serverName: string;
  rsAPI: Pick<RoomserverInternalAPI, 'queryServersInRoom' | 'queryRoomsForUser'>;
  /** For a device's display name when a key change does not carry it. */
  userAPI: Pick<ClientUserAPI, 'queryDevices'>;
  sender: Pick<OutboundSender, 'sendEDU'>;
  /** global.presence.enable_outbound: presence is sent only when set. */
  presenceOutbound: boolean;
  log: Logger;
}

export async function startEDUConsumers(d: EDUConsumerDeps): Promise<void> {
  const decoder = new TextDecoder();
  const parse = <T>(data: Uint8Array): T => JSON.parse(decoder.decode(data)) as T;
  const ours = (userId: string): boolean => domainOf(userId) === d.serverName;

  const serversInRoom = async (roomId: string): Promise<string[]> =>
    (await d.rsAPI.queryServersInRoom({ room_id: roomId })).servers.filter((s) => s !== d.serverName);

  /** Every other server with a joined member in a room the user is joined to. */
  const serversSharingRoomsWith = async (userId: string): Promise<string[]> => {
    const { room_ids } = await d.rsAPI.queryRoomsForUser({ user_id: userId, membership: 'join' });
    const servers = new Set<string>();
    for (const roomId of room_ids) for (const s of await serversInRoom(roomId)) servers.add(s);
    return [...servers];
  };

  const send = async (destinations: string[], eduType: string, content: JsonObject): Promise<void> => {
    if (destinations.length === 0) return;
    await d.sender.sendEDU(destinations, { edu_type: eduType, content });
  };

  await d.bus.consume({ stream: `${d.prefix}OutputTypingEvent`, durable: 'FederationAPITypingConsumer' }, async (msg) => {
    const e = parse<OutputTypingEvent>(msg.data);
    if (!ours(e.user_id)) return;
    await send(await serversInRoom(e.room_id), 'm.typing', { room_id: e.room_id, user_id: e.user_id, typing: e.typing });
  });

  await d.bus.consume({ stream: `${d.prefix}OutputReceiptEvent`, durable: 'FederationAPIReceiptConsumer' }, async (msg) => {
    const e = parse<OutputReceiptEvent>(msg.data);
    // Only public read receipts leave the server; m.read.private is for the user alone.
    if (e.receipt_type !== 'm.read' || !ours(e.user_id)) return;
    const data: JsonObject = { ts: e.ts, ...(e.thread_id !== undefined ? { thread_id: e.thread_id } : {}) };
    await send(await serversInRoom(e.room_id), 'm.receipt', { [e.room_id]: { 'm.read': { [e.user_id]: { data, event_ids: [e.event_id] } } } });
  });

  await d.bus.consume({ stream: `${d.prefix}OutputPresenceEvent`, durable: 'FederationAPIPresenceConsumer' }, async (msg) => {
    if (!d.presenceOutbound) return;
    const e = parse<OutputPresenceEvent>(msg.data);
    if (!ours(e.user_id)) return;
    const ago = Math.max(0, Date.now() - e.last_active_ts);
    const update: JsonObject = {
      user_id: e.user_id,
      presence: e.presence,
      ...(e.status_msg !== undefined ? { status_msg: e.status_msg } : {}),
      last_active_ago: ago,
      currently_active: e.presence === 'online' && ago < CURRENTLY_ACTIVE_MS,
    };
    await send(await serversSharingRoomsWith(e.user_id), 'm.presence', { push: [update] });
  });

  await d.bus.consume({ stream: `${d.prefix}OutputSendToDeviceEvent`, durable: 'FederationAPISendToDeviceConsumer' }, async (msg) => {
    const e = parse<OutputSendToDeviceEvent>(msg.data);
    const destination = domainOf(e.user_id);
    // Messages for our users are syncapi's; messages other servers sent are theirs to send.
    if (!destination || destination === d.serverName || !ours(e.sender)) return;
    await send([destination], 'm.direct_to_device', {
      sender: e.sender,
      type: e.type,
      // At most 32 codepoints; unique per message so the receiver can deduplicate.
      message_id: randomBytes(16).toString('hex'),
      messages: { [e.user_id]: { [e.device_id]: e.content } },
    });
  });

  await d.bus.consume({ stream: `${d.prefix}OutputKeyChangeEvent`, durable: 'FederationAPIKeyChangeConsumer' }, async (msg) => {
    const e = parse<OutputKeyChangeEvent>(msg.data);
    // Changes only their owner may learn of (user-signing keys) never leave the server.
    if (!ours(e.user_id) || e.visible_to !== undefined) return;
    if (e.type === 'cross_signing') {
      if (e.master_key === undefined && e.self_signing_key === undefined) return;
      await send(await serversSharingRoomsWith(e.user_id), 'm.signing_key_update', {
        user_id: e.user_id,
        ...(e.master_key !== undefined ? { master_key: e.master_key as JsonValue } : {}),
        ...(e.self_signing_key !== undefined ? { self_signing_key: e.self_signing_key as JsonValue } : {}),
      });
      return;
    }
    if (e.device_id === undefined || e.stream_id === undefined) {
      d.log.warn({ userId: e.user_id }, 'federation: key change without device ID or stream ID not sent');
      return;
    }
    const destinations = await serversSharingRoomsWith(e.user_id);
    if (destinations.length === 0) return;
    let name = e.display_name;
    if (name === undefined && !e.deleted) {
      name = (await d.userAPI.queryDevices({ userId: e.user_id })).devices.find((x) => x.deviceId === e.device_id)?.displayName ?? null;
    }
    await send(destinations, 'm.device_list_update', {
      user_id: e.user_id,
      device_id: e.device_id,
      ...(typeof name === 'string' ? { device_display_name: name } : {}),
      stream_id: e.stream_id,
      // The version this change follows: a receiver that lacks it knows it missed one and resyncs.
      prev_id: e.prev_stream_id !== undefined ? [e.prev_stream_id] : [],
      ...(e.deleted ? { deleted: true } : {}),
      ...(e.keys !== undefined && !e.deleted ? { keys: e.keys as JsonValue } : {}),
    });
  });
  d.log.debug('federationapi EDU consumers started');
}
