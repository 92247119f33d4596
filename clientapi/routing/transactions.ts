/**
 * Transaction IDs across restarts: each route keeps the transactions of this process in memory,
 * and asks syncapi (which stores each event's sending device and transaction ID) about the
 * ones it does not know, so that a retry after a restart is answered with the first event.
 */
import type { Logger } from 'pino';
import type { SyncInternalAPI } from '../../syncapi/api/index.js';

/**
 * How long a transaction ID stays taken after its event: a day, as Synapse keeps them. Long
 * enough for any retry; short enough that a client which reuses IDs across sessions (against
 * the spec's advice, but seen in scripts) is not silently ignored forever.
 */
export const TXN_PERSISTED_TTL_MS = 24 * 60 * 60_000;

/**
 * The event that `deviceId`'s transaction `txnId` produced in `roomId` (an event of `type`), if
 * syncapi knows it. When syncapi cannot be asked (a polylith whose syncapi is down), the answer
 * is "unknown" and the send goes ahead: a message must not wait for syncapi, and only a retry
 * across a restart could then be doubled.
 */
export async function eventIdOfTransaction(
  syncAPI: Pick<SyncInternalAPI, 'queryEventIdForTransaction'> | undefined,
  q: { roomId: string; userId: string; deviceId: string; txnId: string; type: string },
  log?: Logger,
): Promise<string | undefined> {
  if (!syncAPI) return undefined;
  const res = await syncAPI.queryEventIdForTransaction({
    room_id: q.roomId,
    user_id: q.userId,
    device_id: q.deviceId,
    transaction_id: q.txnId,
    type: q.type,
    since_ts: Date.now() - TXN_PERSISTED_TTL_MS,
  }).catch((err: unknown) => {
    log?.warn({ err, room_id: q.roomId, device_id: q.deviceId }, 'clientapi: transaction lookup in syncapi failed; sending as new');
    return { event_id: undefined };
  });
  return res.event_id;
}
