import { describe, expect, it } from 'vitest';
import { stateTuple } from '../types.js';
import { conflictedEventIds, separate, separateV1 } from './separate.js';

const create = stateTuple('m.room.create', '');
const topic = stateTuple('m.room.topic', '');
const name = stateTuple('m.room.name', '');
const alice = stateTuple('m.room.member', '@alice:x');

describe('separate (v2)', () => {
  const s1 = new Map([
    [create, '$c'],
    [topic, '$t1'],
    [alice, '$a'],
  ]);
  const s2 = new Map([
    [create, '$c'],
    [topic, '$t2'],
    [name, '$n'],
  ]);

  it('keeps keys with the same event everywhere and conflicts the rest, including keys some sets lack', () => {
    const { unconflicted, conflicted } = separate([s1, s2]);
    expect(unconflicted).toEqual(new Map([[create, '$c']]));
    expect(conflicted).toEqual(
      new Map([
        [topic, ['$t1', '$t2']],
        [alice, ['$a']],
        [name, ['$n']],
      ]),
    );
    expect(conflictedEventIds({ unconflicted, conflicted })).toEqual(new Set(['$t1', '$t2', '$a', '$n']));
  });

  it('lists each conflicted event once', () => {
    const s3 = new Map([[topic, '$t1']]);
    expect(separate([s1, s2, s3]).conflicted.get(topic)).toEqual(['$t1', '$t2']);
  });

  it('has nothing conflicted for one state set or identical ones', () => {
    expect(separate([s1]).conflicted.size).toBe(0);
    expect(separate([s1, new Map(s1)]).unconflicted).toEqual(s1);
    expect(separate([]).unconflicted.size).toBe(0);
  });
});

describe('separateV1', () => {
  it('treats a key that only some sets hold as unconflicted', () => {
    const { unconflicted, conflicted } = separateV1([
      new Map([
        [create, '$c'],
        [topic, '$t1'],
        [alice, '$a'],
      ]),
      new Map([
        [create, '$c'],
        [topic, '$t2'],
      ]),
      new Map([[topic, '$t3']]),
    ]);
    expect(unconflicted).toEqual(
      new Map([
        [create, '$c'],
        [alice, '$a'],
      ]),
    );
    expect(conflicted).toEqual(new Map([[topic, ['$t1', '$t2', '$t3']]]));
  });
});
