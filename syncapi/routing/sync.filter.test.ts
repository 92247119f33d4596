import { expect, it } from 'vitest';
import { typeFilter } from './sync.js';

it('filters event types with types, not_types and * wildcards', () => {
  const f = typeFilter({ types: ['m.room.*', 'my.type'], not_types: ['m.room.member'] });
  expect(f('m.room.message')).toBe(true);
  expect(f('my.type')).toBe(true);
  expect(f('m.room.member')).toBe(false);
  expect(f('my.typeX')).toBe(false);
  expect(f('m.roomXmessage')).toBe(false);
  expect(typeFilter(undefined)('anything')).toBe(true);
  expect(typeFilter({ not_types: ['*'] })('x')).toBe(false);
  expect(typeFilter({ types: [] })('x')).toBe(false);
});
