/**
 * Filters (Client-Server API "Filtering"): the parts of a filter JSON that /sync, /messages
 * and /context apply, read once into predicates. Unknown or malformed fields are ignored, as
 * the filter was validated when it was stored; inline filters get the same lenience.
 */

/** An event as a filter sees it. */
export interface FilterableEvent {
  type: string;
  sender: string;
  roomId: string;
  /** The event's content, for `contains_url`. */
  content?: Record<string, unknown>;
}

export interface EventFilter {
  limit?: number;
  /** Whether the event passes types / not_types / senders / not_senders / rooms / not_rooms / contains_url. */
  allows(e: FilterableEvent): boolean;
  /** Whether the type alone passes (account data, ephemeral events). */
  allowsType(type: string): boolean;
  /** Whether the room passes rooms / not_rooms. */
  allowsRoom(roomId: string): boolean;
  lazyLoadMembers: boolean;
  includeRedundantMembers: boolean;
  /** unread_thread_notifications: /sync counts each thread's unread notifications apart. */
  unreadThreadNotifications: boolean;
}

export interface SyncFilter {
  accountData: EventFilter;
  presence: EventFilter;
  room: {
    includeLeave: boolean;
    allowsRoom(roomId: string): boolean;
    timeline: EventFilter;
    state: EventFilter;
    ephemeral: EventFilter;
    accountData: EventFilter;
  };
  /** event_fields: dotted paths kept in each event (all when absent). */
  eventFields?: string[];
  eventFormat: 'client' | 'federation';
}

function obj(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function strings(v: unknown): string[] | undefined {
  return Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : undefined;
}

/** A `*` glob as a regular expression matching the whole string. */
function glob(pattern: string): RegExp {
  return new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);
}

function matcher(include: string[] | undefined, exclude: string[] | undefined, wildcards: boolean): (s: string) => boolean {
  const toTest = (list: string[]): ((s: string) => boolean) => {
    if (!wildcards || !list.some((p) => p.includes('*'))) {
      const set = new Set(list);
      return (s) => set.has(s);
    }
    const res = list.map(glob);
    return (s) => res.some((r) => r.test(s));
  };
  const inc = include ? toTest(include) : undefined;
  const exc = exclude && exclude.length > 0 ? toTest(exclude) : undefined;
  return (s) => !(exc && exc(s)) && (inc === undefined || inc(s));
}

function hasUrl(content: Record<string, unknown> | undefined): boolean {
  return typeof content?.['url'] === 'string';
}

/** Reads an EventFilter or RoomEventFilter. */
export function eventFilter(raw: unknown, maxLimit?: number): EventFilter {
  const f = obj(raw);
  const typeOk = matcher(strings(f['types']), strings(f['not_types']), true);
  const senderOk = matcher(strings(f['senders']), strings(f['not_senders']), false);
  const roomOk = matcher(strings(f['rooms']), strings(f['not_rooms']), false);
  const containsUrl = typeof f['contains_url'] === 'boolean' ? f['contains_url'] : undefined;
  const rawLimit = f['limit'];
  const limit = typeof rawLimit === 'number' && Number.isInteger(rawLimit) && rawLimit >= 0 ? (maxLimit !== undefined ? Math.min(rawLimit, maxLimit) : rawLimit) : undefined;
  return {
    ...(limit !== undefined ? { limit } : {}),
    allows: (e) => typeOk(e.type) && senderOk(e.sender) && roomOk(e.roomId) && (containsUrl === undefined || hasUrl(e.content) === containsUrl),
    allowsType: typeOk,
    allowsRoom: roomOk,
    lazyLoadMembers: f['lazy_load_members'] === true,
    includeRedundantMembers: f['include_redundant_members'] === true,
    unreadThreadNotifications: f['unread_thread_notifications'] === true,
  };
}

/** Reads a whole filter as /sync uses it. */
export function syncFilter(raw: unknown, maxTimelineLimit: number): SyncFilter {
  const f = obj(raw);
  const room = obj(f['room']);
  const roomOk = matcher(strings(room['rooms']), strings(room['not_rooms']), false);
  const fields = strings(f['event_fields']);
  return {
    accountData: eventFilter(f['account_data']),
    presence: eventFilter(f['presence']),
    room: {
      includeLeave: room['include_leave'] === true,
      allowsRoom: roomOk,
      timeline: eventFilter(room['timeline'], maxTimelineLimit),
      state: eventFilter(room['state']),
      ephemeral: eventFilter(room['ephemeral']),
      accountData: eventFilter(room['account_data']),
    },
    ...(fields ? { eventFields: fields } : {}),
    eventFormat: f['event_format'] === 'federation' ? 'federation' : 'client',
  };
}

/**
 * Keeps only the `event_fields` of an event: dotted paths, `\.` for a literal dot. An empty
 * list keeps nothing but what the paths name, so [] yields {}.
 */
export function pickFields(event: Record<string, unknown>, fields: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of fields) {
    const path = field.split(/(?<!\\)\./).map((p) => p.replace(/\\\./g, '.'));
    let src: unknown = event;
    for (const p of path) src = obj(src)[p];
    if (src === undefined) continue;
    let dst = out;
    path.forEach((p, i) => {
      if (i === path.length - 1) dst[p] = src;
      else dst = (dst[p] = obj(dst[p])) as Record<string, unknown>;
    });
  }
  return out;
}
