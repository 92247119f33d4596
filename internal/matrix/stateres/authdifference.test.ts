import { describe, expect, it } from 'vitest';
import { roomVersion } from '../roomversion.js';
import { stateTuple } from '../types.js';
import { AuthGraph, authEventIdsOf } from './authgraph.js';
import { authDifference } from './authdifference.js';
import { EventStore } from './testing.js';

const v10 = roomVersion('10')!;
const A = '@alice:x';

/** create <- P1 <- P2, alice's join, two topics citing different power levels. */
function room(): EventStore {
  const s = new EventStore(v10, '!r:x');
  s.add({ id: '$C', type: 'm.room.create', stateKey: '', sender: A });
  s.add({ id: '$A', type: 'm.room.member', stateKey: A, sender: A, content: { membership: 'join' }, auth: ['$C'] });
  s.add({ id: '$P1', type: 'm.room.power_levels', stateKey: '', sender: A, auth: ['$C', '$A'] });
  s.add({ id: '$P2', type: 'm.room.power_levels', stateKey: '', sender: A, auth: ['$C', '$A', '$P1'] });
  s.add({ id: '$T1', type: 'm.room.topic', stateKey: '', sender: A, auth: ['$C', '$A', '$P1'] });
  s.add({ id: '$T2', type: 'm.room.topic', stateKey: '', sender: A, auth: ['$C', '$A', '$P2'] });
  return s;
}

const state = (entries: Record<string, string>) =>
  new Map(Object.entries(entries).map(([k, v]) => [stateTuple(k, ''), v]));

describe('authDifference', () => {
  it('is the events in some but not all full auth chains, state events included', () => {
    const s = room();
    const s1 = new Map([...state({ 'm.room.create': '$C', 'm.room.power_levels': '$P1', 'm.room.topic': '$T1' }), [stateTuple('m.room.member', A), '$A']]);
    const s2 = new Map([...state({ 'm.room.create': '$C', 'm.room.power_levels': '$P2', 'm.room.topic': '$T2' }), [stateTuple('m.room.member', A), '$A']]);
    // Chains: s1 = {C, A, P1, T1}; s2 = {C, A, P1, P2, T2}. P1 is in both through P2.
    expect(authDifference(new AuthGraph(s), [s1, s2])).toEqual(new Set(['$T1', '$P2', '$T2']));
    expect(authDifference(new AuthGraph(s), [s2, s1])).toEqual(new Set(['$T1', '$P2', '$T2']));
  });

  it('counts an event reached by only some of three state sets', () => {
    const s = room();
    const s1 = state({ 'm.room.create': '$C', 'm.room.topic': '$T1' });
    const s2 = state({ 'm.room.create': '$C', 'm.room.topic': '$T2' });
    const s3 = state({ 'm.room.create': '$C', 'm.room.topic': '$T1' });
    // Chains: {C,A,P1,T1}, {C,A,P1,P2,T2}, {C,A,P1,T1}.
    expect(authDifference(new AuthGraph(s), [s1, s2, s3])).toEqual(new Set(['$T1', '$P2', '$T2']));
  });

  it('is empty without conflicts and skips auth events the provider lacks', () => {
    const s = room();
    s.add({ id: '$T3', type: 'm.room.topic', stateKey: '', sender: A, auth: ['$C', '$gone'] });
    const s1 = state({ 'm.room.create': '$C', 'm.room.topic': '$T1' });
    expect(authDifference(new AuthGraph(s), [s1, s1])).toEqual(new Set());
    const s3 = state({ 'm.room.create': '$C', 'm.room.topic': '$T3' });
    expect(authDifference(new AuthGraph(s), [s1, s3])).toEqual(new Set(['$T1', '$T3', '$A', '$P1']));
  });

  it('walks auth chains far deeper than the call stack would allow', () => {
    const s = new EventStore(v10, '!r:x');
    s.add({ id: '$C', type: 'm.room.create', stateKey: '', sender: A });
    let prev = '$C';
    for (let i = 0; i < 50_000; i++) {
      const id = `$M${i}`;
      s.add({ id, type: 'm.room.member', stateKey: A, sender: A, content: { membership: 'join' }, auth: ['$C', prev] });
      prev = id;
    }
    const s1 = state({ 'm.room.create': '$C', 'm.room.topic': '$M49999' });
    const s2 = state({ 'm.room.create': '$C', 'm.room.topic': '$M0' });
    expect(authDifference(new AuthGraph(s), [s1, s2]).size).toBe(49_999);
  });
});

describe('authEventIdsOf', () => {
  it('adds the create event that room version 12 implies by the room ID', () => {
    const s = new EventStore(roomVersion('12')!, '!abc');
    const create = s.add({ id: '$abc', type: 'm.room.create', stateKey: '', sender: A });
    const join = s.add({ id: '$j', type: 'm.room.member', stateKey: A, sender: A, content: { membership: 'join' } });
    expect(authEventIdsOf(create)).toEqual([]);
    expect(authEventIdsOf(join)).toEqual(['$abc']);
    const graph = new AuthGraph(s);
    expect(graph.authOf(graph.indexOf('$j')).map((i) => graph.eventId(i))).toEqual(['$abc']);
  });
});
