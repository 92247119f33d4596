/**
 * History visibility ("History visibility" in the Client-Server spec; "Authorization and room
 * access" in the Server-Server spec): whether a user or a server may see an event, from the
 * state at the event.
 *
 * - world_readable: anyone.
 * - shared (the default): members at the event, and a user who is joined now.
 * - invited: members at the event, and those invited at it.
 * - joined: members at the event.
 *
 * "At the event" is the state before it, except that an event changing the asker's own
 * membership counts with its new membership (a user sees their own join), and a user always
 * sees their own membership events (their leave too). A server sees what
 * any of its users may see by membership at the event, or anything world_readable or shared
 * while one of its users is in the room then.
 */
import type { EventStore, StoredEvent } from '../storage/eventstore.js';
import type { StateSnapshotStore } from '../storage/statesnapshots.js';
import type { EventLoader } from './eventloader.js';

export class Visibility {
  constructor(
    private readonly events: EventStore,
    private readonly snapshots: StateSnapshotStore,
    private readonly loader: EventLoader,
  ) {}

  async visibleTo(eventIds: readonly string[], asker: { userId?: string; serverName?: string }): Promise<string[]> {
    const stored = await this.events.eventsByIds(eventIds);
    const byId = new Map(stored.map((s) => [s.eventId, s]));
    const out: string[] = [];
    for (const id of eventIds) {
      const e = byId.get(id);
      if (e && (await this.visible(e, asker))) out.push(id);
    }
    return out;
  }

  private async visible(e: StoredEvent, asker: { userId?: string; serverName?: string }): Promise<boolean> {
    if (e.stateSnapshotNid === null || e.isRejected || e.isSoftFailed) return false;
    const room = await this.events.roomByNid(e.roomNid);
    if (!room) return false;
    const types = await this.events.typeNids(['m.room.history_visibility', 'm.room.member']);
    const hvType = types.get('m.room.history_visibility')!;
    const memberType = types.get('m.room.member')!;
    const hvKey = (await this.events.stateKeyNids([''])).get('')!;
    const hvNid = (await this.snapshots.lookup(e.stateSnapshotNid, [{ typeNid: hvType, stateKeyNid: hvKey }])).values().next().value;
    const hvEvent = hvNid === undefined ? undefined : (await this.loader.byNids([hvNid], room.roomVersion)).get(hvNid)?.event;
    const hv = typeof hvEvent?.content['history_visibility'] === 'string' ? hvEvent.content['history_visibility'] : 'shared';
    if (hv === 'world_readable') return true;

    const self = (await this.loader.byNids([e.eventNid], room.roomVersion)).get(e.eventNid)?.event;
    const membershipAt = async (userIds: string[]): Promise<string[]> => {
      const keys = await this.events.stateKeyNids(userIds);
      const found = await this.snapshots.lookup(
        e.stateSnapshotNid!,
        userIds.map((u) => ({ typeNid: memberType, stateKeyNid: keys.get(u)! })),
      );
      const loaded = await this.loader.byNids([...found.values()], room.roomVersion);
      const memberships = new Map([...loaded.values()].map((l) => [l.event.stateKey ?? '', l.event.content['membership']]));
      // The event that changes someone's membership counts with its new membership for them.
      if (self?.type === 'm.room.member' && self.stateKey !== undefined) memberships.set(self.stateKey, self.content['membership']);
      return userIds.map((u) => (typeof memberships.get(u) === 'string' ? (memberships.get(u) as string) : 'leave'));
    };

    if (asker.userId !== undefined) {
      // A user always sees their own membership events (their leave, most of all: as Synapse has it).
      if (self?.type === 'm.room.member' && self.stateKey === asker.userId) return true;
      const [m] = await membershipAt([asker.userId]);
      if (m === 'join') return true;
      if (hv === 'invited' && m === 'invite') return true;
      if (hv === 'shared') return (await this.events.membership(room.roomNid, asker.userId))?.membership === 'join';
      return false;
    }
    if (asker.serverName !== undefined) {
      // The server's users who were members at the event (from the room's members now and then).
      const suffix = `:${asker.serverName}`;
      const candidates = (await this.events.members(room.roomNid)).map((m) => m.userId).filter((u) => u.endsWith(suffix));
      if (self?.type === 'm.room.member' && self.stateKey?.endsWith(suffix) && !candidates.includes(self.stateKey)) candidates.push(self.stateKey);
      if (candidates.length === 0) return false;
      const ms = await membershipAt(candidates);
      if (ms.includes('join')) return true;
      if (hv === 'invited' && ms.includes('invite')) return true;
      return hv === 'shared' && (await this.events.members(room.roomNid, ['join'])).some((m) => m.userId.endsWith(suffix));
    }
    return false;
  }
}
