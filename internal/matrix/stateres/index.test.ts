import { describe, expect, it } from 'vitest';
import { roomVersion } from '../roomversion.js';
import { stateTuple } from '../types.js';
import { StateResolutionError, resolveState } from './index.js';
import { RoomBuilder } from './testing.js';

const ADMIN = '@admin:t';
const BOB = '@bob:t';
const JR = stateTuple('m.room.join_rules', '');
const TOPIC = stateTuple('m.room.topic', '');

describe('resolveState', () => {
  const v10 = roomVersion('10')!;

  it('returns nothing for no state sets and a copy of a single one', () => {
    const b = new RoomBuilder(v10);
    const s = b.genesis(ADMIN);
    expect(resolveState(v10, [], b.store).size).toBe(0);
    const one = resolveState(v10, [s], b.store);
    expect(one).toEqual(s);
    expect(one).not.toBe(s);
  });

  it('names a conflicted event the provider lacks', () => {
    const b = new RoomBuilder(v10);
    const s = b.genesis(ADMIN);
    const other = new Map([...s, [TOPIC, '$nowhere']]);
    expect(() => resolveState(v10, [s, other], b.store)).toThrow(StateResolutionError);
    expect(() => resolveState(v10, [s, other], b.store)).toThrow(/\$nowhere/);
  });

  it('does not use rejected events as auth events during the replay', () => {
    const v12 = roomVersion('12')!;
    const b = new RoomBuilder(v12);
    const base = b.genesis(ADMIN, { [BOB]: 50 });
    const adminJoin = base.get(stateTuple('m.room.member', ADMIN))!;
    b.send(base, 'm.room.member', BOB, BOB, { membership: 'join' });
    const a = new Map(base);
    const c = new Map(base);
    const invite = b.send(a, 'm.room.join_rules', '', ADMIN, { join_rule: 'invite' });
    b.send(c, 'm.room.topic', '', BOB, { topic: 'hello' });
    expect(resolveState(v12, [a, c], b.store).get(JR)).toBe(invite);
    // Both join rules events (the new one and the one fork c still holds) are conflicted. With
    // the admin's join rejected, v2.1's replay from empty state finds no membership for the
    // admin, so both fail and the key stays unset.
    const withRejection = resolveState(v12, [a, c], b.store, { isRejected: (id) => id === adminJoin });
    expect(withRejection.has(JR)).toBe(false);
    expect(withRejection.get(TOPIC)).toBe(c.get(TOPIC));
  });
});
