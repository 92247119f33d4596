/**
 * Test helpers for the auth rules: plain EventLike objects (no hashes, no signatures) and a
 * room whose current state events are checked against and applied to, so that a scenario reads
 * as a story. Not used by the rules themselves.
 */
import { expect } from 'vitest';
import { roomVersion, type RoomVersion, type RoomVersionId } from '../roomversion.js';
import { AuthError, stateTuple, type AuthEventProvider, type EventLike, type JsonObject } from '../types.js';
import { checkEventAuth } from './eventauth.js';

export const ALL_VERSIONS: readonly RoomVersionId[] = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12'];

/** Versions where `pick` holds, and where it does not: for tables of allowed/refused. */
export function versionsWhere(pick: (v: RoomVersion) => boolean): RoomVersionId[] {
  return ALL_VERSIONS.filter((id) => pick(mustVersion(id)));
}

export function mustVersion(id: string): RoomVersion {
  const v = roomVersion(id);
  if (!v) throw new Error(`unknown room version ${id}`);
  return v;
}

export const ALICE = '@alice:a.test';
export const BOB = '@bob:b.test';
export const CAROL = '@carol:c.test';
export const DAVE = '@dave:d.test';

let counter = 0;

/** A fresh event ID: `$eN:server` in event format v1 (IDs carry a server there), `$eN` otherwise. */
export function nextEventId(version: RoomVersion, server: string): string {
  counter++;
  return version.eventFormat === 'v1' ? `$e${counter}:${server}` : `$e${counter}`;
}

function serverOf(userId: string): string {
  return userId.slice(userId.indexOf(':') + 1);
}

export interface EventFields {
  eventId?: string;
  roomId: string;
  type: string;
  stateKey?: string | undefined;
  sender: string;
  content?: JsonObject;
  prevEventIds?: readonly string[];
  authEventIds?: readonly string[];
  redacts?: string | undefined;
  roomVersion: RoomVersion;
}

/** A plain EventLike with defaults for what the rules do not read. */
export function makeEvent(f: EventFields): EventLike {
  return {
    eventId: f.eventId ?? nextEventId(f.roomVersion, serverOf(f.sender)),
    roomId: f.roomId,
    type: f.type,
    stateKey: f.stateKey,
    sender: f.sender,
    content: f.content ?? {},
    prevEventIds: f.prevEventIds ?? [],
    authEventIds: f.authEventIds ?? [],
    depth: 1,
    originServerTs: 1_700_000_000_000 + counter,
    redacts: f.redacts,
    roomVersion: f.roomVersion,
  };
}

export interface EventOptions {
  prev?: readonly string[];
  redacts?: string;
  eventId?: string;
}

export interface RoomOptions {
  creator?: string;
  /** Extra create content (merged over room_version and, before v11, creator). */
  createContent?: JsonObject;
}

export interface GenesisOptions extends RoomOptions {
  joinRule?: string;
  /** Extra `users` entries; the creator gets 100 before v12 (v12 creators may not be listed). */
  users?: JsonObject;
  /** Other power levels content, merged over `users`. */
  powerLevels?: JsonObject;
}

/** A room: its current state, which `check` reads and `send` updates. */
export class TestRoom {
  readonly version: RoomVersion;
  readonly creator: string;
  readonly roomId: string;
  readonly create: EventLike;
  readonly state = new Map<string, EventLike>();
  private last: readonly string[] = [];

  constructor(versionId: string, opts: RoomOptions = {}) {
    this.version = mustVersion(versionId);
    this.creator = opts.creator ?? ALICE;
    const createId = nextEventId(this.version, serverOf(this.creator));
    // v12: the room ID is the create event's ID with `!` (MSC4291); before, any ID on the creator's server.
    this.roomId = this.version.roomIdFromCreateEvent ? `!${createId.slice(1)}` : `!room${counter}:${serverOf(this.creator)}`;
    const content: JsonObject = { room_version: this.version.id, ...opts.createContent };
    if (!this.version.v11EventShape && !('creator' in content)) content['creator'] = this.creator;
    this.create = makeEvent({ eventId: createId, roomId: this.roomId, type: 'm.room.create', stateKey: '', sender: this.creator, content, roomVersion: this.version });
    this.apply(this.create);
  }

  /** Create, the creator's join, power levels and join rules (public unless told). */
  static genesis(versionId: string, opts: GenesisOptions = {}): TestRoom {
    const room = new TestRoom(versionId, opts);
    room.member(room.creator, 'join');
    const creatorEntry: JsonObject = room.version.privilegedCreators ? {} : { [room.creator]: 100 };
    room.send('m.room.power_levels', '', room.creator, { users: { ...creatorEntry, ...opts.users }, ...opts.powerLevels });
    room.send('m.room.join_rules', '', room.creator, { join_rule: opts.joinRule ?? 'public' });
    return room;
  }

  /** An event of this room, its prev event the last one applied; not checked or applied. */
  event(type: string, stateKey: string | undefined, sender: string, content: JsonObject = {}, opts: EventOptions = {}): EventLike {
    return makeEvent({
      ...(opts.eventId !== undefined ? { eventId: opts.eventId } : {}),
      roomId: this.roomId,
      type,
      stateKey,
      sender,
      content,
      prevEventIds: opts.prev ?? this.last,
      redacts: opts.redacts,
      roomVersion: this.version,
    });
  }

  /** The current state as an AuthEventProvider. */
  get provider(): AuthEventProvider {
    return { get: (type, stateKey) => this.state.get(stateTuple(type, stateKey)) };
  }

  stateEvent(type: string, stateKey = ''): EventLike | undefined {
    return this.state.get(stateTuple(type, stateKey));
  }

  /** Checks `e` against the current state; throws AuthError when refused. */
  check(e: EventLike): void {
    checkEventAuth(e, this.provider);
  }

  apply(e: EventLike): EventLike {
    if (e.stateKey !== undefined) this.state.set(stateTuple(e.type, e.stateKey), e);
    this.last = [e.eventId];
    return e;
  }

  /** Builds, checks and applies an event; throws AuthError when refused (nothing is applied then). */
  send(type: string, stateKey: string | undefined, sender: string, content: JsonObject = {}, opts?: EventOptions): EventLike {
    const e = this.event(type, stateKey, sender, content, opts);
    this.check(e);
    return this.apply(e);
  }

  /** Applies an event without checking it, to set up a scenario. */
  force(type: string, stateKey: string | undefined, sender: string, content: JsonObject = {}): EventLike {
    return this.apply(this.event(type, stateKey, sender, content));
  }

  /** Sends a membership event for `target` (sent by `sender`, default the target). */
  member(target: string, membership: string, sender: string = target, extra: JsonObject = {}): EventLike {
    return this.send('m.room.member', target, sender, { membership, ...extra });
  }

  /** Power levels content for `send`: the creator entry (before v12) plus `users`, and other keys. */
  powerLevels(users: JsonObject, rest: JsonObject = {}): JsonObject {
    const creatorEntry: JsonObject = this.version.privilegedCreators ? {} : { [this.creator]: 100 };
    return { users: { ...creatorEntry, ...users }, ...rest };
  }
}

export function expectAllowed(fn: () => unknown): void {
  expect(fn).not.toThrow();
}

/** Expects an AuthError whose message matches `rule` (the rule name and reason). */
export function expectDenied(fn: () => unknown, rule: RegExp): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, 'expected the event to be refused').toBeInstanceOf(AuthError);
  expect((err as AuthError).message).toMatch(rule);
}

/** Allowed or refused (matching `rule`) as `allowed` says: for version tables. */
export function expectOutcome(allowed: boolean, fn: () => unknown, rule: RegExp): void {
  if (allowed) expectAllowed(fn);
  else expectDenied(fn, rule);
}
