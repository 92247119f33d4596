/** Events as clients receive them from syncapi's routes. */
import { Event, type JsonObject, type PDUJson } from '../../internal/matrix/index.js';
import type { StreamEvent } from '../storage/syncstore.js';
import { pickFields, type SyncFilter } from './filter.js';

export interface ClientEventOptions {
  /** The requesting device: its own sends carry their transaction ID. */
  deviceId?: string;
  format?: 'client' | 'sync' | 'federation';
  eventFields?: readonly string[];
}

/** The stored event in client format, with `unsigned.transaction_id` for the device that sent it. */
export function clientEvent(e: StreamEvent, opts: ClientEventOptions = {}): JsonObject {
  const event = Event.fromStored(JSON.parse(e.json) as PDUJson, e.roomVersion, e.eventId);
  const unsigned: JsonObject = {};
  if (e.txnId !== null && opts.deviceId !== undefined && e.deviceId === opts.deviceId) unsigned['transaction_id'] = e.txnId;
  const format = opts.format ?? 'client';
  // The federation format is the PDU; the event ID (not part of it from room version 3) is added for clients.
  const out = format === 'federation' ? ({ ...(event.json as unknown as JsonObject), event_id: event.eventId } as JsonObject) : event.toClientEvent(format === 'sync' ? 'sync' : 'client', unsigned);
  return opts.eventFields ? (pickFields(out, opts.eventFields) as JsonObject) : out;
}

/** The client-event options a /sync filter asks for. */
export function syncEventOptions(filter: SyncFilter, deviceId: string): ClientEventOptions {
  return { deviceId, format: filter.eventFormat === 'federation' ? 'federation' : 'sync', ...(filter.eventFields ? { eventFields: filter.eventFields } : {}) };
}

/** The content of a stored event (for filters and membership checks). */
export function contentOf(e: StreamEvent): Record<string, unknown> {
  const c = (JSON.parse(e.json) as PDUJson).content;
  return typeof c === 'object' && c !== null ? (c as Record<string, unknown>) : {};
}
