import { describe, expect, it } from 'vitest';
import { roomVersion } from '../roomversion.js';
import type { AuthEventProvider, EventLike } from '../types.js';
import { AuthError, stateTuple } from '../types.js';
import { AuthGraph } from './authgraph.js';
import { iterativeAuthChecks } from './iterative.js';
import { EventStore } from './testing.js';

const A = '@alice:x';
const PL = stateTuple('m.room.power_levels', '');

/** A stand-in for the auth rules: allowed when the power levels it sees say `allow: true`. */
function checkByPowerLevels(seen: Map<string, string | undefined>) {
  return (event: EventLike, auth: AuthEventProvider): void => {
    const pl = auth.get('m.room.power_levels', '');
    seen.set(event.eventId, pl?.eventId);
    if (pl?.content['allow'] !== true) throw new AuthError(`${event.eventId}: power levels forbid it`);
  };
}

function room() {
  const s = new EventStore(roomVersion('10')!, '!r:x');
  s.add({ id: '$C', type: 'm.room.create', stateKey: '', sender: A });
  s.add({ id: '$yes', type: 'm.room.power_levels', stateKey: '', sender: A, content: { allow: true }, auth: ['$C'] });
  s.add({ id: '$no', type: 'm.room.power_levels', stateKey: '', sender: A, content: { allow: false }, auth: ['$C'] });
  s.add({ id: '$t1', type: 'm.room.topic', stateKey: '', sender: A, auth: ['$C', '$yes'] });
  s.add({ id: '$t2', type: 'm.room.topic', stateKey: '', sender: A, auth: ['$C', '$no'] });
  s.add({ id: '$msg', type: 'm.room.message', sender: A, auth: ['$C', '$yes'] });
  return s;
}

describe('iterativeAuthChecks', () => {
  it('uses the state so far before the event own auth events, and keeps only allowed events', () => {
    const seen = new Map<string, string | undefined>();
    const g = new AuthGraph(room());
    // From empty state, $t2 sees its own auth event ($no) and is dropped; $yes then enters the
    // state, and $t1 is checked against it.
    const out = iterativeAuthChecks(g, ['$t2', '$yes', '$t1'], new Map(), { check: checkByPowerLevels(seen) });
    expect(seen).toEqual(
      new Map([
        ['$t2', '$no'],
        ['$yes', undefined],
        ['$t1', '$yes'],
      ]),
    );
    expect(out).toEqual(new Map([[stateTuple('m.room.topic', ''), '$t1']]));
  });

  it('lets the state override an event auth events', () => {
    const seen = new Map<string, string | undefined>();
    const g = new AuthGraph(room());
    const base = new Map([[PL, '$yes']]);
    const out = iterativeAuthChecks(g, ['$t2'], base, { check: checkByPowerLevels(seen) });
    expect(seen.get('$t2')).toBe('$yes');
    expect(out.get(stateTuple('m.room.topic', ''))).toBe('$t2');
    expect(base.size).toBe(1); // the base state is not modified
  });

  it('never uses a rejected auth event, from the state or from auth_events', () => {
    const seen = new Map<string, string | undefined>();
    const g = new AuthGraph(room());
    const out = iterativeAuthChecks(g, ['$t1'], new Map([[PL, '$yes']]), {
      check: checkByPowerLevels(seen),
      isRejected: (id) => id === '$yes',
    });
    expect(seen.get('$t1')).toBeUndefined();
    expect(out.has(stateTuple('m.room.topic', ''))).toBe(false);
  });

  it('skips events without a state key and rethrows errors that are not rejections', () => {
    const g = new AuthGraph(room());
    const seen = new Map<string, string | undefined>();
    expect(iterativeAuthChecks(g, ['$msg'], new Map(), { check: checkByPowerLevels(seen) }).size).toBe(0);
    expect(seen.size).toBe(0);
    expect(() =>
      iterativeAuthChecks(g, ['$t1'], new Map(), {
        check: () => {
          throw new TypeError('bug in the auth rules');
        },
      }),
    ).toThrow(TypeError);
  });
});
