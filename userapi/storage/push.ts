/** Notifications, unread counts and pushers, one implementation for both databases. */
import { sql, type Kysely } from 'kysely';
import { chunks, dbBool, fromDbBool } from '../../internal/sqlutil/index.js';
import type { Notification, Pusher, UnreadCounts } from '../api/push.js';
import type { UserapiDatabase } from './tables.js';

export interface NewNotification {
  userId: string;
  roomId: string;
  eventId: string;
  threadId: string;
  depth: number;
  ts: number;
  highlight: boolean;
  actions: unknown[];
  event: Record<string, unknown>;
}

export interface StoredPusher extends Pusher {
  userId: string;
  deviceId: string;
  pushkeyTs: number;
}

/** Read notifications older than this go when their user's counts are reset. */
const KEEP_READ_MS = 30 * 24 * 3600_000;

export class PushStore {
  constructor(private readonly db: Kysely<UserapiDatabase>) {}

  /**
   * Stores notifications of one event (one row per user; a repeat is ignored) and counts them,
   * unless a receipt of the user's already reaches past the event. Returns the new counts of
   * each user whose counts changed.
   */
  async addNotifications(rows: readonly NewNotification[]): Promise<Map<string, UnreadCounts & { roomId: string }>> {
    const changed = new Map<string, UnreadCounts & { roomId: string }>();
    for (const c of await this.addNotificationsOfEvents(rows)) changed.set(c.userId, { roomId: c.roomId, notification_count: c.notification_count, highlight_count: c.highlight_count });
    return changed;
  }

  /**
   * addNotifications for the notifications of several events, of any rooms, in one
   * transaction (a consumer's batch): the new counts of each (user, room) whose counts changed.
   */
  async addNotificationsOfEvents(rows: readonly NewNotification[]): Promise<Array<UnreadCounts & { userId: string; roomId: string }>> {
    const changed = new Map<string, UnreadCounts & { userId: string; roomId: string }>();
    if (rows.length === 0) return [];
    await this.db.transaction().execute(async (tx) => {
      for (const part of chunks(rows, 500)) {
        const roomIds = [...new Set(part.map((r) => r.roomId))];
        const readDepths = new Map<string, number>();
        for (const c of await tx
          .selectFrom('userapi_notification_counts')
          .select(['user_id', 'room_id', 'read_depth'])
          .where('user_id', 'in', [...new Set(part.map((r) => r.userId))])
          .where('room_id', 'in', roomIds)
          .execute()) {
          readDepths.set(`${c.user_id}\u0000${c.room_id}`, Number(c.read_depth));
        }
        const values = part.map((r) => {
          const read = r.depth <= (readDepths.get(`${r.userId}\u0000${r.roomId}`) ?? 0);
          return {
            user_id: r.userId,
            room_id: r.roomId,
            event_id: r.eventId,
            thread_id: r.threadId,
            depth: r.depth,
            ts: r.ts,
            highlight: dbBool(r.highlight),
            read: dbBool(read),
            actions: JSON.stringify(r.actions),
            event_json: JSON.stringify(r.event),
          };
        });
        const inserted = await tx
          .insertInto('userapi_notifications')
          .values(values)
          .onConflict((oc) => oc.columns(['user_id', 'event_id']).doNothing())
          .returning(['user_id', 'room_id', 'highlight', 'read'])
          .execute();
        // One upsert for the counts of the whole chunk.
        const add = new Map<string, { user_id: string; room_id: string; notification_count: number; highlight_count: number }>();
        for (const ins of inserted) {
          if (fromDbBool(ins.read)) continue;
          const key = `${ins.user_id}\u0000${ins.room_id}`;
          const a = add.get(key) ?? { user_id: ins.user_id, room_id: ins.room_id, notification_count: 0, highlight_count: 0 };
          a.notification_count++;
          if (fromDbBool(ins.highlight)) a.highlight_count++;
          add.set(key, a);
        }
        if (add.size === 0) continue;
        const counted = await tx
          .insertInto('userapi_notification_counts')
          .values([...add.values()])
          .onConflict((oc) =>
            oc.columns(['user_id', 'room_id']).doUpdateSet({
              notification_count: sql`userapi_notification_counts.notification_count + excluded.notification_count`,
              highlight_count: sql`userapi_notification_counts.highlight_count + excluded.highlight_count`,
            }),
          )
          .returning(['user_id', 'room_id', 'notification_count', 'highlight_count'])
          .execute();
        for (const r of counted) {
          changed.set(`${r.user_id}\u0000${r.room_id}`, { userId: r.user_id, roomId: r.room_id, notification_count: Number(r.notification_count), highlight_count: Number(r.highlight_count) });
        }
      }
    });
    return [...changed.values()];
  }

  /**
   * A read receipt at `depth`: the user's notifications in the room up to it are read (only
   * those of one thread for a threaded receipt; 'main' is the main timeline). Returns the new
   * counts, and whether they changed.
   */
  async markRead(userId: string, roomId: string, depth: number, threadId: string | undefined, now = Date.now()): Promise<{ counts: UnreadCounts; changed: boolean }> {
    return this.db.transaction().execute(async (tx) => {
      let q = tx.updateTable('userapi_notifications').set({ read: dbBool(true) }).where('user_id', '=', userId).where('room_id', '=', roomId).where('read', '=', dbBool(false)).where('depth', '<=', depth);
      if (threadId !== undefined) q = q.where('thread_id', '=', threadId === 'main' ? '' : threadId);
      const updated = Number((await q.executeTakeFirst()).numUpdatedRows);
      const before = await tx.selectFrom('userapi_notification_counts').selectAll().where('user_id', '=', userId).where('room_id', '=', roomId).executeTakeFirst();
      const counts = await this.countUnread(tx, userId, roomId);
      const readDepth = Math.max(Number(before?.read_depth ?? 0), threadId === undefined ? depth : 0);
      await tx
        .insertInto('userapi_notification_counts')
        .values({ user_id: userId, room_id: roomId, ...counts, read_depth: readDepth })
        .onConflict((oc) => oc.columns(['user_id', 'room_id']).doUpdateSet({ ...counts, read_depth: readDepth }))
        .execute();
      await tx.deleteFrom('userapi_notifications').where('user_id', '=', userId).where('read', '=', dbBool(true)).where('ts', '<', now - KEEP_READ_MS).execute();
      const changed = updated > 0 || Number(before?.notification_count ?? 0) !== counts.notification_count || Number(before?.highlight_count ?? 0) !== counts.highlight_count;
      return { counts, changed };
    });
  }

  private async countUnread(tx: Kysely<UserapiDatabase>, userId: string, roomId: string): Promise<UnreadCounts> {
    const r = await tx
      .selectFrom('userapi_notifications')
      .select((eb) => [eb.fn.countAll<number | string>().as('n'), eb.fn.sum<number | string | null>('highlight').as('h')])
      .where('user_id', '=', userId)
      .where('room_id', '=', roomId)
      .where('read', '=', dbBool(false))
      .executeTakeFirst();
    return { notification_count: Number(r?.n ?? 0), highlight_count: Number(r?.h ?? 0) };
  }

  async counts(userId: string, roomIds: readonly string[]): Promise<Map<string, UnreadCounts>> {
    const out = new Map<string, UnreadCounts>();
    for (const part of chunks(roomIds)) {
      if (part.length === 0) continue;
      for (const r of await this.db.selectFrom('userapi_notification_counts').selectAll().where('user_id', '=', userId).where('room_id', 'in', part).execute()) {
        out.set(r.room_id, { notification_count: Number(r.notification_count), highlight_count: Number(r.highlight_count) });
      }
    }
    return out;
  }

  /**
   * Unread counts split by thread ('' is the main timeline), counted from the notifications
   * themselves: only clients that ask for threads pay for the grouping.
   */
  async countsByThread(userId: string, roomIds: readonly string[]): Promise<Map<string, Map<string, UnreadCounts>>> {
    const out = new Map<string, Map<string, UnreadCounts>>();
    for (const part of chunks(roomIds)) {
      if (part.length === 0) continue;
      const rows = await this.db
        .selectFrom('userapi_notifications')
        .select((eb) => ['room_id', 'thread_id', eb.fn.countAll<number | string>().as('n'), eb.fn.sum<number | string | null>('highlight').as('h')])
        .where('user_id', '=', userId)
        .where('room_id', 'in', part)
        .where('read', '=', dbBool(false))
        .groupBy(['room_id', 'thread_id'])
        .execute();
      for (const r of rows) {
        let room = out.get(r.room_id);
        if (!room) out.set(r.room_id, (room = new Map()));
        room.set(r.thread_id, { notification_count: Number(r.n), highlight_count: Number(r.h ?? 0) });
      }
    }
    return out;
  }

  /** The user's unread notifications across their rooms (the badge a push carries). */
  async totalUnread(userId: string): Promise<number> {
    const r = await this.db
      .selectFrom('userapi_notification_counts')
      .select((eb) => eb.fn.sum<number | string | null>('notification_count').as('n'))
      .where('user_id', '=', userId)
      .executeTakeFirst();
    return Number(r?.n ?? 0);
  }

  /** Newest first, before position `from` when given. */
  async notifications(userId: string, from: number | undefined, limit: number, onlyHighlight: boolean): Promise<Array<{ id: number } & Omit<Notification, 'profile_tag'>>> {
    let q = this.db.selectFrom('userapi_notifications').selectAll().where('user_id', '=', userId);
    if (from !== undefined) q = q.where('id', '<', from);
    if (onlyHighlight) q = q.where('highlight', '=', dbBool(true));
    const rows = await q.orderBy('id', 'desc').limit(limit).execute();
    return rows.map((r) => ({
      id: Number(r.id),
      actions: JSON.parse(r.actions) as unknown[],
      event: JSON.parse(r.event_json) as Record<string, unknown>,
      read: fromDbBool(r.read),
      room_id: r.room_id,
      ts: Number(r.ts),
    }));
  }

  // ------------------------------------------------------------------------------------------
  // Pushers

  /** Adds or replaces the user's pusher for (app_id, pushkey); without `append`, other users' go. */
  /** A purged room: its notifications and unread counts go, for every user. */
  async purgeRoom(roomId: string): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx.deleteFrom('userapi_notifications').where('room_id', '=', roomId).execute();
      await tx.deleteFrom('userapi_notification_counts').where('room_id', '=', roomId).execute();
    });
  }

  async setPusher(p: StoredPusher, append: boolean): Promise<void> {
    const values = {
      device_id: p.deviceId,
      kind: p.kind,
      app_display_name: p.app_display_name,
      device_display_name: p.device_display_name,
      profile_tag: p.profile_tag ?? '',
      lang: p.lang,
      data: JSON.stringify(p.data),
      pushkey_ts: p.pushkeyTs,
    };
    await this.db.transaction().execute(async (tx) => {
      if (!append) await tx.deleteFrom('userapi_pushers').where('app_id', '=', p.app_id).where('pushkey', '=', p.pushkey).where('user_id', '!=', p.userId).execute();
      await tx
        .insertInto('userapi_pushers')
        .values({ user_id: p.userId, app_id: p.app_id, pushkey: p.pushkey, ...values })
        .onConflict((oc) => oc.columns(['app_id', 'pushkey', 'user_id']).doUpdateSet(values))
        .execute();
    });
  }

  async deletePusher(userId: string, appId: string, pushkey: string): Promise<boolean> {
    const r = await this.db.deleteFrom('userapi_pushers').where('user_id', '=', userId).where('app_id', '=', appId).where('pushkey', '=', pushkey).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  /** Pushers of devices that are gone (logged out, deleted) go with them. */
  async deletePushersOfDevicesExcept(userId: string, remainingDeviceIds: readonly string[]): Promise<void> {
    let q = this.db.deleteFrom('userapi_pushers').where('user_id', '=', userId);
    if (remainingDeviceIds.length > 0) q = q.where('device_id', 'not in', remainingDeviceIds);
    await q.execute();
  }

  async pushers(userId: string): Promise<StoredPusher[]> {
    return (await this.pushersOf([userId])).get(userId) ?? [];
  }

  /** Pushers of several users at once, by user. */
  async pushersOf(userIds: readonly string[]): Promise<Map<string, StoredPusher[]>> {
    const out = new Map<string, StoredPusher[]>();
    for (const part of chunks(userIds)) {
      if (part.length === 0) continue;
      const rows = await this.db.selectFrom('userapi_pushers').selectAll().where('user_id', 'in', part).orderBy('app_id').orderBy('pushkey').execute();
      for (const p of rows.map(toPusher)) out.set(p.userId, [...(out.get(p.userId) ?? []), p]);
    }
    return out;
  }
}

function toPusher(r: UserapiDatabase['userapi_pushers']): StoredPusher {
  return {
      userId: r.user_id,
      deviceId: r.device_id,
      pushkey: r.pushkey,
      kind: r.kind,
      app_id: r.app_id,
      app_display_name: r.app_display_name,
      device_display_name: r.device_display_name,
      profile_tag: r.profile_tag,
      lang: r.lang,
      data: JSON.parse(r.data) as Record<string, unknown>,
      pushkeyTs: Number(r.pushkey_ts),
  };
}
