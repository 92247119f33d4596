/**
 * The m.room.create event: its own auth rule (rule 1 of every room version), and what the
 * rules for every other event read from it, parsed once per create event.
 */
import { domainOf, isValidUserId } from '../identifiers.js';
import { isSupportedRoomVersion } from '../roomversion.js';
import type { EventLike } from '../types.js';
import { deny } from './deny.js';

/** What the auth rules need from a room's create event. */
export interface CreateInfo {
  /** The room ID every event of the room must carry: `room_id`, or in v12 `!` + the create event's ID. */
  readonly roomId: string;
  readonly senderDomain: string | undefined;
  /** false when `content["m.federate"]` is `false` (exactly: other values leave the room federated). */
  readonly federates: boolean;
  /**
   * The creator of the first-join rule and of the "no power levels event" default: `content.creator`
   * before room version 11, the sender from 11 on (MSC2175).
   */
  readonly creator: string | undefined;
  /**
   * Room version 12 (MSC4289): the sender and `additional_creators`, whose power level is
   * infinite. Empty in earlier versions, where nobody has special rank.
   */
  readonly privilegedCreators: ReadonlySet<string>;
}

const infos = new WeakMap<EventLike, CreateInfo>();
const NOBODY: ReadonlySet<string> = new Set();

export function createInfoOf(create: EventLike): CreateInfo {
  let info = infos.get(create);
  if (info) return info;
  const v = create.roomVersion;
  const content = create.content;
  const declaredCreator = content['creator'];
  let privileged = NOBODY;
  if (v.privilegedCreators) {
    const set = new Set<string>([create.sender]);
    const extra = content['additional_creators'];
    if (Array.isArray(extra)) for (const u of extra) if (typeof u === 'string') set.add(u);
    privileged = set;
  }
  info = {
    roomId: v.roomIdFromCreateEvent ? `!${create.eventId.slice(1)}` : create.roomId,
    senderDomain: domainOf(create.sender),
    federates: content['m.federate'] !== false,
    creator: v.v11EventShape ? create.sender : typeof declaredCreator === 'string' ? declaredCreator : undefined,
    privilegedCreators: privileged,
  };
  infos.set(create, info);
  return info;
}

/**
 * Rule 1, for an event of type m.room.create (whatever its state_key, as the spec words it).
 * Room version 12's "a create event has no room_id" is enforced when the event is parsed
 * (event.ts), since an EventLike always carries the derived room ID.
 */
export function checkCreateEvent(event: EventLike): void {
  const v = event.roomVersion;
  if (event.prevEventIds.length > 0) deny('m.room.create', 'a create event must have no prev_events');
  if (!v.roomIdFromCreateEvent) {
    const roomDomain = domainOf(event.roomId);
    if (roomDomain === undefined || roomDomain !== domainOf(event.sender)) {
      deny('m.room.create', `room ID ${event.roomId} is not on the server of sender ${event.sender}`);
    }
  }
  const declared = event.content['room_version'];
  if (declared !== undefined && !isSupportedRoomVersion(declared)) {
    deny('m.room.create', `content.room_version ${JSON.stringify(declared)} is not a recognised room version`);
  }
  if (!v.v11EventShape && event.content['creator'] === undefined) {
    deny('m.room.create', 'content has no creator property');
  }
  if (v.privilegedCreators) {
    const extra = event.content['additional_creators'];
    if (extra !== undefined) {
      if (!Array.isArray(extra)) deny('m.room.create', 'content.additional_creators must be an array');
      for (const u of extra) {
        if (typeof u !== 'string' || !isValidUserId(u)) {
          deny('m.room.create', `content.additional_creators holds ${JSON.stringify(u)}, which is not a user ID`);
        }
      }
    }
  }
}
