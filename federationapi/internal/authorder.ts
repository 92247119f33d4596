import type { Event } from '../../internal/matrix/index.js';

/** Orders events so that each comes after its auth events (those in the list). */
export function authOrder(events: Event[]): Event[] {
  const byId = new Map(events.map((e) => [e.eventId, e]));
  const out: Event[] = [];
  const placed = new Set<string>();
  const visiting = new Set<string>();
  const place = (e: Event): void => {
    if (placed.has(e.eventId) || visiting.has(e.eventId)) return;
    visiting.add(e.eventId);
    for (const a of e.authEventIds) {
      const dep = byId.get(a);
      if (dep) place(dep);
    }
    visiting.delete(e.eventId);
    placed.add(e.eventId);
    out.push(e);
  };
  for (const e of [...events].sort((a, b) => a.depth - b.depth)) place(e);
  return out;
}
