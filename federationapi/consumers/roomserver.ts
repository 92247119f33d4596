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

/** Room events handled per batch, at most. */
const ROOM_EVENT_BATCH = 100;

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
  // In batches: a batch asks the roomserver for a room's servers once (again after a change of
  // its state), and for its peeking servers once (again after a new peek), not once per event.
  await d.bus.consumeBatch({ stream: `${d.prefix}OutputRoomEvent`, durable: 'FederationAPIRoomServerConsumer', maxBatch: ROOM_EVENT_BATCH }, async (msgs) => {
    const serversNow = new Map<string, string[]>();
    const peekersNow = new Map<string, string[]>();
    // Events queued for good are not handed over again when a later one fails: only the rest come again.
    let done = 0;
    const handle = async (out: OutputRoomEvent): Promise<void> => {
      if (out.type === 'new_inbound_peek') {
        await d.peeks?.record(out.new_inbound_peek);
        peekersNow.delete(out.new_inbound_peek.room_id);
        return;
      }
      if (out.type !== 'new_room_event') return;
      const { event: headered, adds_state_event_ids: adds, removes_state_event_ids: removes } = out.new_room_event;
      const event = Event.fromPDU(headered.pdu, headered.room_version);
      let servers = serversNow.get(event.roomId);
      if (!servers) serversNow.set(event.roomId, (servers = (await d.rsAPI.queryServersInRoom({ room_id: event.roomId })).servers));
      // The roomserver has applied every event of the batch already; a state change may still
      // be followed by ones it applied since, as when each event asked for itself.
      if (adds.length > 0 || removes.length > 0) serversNow.delete(event.roomId);
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
        let live = peekersNow.get(event.roomId);
        if (!live) peekersNow.set(event.roomId, (live = await d.peeks.liveServers(event.roomId)));
        // A peeking server that is also in the room hears of others' events from their servers.
        const peekers = live.filter((s) => s !== origin && s !== d.serverName && !destinations.has(s) && (origin === d.serverName || !servers.includes(s)));
        for (const server of peekers) {
          const { visible_event_ids } = await d.rsAPI.queryVisibleEvents({ event_ids: [event.eventId], server_name: server });
          if (visible_event_ids.length > 0) destinations.add(server);
        }
      }
      destinations.delete(d.serverName);
      if (destinations.size === 0) return;
      await d.sender.sendPDU([...destinations], event.json as unknown as JsonValue);
    };
    try {
      for (const msg of msgs) {
        await handle(JSON.parse(decoder.decode(msg.data)) as OutputRoomEvent);
        done++;
      }
    } catch (err) {
      if (done === 0) throw err;
      d.log.warn({ err, done, of: msgs.length }, 'federationapi: a batch of room events failed part way; the rest comes again');
    }
    return done;
  });
  d.log.debug('federationapi roomserver consumer started');
}
