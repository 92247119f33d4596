/**
 * Guests leave rooms that stop letting guests in: when an m.room.guest_access event other than
 * `can_join` becomes a room's current state (whoever sent it, on whichever server), this
 * server's guests joined to the room leave it, as Synapse and Dendrite do. The clientapi does
 * the same at once for changes made here; a second leave is no change.
 */
import type { Logger } from 'pino';
import type { OutputRoomEvent, RoomserverInternalAPI } from '../../roomserver/api/index.js';
import type { Bus } from '../../setup/jetstream/index.js';

export type GuestAccessRoomserverAPI = Pick<RoomserverInternalAPI, 'queryMembershipsForRoom' | 'performSendEvent'>;

export interface GuestAccessConsumerDeps {
  bus: Bus;
  prefix: string;
  serverName: string;
  rsAPI: GuestAccessRoomserverAPI;
  /** Which of these (local) users are guests. */
  guestsAmong(userIds: string[]): Promise<string[]>;
  log: Logger;
}

/** Whether a room event closes the room to guests (a guest_access state event, now current, other than can_join). */
export function revokesGuestAccess(out: OutputRoomEvent): string | undefined {
  if (out.type !== 'new_room_event') return undefined;
  const { event, adds_state_event_ids: adds } = out.new_room_event;
  const pdu = event.pdu;
  if (pdu.type !== 'm.room.guest_access' || pdu.state_key !== '') return undefined;
  if ((pdu.content as { guest_access?: unknown } | undefined)?.guest_access === 'can_join') return undefined;
  // Only when it became the current state (not when state resolution left it out).
  return adds.length > 0 && typeof pdu.room_id === 'string' ? pdu.room_id : undefined;
}

export async function removeGuestsFrom(d: Pick<GuestAccessConsumerDeps, 'serverName' | 'rsAPI' | 'guestsAmong' | 'log'>, roomId: string): Promise<void> {
  const { members } = await d.rsAPI.queryMembershipsForRoom({ room_id: roomId, memberships: ['join'] });
  const local = members.map((m) => m.user_id).filter((u) => u.slice(u.indexOf(':') + 1) === d.serverName);
  if (local.length === 0) return;
  for (const guest of await d.guestsAmong(local)) {
    const res = await d.rsAPI.performSendEvent({ user_id: guest, room_id: roomId, type: 'm.room.member', state_key: guest, content: { membership: 'leave' } });
    if (res.error !== undefined) d.log.warn({ roomId, guest, error: res.error }, 'guest access: a guest could not leave the room');
  }
}

export async function startGuestAccessConsumer(d: GuestAccessConsumerDeps): Promise<void> {
  const decoder = new TextDecoder();
  await d.bus.consume({ stream: `${d.prefix}OutputRoomEvent`, durable: 'UserAPIGuestAccessConsumer' }, async (msg) => {
    const roomId = revokesGuestAccess(JSON.parse(decoder.decode(msg.data)) as OutputRoomEvent);
    if (roomId === undefined) return;
    try {
      await removeGuestsFrom(d, roomId);
    } catch (err) {
      if (msg.deliveryCount < 3) throw err;
      d.log.warn({ err, roomId }, 'guest access: guests were not removed from the room');
    }
  });
}
