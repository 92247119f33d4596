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
 * syncapi's internal API. Peeks (MSC2753) come to syncapi from the roomserver, as `new_peek` and
 * `retire_peek` on OutputRoomEvent, not through this API.
 */
export interface SyncInternalAPI extends StatusAPI {
  /** For clientapi's check against duplicate annotations (M_DUPLICATE_ANNOTATION). */
  queryAnnotationExists(req: QueryAnnotationExistsRequest): Promise<QueryAnnotationExistsResponse>;
}

export const syncapiInternalAPIMethods = ['queryComponentStatus', 'queryAnnotationExists'] as const satisfies ReadonlyArray<keyof SyncInternalAPI>;

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
