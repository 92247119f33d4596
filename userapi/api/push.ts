/**
 * Push: notifications that push rules produced, unread counts, and pushers (Client-Server
 * API "Push Notifications"). userapi evaluates rules for new room events (OutputRoomEvent),
 * resets counts on read receipts (OutputReceiptEvent) and publishes each change of a user's
 * counts on OutputNotificationData for syncapi.
 */

/** A pusher as the Client-Server API shows it. */
export interface Pusher {
  pushkey: string;
  kind: string;
  app_id: string;
  app_display_name: string;
  device_display_name: string;
  profile_tag?: string;
  lang: string;
  data: Record<string, unknown>;
}

export interface PerformPusherSetRequest {
  userId: string;
  /** The device that made the pusher: it goes when the device does. */
  deviceId: string;
  pusher: Pusher;
  /** false (the spec's default): other users' pushers with this app_id and pushkey are removed. */
  append: boolean;
}
export interface PerformPusherDeletionRequest {
  userId: string;
  appId: string;
  pushkey: string;
}
export interface QueryPushersRequest {
  userId: string;
}
export interface QueryPushersResponse {
  pushers: Pusher[];
}

export interface Notification {
  actions: unknown[];
  /** The event in client format. */
  event: Record<string, unknown>;
  profile_tag: string | null;
  read: boolean;
  room_id: string;
  ts: number;
}
export interface QueryNotificationsRequest {
  userId: string;
  /** A next_token from an earlier page. */
  from?: string;
  limit: number;
  onlyHighlight?: boolean;
}
export interface QueryNotificationsResponse {
  notifications: Notification[];
  /** Absent on the last page. */
  nextToken?: string;
}

// A type, not an interface: it goes into /sync's JSON as it is.
export type UnreadCounts = {
  notification_count: number;
  highlight_count: number;
};
export interface QueryUnreadCountsRequest {
  userId: string;
  roomIds: string[];
  /**
   * Counts threads apart (a filter's `unread_thread_notifications`): `counts` then holds the
   * main timeline only, and `thread_counts` each thread's.
   */
  byThread?: boolean;
}
export interface QueryUnreadCountsResponse {
  /** By room; rooms with nothing unread may be absent (read them as zeros). */
  counts: Record<string, UnreadCounts>;
  /** With byThread: by room, then by thread root event ID; only threads with unread notifications. */
  thread_counts?: Record<string, Record<string, UnreadCounts>>;
}

export interface PushEmptyResponse {
  ok: boolean;
}

/** OutputNotificationData (subject per user): a user's unread counts in a room changed. */
export interface OutputNotificationData {
  user_id: string;
  room_id: string;
  notification_count: number;
  highlight_count: number;
}

export interface PushAPI {
  performPusherSet(req: PerformPusherSetRequest): Promise<PushEmptyResponse>;
  performPusherDeletion(req: PerformPusherDeletionRequest): Promise<PushEmptyResponse>;
  queryPushers(req: QueryPushersRequest): Promise<QueryPushersResponse>;
  queryNotifications(req: QueryNotificationsRequest): Promise<QueryNotificationsResponse>;
  queryUnreadCounts(req: QueryUnreadCountsRequest): Promise<QueryUnreadCountsResponse>;
}

export const pushAPIMethods = ['performPusherSet', 'performPusherDeletion', 'queryPushers', 'queryNotifications', 'queryUnreadCounts'] as const satisfies ReadonlyArray<keyof PushAPI>;
