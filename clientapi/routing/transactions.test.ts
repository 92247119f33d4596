/** clientapi's lookup of transactions this process has not seen (asked of syncapi). */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { QueryEventIdForTransactionRequest } from '../../syncapi/api/index.js';
import { TXN_PERSISTED_TTL_MS, eventIdOfTransaction } from './transactions.js';

const q = { roomId: '!r:hs', userId: '@a:hs', deviceId: 'DEV', txnId: 't1', type: 'm.room.message' };

describe('eventIdOfTransaction', () => {
  it("asks syncapi for the device's transaction of that type, within the window, and answers its event", async () => {
    const asked: QueryEventIdForTransactionRequest[] = [];
    const before = Date.now();
    const id = await eventIdOfTransaction({ queryEventIdForTransaction: async (req) => (asked.push(req), { event_id: '$e' }) }, q);
    expect(id).toBe('$e');
    expect(asked).toHaveLength(1);
    expect(asked[0]).toMatchObject({ room_id: '!r:hs', user_id: '@a:hs', device_id: 'DEV', transaction_id: 't1', type: 'm.room.message' });
    expect(asked[0]!.since_ts).toBeGreaterThanOrEqual(before - TXN_PERSISTED_TTL_MS);
    expect(asked[0]!.since_ts).toBeLessThanOrEqual(Date.now() - TXN_PERSISTED_TTL_MS);
  });

  it('answers unknown without syncapi, and when syncapi cannot be asked (logged, so the send goes ahead)', async () => {
    expect(await eventIdOfTransaction(undefined, q)).toBeUndefined();
    const lines: string[] = [];
    const log = pino({ level: 'warn' }, { write: (l: string) => void lines.push(l) });
    const id = await eventIdOfTransaction({ queryEventIdForTransaction: async () => Promise.reject(new Error('no responders')) }, q, log);
    expect(id).toBeUndefined();
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 40, room_id: '!r:hs', device_id: 'DEV' });
  });
});
