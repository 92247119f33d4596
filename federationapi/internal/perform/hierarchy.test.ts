/** The checks on other servers' /hierarchy answers: only the spec's fields, of the right types, about the room asked for. */
import { describe, expect, it } from 'vitest';
import { parseHierarchyAnswer, parseRoomSummary, parseSpaceChild } from './hierarchy.js';

const child = (stateKey: string, content: Record<string, unknown>, ts = 1) => ({ type: 'm.space.child', state_key: stateKey, content, sender: '@s:x', origin_server_ts: ts, event_id: '$dropped' });

describe('remote hierarchy answers', () => {
  it('keeps the summary fields of the right types only', () => {
    expect(
      parseRoomSummary({ room_id: '!r:x', num_joined_members: 3, world_readable: true, guest_can_join: 'yes', name: 'N', topic: 5, join_rule: 'public', allowed_room_ids: ['!a:x', 'nope', 7], extra: 'x' }),
    ).toEqual({ room_id: '!r:x', num_joined_members: 3, world_readable: true, guest_can_join: false, name: 'N', join_rule: 'public', allowed_room_ids: ['!a:x'] });
    expect(parseRoomSummary({ room_id: 'not a room', num_joined_members: 1 })).toBeUndefined();
    expect(parseRoomSummary({ room_id: '!r:x', num_joined_members: -2 })?.num_joined_members).toBe(0);
    expect(parseRoomSummary({ room_id: '!r:x', name: 'x'.repeat(5000) })?.name).toBeUndefined();
    expect(parseRoomSummary('!r:x')).toBeUndefined();
  });

  it('keeps child events that name a child room, stripped', () => {
    expect(parseSpaceChild(child('!c:x', { via: ['x'] }))).toEqual({ type: 'm.space.child', state_key: '!c:x', content: { via: ['x'] }, sender: '@s:x', origin_server_ts: 1 });
    expect(parseSpaceChild(child('!c:x', {}))).toBeUndefined();
    expect(parseSpaceChild(child('c', { via: ['x'] }))).toBeUndefined();
    expect(parseSpaceChild({ ...child('!c:x', { via: ['x'] }), type: 'm.space.parent' })).toBeUndefined();
  });

  it('takes only an answer about the room asked for, children ordered, deduplicated and filtered', () => {
    const body = {
      room: { room_id: '!s:x', num_joined_members: 1, room_type: 'm.space', children_state: [child('!b:x', { via: ['x'] }, 2), child('!a:x', { via: ['x'], suggested: true }, 3), child('!a:x', { via: ['y'] }, 1), 'junk'] },
      children: [{ room_id: '!a:x', num_joined_members: 2 }, { nope: 1 }],
      inaccessible_children: ['!b:x', 4],
    };
    const all = parseHierarchyAnswer(body, '!s:x', false)!;
    expect(all.children_state.map((c) => [c.state_key, c.origin_server_ts])).toEqual([
      ['!b:x', 2],
      ['!a:x', 3],
    ]);
    expect(all.children.map((c) => c.room_id)).toEqual(['!a:x']);
    expect(all.inaccessible_children).toEqual(['!b:x']);
    expect(parseHierarchyAnswer(body, '!s:x', true)!.children_state.map((c) => c.state_key)).toEqual(['!a:x']);
    expect(parseHierarchyAnswer(body, '!other:x', false)).toBeUndefined();
    expect(parseHierarchyAnswer([], '!s:x', false)).toBeUndefined();
  });
});
