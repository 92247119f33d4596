/**
 * The room version registry: one table of what each room version does, so that code asks
 * "does this version have feature X" instead of comparing version strings.
 * Source: spec.matrix.org/v1.16 "Room versions" (1-12).
 */

export type RoomVersionId = '1' | '2' | '3' | '4' | '5' | '6' | '7' | '8' | '9' | '10' | '11' | '12';

/** How event IDs are formed and how prev_events/auth_events are written. */
export type EventFormat =
  /** v1, v2: `event_id` is part of the event; references are `[eventId, {sha256}]` pairs. */
  | 'v1'
  /** v3: event ID is `$` + standard unpadded base64 of the reference hash; references are IDs. */
  | 'v2'
  /** v4+: as v2, with URL-safe unpadded base64. */
  | 'v3';

export type StateResolutionAlgorithm = 'v1' | 'v2' | 'v2.1';

export interface RoomVersion {
  readonly id: RoomVersionId;
  readonly stable: boolean;
  readonly eventFormat: EventFormat;
  readonly stateResolution: StateResolutionAlgorithm;
  /** v5+: a signing key must be valid (valid_until_ts) at the event's origin_server_ts. */
  readonly enforceKeyValidity: boolean;
  /** v1-v5: m.room.aliases has its own auth rule (state_key must be the sender's server). */
  readonly specialCasedAliasesAuth: boolean;
  /** v6+: events must be strict canonical JSON (no floats, integers within ±(2^53-1)). */
  readonly strictCanonicalJson: boolean;
  /** v6+: `notifications` in power levels is checked by the power levels auth rule. */
  readonly limitNotificationsPowerLevels: boolean;
  /** v7+: the `knock` join rule and membership. */
  readonly knockJoinRule: boolean;
  /** v8+: the `restricted` join rule with `join_authorised_via_users_server`. */
  readonly restrictedJoinRule: boolean;
  /** v10+: the `knock_restricted` join rule. */
  readonly knockRestrictedJoinRule: boolean;
  /** v10+: power level values must be integers, not strings. */
  readonly enforceIntegerPowerLevels: boolean;
  /** v1-v5: redaction keeps `aliases` of m.room.aliases. */
  readonly redactionKeepsAliases: boolean;
  /** v8+: redaction keeps `allow` of m.room.join_rules. */
  readonly redactionKeepsJoinRulesAllow: boolean;
  /** v9+: redaction keeps `join_authorised_via_users_server` of m.room.member. */
  readonly redactionKeepsAuthorisedVia: boolean;
  /**
   * v11+ (MSC2176, MSC2174, MSC3989, MSC2175): redaction keeps all of m.room.create's content,
   * `invite` in power levels, `redacts` in m.room.redaction's content; drops the top-level
   * `origin`, `membership` and `prev_state`; `redacts` lives in content; the creator is the
   * create event's sender.
   */
  readonly v11EventShape: boolean;
  /**
   * v12 (MSC4291): the create event has no room_id; the room ID is `!` + the create event's
   * reference hash (URL-safe base64), and the create event is not listed in auth_events.
   */
  readonly roomIdFromCreateEvent: boolean;
  /** v12 (MSC4289): the creator and `additional_creators` have infinite power level. */
  readonly privilegedCreators: boolean;
}

const base: Omit<RoomVersion, 'id'> = {
  stable: true,
  eventFormat: 'v1',
  stateResolution: 'v1',
  enforceKeyValidity: false,
  specialCasedAliasesAuth: true,
  strictCanonicalJson: false,
  limitNotificationsPowerLevels: false,
  knockJoinRule: false,
  restrictedJoinRule: false,
  knockRestrictedJoinRule: false,
  enforceIntegerPowerLevels: false,
  redactionKeepsAliases: true,
  redactionKeepsJoinRulesAllow: false,
  redactionKeepsAuthorisedVia: false,
  v11EventShape: false,
  roomIdFromCreateEvent: false,
  privilegedCreators: false,
};

// Each version is the one before it plus what the spec says it changed.
const v1: RoomVersion = { ...base, id: '1' };
const v2: RoomVersion = { ...v1, id: '2', stateResolution: 'v2' };
const v3: RoomVersion = { ...v2, id: '3', eventFormat: 'v2' };
const v4: RoomVersion = { ...v3, id: '4', eventFormat: 'v3' };
const v5: RoomVersion = { ...v4, id: '5', enforceKeyValidity: true };
const v6: RoomVersion = {
  ...v5,
  id: '6',
  specialCasedAliasesAuth: false,
  strictCanonicalJson: true,
  limitNotificationsPowerLevels: true,
  redactionKeepsAliases: false,
};
const v7: RoomVersion = { ...v6, id: '7', knockJoinRule: true };
const v8: RoomVersion = { ...v7, id: '8', restrictedJoinRule: true, redactionKeepsJoinRulesAllow: true };
const v9: RoomVersion = { ...v8, id: '9', redactionKeepsAuthorisedVia: true };
const v10: RoomVersion = { ...v9, id: '10', knockRestrictedJoinRule: true, enforceIntegerPowerLevels: true };
const v11: RoomVersion = { ...v10, id: '11', v11EventShape: true };
const v12: RoomVersion = {
  ...v11,
  id: '12',
  stateResolution: 'v2.1',
  roomIdFromCreateEvent: true,
  privilegedCreators: true,
};

const registry: ReadonlyMap<string, RoomVersion> = new Map(
  [v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12].map((v) => [v.id, Object.freeze(v)]),
);

export const DEFAULT_ROOM_VERSION: RoomVersionId = '10';

/** The room version with this ID, or undefined when we do not support it. */
export function roomVersion(id: string): RoomVersion | undefined {
  return registry.get(id);
}

export function isSupportedRoomVersion(id: unknown): id is RoomVersionId {
  return typeof id === 'string' && registry.has(id);
}

export function allRoomVersions(): readonly RoomVersion[] {
  return [...registry.values()];
}

/** The `m.room_versions` capability of GET /capabilities. */
export function roomVersionsCapability(defaultVersion: RoomVersionId = DEFAULT_ROOM_VERSION): {
  default: RoomVersionId;
  available: Record<string, 'stable' | 'unstable'>;
} {
  const available: Record<string, 'stable' | 'unstable'> = {};
  for (const v of registry.values()) available[v.id] = v.stable ? 'stable' : 'unstable';
  return { default: defaultVersion, available };
}
