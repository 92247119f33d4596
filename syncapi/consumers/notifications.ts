/**
 * OutputNotificationData (published by userapi when a user's unread counts in a room change):
 * wakes that user's waiting /sync requests, and marks the room for their next incremental sync. The counts themselves are read from userapi when a
 * response is built, so this stream carries no position of its own worth storing: the
 * `notification` token position is a counter of this process.
 */
import type { Bus } from '../../setup/jetstream/index.js';
import type { OutputNotificationData } from '../../userapi/api/index.js';
import type { Notifier } from '../internal/notifier.js';

export async function startNotificationConsumer(d: { bus: Bus; prefix: string; notifier: Notifier }): Promise<void> {
  const decoder = new TextDecoder();
  await d.bus.consume({ stream: `${d.prefix}OutputNotificationData`, durable: 'SyncAPINotificationDataConsumer' }, async (msg) => {
    const e = JSON.parse(decoder.decode(msg.data)) as OutputNotificationData;
    d.notifier.countsChanged(e.user_id, e.room_id);
  });
}
