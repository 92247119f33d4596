import type { ColumnType, Generated } from 'kysely';

type WithDefault<T> = ColumnType<T, T | undefined, T>;

export interface SyncapiDatabase {
  syncapi_output_room_events: {
    id: Generated<number>;
    room_id: string;
    event_id: string;
    type: string;
    sender: string;
    state_key: string | null;
    event_json: string;
    room_version: string;
    adds_state: string;
    removes_state: string;
    device_id: string | null;
    txn_id: string | null;
    /** The event's depth (from its PDU): with `id`, its place in the room's topological order (/messages). */
    depth: WithDefault<number>;
  };
  /**
   * Gaps in a room's history here: an event whose prev event syncapi does not hold, one row per
   * missing prev event. /messages backfills across them (storage/syncstore.ts).
   */
  syncapi_backward_extremities: {
    room_id: string;
    event_id: string;
    prev_event_id: string;
  };
  syncapi_current_room_state: {
    room_id: string;
    type: string;
    state_key: string;
    event_id: string;
    membership: string | null;
    added_at: number;
  };
  syncapi_account_data: {
    id: Generated<number>;
    user_id: string;
    room_id: string;
    type: string;
  };
  syncapi_invites: {
    id: Generated<number>;
    event_id: string;
    room_id: string;
    target_user_id: string;
    event_json: string;
    room_version: string;
    retired: WithDefault<number>;
  };
  syncapi_receipts: {
    id: Generated<number>;
    room_id: string;
    receipt_type: string;
    user_id: string;
    thread_id: string;
    event_id: string;
    ts: number;
  };
  syncapi_send_to_device: {
    id: Generated<number>;
    user_id: string;
    device_id: string;
    content: string;
  };
  syncapi_presence: {
    id: Generated<number>;
    user_id: string;
    presence: string;
    status_msg: string | null;
    last_active_ts: number;
  };
  /** The member event of each member last sent to a device (lazy-loading members). */
  syncapi_lazy_loaded_members: {
    user_id: string;
    device_id: string;
    room_id: string;
    target_user_id: string;
    event_id: string;
  };
  /** Events in the full-text index (storage/search.ts); the text is in syncapi_search_fts (SQLite) or the tsv column (PostgreSQL). */
  syncapi_search_events: {
    id: Generated<number>;
    event_id: string;
    room_id: string;
    sender: string;
    type: string;
    key: string;
    pos: number;
  };
  /** Event relationships (`m.relates_to` with a rel_type): one row per child event (storage/relations.ts). */
  syncapi_relations: {
    room_id: string;
    /** The parent event. */
    event_id: string;
    child_event_id: string;
    child_type: string;
    rel_type: string;
    /** The child's sender and origin_server_ts (edit validity and order, participation, ignored users). */
    sender: string;
    origin_ts: number;
    /** The child's stream position. */
    pos: number;
  };
  /** Events that were redacted, and by what (storage/relations.ts: a redacted original bundles no edit). */
  syncapi_redacted_events: {
    room_id: string;
    event_id: string;
    redaction_event_id: string;
  };
  /** Local peeks (MSC2753), per device (storage/peeks.ts). */
  syncapi_peeks: {
    user_id: string;
    device_id: string;
    room_id: string;
    creation_pos: number;
    sent: number;
  };
}
