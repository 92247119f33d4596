/**
 * Space children (Client-Server API "Spaces"): which m.space.child events name a child, and the
 * order a space's children are shown in. Pure functions, shared by the server that walks a
 * space and the one that answers for it over federation.
 */

/** The `via` servers of an m.space.child event's content; undefined when it names no child (no `via`, an empty one, or one with non-strings). */
export function spaceChildVia(content: unknown): string[] | undefined {
  if (typeof content !== 'object' || content === null || Array.isArray(content)) return undefined;
  const via = (content as Record<string, unknown>)['via'];
  if (!Array.isArray(via) || via.length === 0 || !via.every((v) => typeof v === 'string' && v.length > 0)) return undefined;
  return via as string[];
}

/** The child is marked `suggested: true`. */
export function isSuggestedChild(content: unknown): boolean {
  return typeof content === 'object' && content !== null && (content as Record<string, unknown>)['suggested'] === true;
}

/** A valid `order`: a string of at most 50 characters, each from U+0020 to U+007E. */
function orderOf(content: unknown): string | undefined {
  const order = typeof content === 'object' && content !== null ? (content as Record<string, unknown>)['order'] : undefined;
  if (typeof order !== 'string' || order.length > 50) return undefined;
  for (let i = 0; i < order.length; i++) {
    const c = order.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return undefined;
  }
  return order;
}

const byCodePoint = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The spec's order of children: those with a valid `order` first, by it (code points), then
 * the rest; ties by the event's origin_server_ts, then by room ID (the state key).
 */
export function compareSpaceChildren(
  a: { state_key: string; content: unknown; origin_server_ts: number },
  b: { state_key: string; content: unknown; origin_server_ts: number },
): number {
  const oa = orderOf(a.content);
  const ob = orderOf(b.content);
  if (oa !== undefined && ob === undefined) return -1;
  if (oa === undefined && ob !== undefined) return 1;
  if (oa !== undefined && ob !== undefined && oa !== ob) return byCodePoint(oa, ob);
  return a.origin_server_ts - b.origin_server_ts || byCodePoint(a.state_key, b.state_key);
}
