/**
 * Sends our servers' own room events to the other servers in the room: consumes
 * OutputRoomEvent and queues each new event we sent for every other server with a joined
 * member (before or after the event: a server whose last user just left or was kicked hears of
 * it too). Events other servers sent are theirs to send.
 */
import type { Logger } from 'pino';
import { Event, domainOf, type JsonValue } from '../../internal/matrix/index.js';
import type { OutputRoomEvent, RoomserverInternalAPI } from '../../roomserver/api/index.js';
import type { Bus } from '../../setup/jetstream/index.js';
import type { OutboundSender } from '../internal/sender.js';

export async function startRoomserverConsumer(d: {
  bus: Bus;
  prefix: string;
  serverName: string;
  rsAPI: Pick<RoomserverInternalAPI, 'queryServersInRoom'>;
  sender: OutboundSender;
  log: Logger;
}): Promise<void> {
  const decoder = new TextDecoder();
  /** Servers in each room as of the last event seen: who was there before the next one. */
  const lastServers = new Map<string, string[]>();
  await d.bus.consume({ stream: `${d.prefix}OutputRoomEvent`, durable: 'FederationAPIRoomServerConsumer' }, async (msg) => {
    const out = JSON.parse(decoder.decode(msg.data)) as OutputRoomEvent;
    if (out.type !== 'new_room_event') return;
    const { event: headered } = out.new_room_event;
    const event = Event.fromPDU(headered.pdu, headered.room_version);
    const { servers } = await d.rsAPI.queryServersInRoom({ room_id: event.roomId });
    const before = lastServers.get(event.roomId) ?? [];
    lastServers.set(event.roomId, servers);
    if (domainOf(event.sender) !== d.serverName) return;
    const destinations = new Set([...servers, ...before]);
    // A membership change reaches the target's server, in the room or not (an invite, a kick).
    if (event.type === 'm.room.member' && event.stateKey !== undefined) {
      const target = domainOf(event.stateKey);
      if (target) destinations.add(target);
    }
    destinations.delete(d.serverName);
    if (destinations.size === 0) return;
    await d.sender.sendPDU([...destinations], event.json as unknown as JsonValue);
  });
  d.log.debug('federationapi roomserver consumer started');
}
