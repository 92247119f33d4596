import { describe, expect, it } from 'vitest';
import { compareSpaceChildren, isSuggestedChild, spaceChildVia } from './spacechildren.js';

describe('space children', () => {
  it("orders children as the spec's example does", () => {
    // Client-Server API, "Ordering of children within a space".
    const children = [
      { state_key: '!b:example.org', origin_server_ts: 1640341000000, content: { order: ' ', via: ['example.org'] } },
      { state_key: '!a:example.org', origin_server_ts: 1640141000000, content: { order: 'aaaa', via: ['example.org'] } },
      { state_key: '!c:example.org', origin_server_ts: 1640841000000, content: { order: 'first', via: ['example.org'] } },
      { state_key: '!e:example.org', origin_server_ts: 1640641000000, content: { via: ['example.org'] } },
      { state_key: '!d:example.org', origin_server_ts: 1640741000000, content: { via: ['example.org'] } },
    ];
    const shuffled = [children[3]!, children[0]!, children[4]!, children[2]!, children[1]!];
    expect(shuffled.sort(compareSpaceChildren).map((c) => c.state_key)).toEqual(['!b:example.org', '!a:example.org', '!c:example.org', '!e:example.org', '!d:example.org']);
  });

  it('treats invalid orders as none, and breaks ties by timestamp then room ID', () => {
    const at = (state_key: string, origin_server_ts: number, order?: unknown) => ({ state_key, origin_server_ts, content: order === undefined ? {} : { order } });
    const list = [at('!z:x', 1, 'a'.repeat(51)), at('!y:x', 1, 'b\u0001'), at('!x:x', 1, 7), at('!w:x', 2, 'm'), at('!v:x', 1, 'm'), at('!u:x', 1)];
    expect(list.sort(compareSpaceChildren).map((c) => c.state_key)).toEqual(['!v:x', '!w:x', '!u:x', '!x:x', '!y:x', '!z:x']);
  });

  it('names a child only with a non-empty via of server names, and reads suggested', () => {
    expect(spaceChildVia({ via: ['a.org', 'b.org'] })).toEqual(['a.org', 'b.org']);
    for (const content of [{}, { via: [] }, { via: 'a.org' }, { via: ['a.org', 3] }, { via: [''] }, null, []]) expect(spaceChildVia(content)).toBeUndefined();
    expect(isSuggestedChild({ suggested: true })).toBe(true);
    expect(isSuggestedChild({ suggested: 'true' })).toBe(false);
    expect(isSuggestedChild(null)).toBe(false);
  });
});
