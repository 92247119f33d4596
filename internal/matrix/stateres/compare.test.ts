import { describe, expect, it } from 'vitest';
import { compareCodePoints } from './compare.js';
import { IndexHeap } from './heap.js';
import { BitSet } from './bitset.js';

describe('compareCodePoints', () => {
  it('orders ASCII like plain string comparison', () => {
    const ids = ['$b', '$a', '$ab', '$', '$B'];
    expect([...ids].sort(compareCodePoints)).toEqual([...ids].sort());
  });

  it('puts astral characters after U+E000..U+FFFF, unlike UTF-16 code unit order', () => {
    const astral = '$\u{1F600}'; // surrogate pair D83D DE00
    const privateUse = '$\uE000';
    expect(astral < privateUse).toBe(true); // JavaScript's code unit order
    expect(compareCodePoints(astral, privateUse)).toBe(1);
    expect(compareCodePoints(privateUse, astral)).toBe(-1);
    expect(compareCodePoints(astral, astral)).toBe(0);
  });
});

describe('IndexHeap', () => {
  it('pops in the order of its comparator', () => {
    const values = [5, 3, 9, 1, 7, 3, 8, 0, 2];
    const heap = new IndexHeap((a, b) => values[a]! < values[b]! || (values[a] === values[b] && a < b));
    for (let i = 0; i < values.length; i++) heap.push(i);
    const out: number[] = [];
    for (let i = heap.pop(); i !== undefined; i = heap.pop()) out.push(i);
    expect(out.map((i) => values[i])).toEqual([0, 1, 2, 3, 3, 5, 7, 8, 9]);
    expect(out.slice(3, 5)).toEqual([1, 5]);
    expect(heap.size).toBe(0);
  });
});

describe('BitSet', () => {
  it('grows on demand and answers false beyond its size', () => {
    const s = new BitSet(1);
    expect(s.has(1000)).toBe(false);
    s.add(1000);
    s.add(31);
    s.add(32);
    expect(s.has(1000)).toBe(true);
    expect(s.has(31)).toBe(true);
    expect(s.has(32)).toBe(true);
    expect(s.has(33)).toBe(false);
  });
});
