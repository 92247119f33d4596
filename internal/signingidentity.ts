/** This server's signing identity as handed to components: who we are and how we sign. */
import type { Event } from './matrix/event.js';
import type { EventFields } from './matrix/eventbuilder.js';
import { buildEvent, roomVersion as lookupRoomVersion, signEvent, signJson, signRequest, type SigningKey } from './matrix/index.js';
import type { JsonObject } from './matrix/types.js';
import type { FederationRequest } from './matrix/xmatrix.js';

export interface SigningIdentity {
  serverName: string;
  keyId: string;
  /** Unpadded standard base64 of the Ed25519 public key. */
  publicKeyBase64: string;
  /** Returns a copy of `obj` with our signature added to `signatures`. */
  signJson<T extends JsonObject>(obj: T): T;
  /** Builds, hashes and signs an event of ours (see internal/matrix/eventbuilder.ts). */
  buildEvent(fields: EventFields, roomVersion: string): Event;
  /** Adds our signature to another server's event (an invite of one of our users). */
  signEvent(pdu: JsonObject, roomVersion: string): JsonObject;
  /** The X-Matrix Authorization header value for a federation request of ours. */
  signRequest(req: FederationRequest): string;
  /** Keys we signed with before (published as old_verify_keys). */
  oldKeys: ReadonlyArray<{ keyId: string; publicKeyBase64: string; expiredTs: number }>;
  keyValidityPeriodMs: number;
}

/** The identity of `serverName` signing with `key` (the server's own, or a test's). */
export function signingIdentityFromKey(
  serverName: string,
  key: SigningKey,
  opts: { oldKeys?: SigningIdentity['oldKeys']; keyValidityPeriodMs?: number } = {},
): SigningIdentity {
  const { keyId } = key;
  return {
    serverName,
    keyId,
    publicKeyBase64: key.publicKeyBase64,
    signJson: <T extends JsonObject>(obj: T): T => signJson(obj, serverName, keyId, key) as T,
    buildEvent: (fields, roomVersion) => buildEvent(fields, roomVersion, serverName, keyId, key),
    signRequest: (req) => signRequest(req, keyId, key),
    signEvent: (pdu, version) => {
      const rv = lookupRoomVersion(version);
      if (!rv) throw new Error(`unsupported room version ${version}`);
      return signEvent(pdu, rv, serverName, keyId, key);
    },
    oldKeys: opts.oldKeys ?? [],
    keyValidityPeriodMs: opts.keyValidityPeriodMs ?? 7 * 24 * 60 * 60_000,
  };
}
