/**
 * A set of small non-negative integers (event indices) in a growable bit array: membership
 * tests in the auth-chain walks cost one array read instead of a string hash lookup.
 */
export class BitSet {
  private words: Uint32Array;

  constructor(capacity = 64) {
    this.words = new Uint32Array(Math.max(1, (capacity + 31) >>> 5));
  }

  has(i: number): boolean {
    const w = i >>> 5;
    return w < this.words.length && (this.words[w]! & (1 << (i & 31))) !== 0;
  }

  add(i: number): void {
    const w = i >>> 5;
    if (w >= this.words.length) this.grow(w + 1);
    this.words[w]! |= 1 << (i & 31);
  }

  private grow(minWords: number): void {
    const next = new Uint32Array(Math.max(minWords, this.words.length * 2));
    next.set(this.words);
    this.words = next;
  }
}
