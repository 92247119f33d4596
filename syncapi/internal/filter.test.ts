import { expect, it } from 'vitest';
import { eventFilter, pickFields, syncFilter } from './filter.js';

const ev = (type: string, sender = '@a:x', roomId = '!r:x', content: Record<string, unknown> = {}) => ({ type, sender, roomId, content });

it('filters event types with types, not_types and * wildcards', () => {
  const f = eventFilter({ types: ['m.room.*', 'my.type'], not_types: ['m.room.member'] });
  expect(f.allowsType('m.room.message')).toBe(true);
  expect(f.allowsType('my.type')).toBe(true);
  expect(f.allowsType('m.room.member')).toBe(false);
  expect(f.allowsType('my.typeX')).toBe(false);
  expect(f.allowsType('m.roomXmessage')).toBe(false);
  expect(eventFilter(undefined).allowsType('anything')).toBe(true);
  expect(eventFilter({ not_types: ['*'] }).allowsType('x')).toBe(false);
  expect(eventFilter({ types: [] }).allowsType('x')).toBe(false);
});

it('filters senders, rooms and contains_url exactly (no wildcards for IDs)', () => {
  const f = eventFilter({ senders: ['@a:x', '@b:*'], not_rooms: ['!bad:x'], contains_url: true });
  expect(f.allows(ev('m.room.message', '@a:x', '!r:x', { url: 'mxc://x/y' }))).toBe(true);
  expect(f.allows(ev('m.room.message', '@a:x', '!r:x', { body: 'no url' }))).toBe(false);
  expect(f.allows(ev('m.room.message', '@b:y', '!r:x', { url: 'mxc://x/y' }))).toBe(false);
  expect(f.allows(ev('m.room.message', '@a:x', '!bad:x', { url: 'mxc://x/y' }))).toBe(false);
  const notUrl = eventFilter({ not_senders: ['@a:x'], contains_url: false });
  expect(notUrl.allows(ev('t', '@c:x'))).toBe(true);
  expect(notUrl.allows(ev('t', '@c:x', '!r:x', { url: 'mxc://a/b' }))).toBe(false);
  expect(notUrl.allows(ev('t', '@a:x'))).toBe(false);
});

it('reads limits, lazy loading and the room parts of a sync filter', () => {
  const f = syncFilter(
    { event_format: 'federation', event_fields: ['type'], room: { rooms: ['!a:x'], include_leave: true, timeline: { limit: 500, lazy_load_members: true }, state: { lazy_load_members: true, include_redundant_members: true } } },
    100,
  );
  expect(f.room.timeline.limit).toBe(100);
  expect(f.room.state.lazyLoadMembers).toBe(true);
  expect(f.room.state.includeRedundantMembers).toBe(true);
  expect(f.room.includeLeave).toBe(true);
  expect(f.room.allowsRoom('!a:x')).toBe(true);
  expect(f.room.allowsRoom('!b:x')).toBe(false);
  expect(f.eventFormat).toBe('federation');
  expect(f.eventFields).toEqual(['type']);
  const none = syncFilter('not an object', 100);
  expect(none.room.timeline.limit).toBeUndefined();
  expect(none.room.includeLeave).toBe(false);
  expect(eventFilter({ limit: -1 }).limit).toBeUndefined();
  expect(eventFilter({ limit: 2.5 }).limit).toBeUndefined();
});

it('keeps only the named event fields, with escaped dots', () => {
  const event = { type: 't', content: { body: 'hi', 'm.relates_to': { rel_type: 'x' }, other: 1 }, sender: '@a:x' };
  expect(pickFields(event, ['type', 'content.body'])).toEqual({ type: 't', content: { body: 'hi' } });
  expect(pickFields(event, ['content.m\\.relates_to.rel_type'])).toEqual({ content: { 'm.relates_to': { rel_type: 'x' } } });
  expect(pickFields(event, ['missing', 'content.nope'])).toEqual({});
});
