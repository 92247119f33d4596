/**
 * Orderings shared by the state resolution steps.
 *
 * The spec breaks ties on `event_id` by string order. Synapse (Python) compares code points;
 * JavaScript's `<` compares UTF-16 code units, which disagrees only when a surrogate pair meets
 * a BMP character at or above U+E000. Room versions 1 and 2 allow arbitrary event IDs, so we
 * compare by code point to converge with other servers even there.
 */

/** -1, 0 or 1: `a` before, equal to or after `b` in Unicode code point order. */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) < codePointRank(y) ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/** Maps a UTF-16 code unit so that numeric order equals code point order of the strings. */
function codePointRank(unit: number): number {
  if (unit < 0xd800) return unit;
  // Surrogates stand for code points above U+FFFF: move them above U+E000..U+FFFF.
  return unit < 0xe000 ? unit + 0x2000 : unit - 0x800;
}
