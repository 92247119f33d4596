/**
 * Properties every state resolution must have, on seeded random forks of one room: the order of
 * the state sets does not matter, unconflicted state is kept, and every resolved entry comes
 * from one of the state sets or their auth chains.
 */
import { describe, expect, it } from 'vitest';
import type { RoomVersion } from '../roomversion.js';
import { roomVersion } from '../roomversion.js';
import type { StateKeyTuple } from '../types.js';
import { resolveState } from './index.js';
import { separate } from './separate.js';
import { RoomBuilder } from './testing.js';
import { prng } from '../testutil.js';


const ADMIN = '@admin:t';
const user = (i: number) => `@u${i}:t`;

/** A room of 12 members, then `forks` forks of `steps` random state changes each. */
function randomForks(version: RoomVersion, seed: number, forks: number, steps: number) {
  const rnd = prng(seed);
  const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const b = new RoomBuilder(version);
  const base = b.genesis(ADMIN, { [user(0)]: 50, [user(1)]: 50 });
  for (let i = 0; i < 12; i++) b.send(base, 'm.room.member', user(i), user(i), { membership: 'join' });
  const states: Map<StateKeyTuple, string>[] = [];
  for (let f = 0; f < forks; f++) {
    const s = new Map(base);
    for (let k = 0; k < steps; k++) {
      const actor = pick([ADMIN, user(0), user(1), user(2 + Math.floor(rnd() * 10))]);
      const target = user(Math.floor(rnd() * 16));
      switch (Math.floor(rnd() * 7)) {
        case 0:
          b.send(s, 'm.room.power_levels', '', actor, b.powerLevels(ADMIN, { [user(0)]: pick([0, 50]), [user(1)]: pick([0, 50]), [target]: pick([0, 20, 50]) }));
          break;
        case 1:
          b.send(s, 'm.room.topic', '', actor, { topic: `${f}/${k}` });
          break;
        case 2:
          b.send(s, 'm.room.member', target, actor, { membership: pick(['leave', 'ban']) });
          break;
        case 3:
          b.send(s, 'm.room.member', target, target, { membership: 'join' });
          break;
        case 4:
          b.send(s, 'm.room.join_rules', '', actor, { join_rule: pick(['public', 'invite']) });
          break;
        case 5:
          b.send(s, 'm.room.name', '', actor, { name: `${f}/${k}` });
          break;
        default:
          b.send(s, 'm.room.member', actor, actor, { membership: 'leave' });
      }
    }
    states.push(s);
  }
  return { store: b.store, states };
}

function permutations<T>(xs: readonly T[]): T[][] {
  if (xs.length <= 1) return [[...xs]];
  return xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p]));
}

describe('state resolution properties on random forks', () => {
  for (const id of ['1', '2', '10', '12'] as const) {
    const version = roomVersion(id)!;
    it(`room version ${id} (${version.stateResolution}): order-independent, keeps unconflicted state`, () => {
      for (let seed = 1; seed <= 12; seed++) {
        const { store, states } = randomForks(version, seed * 7919 + Number(id), 3, 8);
        const results = permutations(states).map((p) => resolveState(version, p, store));
        const first = results[0]!;
        for (const r of results.slice(1)) expect(r).toEqual(first);

        if (version.stateResolution !== 'v1') {
          for (const [key, eventId] of separate(states).unconflicted) expect(first.get(key)).toBe(eventId);
        }
        for (const [key, eventId] of first) {
          const event = store.get(eventId);
          expect(event, `resolved ${eventId} is a known event`).toBeDefined();
          expect(`${event!.type}\u0000${event!.stateKey}`).toBe(key);
        }
      }
    });
  }
});
