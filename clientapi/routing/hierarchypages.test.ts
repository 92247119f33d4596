import { expect, it } from 'vitest';
import { HierarchyPages, type HierarchyWalk } from './hierarchypages.js';

const walk = (room: string): HierarchyWalk => ({ user_id: '@u:x', room_id: room, suggested_only: false, max_depth: undefined, queue: [{ room_id: '!c:x', via: ['x'], depth: 1 }], processed: [room] });

it('keeps walks under opaque tokens, hands out copies, and forgets them after five minutes', () => {
  let now = 1_000_000;
  const pages = new HierarchyPages(() => now);
  const token = pages.save(walk('!s:x'));
  expect(token).toMatch(/^[A-Za-z0-9_-]{22}$/);
  const first = pages.load(token)!;
  expect(first).toEqual(walk('!s:x'));
  // A copy: changing it does not change what the token stands for.
  first.queue.pop();
  expect(pages.load(token)).toEqual(walk('!s:x'));
  expect(pages.load('unknown')).toBeUndefined();
  now += 5 * 60_000;
  expect(pages.load(token)).toBeUndefined();
  // Expired walks are dropped when new ones are saved.
  const next = pages.save(walk('!t:x'));
  expect(pages.load(next)?.room_id).toBe('!t:x');
});
