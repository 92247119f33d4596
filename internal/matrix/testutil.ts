/** Helpers shared by the protocol library's tests. */
import { MatrixProtocolError } from './types.js';

/** The MatrixProtocolError code `fn` throws, or undefined when it returns; other errors propagate. */
export function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof MatrixProtocolError) return e.code;
    throw e;
  }
  return undefined;
}

/** mulberry32: a tiny seeded PRNG, so that randomised tests reproduce. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
