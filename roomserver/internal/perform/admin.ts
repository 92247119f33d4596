/**
 * Dendrite's room admin actions:
 * - evacuate a room: every local user in it (joined, invited or knocking) leaves;
 * - evacuate a user: they leave every room this server holds that they are in;
 * - purge a room: every row about it goes from the roomserver, and `purge_room` tells the other
 *   components to drop theirs. Purging does not leave the room over federation (evacuate first
 *   for that); events other servers still send for it find no room and are dropped.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { OutputRoomEvent, PerformSendEventRequest, PerformSendEventResponse } from '../../api/index.js';
import type { EventStore } from '../../storage/eventstore.js';
import { purgeRoomRows } from '../../storage/purge.js';
import type { RoomserverDatabase } from '../../storage/tables.js';

/** Memberships a leave ends. */
const LEAVABLE = ['join', 'invite', 'knock'] as const;

export interface RoomAdminDeps {
  serverName: string;
  db: Kysely<RoomserverDatabase>;
  events: EventStore;
  send: (req: PerformSendEventRequest) => Promise<PerformSendEventResponse>;
  /** Runs `fn` in the room's input queue, with the inputer's caches of the room dropped after. */
  exclusive: <T>(roomId: string, fn: () => Promise<T>) => Promise<T>;
  publish: (roomId: string, msgId: string, output: OutputRoomEvent) => Promise<void>;
  log: Logger;
}

export class RoomAdmin {
  constructor(private readonly d: RoomAdminDeps) {}

  private isLocal(userId: string): boolean {
    return userId.slice(userId.indexOf(':') + 1) === this.d.serverName;
  }

  private async leave(roomId: string, userId: string, reason: string): Promise<boolean> {
    const res = await this.d.send({ user_id: userId, room_id: roomId, type: 'm.room.member', state_key: userId, content: { membership: 'leave', reason } });
    if (res.error !== undefined) {
      this.d.log.warn({ room_id: roomId, user_id: userId, error: res.message }, 'roomserver: evacuation leave refused');
      return false;
    }
    return true;
  }

  /** The local users made to leave; undefined when the room is not held here. */
  async evacuateRoom(roomId: string): Promise<string[] | undefined> {
    const room = await this.d.events.room(roomId);
    if (!room || room.stateSnapshotNid === 0) return undefined;
    const members = (await this.d.events.members(room.roomNid, [...LEAVABLE])).filter((m) => this.isLocal(m.userId));
    const affected: string[] = [];
    for (const m of members) if (await this.leave(roomId, m.userId, 'Room evacuated by a server admin')) affected.push(m.userId);
    this.d.log.info({ room_id: roomId, affected: affected.length }, 'roomserver: room evacuated');
    return affected;
  }

  /** The rooms the user left. Rooms only known through an invite from another server are not held here and stay. */
  async evacuateUser(userId: string): Promise<string[]> {
    const rooms = new Set<string>();
    for (const m of LEAVABLE) for (const r of await this.d.events.roomsOfUser(userId, m)) rooms.add(r);
    const affected: string[] = [];
    for (const roomId of [...rooms].sort()) {
      const room = await this.d.events.room(roomId);
      if (!room || room.stateSnapshotNid === 0) continue;
      if (await this.leave(roomId, userId, 'User evacuated by a server admin')) affected.push(roomId);
    }
    this.d.log.info({ user_id: userId, affected: affected.length }, 'roomserver: user evacuated');
    return affected;
  }

  /** False when the room is unknown here. */
  async purgeRoom(roomId: string): Promise<boolean> {
    const counts = await this.d.exclusive(roomId, () => purgeRoomRows(this.d.db, roomId));
    if (!counts) return false;
    await this.d.publish(roomId, `purge:${roomId}:${Date.now()}`, { type: 'purge_room', purge_room: { room_id: roomId } });
    this.d.log.info({ room_id: roomId, events: counts.events, state_nodes: counts.stateNodes }, 'roomserver: room purged');
    return true;
  }
}
