import { describe, expect, it } from 'vitest';
import { roomVersion } from '../roomversion.js';
import { AuthGraph } from './authgraph.js';
import { EventStore } from './testing.js';
import { conflictedStateSubgraph } from './subgraph.js';

const A = '@alice:x';

function dag(edges: Record<string, string[]>): AuthGraph {
  const s = new EventStore(roomVersion('10')!, '!r:x');
  for (const [id, auth] of Object.entries(edges)) s.add({ id, type: 'm.room.power_levels', stateKey: '', sender: A, auth });
  return new AuthGraph(s);
}

describe('conflictedStateSubgraph', () => {
  it('holds the events on auth paths between conflicted events, endpoints included', () => {
    // C <- P1 <- P2 <- P3, and X <- Y beside: conflicted {P1, P3}.
    const g = dag({ C: [], P1: ['C'], P2: ['P1', 'C'], P3: ['P2', 'C'], X: ['C'], Y: ['X', 'P3'] });
    expect(conflictedStateSubgraph(g, ['P3', 'P1'])).toEqual(new Set(['P1', 'P2', 'P3']));
  });

  it('follows every branch of a diamond and nothing below the lowest conflicted event', () => {
    const g = dag({ C: [], L: ['C'], M1: ['L'], M2: ['L'], N: ['C'], T: ['M1', 'M2', 'N'] });
    expect(conflictedStateSubgraph(g, ['T', 'L'])).toEqual(new Set(['T', 'M1', 'M2', 'L']));
  });

  it('is just the conflicted events when none reaches another', () => {
    const g = dag({ C: [], a: ['C'], b: ['C'] });
    expect(conflictedStateSubgraph(g, ['a', 'b'])).toEqual(new Set(['a', 'b']));
  });

  it('copes with very long chains without recursion', () => {
    const edges: Record<string, string[]> = { e0: [] };
    for (let i = 1; i <= 30_000; i++) edges[`e${i}`] = [`e${i - 1}`];
    const g = dag(edges);
    expect(conflictedStateSubgraph(g, ['e30000', 'e10']).size).toBe(29_991);
  });
});
