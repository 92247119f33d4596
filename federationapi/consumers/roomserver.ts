/**
 * Sends room events to other servers: consumes OutputRoomEvent and queues
 * - each new event we sent for every other server with a joined member (before or after the
 *   event: a server whose last user just left or was kicked hears of it too); events other
 *   servers sent are theirs to send to the servers in the room;
 * - every new event of a room, ours or not, for the servers peeking it (MSC2444), which no one
 *   else sends anything, as far as history visibility lets them see it.
 * It also records inbound peeks (`new_inbound_peek`) in the room's event order, so that a
 * peeking server is sent exactly the events after the state it was given.
 */
import type { Logger } from 'pino';
import { Event, domainOf, type JsonValue } from '../../internal/matrix/index.js';
import type { OutputNewInboundPeek, OutputRoomEvent, RoomserverInternalAPI } from '../../roomserver/api/index.js';
import type { Bus } from '../../setup/jetstream/index.js';
import type { OutboundSender } from '../internal/sender.js';

/** Inbound peeks, as the consumer needs them. */
export interface ConsumerPeeks {
  record(peek: OutputNewInboundPeek): Promise<void>;
  liveServers(roomId: string): Promise<string[]>;
}

export async function startRoomserverConsumer(d: {
  bus: Bus;
  prefix: string;
  serverName: string;
  rsAPI: Pick<RoomserverInternalAPI, 'queryServersInRoom' | 'queryVisibleEvents'>;
  sender: OutboundSender;
  log: Logger;
  /** Peeks over federation (MSC2444); absent when they are off. */
  peeks?: ConsumerPeeks;
}): Promise<void> {
  const decoder = new TextDecoder();
  /** Servers in each room as of the last event seen: who was there before the next one. */
  const lastServers = new Map<string, string[]>();
  await d.bus.consume({ stream: `${d.prefix}OutputRoomEvent`, durable: 'FederationAPIRoomServerConsumer' }, async (msg) => {
    const out = JSON.parse(decoder.decode(msg.data)) as OutputRoomEvent;
    if (out.type === 'new_inbound_peek') {
      await d.peeks?.record(out.new_inbound_peek);
      return;
    }
    if (out.type !== 'new_room_event') return;
    const { event: headered } = out.new_room_event;
    const event = Event.fromPDU(headered.pdu, headered.room_version);
    const { servers } = await d.rsAPI.queryServersInRoom({ room_id: event.roomId });
    const before = lastServers.get(event.roomId) ?? [];
    lastServers.set(event.roomId, servers);
    const origin = domainOf(event.sender);
    const destinations = new Set<string>();
    if (origin === d.serverName) {
      for (const s of [...servers, ...before]) destinations.add(s);
      // A membership change reaches the target's server when it is out of the room now (a kick,
      // a ban). An invite is not sent this way: the invitee's server had it through /invite and
      // holds no room to put it in (Synapse does the same).
      if (event.type === 'm.room.member' && event.stateKey !== undefined && event.content['membership'] !== 'invite') {
        const target = domainOf(event.stateKey);
        if (target) destinations.add(target);
      }
    }
    if (d.peeks) {
      // A peeking server that is also in the room hears of others' events from their servers.
      const peekers = (await d.peeks.liveServers(event.roomId)).filter((s) => s !== origin && s !== d.serverName && !destinations.has(s) && (origin === d.serverName || !servers.includes(s)));
      for (const server of peekers) {
        const { visible_event_ids } = await d.rsAPI.queryVisibleEvents({ event_ids: [event.eventId], server_name: server });
        if (visible_event_ids.length > 0) destinations.add(server);
      }
    }
    destinations.delete(d.serverName);
    if (destinations.size === 0) return;
    await d.sender.sendPDU([...destinations], event.json as unknown as JsonValue);
  });
  d.log.debug('federationapi roomserver consumer started');
}
