/**
 * Checks on receipt of PDUs (Server-Server API "Checks performed on receipt of a PDU", steps
 * 1-3): a valid event of the room's version (format, size, canonical numbers), signed by the
 * servers that must sign it with keys valid at the event, and with a content hash that matches
 * (an event whose hash does not match is kept redacted). The auth checks (steps 4-6) are the
 * roomserver's.
 */
import { Event, MatrixProtocolError, checkEventsHashAndSignatures, requiredKeys, type KeyLookup, type KeyRequest, type ProtocolErrorCode } from '../../internal/matrix/index.js';

export interface PDUKeys {
  ensure(requests: KeyRequest[]): Promise<void>;
  keyLookup: KeyLookup;
}

/**
 * `signature`: the event is not (properly) signed or hashed, which federation endpoints answer
 * with 403. `code`: why Event.fromPDU refused it; 'not_canonical' is a number the room version
 * forbids (a float, or an integer outside ±(2^53-1), from room version 6), answered M_BAD_JSON.
 */
export type CheckedPDU = { ok: true; event: Event } | { ok: false; eventId?: string; error: string; kind: 'format' | 'signature'; code?: ProtocolErrorCode };

/** Parses and checks `raws`, all of room version `roomVersion`, in one batch. */
export async function checkPDUs(raws: readonly unknown[], roomVersion: string, keys: PDUKeys): Promise<CheckedPDU[]> {
  const parsed: Array<Event | { error: string; code?: ProtocolErrorCode }> = raws.map((raw) => {
    try {
      return Event.fromPDU(raw, roomVersion);
    } catch (e) {
      return { error: e instanceof Error ? e.message : String(e), ...(e instanceof MatrixProtocolError ? { code: e.code } : {}) };
    }
  });
  const events = parsed.filter((p): p is Event => p instanceof Event);
  await keys.ensure(events.flatMap((e) => requiredKeys(e)));
  const outcomes = await checkEventsHashAndSignatures(events, keys.keyLookup);
  const byEvent = new Map(events.map((e, i) => [e, outcomes[i]!]));
  return parsed.map((p): CheckedPDU => {
    if (!(p instanceof Event)) return { ok: false, error: p.error, kind: p.code !== 'not_canonical' && /\b(hashes|signatures)\b/.test(p.error) ? 'signature' : 'format', ...(p.code !== undefined ? { code: p.code } : {}) };
    const o = byEvent.get(p)!;
    if (o instanceof MatrixProtocolError) return { ok: false, eventId: p.eventId, error: o.message, kind: 'signature' };
    return { ok: true, event: o === 'redact' ? p.redacted() : p };
  });
}
