import type { ColumnType, Generated } from 'kysely';

type WithDefault<T> = ColumnType<T, T | undefined, T>;

export interface RoomserverDatabase {
  roomserver_rooms: {
    room_nid: Generated<number>;
    room_id: string;
    room_version: string;
    state_snapshot_nid: WithDefault<number>;
  };
  roomserver_event_types: {
    event_type_nid: Generated<number>;
    event_type: string;
  };
  roomserver_event_state_keys: {
    event_state_key_nid: Generated<number>;
    event_state_key: string;
  };
  roomserver_events: {
    event_nid: Generated<number>;
    room_nid: number;
    event_id: string;
    event_type_nid: number;
    event_state_key_nid: number | null;
    depth: number;
    state_snapshot_nid: number | null;
    is_rejected: WithDefault<number>;
    rejection_reason: string | null;
    is_soft_failed: WithDefault<number>;
    auth_event_nids: string;
    /** The event's origin_server_ts (timestamp_to_event); NULL when it has none. */
    origin_server_ts: number | null;
  };
  roomserver_event_json: {
    event_nid: number;
    event_json: string;
    unredacted_json: string | null;
  };
  roomserver_forward_extremities: {
    room_nid: number;
    event_nid: number;
  };
  roomserver_membership: {
    room_nid: number;
    target_nid: number;
    user_id: string;
    membership: string;
    event_nid: number;
    /** 0/1: the user forgot the room (POST /forget); cleared by their next membership event. */
    forgotten: WithDefault<number>;
  };
  roomserver_room_aliases: {
    alias: string;
    room_id: string;
    creator_id: string;
  };
  roomserver_published: {
    room_id: string;
  };
  roomserver_redactions: {
    redaction_event_id: string;
    redacts_event_id: string;
  };
  roomserver_outbox: {
    outbox_nid: Generated<number>;
    room_nid: number;
    msg_id: string;
    payload: string;
  };
  roomserver_state_nodes: {
    state_node_nid: Generated<number>;
    room_nid: number;
    node_hash: Uint8Array;
    node: Uint8Array;
  };
}
