import { describe, expect, it } from 'vitest';
import { roomVersion } from '../roomversion.js';
import { AuthGraph, StateResolutionError } from './authgraph.js';
import { mainlineOrder } from './mainline.js';
import { isPowerEvent, selectPowerEvents } from './powerevents.js';
import { senderPowerLevel } from './powerlevel.js';
import { EventStore } from './testing.js';
import { reverseTopologicalPowerOrder } from './topological.js';

const v10 = roomVersion('10')!;
const v12 = roomVersion('12')!;
const A = '@alice:x';
const B = '@bob:x';
const C = '@carol:x';

describe('reverseTopologicalPowerOrder', () => {
  it('is the lexicographically smallest topological order (Synapse LexicographicalTestCase)', () => {
    // Equal power and timestamps: ties fall to the event ID.
    const s = new EventStore(v10, '!r:x');
    const add = (id: string, auth: string[]) => s.add({ id, type: 'm.room.topic', stateKey: '', sender: A, auth, ts: 0 });
    add('o', []);
    add('l', ['o']);
    add('n', ['o']);
    add('m', ['n', 'o']);
    add('p', ['o']);
    expect(reverseTopologicalPowerOrder(new AuthGraph(s), ['p', 'm', 'l', 'o', 'n'])).toEqual(['o', 'l', 'n', 'm', 'p']);
  });

  it('breaks ties by sender power descending, then origin_server_ts, then event ID', () => {
    const s = new EventStore(v10, '!r:x');
    s.add({ id: '$C', type: 'm.room.create', stateKey: '', sender: A });
    s.add({ id: '$P', type: 'm.room.power_levels', stateKey: '', sender: A, content: { users: { [A]: 100, [B]: 50 } }, auth: ['$C'] });
    const pl = (id: string, sender: string, ts: number) =>
      s.add({ id, type: 'm.room.join_rules', stateKey: '', sender, auth: ['$C', '$P'], ts });
    pl('$low-early', C, 1);
    pl('$mid-late', B, 9);
    pl('$mid-early-b', B, 5);
    pl('$mid-early-a', B, 5);
    pl('$high-latest', A, 20);
    const order = reverseTopologicalPowerOrder(new AuthGraph(s), ['$low-early', '$mid-late', '$mid-early-b', '$mid-early-a', '$high-latest']);
    expect(order).toEqual(['$high-latest', '$mid-early-a', '$mid-early-b', '$mid-late', '$low-early']);
  });

  it('respects auth edges over power', () => {
    const s = new EventStore(v10, '!r:x');
    s.add({ id: '$C', type: 'm.room.create', stateKey: '', sender: A, content: { creator: A } });
    s.add({ id: '$weak', type: 'm.room.power_levels', stateKey: '', sender: C, auth: ['$C'], ts: 1 });
    s.add({ id: '$strong', type: 'm.room.power_levels', stateKey: '', sender: A, auth: ['$C', '$weak'], ts: 2 });
    expect(reverseTopologicalPowerOrder(new AuthGraph(s), ['$strong', '$weak'])).toEqual(['$weak', '$strong']);
  });

  it('reports a cycle instead of looping or dropping events', () => {
    const s = new EventStore(v10, '!r:x');
    s.add({ id: '$x', type: 'm.room.power_levels', stateKey: '', sender: A, auth: ['$y'] });
    s.add({ id: '$y', type: 'm.room.power_levels', stateKey: '', sender: A, auth: ['$x'] });
    expect(() => reverseTopologicalPowerOrder(new AuthGraph(s), ['$x', '$y'])).toThrow(StateResolutionError);
  });
});

describe('senderPowerLevel', () => {
  it('reads the power levels among the event auth events, defaults, integer strings and the creator rule', () => {
    const s = new EventStore(roomVersion('1')!, '!r:x');
    s.add({ id: '$C', type: 'm.room.create', stateKey: '', sender: A, content: { creator: A } });
    s.add({ id: '$P', type: 'm.room.power_levels', stateKey: '', sender: A, content: { users: { [A]: 100, [B]: '42' }, users_default: 7 }, auth: ['$C'] });
    const g = new AuthGraph(s);
    const ev = (id: string, sender: string, auth: string[]) => g.indexOf(s.add({ id, type: 'm.room.topic', stateKey: '', sender, auth }).eventId);
    expect(senderPowerLevel(g, ev('$1', B, ['$C', '$P']))).toBe(42);
    expect(senderPowerLevel(g, ev('$2', C, ['$C', '$P']))).toBe(7);
    expect(senderPowerLevel(g, ev('$3', A, ['$C']))).toBe(100); // no power levels: the creator
    expect(senderPowerLevel(g, ev('$4', B, ['$C']))).toBe(0);
  });

  it('ranks room version 12 creators and additional creators above any number', () => {
    const s = new EventStore(v12, '!create');
    s.add({ id: '$create', type: 'm.room.create', stateKey: '', sender: A, content: { additional_creators: [B] } });
    s.add({ id: '$P', type: 'm.room.power_levels', stateKey: '', sender: A, content: { users: { [C]: 9007199254740991 } } });
    const g = new AuthGraph(s);
    const ev = (id: string, sender: string) => g.indexOf(s.add({ id, type: 'm.room.topic', stateKey: '', sender, auth: ['$P'] }).eventId);
    expect(senderPowerLevel(g, ev('$a', A))).toBe(Number.POSITIVE_INFINITY);
    expect(senderPowerLevel(g, ev('$b', B))).toBe(Number.POSITIVE_INFINITY);
    expect(senderPowerLevel(g, ev('$c', C))).toBe(9007199254740991);
  });
});

describe('mainlineOrder', () => {
  // P1 <- P2 <- P3 is the mainline of P3; P2x forks from P1.
  const s = new EventStore(v10, '!r:x');
  s.add({ id: '$C', type: 'm.room.create', stateKey: '', sender: A });
  s.add({ id: '$P1', type: 'm.room.power_levels', stateKey: '', sender: A, auth: ['$C'] });
  s.add({ id: '$P2', type: 'm.room.power_levels', stateKey: '', sender: A, auth: ['$C', '$P1'] });
  s.add({ id: '$P3', type: 'm.room.power_levels', stateKey: '', sender: A, auth: ['$C', '$P2'] });
  s.add({ id: '$P2x', type: 'm.room.power_levels', stateKey: '', sender: A, auth: ['$C', '$P1'] });
  const topic = (id: string, auth: string[], ts: number) => s.add({ id, type: 'm.room.topic', stateKey: '', sender: A, auth, ts });
  topic('$onP3', ['$C', '$P3'], 1);
  topic('$onP2', ['$C', '$P2'], 2);
  topic('$onP1', ['$C', '$P1'], 30);
  topic('$onP2x', ['$C', '$P2x'], 20);
  topic('$noPower', ['$C'], 100);
  topic('$onP2-same-ts-b', ['$C', '$P2'], 2);

  it('sorts by mainline position (older power first), then timestamp, then event ID', () => {
    const order = mainlineOrder(new AuthGraph(s), ['$onP3', '$onP2', '$onP1', '$onP2x', '$noPower', '$onP2-same-ts-b'], '$P3');
    expect(order).toEqual(['$noPower', '$onP2x', '$onP1', '$onP2', '$onP2-same-ts-b', '$onP3']);
  });

  it('puts every event at position ∞ when there are no resolved power levels', () => {
    expect(mainlineOrder(new AuthGraph(s), ['$onP1', '$onP3', '$noPower'], undefined)).toEqual(['$onP3', '$onP1', '$noPower']);
  });
});

describe('power events', () => {
  const s = new EventStore(v10, '!r:x');
  const m = (id: string, sender: string, target: string, membership: string, auth: string[] = []) =>
    s.add({ id, type: 'm.room.member', stateKey: target, sender, content: { membership }, auth });

  it('are power levels, join rules, create and kicks/bans of others', () => {
    expect(isPowerEvent(m('$kick', A, B, 'leave'))).toBe(true);
    expect(isPowerEvent(m('$ban', A, B, 'ban'))).toBe(true);
    expect(isPowerEvent(m('$leave', B, B, 'leave'))).toBe(false);
    expect(isPowerEvent(m('$join', B, B, 'join'))).toBe(false);
    expect(isPowerEvent(s.add({ id: '$jr', type: 'm.room.join_rules', stateKey: '', sender: A }))).toBe(true);
    expect(isPowerEvent(s.add({ id: '$pl', type: 'm.room.power_levels', stateKey: '', sender: A }))).toBe(true);
    expect(isPowerEvent(s.add({ id: '$odd', type: 'm.room.power_levels', stateKey: 'x', sender: A }))).toBe(false);
    expect(isPowerEvent(s.add({ id: '$t', type: 'm.room.topic', stateKey: '', sender: A }))).toBe(false);
  });

  it('pull in the events of the full conflicted set that they depend on, walking inside that set', () => {
    const r = new EventStore(v10, '!r:x');
    r.add({ id: '$C', type: 'm.room.create', stateKey: '', sender: A });
    r.add({ id: '$joinB', type: 'm.room.member', stateKey: B, sender: B, content: { membership: 'join' }, auth: ['$C'] });
    r.add({ id: '$joinB2', type: 'm.room.member', stateKey: B, sender: B, content: { membership: 'join' }, auth: ['$C', '$joinB'] });
    r.add({ id: '$plByB', type: 'm.room.power_levels', stateKey: '', sender: B, auth: ['$C', '$joinB2'] });
    r.add({ id: '$topic', type: 'm.room.topic', stateKey: '', sender: B, auth: ['$C', '$joinB2'] });
    const fcs = new Set(['$joinB', '$joinB2', '$plByB', '$topic']);
    expect(selectPowerEvents(new AuthGraph(r), fcs)).toEqual(new Set(['$plByB', '$joinB2', '$joinB']));
    // $joinB is only reachable through $joinB2: outside the set, the walk stops there.
    expect(selectPowerEvents(new AuthGraph(r), new Set(['$joinB', '$plByB', '$topic']))).toEqual(new Set(['$plByB']));
  });
});
