/**
 * Peeking, as Dendrite's design lays it out (docs/other/peeking.md): the roomserver decides
 * who may peek and tells the others through OutputRoomEvent.
 *
 * - Local peeks (MSC2753): a device may peek a room whose history is world_readable (and which
 *   is not encrypted: peekers could not be encrypted for). A room this server takes no part in
 *   (not held, or none of our users joined) is first peeked over federation (MSC2444), through
 *   federationapi, which hands us its state. Then `new_peek` goes out; `retire_peek` on unpeek.
 * - Inbound peeks (MSC2444): another server is given the room's current state, auth chain and
 *   latest event, and `new_inbound_peek` goes out, both in the room's input queue: no event can
 *   land between the state read and the output, so federationapi sends the peeking server
 *   exactly the events after that state.
 * - When syncapi reports that no device peeks a room any more, the federated peek ends.
 */
import type { Logger } from 'pino';
import { Event, domainOf, type PDUJson } from '../../../internal/matrix/index.js';
import type { FederationInternalAPI } from '../../../federationapi/api/index.js';
import type {
  HeaderedEvent,
  OutputRoomEvent,
  PerformInboundPeekRequest,
  PerformInboundPeekResponse,
  PerformPeekersGoneRequest,
  PerformPeekersGoneResponse,
  PerformPeekRequest,
  PerformPeekResponse,
  PerformUnpeekRequest,
  PerformUnpeekResponse,
  RoomserverInternalAPI,
} from '../../api/index.js';
import type { EventStore } from '../../storage/eventstore.js';
import type { EventLoader } from '../eventloader.js';

/** What the roomserver asks of federationapi for peeks. */
export type PeekFederationAPI = Pick<FederationInternalAPI, 'performOutboundPeek' | 'performOutboundUnpeek' | 'queryRemoteDirectory'>;

const ROOM_ID = /^![^:]+(:.+)?$/;
const ALIAS = /^#[^:]+:.+$/;

export interface PeekerDeps {
  serverName: string;
  /** MSC2444: peeks over federation, both ways. */
  federatedPeeks: boolean;
  events: EventStore;
  loader: EventLoader;
  query: Pick<RoomserverInternalAPI, 'queryLatestEventsAndState' | 'queryRoomIdForAlias'>;
  /** federationapi, once built (it is built after the roomserver); undefined without federation. */
  federation: () => PeekFederationAPI | undefined;
  /** Runs `fn` in the room's input queue: between two of its events, never during one. */
  exclusive: <T>(roomId: string, fn: () => Promise<T>) => Promise<T>;
  publish: (roomId: string, msgId: string, output: OutputRoomEvent) => Promise<void>;
  log: Logger;
}

type PeekRefusal = Exclude<PerformPeekResponse, { room_id: string }>;

export class Peeker {
  private outputs = 0;

  constructor(private readonly d: PeekerDeps) {}

  async performPeek(req: PerformPeekRequest): Promise<PerformPeekResponse> {
    const servers = [...(req.server_names ?? [])];
    let roomId = req.room_id_or_alias;
    if (ALIAS.test(roomId)) {
      const resolved = await this.resolveAlias(roomId);
      if ('error' in resolved) return resolved;
      roomId = resolved.roomId;
      servers.push(...resolved.servers);
    } else if (!ROOM_ID.test(roomId)) {
      return { error: 'invalid', message: `${roomId} is neither a room ID nor an alias` };
    }
    // Room IDs name their creating server before room version 12.
    const idServer = domainOf(roomId);
    if (idServer !== undefined) servers.push(idServer);

    let fetched = false;
    if (await this.needsRemotePeek(roomId)) {
      const fed = this.d.federatedPeeks ? this.d.federation() : undefined;
      const candidates = [...new Set(servers)].filter((s) => s !== this.d.serverName);
      if (fed && candidates.length > 0) {
        const res = await fed.performOutboundPeek({ room_id: roomId, server_names: candidates });
        if (res.error !== undefined) {
          if (req.resume) await this.retire(roomId, req.user_id, req.device_id);
          const { error, ...rest } = res;
          return { ...rest, error: error === 'failed' ? 'unreachable' : error };
        }
        fetched = res.fresh;
      }
    }

    const refusal = await this.refusal(roomId);
    if (refusal) {
      // A device whose peek can no longer go on (the room stopped being world_readable) stops peeking.
      if (req.resume) await this.retire(roomId, req.user_id, req.device_id);
      return refusal;
    }
    // A resumed peek whose room was kept up to date meanwhile has nothing new to give the device.
    if (req.resume && !fetched) return { room_id: roomId };
    await this.d.exclusive(roomId, () =>
      this.d.publish(roomId, this.msgId('peek', roomId, req.device_id), { type: 'new_peek', new_peek: { room_id: roomId, user_id: req.user_id, device_id: req.device_id } }),
    );
    return { room_id: roomId };
  }

  async performUnpeek(req: PerformUnpeekRequest): Promise<PerformUnpeekResponse> {
    if (!ROOM_ID.test(req.room_id)) return { error: 'invalid', message: `${req.room_id} is not a room ID` };
    await this.retire(req.room_id, req.user_id, req.device_id);
    return {};
  }

  async performInboundPeek(req: PerformInboundPeekRequest): Promise<PerformInboundPeekResponse> {
    if (!this.d.federatedPeeks) return { room_exists: true, error: 'forbidden', message: 'This server does not serve peeks over federation' };
    return this.d.exclusive(req.room_id, async (): Promise<PerformInboundPeekResponse> => {
      const current = await this.d.query.queryLatestEventsAndState({ room_id: req.room_id });
      if (!current.room_exists || current.room_version === undefined) return { room_exists: false };
      const refused = refusalOf(current.state_events);
      if (refused) return { room_exists: true, error: 'forbidden', message: refused };
      const roomVersion = current.room_version;
      // The newest of the forward extremities (the deepest; ties by ID, so that the answer is stable).
      const latestStored = (await this.d.events.eventsByIds(current.latest_event_ids)).sort((a, b) => b.depth - a.depth || a.eventId.localeCompare(b.eventId))[0];
      if (!latestStored) return { room_exists: false };
      const stateIds = current.state_events.map((h) => eventIdOf(h));
      const stateStored = await this.d.events.eventsByIds(stateIds);
      // The auth chain of the state and of the latest event: what the peeking server needs to check them.
      const seeds = [...stateStored, latestStored].flatMap((s) => s.authEventNids);
      const chain = await this.d.loader.withAuthChains(seeds, roomVersion);
      const authChain = [...chain.values()].filter((l) => !l.stored.isRejected).map((l) => ({ room_version: roomVersion, pdu: l.event.json as PDUJson }));
      const latest = (await this.d.loader.byNids([latestStored.eventNid], roomVersion)).get(latestStored.eventNid);
      if (!latest) return { room_exists: false };
      await this.d.publish(req.room_id, this.msgId('inbound_peek', req.room_id, `${req.server_name}/${req.peek_id}`), {
        type: 'new_inbound_peek',
        new_inbound_peek: { room_id: req.room_id, peek_id: req.peek_id, server_name: req.server_name, latest_event_id: latestStored.eventId, renewal_interval: req.renewal_interval },
      });
      return {
        room_exists: true,
        room_version: roomVersion,
        state_events: current.state_events,
        auth_chain_events: authChain,
        latest_event: { room_version: roomVersion, pdu: latest.event.json as PDUJson },
      };
    });
  }

  async performPeekersGone(req: PerformPeekersGoneRequest): Promise<PerformPeekersGoneResponse> {
    const fed = this.d.federatedPeeks ? this.d.federation() : undefined;
    if (!fed) return { ended_remote_peek: false };
    const { ended } = await fed.performOutboundUnpeek({ room_id: req.room_id });
    if (ended) this.d.log.debug({ room_id: req.room_id }, 'roomserver: no device peeks the room any more; its federated peek ended');
    return { ended_remote_peek: ended };
  }

  /**
   * Whether the room must be peeked over federation: we do not hold it, or none of our users is
   * joined to it (then what we hold may be old: nothing brings us its events but a peek).
   */
  private async needsRemotePeek(roomId: string): Promise<boolean> {
    const room = await this.d.events.room(roomId);
    if (!room || room.stateSnapshotNid === 0) return true;
    const suffix = `:${this.d.serverName}`;
    return !(await this.d.events.members(room.roomNid, ['join'])).some((m) => m.userId.endsWith(suffix));
  }

  /** Why a local device may not peek into the room, from what we hold of it; undefined when it may. */
  private async refusal(roomId: string): Promise<PeekRefusal | undefined> {
    const res = await this.d.query.queryLatestEventsAndState({
      room_id: roomId,
      state_to_fetch: [
        { type: 'm.room.history_visibility', state_key: '' },
        { type: 'm.room.encryption', state_key: '' },
      ],
    });
    if (!res.room_exists) {
      const why = this.d.federatedPeeks ? 'and no server we asked let us peek it' : 'and peeking over federation (msc2444) is off';
      return { error: 'not_found', message: `This server does not know the room ${roomId}, ${why}` };
    }
    const refused = refusalOf(res.state_events);
    return refused ? { error: 'forbidden', message: refused } : undefined;
  }

  private async resolveAlias(alias: string): Promise<{ roomId: string; servers: string[] } | PeekRefusal> {
    const server = domainOf(alias)!;
    if (server === this.d.serverName) {
      const found = await this.d.query.queryRoomIdForAlias({ alias });
      return found.room_id === undefined ? { error: 'not_found', message: `No room has the alias ${alias}` } : { roomId: found.room_id, servers: [] };
    }
    const fed = this.d.federatedPeeks ? this.d.federation() : undefined;
    if (!fed) {
      // We may still hold the room under an alias of another server (a peek made before).
      const found = await this.d.query.queryRoomIdForAlias({ alias });
      return found.room_id === undefined ? { error: 'not_found', message: `${alias} is another server's alias, and peeking over federation (msc2444) is off` } : { roomId: found.room_id, servers: [] };
    }
    const res = await fed.queryRemoteDirectory({ alias });
    if (res.error !== undefined) return { error: res.error === 'not_found' ? 'not_found' : 'unreachable', message: res.message };
    return { roomId: res.room_id, servers: [server, ...res.servers] };
  }

  private async retire(roomId: string, userId: string, deviceId: string): Promise<void> {
    await this.d.exclusive(roomId, () => this.d.publish(roomId, this.msgId('unpeek', roomId, deviceId), { type: 'retire_peek', retire_peek: { room_id: roomId, user_id: userId, device_id: deviceId } }));
  }

  /** Peek outputs repeat (a device peeks, unpeeks and peeks again): each gets its own message ID. */
  private msgId(kind: string, roomId: string, who: string): string {
    return `${kind}:${roomId}:${who}:${Date.now()}:${++this.outputs}`;
  }
}

/** Why the room may not be peeked into, from its current history visibility and encryption; undefined when it may. */
function refusalOf(state: readonly HeaderedEvent[]): string | undefined {
  const visibility = state.find((e) => e.pdu.type === 'm.room.history_visibility' && e.pdu.state_key === '')?.pdu.content['history_visibility'];
  if (visibility !== 'world_readable') return 'Only rooms whose history is world_readable can be peeked into';
  if (state.some((e) => e.pdu.type === 'm.room.encryption' && e.pdu.state_key === '')) return 'Encrypted rooms cannot be peeked into';
  return undefined;
}

function eventIdOf(e: HeaderedEvent): string {
  return typeof e.pdu.event_id === 'string' ? e.pdu.event_id : Event.fromPDU(e.pdu, e.room_version).eventId;
}
