/**
 * Hashes and signatures on events (server-server API "Signing Events"):
 *
 * - outgoing: `signEvent` sets the content hash, redacts, signs the redacted form and copies
 *   the signature back;
 * - received ("Validating hashes and signatures on received events"): the servers that must
 *   have signed are checked first (every known, unexpired ed25519 key's signature of theirs must
 *   verify, and there must be at least one); then the content hash: a mismatch means the event
 *   is used in its redacted form.
 *
 * Which servers must sign (as Synapse checks them):
 * - the sender's server, except for an invite made from a third-party invite
 *   (m.room.member, membership invite, content.third_party_invite), which any server may send;
 * - room versions 1-2: also the server of the event ID;
 * - room versions 8+ (restricted joins): for a membership event carrying
 *   `join_authorised_via_users_server`, also that user's server. This is auth rule 4.2 of
 *   those versions ("validly signed by the homeserver of the user ID denoted by the key"),
 *   which needs the keys and so is checked here; the rule names any m.room.member event, where
 *   Synapse verifies the signature of joins only (and for others checks that one exists).
 */
import { encodeBase64 } from './base64.js';
import { addContentHash, referenceHashText } from './eventhash.js';
import type { Event } from './event.js';
import { domainOf } from './identifiers.js';
import type { PublicKeyInput } from './keys.js';
import type { RoomVersion } from './roomversion.js';
import { decodeSignature, signBytes, verifyBatch, verifyBytes, withSignature, type PrivateKeyInput } from './signing.js';
import { MatrixProtocolError, type JsonObject, type Signatures } from './types.js';
import type { EventJsonInput } from './redaction.js';

/**
 * Adds the content hash and `serverName`'s signature to a PDU; returns a new object.
 * Existing signatures are kept (they cover the redacted form, which the hash is part of, so
 * they stay valid only if the hash did not change).
 */
export function signEvent(
  pdu: EventJsonInput,
  rv: RoomVersion,
  serverName: string,
  keyId: string,
  key: PrivateKeyInput,
): JsonObject {
  const hashed = addContentHash(pdu, rv);
  const signature = encodeBase64(signBytes(referenceHashText(hashed, rv), key));
  const old = hashed.signatures;
  const existing = typeof old === 'object' && old !== null && !Array.isArray(old) ? (old as Signatures) : undefined;
  return { ...hashed, signatures: withSignature(existing, serverName, keyId, signature) as JsonObject };
}

/**
 * Finds a verification key: the public key of `serverName`'s `keyId`, or undefined when it is
 * unknown. `validAt` is the event's origin_server_ts in room versions that enforce key
 * validity (5+): return undefined for a key not valid then (valid_until_ts, capped at 7 days
 * from when it was fetched, per rooms/v5). Undefined `validAt`: any known key will do.
 */
export type KeyLookup = (serverName: string, keyId: string, validAt: number | undefined) => PublicKeyInput | undefined;

/** The outcome for one server that must have signed. */
export interface ServerSignatureCheck {
  serverName: string;
  ok: boolean;
  /** Key IDs whose signatures verified. */
  verifiedKeyIds: string[];
  /** Why the check failed. */
  error?: string;
}

/** The servers whose signatures an event needs, per its room version. */
export function requiredSigningServers(event: Event): string[] {
  const servers = new Set<string>();
  const content = event.content;
  const isThirdPartyInvite =
    event.type === 'm.room.member' && content.membership === 'invite' && content.third_party_invite !== undefined;
  if (!isThirdPartyInvite) servers.add(event.senderDomain);
  if (event.roomVersion.eventFormat === 'v1') {
    const d = domainOf(event.eventId);
    if (d) servers.add(d);
  }
  if (
    event.roomVersion.restrictedJoinRule &&
    event.type === 'm.room.member' &&
    typeof content.join_authorised_via_users_server === 'string'
  ) {
    const d = domainOf(content.join_authorised_via_users_server);
    if (d) servers.add(d);
  }
  return [...servers];
}

/** A server's key IDs that an event's signature check will ask the KeyLookup for. */
export interface KeyRequest {
  serverName: string;
  keyIds: string[];
  /** The event's origin_server_ts where the room version enforces key validity (5+). */
  validAt: number | undefined;
}

/**
 * The keys checking `event` will look up, so that a caller whose key store is asynchronous
 * (fetching from origin servers or notaries) can load them first and then look up synchronously.
 */
export function requiredKeys(event: Event): KeyRequest[] {
  const validAt = event.roomVersion.enforceKeyValidity ? event.originServerTs : undefined;
  return requiredSigningServers(event).map((serverName) => {
    const byKey: unknown = (event.signatures as Record<string, unknown>)[serverName];
    const keyIds =
      typeof byKey === 'object' && byKey !== null && !Array.isArray(byKey)
        ? Object.keys(byKey).filter((k) => k.startsWith('ed25519:'))
        : [];
    return { serverName, keyIds, validAt };
  });
}

interface PlannedCheck {
  serverName: string;
  error?: string;
  items: Array<{ keyId: string; publicKey: PublicKeyInput; signature: Buffer }>;
}

/** Gathers, for each required server, the signatures to verify with known keys. */
function planChecks(event: Event, keyLookup: KeyLookup): PlannedCheck[] {
  const validAt = event.roomVersion.enforceKeyValidity ? event.originServerTs : undefined;
  const signatures: unknown = event.signatures;
  return requiredSigningServers(event).map((serverName): PlannedCheck => {
    const byKey =
      typeof signatures === 'object' && signatures !== null ? (signatures as Record<string, unknown>)[serverName] : undefined;
    if (typeof byKey !== 'object' || byKey === null || Array.isArray(byKey)) {
      return { serverName, error: `not signed by ${serverName}`, items: [] };
    }
    const items: PlannedCheck['items'] = [];
    let malformed: string | undefined;
    for (const [keyId, sig] of Object.entries(byKey as Record<string, unknown>)) {
      // Algorithms we do not know are ignored, as the appendix says.
      if (!keyId.startsWith('ed25519:')) continue;
      const publicKey = keyLookup(serverName, keyId, validAt);
      if (publicKey === undefined) continue; // unknown or expired keys are skipped
      const signature = typeof sig === 'string' ? decodeSignature(sig) : undefined;
      if (!signature) {
        malformed ??= `malformed signature from ${serverName} with ${keyId}`;
        continue;
      }
      items.push({ keyId, publicKey, signature });
    }
    if (malformed) return { serverName, error: malformed, items: [] };
    if (items.length === 0) return { serverName, error: `no signature from ${serverName} with a known key`, items: [] };
    return { serverName, items };
  });
}

function settle(plan: PlannedCheck, results: readonly boolean[]): ServerSignatureCheck {
  if (plan.error) return { serverName: plan.serverName, ok: false, verifiedKeyIds: [], error: plan.error };
  const verifiedKeyIds: string[] = [];
  let error: string | undefined;
  plan.items.forEach((item, i) => {
    if (results[i]) verifiedKeyIds.push(item.keyId);
    else error ??= `bad signature from ${plan.serverName} with ${item.keyId}`;
  });
  return error === undefined
    ? { serverName: plan.serverName, ok: true, verifiedKeyIds }
    : { serverName: plan.serverName, ok: false, verifiedKeyIds, error };
}

/** Checks the signatures an event needs, on the calling thread. One result per required server. */
export function verifyEventSignatures(event: Event, keyLookup: KeyLookup): ServerSignatureCheck[] {
  const data = event.signedText();
  return planChecks(event, keyLookup).map((plan) =>
    settle(
      plan,
      plan.items.map((item) => safeVerify(data, item.signature, item.publicKey)),
    ),
  );
}

function safeVerify(data: string, signature: Buffer, publicKey: PublicKeyInput): boolean {
  try {
    return verifyBytes(data, signature, publicKey);
  } catch {
    return false; // an unusable public key verifies nothing
  }
}

/** verifyEventSignatures for many events, verifying on the thread pool. */
export async function verifyEventsSignatures(events: readonly Event[], keyLookup: KeyLookup): Promise<ServerSignatureCheck[][]> {
  const plans = events.map((e) => planChecks(e, keyLookup));
  const batch = plans.flatMap((eventPlans, i) => {
    const data = Buffer.from((events[i] as Event).signedText(), 'utf8');
    return eventPlans.flatMap((plan) =>
      plan.items.map((item) => ({ data, signature: item.signature, publicKey: item.publicKey })),
    );
  });
  const results = await verifyBatch(batch);
  let next = 0;
  return plans.map((eventPlans) =>
    eventPlans.map((plan) => {
      const mine = results.slice(next, next + plan.items.length);
      next += plan.items.length;
      return settle(plan, mine);
    }),
  );
}

/** 'ok': use the event as it is; 'redact': its content hash is wrong, use `event.redacted()`. */
export type HashCheckOutcome = 'ok' | 'redact';

function outcome(event: Event, checks: readonly ServerSignatureCheck[]): HashCheckOutcome {
  const failed = checks.filter((c) => !c.ok);
  if (failed.length > 0) {
    throw new MatrixProtocolError(
      'bad_signature',
      `event ${event.eventId}: ${failed.map((c) => c.error ?? `not signed by ${c.serverName}`).join('; ')}`,
    );
  }
  return event.contentHashMatches() ? 'ok' : 'redact';
}

/**
 * The checks on receipt of a PDU, steps 2-3: signatures (throws
 * MatrixProtocolError('bad_signature'): drop the event), then the content hash.
 */
export function checkEventHashAndSignatures(event: Event, keyLookup: KeyLookup): HashCheckOutcome {
  return outcome(event, verifyEventSignatures(event, keyLookup));
}

/** checkEventHashAndSignatures for a batch (a transaction's PDUs), on the thread pool. */
export async function checkEventsHashAndSignatures(
  events: readonly Event[],
  keyLookup: KeyLookup,
): Promise<Array<HashCheckOutcome | MatrixProtocolError>> {
  const checks = await verifyEventsSignatures(events, keyLookup);
  return events.map((event, i) => {
    try {
      return outcome(event, checks[i] as ServerSignatureCheck[]);
    } catch (e) {
      if (e instanceof MatrixProtocolError) return e;
      throw e;
    }
  });
}
