/**
 * bench/protocol/stateres: state resolution on generated rooms.
 *
 * (a) join-sized: a room with 10,000 joined members, then two forks of 25 state events each
 *     (power level changes, topics, kicks, bans, joins, leaves): 50 conflicted state events over
 *     10,000+ unconflicted ones. Resolved as room version 10 (v2) and 12 (v2.1).
 * (b) fork merge: a room of 100 members, then two branches of 1,000 state events each (joins,
 *     topics, names, custom state, power level changes every 100 events): about 2,000 events in
 *     the full conflicted set, every one of them replayed through the auth rules.
 *
 * Figures are milliseconds for one `resolveState` call: the first (cold) call, and the median of
 * the next runs. Run: npm run build && node dist/bench/protocol/stateres.js
 */
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import type { RoomVersion } from '../../internal/matrix/roomversion.js';
import { roomVersion } from '../../internal/matrix/roomversion.js';
import { conflictedEventIds, resolveState, separate } from '../../internal/matrix/stateres/index.js';
import type { EventStore } from '../../internal/matrix/stateres/testing.js';
import { RoomBuilder } from '../../internal/matrix/stateres/testing.js';
import type { JsonObject, StateKeyTuple } from '../../internal/matrix/types.js';

const ADMIN = '@admin:bench';

const user = (i: number): string => `@u${i}:bench`;

export interface Scenario {
  readonly version: RoomVersion;
  readonly store: EventStore;
  readonly stateSets: Map<StateKeyTuple, string>[];
  readonly events: number;
}

/** (a) 10,000 members, two forks with 25 state events each. */
export function joinSizedRoom(version: RoomVersion, members = 10_000): Scenario {
  const sim = new RoomBuilder(version);
  const base = sim.genesis(ADMIN, { [user(0)]: 50, [user(1)]: 50 });
  for (let i = 0; i < members; i++) {
    sim.send(base, 'm.room.member', user(i), user(i), { membership: 'join' });
    // A power level change now and then, so that members cite different power levels.
    if (i % 2000 === 1999) {
      sim.send(base, 'm.room.power_levels', '', ADMIN, sim.powerLevels(ADMIN, { [user(0)]: 50, [user(1)]: 50, [user(i)]: 10 }));
    }
  }
  // 25 state events per fork, each on its own state key: 50 events that differ.
  const forkA = new Map(base);
  const forkB = new Map(base);
  const pl = (extra: string, level: number): JsonObject => sim.powerLevels(ADMIN, { [user(0)]: 50, [user(1)]: 50, [extra]: level });
  // Fork A: the admin raises a member, sets topic and name, kicks, bans; new members join.
  sim.send(forkA, 'm.room.power_levels', '', ADMIN, pl(user(100), 20));
  sim.send(forkA, 'm.room.topic', '', ADMIN, { topic: 'fork A' });
  sim.send(forkA, 'm.room.name', '', ADMIN, { name: 'fork A' });
  for (let k = 0; k < 22; k++) {
    if (k % 3 === 0) sim.send(forkA, 'm.room.member', user(300 + k), ADMIN, { membership: 'leave' });
    else if (k % 3 === 1) sim.send(forkA, 'm.room.member', user(300 + k), ADMIN, { membership: 'ban' });
    else sim.send(forkA, 'm.room.member', user(members + k), user(members + k), { membership: 'join' });
  }
  // Fork B: a moderator changes power levels (allowed: state_default 50) and topic; members
  // leave and join; some of fork A's kicked members change their display names.
  sim.send(forkB, 'm.room.power_levels', '', user(1), pl(user(101), 5));
  sim.send(forkB, 'm.room.topic', '', user(0), { topic: 'fork B' });
  for (let k = 0; k < 23; k++) {
    if (k % 3 === 0) sim.send(forkB, 'm.room.member', user(300 + k), user(300 + k), { membership: 'join', displayname: `renamed ${k}` });
    else if (k % 3 === 1) sim.send(forkB, 'm.room.member', user(600 + k), user(600 + k), { membership: 'leave' });
    else sim.send(forkB, 'm.room.member', user(members + 100 + k), user(members + 100 + k), { membership: 'join' });
  }
  return { version, store: sim.store, stateSets: [forkA, forkB], events: [...sim.store.all()].length };
}

/** (b) two branches of `perBranch` state events from a 100-member room. */
export function forkMerge(version: RoomVersion, perBranch = 1_000): Scenario {
  const sim = new RoomBuilder(version);
  const base = sim.genesis(ADMIN, { [user(0)]: 50, [user(1)]: 50 });
  for (let i = 0; i < 100; i++) sim.send(base, 'm.room.member', user(i), user(i), { membership: 'join' });
  const branches = [new Map(base), new Map(base)];
  branches.forEach((state, b) => {
    const mod = user(b);
    for (let k = 0; k < perBranch; k++) {
      const joiner = user(1_000 + b * perBranch + k);
      switch (k % 5) {
        case 0:
          if (k % 100 === 0) {
            sim.send(state, 'm.room.power_levels', '', ADMIN, sim.powerLevels(ADMIN, { [user(0)]: 50, [user(1)]: 50, [joiner]: k % 7 }));
          } else {
            sim.send(state, 'm.room.topic', '', mod, { topic: `${b}:${k}` });
          }
          break;
        case 1:
          sim.send(state, 'm.room.member', joiner, joiner, { membership: 'join' });
          break;
        case 2:
          sim.send(state, 'm.room.name', '', mod, { name: `${b}:${k}` });
          break;
        case 3:
          sim.send(state, 'org.bench.state', `${b}:${k}`, mod, { k });
          break;
        case 4:
          sim.send(state, 'm.room.member', joiner, joiner, { membership: 'join' });
          break;
      }
    }
  });
  return { version, store: sim.store, stateSets: branches, events: [...sim.store.all()].length };
}

function timeResolution(s: Scenario, runs: number): { cold: number; median: number; resolved: number } {
  let t = performance.now();
  const first = resolveState(s.version, s.stateSets, s.store);
  const cold = performance.now() - t;
  const times: number[] = [];
  for (let r = 0; r < runs; r++) {
    t = performance.now();
    resolveState(s.version, s.stateSets, s.store);
    times.push(performance.now() - t);
  }
  times.sort((x, y) => x - y);
  return { cold, median: times[Math.floor(times.length / 2)]!, resolved: first.size };
}

const round = (ms: number): number => Math.round(ms * 10) / 10;

export async function stateResBenches(runs = 7): Promise<Record<string, number>> {
  const figures: Record<string, number> = {};
  for (const id of ['10', '12'] as const) {
    const version = roomVersion(id)!;
    const alg = version.stateResolution;
    const a = joinSizedRoom(version);
    const ra = timeResolution(a, runs);
    figures[`(a) 10k members, 50 conflicted, ${alg}: events`] = a.events;
    figures[`(a) 10k members, 50 conflicted, ${alg}: conflicted state events`] = conflictedEventIds(separate(a.stateSets)).size;
    figures[`(a) 10k members, 50 conflicted, ${alg}: resolved state entries`] = ra.resolved;
    figures[`(a) 10k members, 50 conflicted, ${alg}: first call ms`] = round(ra.cold);
    figures[`(a) 10k members, 50 conflicted, ${alg}: median ms`] = round(ra.median);
    const b = forkMerge(version);
    const rb = timeResolution(b, runs);
    figures[`(b) 2x1000-event fork merge, ${alg}: events`] = b.events;
    figures[`(b) 2x1000-event fork merge, ${alg}: conflicted state events`] = conflictedEventIds(separate(b.stateSets)).size;
    figures[`(b) 2x1000-event fork merge, ${alg}: resolved state entries`] = rb.resolved;
    figures[`(b) 2x1000-event fork merge, ${alg}: first call ms`] = round(rb.cold);
    figures[`(b) 2x1000-event fork merge, ${alg}: median ms`] = round(rb.median);
  }
  return figures;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log('# state resolution (one core)');
  for (const [k, v] of Object.entries(await stateResBenches())) console.log(`${k}: ${v}`);
}
