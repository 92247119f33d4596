/**
 * What userapi consumes for push: OutputRoomEvent (push rules for each new event, in batches,
 * durable UserAPIRoomServerConsumer) and OutputReceiptEvent (read receipts reset unread counts,
 * durable UserAPIReceiptConsumer). Both are idempotent: a repeated event stores no second
 * notification, a repeated receipt reads nothing new.
 */
import type { Logger } from 'pino';
import type { OutputRoomEvent } from '../../roomserver/api/index.js';
import type { Bus } from '../../setup/jetstream/index.js';
import type { OutputReceiptEvent } from '../../syncapi/api/index.js';
import type { PushService } from '../internal/push.js';

/** Room events evaluated per batch, at most. */
const ROOM_EVENT_BATCH = 100;

export async function startPushConsumers(d: { bus: Bus; prefix: string; push: PushService; log: Logger }): Promise<void> {
  const decoder = new TextDecoder();
  // In batches: a batch's notifications are stored in one transaction (PushService.onRoomEvents).
  await d.bus.consumeBatch({ stream: `${d.prefix}OutputRoomEvent`, durable: 'UserAPIRoomServerConsumer', maxBatch: ROOM_EVENT_BATCH }, async (msgs) => {
    const outs = msgs.map((msg) => JSON.parse(decoder.decode(msg.data)) as OutputRoomEvent);
    try {
      return await d.push.onRoomEvents(outs);
    } catch (err) {
      // A failure here must not stall the stream for good: retry a few times, then drop. (A
      // failed batch is retried event by event, so only the event that fails is dropped.)
      if (msgs.length > 1 || msgs[0]!.deliveryCount < 3) throw err;
      d.log.error({ err }, 'push: cannot process a room event; skipped');
      return 1;
    }
  });
  await d.bus.consume({ stream: `${d.prefix}OutputReceiptEvent`, durable: 'UserAPIReceiptConsumer' }, async (msg) => {
    const e = JSON.parse(decoder.decode(msg.data)) as OutputReceiptEvent;
    try {
      await d.push.onReceipt(e);
    } catch (err) {
      if (msg.deliveryCount < 3) throw err;
      d.log.error({ err, room_id: e.room_id, user_id: e.user_id }, 'push: cannot process a receipt; skipped');
    }
  });
}
