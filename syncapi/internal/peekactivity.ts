/**
 * Which peeked rooms still have a device that counts as peeking (MSC2753), the answer to the
 * question Dendrite's design left open ("how do we tell there are no devices currently syncing
 * for a given peeked room?"): syncapi is the one that sees /sync, so it tells the roomserver.
 *
 * - A device counts as peeking while it calls /sync: its last /sync is remembered (in memory;
 *   after a restart every device counts from the start of the process).
 * - When the last peeker of a room unpeeks or joins, or when none of its peeking devices has
 *   synced for `peekTiming.idlePeekerMs` (15 min: far above any /sync long-poll, so only a
 *   client that went away trips it), the roomserver is told (performPeekersGone) and the
 *   room's peek over federation ends (no more renewals, DELETE /peek).
 * - The devices' peeks themselves stay. A device's next /sync finds its room quiet and asks the
 *   roomserver to peek it again (performPeek with `resume`): a remote room is fetched again
 *   (and given to the device in full, as what it missed is not known), a local one needs nothing.
 *   The same happens once for each peeked room after a restart, as nothing says whether its
 *   remote peek outlived the process.
 */
import type { Logger } from 'pino';
import { peekTiming } from '../../internal/peektiming.js';
import type { RoomserverInternalAPI } from '../../roomserver/api/index.js';
import type { PeekStore } from '../storage/peeks.js';

/** How long a room whose peek could not be resumed waits before a /sync tries again. */
const RESUME_RETRY_MS = 60_000;

const deviceKey = (userId: string, deviceId: string): string => `${userId}\u0000${deviceId}`;

export class PeekActivity {
  private readonly startedAt = Date.now();
  private readonly lastSync = new Map<string, number>();
  /** live: a device peeks it and its peek is known to be going; idle: the roomserver was told no device does. Absent: not known (since start-up). */
  private readonly rooms = new Map<string, 'live' | 'idle'>();
  private readonly retryAt = new Map<string, number>();
  /** Rooms whose last peeker left while the roomserver could not be told: the next sweep tells it. */
  private readonly untold = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private sweeping = false;

  constructor(
    private readonly d: {
      peeks: PeekStore;
      rsAPI: Pick<RoomserverInternalAPI, 'performPeek' | 'performPeekersGone'>;
      log: Logger;
    },
  ) {}

  /** A device called /sync: it counts as peeking again, and its rooms that went quiet are peeked again (in the background). */
  async touch(userId: string, deviceId: string, now = Date.now()): Promise<void> {
    this.lastSync.set(deviceKey(userId, deviceId), now);
    for (const p of await this.d.peeks.forDevice(userId, deviceId)) {
      if (this.rooms.get(p.roomId) === 'live' || (this.retryAt.get(p.roomId) ?? 0) > now) continue;
      this.rooms.set(p.roomId, 'live');
      const failed = (why: string): void => {
        this.rooms.delete(p.roomId);
        this.retryAt.set(p.roomId, Date.now() + RESUME_RETRY_MS);
        this.d.log.info({ room_id: p.roomId, user_id: userId, device_id: deviceId, error: why }, 'syncapi: a quiet peek could not be resumed');
      };
      void this.d.rsAPI.performPeek({ room_id_or_alias: p.roomId, user_id: userId, device_id: deviceId, resume: true }).then(
        (res) => {
          if (res.error !== undefined) failed(res.message);
          else this.retryAt.delete(p.roomId);
        },
        (err: unknown) => failed(err instanceof Error ? err.message : String(err)),
      );
    }
  }

  /** A device began peeking into the room (new_peek): its peek is going. */
  confirm(roomId: string): void {
    this.rooms.set(roomId, 'live');
    this.retryAt.delete(roomId);
  }

  /** The room's last peeking device unpeeked or joined. */
  async gone(roomId: string): Promise<void> {
    this.rooms.delete(roomId);
    if (!(await this.tellRoomserver(roomId, 'its last peeking device unpeeked or joined'))) this.untold.add(roomId);
  }

  /** Tells the roomserver of each room whose peeking devices all went idle. */
  async sweep(now = Date.now()): Promise<void> {
    const idleSince = now - peekTiming.idlePeekerMs;
    const byRoom = new Map<string, boolean>();
    for (const p of await this.d.peeks.all()) {
      const active = (this.lastSync.get(deviceKey(p.userId, p.deviceId)) ?? this.startedAt) >= idleSince;
      byRoom.set(p.roomId, (byRoom.get(p.roomId) ?? false) || active);
    }
    for (const [roomId, active] of byRoom) {
      if (active || this.rooms.get(roomId) === 'idle') continue;
      this.rooms.set(roomId, 'idle');
      // Not told: the next sweep tries again.
      if (!(await this.tellRoomserver(roomId, 'none of its peeking devices syncs any more'))) this.rooms.delete(roomId);
    }
    for (const roomId of this.untold) {
      if (byRoom.has(roomId) || (await this.tellRoomserver(roomId, 'its last peeking device unpeeked or joined'))) this.untold.delete(roomId);
    }
    // Rooms without peeks and devices long gone are forgotten.
    for (const roomId of this.rooms.keys()) if (!byRoom.has(roomId)) this.rooms.delete(roomId);
    for (const [key, at] of this.lastSync) if (at < idleSince) this.lastSync.delete(key);
  }

  /** Starts sweeping; returns what stops it. */
  start(): () => void {
    this.timer = setInterval(() => {
      if (this.sweeping) return;
      this.sweeping = true;
      this.sweep()
        .catch((err: unknown) => this.d.log.error({ err }, 'syncapi: idle peek sweep failed'))
        .finally(() => (this.sweeping = false));
    }, peekTiming.idleSweepMs);
    this.timer.unref();
    return () => clearInterval(this.timer);
  }

  /** Whether the roomserver heard it. */
  private async tellRoomserver(roomId: string, why: string): Promise<boolean> {
    try {
      const { ended_remote_peek } = await this.d.rsAPI.performPeekersGone({ room_id: roomId });
      if (ended_remote_peek) this.d.log.debug({ room_id: roomId, why }, 'syncapi: the room is not peeked any more; its federated peek ended');
      return true;
    } catch (err) {
      // Its federated peek goes on being renewed until a sweep finds the room idle and gets through.
      this.d.log.warn({ err, room_id: roomId }, 'syncapi: could not tell the roomserver that a room is not peeked any more');
      return false;
    }
  }
}
