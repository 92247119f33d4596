/**
 * A room for auth rule tests: events are plain EventLike objects, checked against the
 * room's current state and applied when allowed, so a scenario reads as a story.
 */
import { expect } from 'vitest';
import { roomVersion, type RoomVersion } from '../roomversion.js';
import { AuthError, stateTuple, type EventLike, type JsonObject } from '../types.js';
import { checkEventAuth } from './eventauth.js';

let counter = 0;

export interface EventOptions {
  prev?: string[];
  redacts?: string;
  eventId?: string;
}

export class TestRoom {
  readonly version: RoomVersion;
  readonly state = new Map<string, EventLike>();
  roomId: string;
  create!: EventLike;
  private last: string[] = [];

  constructor(versionId: string, readonly creator = '@alice:a.test', createContent: JsonObject = {}) {
    const v = roomVersion(versionId);
    if (!v) throw new Error(`unknown version ${versionId}`);
    this.version = v;
    this.roomId = '!room:a.test';
    const createId = `$create${counter++}`;
    if (v.roomIdFromCreateEvent) this.roomId = `!${createId.slice(1)}`;
    const content: JsonObject = { room_version: v.id, ...(v.v11EventShape ? {} : { creator }), ...createContent };
    this.create = this.event('m.room.create', '', creator, content, { prev: [], eventId: createId });
    this.apply(this.create);
  }

  event(type: string, stateKey: string | undefined, sender: string, content: JsonObject, opts: EventOptions = {}): EventLike {
    const eventId = opts.eventId ?? (this.version.eventFormat === 'v1' ? `$ev${counter++}:${sender.split(':')[1]}` : `$ev${counter++}`);
    return {
      eventId,
      roomId: this.roomId,
      type,
      stateKey,
      sender,
      content,
      prevEventIds: opts.prev ?? this.last,
      authEventIds: [],
      depth: 1,
      originServerTs: Date.now(),
      redacts: opts.redacts,
      roomVersion: this.version,
    };
  }

  check(e: EventLike): void {
    checkEventAuth(e, { get: (t, k) => this.state.get(stateTuple(t, k)) });
  }

  apply(e: EventLike): EventLike {
    if (e.stateKey !== undefined) this.state.set(stateTuple(e.type, e.stateKey), e);
    this.last = [e.eventId];
    return e;
  }

  /** Checks and applies; throws AuthError when refused. */
  send(type: string, stateKey: string | undefined, sender: string, content: JsonObject, opts?: EventOptions): EventLike {
    const e = this.event(type, stateKey, sender, content, opts);
    this.check(e);
    return this.apply(e);
  }

  /** Applies without checking (to set up a scenario). */
  force(type: string, stateKey: string | undefined, sender: string, content: JsonObject): EventLike {
    return this.apply(this.event(type, stateKey, sender, content));
  }

  member(user: string, membership: string, sender = user, extra: JsonObject = {}): EventLike {
    return this.send('m.room.member', user, sender, { membership, ...extra });
  }

  /** Create, the creator's join, power levels (creator 100 unless a creator in v12) and join rules. */
  static genesis(versionId: string, opts: { joinRule?: string; users?: JsonObject; powerLevels?: JsonObject; createContent?: JsonObject } = {}): TestRoom {
    const room = new TestRoom(versionId, '@alice:a.test', opts.createContent);
    room.member(room.creator, 'join');
    const users: JsonObject = room.version.privilegedCreators ? { ...opts.users } : { [room.creator]: 100, ...opts.users };
    room.send('m.room.power_levels', '', room.creator, { users, ...opts.powerLevels });
    room.send('m.room.join_rules', '', room.creator, { join_rule: opts.joinRule ?? 'public' });
    return room;
  }
}

export function expectAllowed(fn: () => unknown): void {
  expect(fn).not.toThrow();
}

export function expectDenied(fn: () => unknown, rule?: RegExp): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, 'expected the event to be refused').toBeInstanceOf(AuthError);
  if (rule) expect((err as Error).message).toMatch(rule);
}

export const allVersions = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12'];
