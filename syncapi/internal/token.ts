/**
 * The sync token: one position per stream, in Dendrite's layout
 * `s<pdu>_<typing>_<receipt>_<invite>_<to-device>_<device-list>_<account-data>_<notification>_<presence>`,
 * opaque to clients. Streams not served yet stay 0.
 */
export interface StreamPositions {
  pdu: number;
  typing: number;
  receipt: number;
  invite: number;
  toDevice: number;
  deviceList: number;
  accountData: number;
  notification: number;
  presence: number;
}

const ORDER: ReadonlyArray<keyof StreamPositions> = ['pdu', 'typing', 'receipt', 'invite', 'toDevice', 'deviceList', 'accountData', 'notification', 'presence'];

export const ZERO: StreamPositions = { pdu: 0, typing: 0, receipt: 0, invite: 0, toDevice: 0, deviceList: 0, accountData: 0, notification: 0, presence: 0 };

export function formatToken(p: StreamPositions): string {
  return `s${ORDER.map((k) => p[k]).join('_')}`;
}

/** The positions of a token; undefined when it is not one of ours. */
export function parseToken(token: string): StreamPositions | undefined {
  const m = /^s(\d+(?:_\d+)*)$/.exec(token);
  if (!m) return undefined;
  const parts = m[1]!.split('_').map(Number);
  if (parts.length > ORDER.length || parts.some((n) => !Number.isSafeInteger(n))) return undefined;
  const out = { ...ZERO };
  ORDER.forEach((k, i) => (out[k] = parts[i] ?? 0));
  return out;
}
