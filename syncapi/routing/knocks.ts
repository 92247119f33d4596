/**
 * The `rooms.knock` section of /sync: rooms the user has knocked on, each with `knock_state`,
 * the stripped state a knocker may see (as for invites: create, join rules, name, avatar,
 * canonical alias, encryption) followed by the user's own knock member event.
 *
 * An initial sync (`from` 0) lists the rooms where the user's current membership is `knock`;
 * an incremental one lists the rooms whose last membership event of the user in (from, to] is
 * a knock. A knock that was answered later in the range (an invite, a kick) is not listed: the
 * room then shows under `invite` or `leave`.
 *
 * The stripped state is taken from the room's current state, as the invite section does.
 */
import type { JsonObject } from '../../internal/matrix/index.js';
import { contentOf } from '../internal/clientevent.js';
import type { StreamEvent, SyncStore } from '../storage/syncstore.js';

/** The state event types a knocker sees (the spec's recommended stripped state). */
export const KNOCK_STATE_TYPES: readonly string[] = ['m.room.create', 'm.room.join_rules', 'm.room.name', 'm.room.avatar', 'm.room.canonical_alias', 'm.room.encryption'];

type KnockStore = Pick<SyncStore, 'membershipEvents' | 'currentState' | 'roomsWithMembership'>;

const membershipOf = (e: StreamEvent): unknown => contentOf(e)['membership'];

function stripped(e: StreamEvent): JsonObject {
  return { type: e.type, state_key: e.stateKey ?? '', sender: e.sender, content: contentOf(e) as JsonObject };
}

export async function knockRooms(store: KnockStore, userId: string, from: number, to: number): Promise<Record<string, JsonObject>> {
  // The knock event of each room to list.
  const knocks = new Map<string, StreamEvent | undefined>();
  if (from <= 0) {
    for (const { roomId } of await store.roomsWithMembership(userId, ['knock'])) knocks.set(roomId, undefined);
  } else {
    const last = new Map<string, StreamEvent>();
    for (const e of await store.membershipEvents(userId, from, to)) last.set(e.roomId, e);
    for (const [roomId, e] of last) if (membershipOf(e) === 'knock') knocks.set(roomId, e);
  }

  const out: Record<string, JsonObject> = {};
  for (const [roomId, knock] of knocks) {
    const state = await store.currentState(roomId);
    const own = knock ?? state.find((s) => s.type === 'm.room.member' && s.stateKey === userId && membershipOf(s) === 'knock');
    if (!own) continue;
    const events = KNOCK_STATE_TYPES.flatMap((type) => state.filter((s) => s.type === type && s.stateKey === '').map(stripped));
    out[roomId] = { knock_state: { events: [...events, stripped(own)] } };
  }
  return out;
}
