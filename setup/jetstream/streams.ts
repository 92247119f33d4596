/**
 * The streams, as Dendrite defines them (setup/jetstream/streams.go): stream `<prefix><Name>`
 * holds the subjects `<prefix><Name>` and `<prefix><Name>.>`, keeps a message until every
 * interested durable consumer has acked it (interest retention), and is stored on disk except
 * typing and presence, which are ephemeral and kept in memory for a short while.
 * InputRoomEvent has one subject per room so that the roomserver can order per room.
 */

export const streamNames = [
  'InputRoomEvent',
  'InputDeviceListUpdate',
  'InputSigningKeyUpdate',
  'OutputRoomEvent',
  'OutputAppserviceEvent',
  'OutputSendToDeviceEvent',
  'OutputKeyChangeEvent',
  'OutputTypingEvent',
  'OutputClientData',
  'OutputReceiptEvent',
  'OutputNotificationData',
  'OutputPresenceEvent',
] as const;
export type StreamName = (typeof streamNames)[number];

export interface StreamDefinition {
  /** Stream name with the prefix. */
  name: string;
  subjects: string[];
  /** memory: lost on restart, as Dendrite keeps typing and presence. */
  storage: 'file' | 'memory';
  /** 0: no age limit. */
  maxAgeMs: number;
}

const limits: Partial<Record<StreamName, { storage: 'memory' | 'file'; maxAgeMs: number }>> = {
  // Dendrite drops room input nobody processed within a day rather than replay stale work.
  InputRoomEvent: { storage: 'file', maxAgeMs: 24 * 3600_000 },
  OutputTypingEvent: { storage: 'memory', maxAgeMs: 60_000 },
  OutputPresenceEvent: { storage: 'memory', maxAgeMs: 5 * 60_000 },
};

/** `maxAgeOverrides` lets tests shorten ages. */
export function streamDefinitions(prefix: string, maxAgeOverrides: Partial<Record<StreamName, number>> = {}): StreamDefinition[] {
  return streamNames.map((n) => {
    const name = `${prefix}${n}`;
    const l = limits[n];
    return { name, subjects: [name, `${name}.>`], storage: l?.storage ?? 'file', maxAgeMs: maxAgeOverrides[n] ?? l?.maxAgeMs ?? 0 };
  });
}

/**
 * The subject of a stream, optionally narrowed by a key (room ID, user ID):
 * `subjectFor('Dendrite', 'InputRoomEvent', '!abc:example.org')` is
 * `DendriteInputRoomEvent._abc_example_org`.
 */
export function subjectFor(prefix: string, stream: StreamName, key?: string): string {
  return key === undefined ? `${prefix}${stream}` : `${prefix}${stream}.${subjectToken(key)}`;
}

/**
 * Makes a string one subject token the way Dendrite's Tokenise does: every run of characters
 * other than ASCII letters, digits and `$` becomes `_` (NATS tokens may not hold `.`, `*`,
 * `>` or whitespace). Two room IDs may share a token; they then merely share an ordering lane.
 */
export function subjectToken(key: string): string {
  const token = key.replace(/[^A-Za-z0-9$]+/g, '_');
  return token === '' ? '_' : token;
}

export function streamOfSubject(defs: readonly StreamDefinition[], subject: string): StreamDefinition | undefined {
  return defs.find((d) => subject === d.name || subject.startsWith(`${d.name}.`));
}
