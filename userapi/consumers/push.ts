/**
 * What userapi consumes for push: OutputRoomEvent (push rules for each new event, durable
 * UserAPIRoomServerConsumer) and OutputReceiptEvent (read receipts reset unread counts,
 * durable UserAPIReceiptConsumer). Both are idempotent: a repeated event stores no second
 * notification, a repeated receipt reads nothing new.
 */
import type { Logger } from 'pino';
import type { OutputRoomEvent } from '../../roomserver/api/index.js';
import type { Bus } from '../../setup/jetstream/index.js';
import type { OutputReceiptEvent } from '../../syncapi/api/index.js';
import type { PushService } from '../internal/push.js';

export async function startPushConsumers(d: { bus: Bus; prefix: string; push: PushService; log: Logger }): Promise<void> {
  const decoder = new TextDecoder();
  await d.bus.consume({ stream: `${d.prefix}OutputRoomEvent`, durable: 'UserAPIRoomServerConsumer' }, async (msg) => {
    const out = JSON.parse(decoder.decode(msg.data)) as OutputRoomEvent;
    try {
      await d.push.onRoomEvent(out);
    } catch (err) {
      // A failure here must not stall the stream for good: retry a few times, then drop.
      if (msg.deliveryCount < 3) throw err;
      d.log.error({ err }, 'push: cannot process a room event; skipped');
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
