/**
 * State resolution v2.1 (room version 12, MSC4297), with the two state-reset scenarios of
 * Synapse's tests/state/test_v21.py. Each is resolved with v2.1 and, on the same events, with
 * the v2 algorithm (room version 12 with `stateResolution: 'v2'`), which resets state there.
 */
import { describe, expect, it } from 'vitest';
import type { RoomVersion } from '../roomversion.js';
import { roomVersion } from '../roomversion.js';
import type { JsonObject, StateKeyTuple } from '../types.js';
import { stateTuple } from '../types.js';
import { AuthGraph } from './authgraph.js';
import { authDifference } from './authdifference.js';
import { resolveState } from './index.js';
import { conflictedEventIds, separate } from './separate.js';
import { conflictedStateSubgraph } from './subgraph.js';
import { EventStore } from './testing.js';

const ALICE = '@alice:example.com';
const BOB = '@bob:example.com';
const CHARLIE = '@charlie:example.com';
const EVELYN = '@evelyn:example.com';
const ZARA = '@zara:example.com';

const v12 = roomVersion('12')!;
const v12WithV2: RoomVersion = { ...v12, stateResolution: 'v2' };

/** A room version 12 room: the create event is `$create`, the room `!create`. */
function room() {
  const store = new EventStore(v12, '!create');
  const ev = (id: string, type: string, stateKey: string, sender: string, content: JsonObject, auth: string[]) =>
    store.add({ id, type, stateKey, sender, content, auth }).eventId;
  return { store, ev };
}

const member = (user: string) => stateTuple('m.room.member', user);
const CREATE = stateTuple('m.room.create', '');
const PL = stateTuple('m.room.power_levels', '');
const JR = stateTuple('m.room.join_rules', '');
const join = { membership: 'join' };

describe('state resolution v2.1', () => {
  it('replays the conflicted state subgraph: a state set holding old power levels does not reset them', () => {
    const { store, ev } = room();
    ev('$create', 'm.room.create', '', ALICE, {}, []);
    ev('$ma', 'm.room.member', ALICE, ALICE, join, []);
    ev('$power1', 'm.room.power_levels', '', ALICE, { users: {} }, ['$ma']);
    ev('$jr', 'm.room.join_rules', '', ALICE, { join_rule: 'public' }, ['$ma', '$power1']);
    ev('$mb', 'm.room.member', BOB, BOB, join, ['$power1', '$jr']);
    ev('$mc', 'm.room.member', CHARLIE, CHARLIE, join, ['$power1', '$jr']);
    ev('$power2', 'm.room.power_levels', '', ALICE, { users: { [BOB]: 50 } }, ['$ma', '$power1']);
    ev('$power3', 'm.room.power_levels', '', BOB, { users: { [BOB]: 50, [CHARLIE]: 50 } }, ['$mb', '$power2']);
    ev('$me1', 'm.room.member', EVELYN, EVELYN, join, ['$power3', '$jr']);
    // Evelyn renames herself but cites the old power levels directly.
    ev('$me2', 'm.room.member', EVELYN, EVELYN, join, ['$power1', '$jr', '$me1']);
    ev('$mz', 'm.room.member', ZARA, ZARA, join, ['$power3', '$jr']);

    const dodgy = new Map([
      [CREATE, '$create'],
      [member(ALICE), '$ma'],
      [member(BOB), '$mb'],
      [member(CHARLIE), '$mc'],
      [member(EVELYN), '$me2'],
      [PL, '$power1'], // old: the state after $me2 as a faulty server reported it
      [JR, '$jr'],
    ]);
    const sensible = new Map([
      [CREATE, '$create'],
      [member(ALICE), '$ma'],
      [member(BOB), '$mb'],
      [member(CHARLIE), '$mc'],
      [member(ZARA), '$mz'],
      [PL, '$power3'],
      [JR, '$jr'],
    ]);

    // $power2 is in both full auth chains, so only the subgraph brings it back for replay; the
    // create event is in neither.
    const graph = new AuthGraph(store);
    const separated = separate([dodgy, sensible]);
    expect(authDifference(graph, [dodgy, sensible], separated)).toEqual(new Set(['$me2', '$me1', '$mz']));
    expect(conflictedStateSubgraph(graph, conflictedEventIds(separated))).toEqual(
      new Set(['$power1', '$power2', '$power3', '$me1', '$me2', '$mz', '$mb', '$jr']),
    );

    const v21 = resolveState(v12, [dodgy, sensible], store);
    expect(v21).toEqual(
      new Map([
        [CREATE, '$create'],
        [member(ALICE), '$ma'],
        [member(BOB), '$mb'],
        [member(CHARLIE), '$mc'],
        // $me2 cites power1 and replays first; $me1 (power3's epoch) replays after it.
        [member(EVELYN), '$me1'],
        [member(ZARA), '$mz'],
        [PL, '$power3'],
        [JR, '$jr'],
      ]),
    );
    // Without $power2 in the replay, Bob has no power when $power3 is checked: v2 resets the
    // power levels to $power1.
    const v2 = resolveState(v12WithV2, [dodgy, sensible], store);
    expect(v2.get(PL)).toBe('$power1');
  });

  it('starts the power replay from empty state: join rules set before their sender left survive', () => {
    const { store, ev } = room();
    ev('$create', 'm.room.create', '', ALICE, {}, []);
    ev('$ma1', 'm.room.member', ALICE, ALICE, join, []);
    ev('$power', 'm.room.power_levels', '', ALICE, { users: { [BOB]: 100 } }, ['$ma1']);
    ev('$jr1', 'm.room.join_rules', '', ALICE, { join_rule: 'public' }, ['$ma1', '$power']);
    ev('$mb', 'm.room.member', BOB, BOB, join, ['$power', '$jr1']);
    ev('$jr2', 'm.room.join_rules', '', ALICE, { join_rule: 'invite' }, ['$ma1', '$power']);
    ev('$ma2', 'm.room.member', ALICE, ALICE, { membership: 'leave' }, ['$power', '$ma1']);

    const common: Array<[StateKeyTuple, string]> = [
      [CREATE, '$create'],
      [member(ALICE), '$ma2'],
      [member(BOB), '$mb'],
      [PL, '$power'],
    ];
    const correct = new Map([...common, [JR, '$jr2']]);
    const incorrect = new Map([...common, [JR, '$jr1']]); // a fork citing the old join rules

    expect(resolveState(v12, [correct, incorrect], store)).toEqual(correct);
    // v2 replays both join rules on the unconflicted state, where Alice has left: both fail
    // and the room loses its join rules.
    const v2 = resolveState(v12WithV2, [correct, incorrect], store);
    expect(v2.has(JR)).toBe(false);
    expect(v2.get(member(ALICE))).toBe('$ma2');
  });
});
