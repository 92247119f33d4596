/**
 * The internal API of the syncapi component: the only door other components may use.
 * In a monolith it is a direct call; in a polylith, NATS request/reply generated from
 * `syncapiInternalAPIMethods`. Every method takes one JSON request and returns JSON.
 *
 * It also defines the ephemeral messages syncapi consumes (producers publish them on the
 * streams of the same name): typing, receipts, to-device messages and presence.
 */
import type { StatusAPI } from '../../internal/componentapi.js';
import type { JsonObject } from '../../internal/matrix/index.js';

/** Whether a user already annotated an event this way (the relations syncapi indexes). */
export interface QueryAnnotationExistsRequest {
  room_id: string;
  /** The annotated event. */
  event_id: string;
  sender: string;
  /** The annotation's event type (m.reaction, usually). */
  type: string;
  key: string;
}
export interface QueryAnnotationExistsResponse {
  exists: boolean;
}

/**
 * The event a device's transaction produced in a room, if syncapi has it: clientapi answers a
 * retried PUT /send or /redact with it, also after a restart ("Transaction identifiers").
 */
export interface QueryEventIdForTransactionRequest {
  room_id: string;
  /** The sender. */
  user_id: string;
  device_id: string;
  transaction_id: string;
  /**
   * Only an event of this type. Each endpoint is its own transaction scope: a message and a
   * redaction sent with the same transaction ID are two transactions.
   */
  type?: string;
  /**
   * Only an event created (origin_server_ts, ms) at or after this: how long a transaction ID
   * stays taken is the caller's choice.
   */
  since_ts?: number;
}
export interface QueryEventIdForTransactionResponse {
  /** Absent when syncapi knows no event of this transaction. */
  event_id?: string;
}

/**
 * syncapi's internal API. Peeks (MSC2753) come to syncapi from the roomserver, as `new_peek` and
 * `retire_peek` on OutputRoomEvent, not through this API.
 */
export interface SyncInternalAPI extends StatusAPI {
  /** For clientapi's check against duplicate annotations (M_DUPLICATE_ANNOTATION). */
  queryAnnotationExists(req: QueryAnnotationExistsRequest): Promise<QueryAnnotationExistsResponse>;
  /** For clientapi's idempotent sends across restarts (its own memory of transactions is per process). */
  queryEventIdForTransaction(req: QueryEventIdForTransactionRequest): Promise<QueryEventIdForTransactionResponse>;
}

export const syncapiInternalAPIMethods = ['queryComponentStatus', 'queryAnnotationExists', 'queryEventIdForTransaction'] as const satisfies ReadonlyArray<keyof SyncInternalAPI>;

/** OutputTypingEvent (subject per room): a user started or stopped typing in a room. */
export interface OutputTypingEvent {
  room_id: string;
  user_id: string;
  typing: boolean;
  /** How long the typing lasts unless renewed (when typing). */
  timeout_ms?: number;
}

/** OutputReceiptEvent (subject per room): a user's read receipt moved. */
export interface OutputReceiptEvent {
  room_id: string;
  user_id: string;
  event_id: string;
  /** m.read or m.read.private. */
  receipt_type: string;
  /** The thread of a threaded receipt; absent for unthreaded ones. */
  thread_id?: string;
  ts: number;
}

/** OutputSendToDeviceEvent (subject per target user): a message for one device of a local user. */
export interface OutputSendToDeviceEvent {
  sender: string;
  user_id: string;
  device_id: string;
  type: string;
  content: JsonObject;
}

/** OutputPresenceEvent (subject per user): a user's presence changed (for federation and other readers). */
export interface OutputPresenceEvent {
  user_id: string;
  presence: 'online' | 'offline' | 'unavailable';
  status_msg?: string;
  last_active_ts: number;
}
