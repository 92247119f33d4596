/**
 * The streams, named as Dendrite names them (setup/jetstream/streams.go): stream
 * `<prefix><Name>` holds subjects `<prefix><Name>` and `<prefix><Name>.>`. InputRoomEvent
 * has one subject per room, so that the roomserver can order per room.
 */

export const streamNames = [
  'InputRoomEvent',
  'InputDeviceListUpdate',
  'InputSigningKeyUpdate',
  'OutputRoomEvent',
  'OutputSendToDeviceEvent',
  'OutputKeyChangeEvent',
  'OutputTypingEvent',
  'OutputClientData',
  'OutputReceiptEvent',
  'OutputNotificationData',
  'OutputPresenceEvent',
  'OutputAppserviceEvent',
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

const memoryStreams: Partial<Record<StreamName, number>> = {
  OutputTypingEvent: 60_000,
  OutputPresenceEvent: 5 * 60_000,
};

export function streamDefinitions(prefix: string, maxAgeOverrides: Partial<Record<StreamName, number>> = {}): StreamDefinition[] {
  return streamNames.map((n) => {
    const name = `${prefix}${n}`;
    const memoryAge = memoryStreams[n];
    return {
      name,
      subjects: [name, `${name}.>`],
      storage: memoryAge !== undefined ? 'memory' : 'file',
      maxAgeMs: maxAgeOverrides[n] ?? memoryAge ?? 0,
    };
  });
}

/** The subject of a stream, optionally narrowed by a key (room ID, user ID). */
export function subjectFor(prefix: string, stream: StreamName, key?: string): string {
  return key === undefined ? `${prefix}${stream}` : `${prefix}${stream}.${subjectToken(key)}`;
}

/** Makes any string one subject token: NATS tokens may not hold '.', '*', '>' or spaces. */
export function subjectToken(key: string): string {
  return Buffer.from(key, 'utf8').toString('base64url');
}

export function streamOfSubject(defs: readonly StreamDefinition[], subject: string): StreamDefinition | undefined {
  return defs.find((d) => subject === d.name || subject.startsWith(`${d.name}.`));
}
