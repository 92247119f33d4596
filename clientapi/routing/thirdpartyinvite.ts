/**
 * Inviting by third-party identifier (Client-Server API "Third-party invites"): POST
 * /rooms/{roomId}/invite with {id_server, id_access_token, medium, address}, and createRoom's
 * `invite_3pid`. The identity server is asked who the 3PID is bound to; a bound 3PID is an
 * ordinary invite of that user. Otherwise the identity server stores the invite (it will tell
 * the user's server once the 3PID is bound: federation's /3pid/onbind) and the room gets an
 * m.room.third_party_invite holding the token and the keys that will sign the redemption.
 *
 * Like Synapse, and unlike Dendrite, any identity server a client names may be used, not only
 * `trusted_third_party_id_servers`: the client chooses where its users' 3PIDs live. The calls
 * are held to federation_api's deny_networks/allow_networks and disable_tls_validation.
 *
 * Also the redemption a client asks for itself: /join with `third_party_signed`.
 */
import type { Logger } from 'pino';
import { MatrixError, badJson, forbidden, invalidParam, missingParam, notFound, type JsonBody } from '../../internal/httputil/index.js';
import { IdentityServerError, isIdentityServerName, type IdentityServerClient, type StoreInviteRequest } from '../../internal/identityserver/index.js';
import type { JsonObject } from '../../internal/matrix/index.js';
import type { FederationInternalAPI } from '../../federationapi/api/index.js';
import type { RoomserverInternalAPI } from '../../roomserver/api/index.js';
import type { ClientUserAPI } from '../../userapi/api/index.js';

/** What a client gives to invite by 3PID. */
export interface ThreePidInvite {
  id_server: string;
  id_access_token: string;
  medium: string;
  address: string;
}

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Whether an invite request names a 3PID rather than a user (it has no user_id but 3PID fields). */
export function isThreePidInviteBody(body: JsonBody): boolean {
  return body['user_id'] === undefined && (body['medium'] !== undefined || body['address'] !== undefined || body['id_server'] !== undefined);
}

/** Checks a 3PID invite (`where` names it in errors, for createRoom's list). */
export function parseThreePidInvite(body: JsonBody, where = ''): ThreePidInvite {
  const field = (name: string): string => {
    const v = body[name];
    if (v === undefined || v === null) throw missingParam(`${where}${name} is required`);
    if (typeof v !== 'string') throw badJson(`${where}${name} must be a string`);
    if (v === '') throw invalidParam(`${where}${name} may not be empty`);
    return v;
  };
  const invite = { id_server: field('id_server'), id_access_token: field('id_access_token'), medium: field('medium'), address: field('address') };
  if (!isIdentityServerName(invite.id_server)) throw invalidParam(`${where}id_server must be a host name with an optional port`);
  return invite;
}

/** A failed exchange with an identity server, as the client is told of it (never a 500). */
function identityServerFailure(e: IdentityServerError, idServer: string): MatrixError {
  if (e.kind === 'refused' && e.status !== undefined && e.status >= 400 && e.status < 500) {
    // The identity server refused what the client gave it (an access token it does not know, say).
    const errcode = e.errcode !== undefined && /^M_[A-Z_]+$/.test(e.errcode) ? e.errcode : 'M_UNKNOWN';
    return new MatrixError(e.status === 401 || e.status === 403 ? 403 : 400, errcode, `The identity server ${idServer} refused the request: ${e.message}`);
  }
  return new MatrixError(502, 'M_UNKNOWN', `The identity server ${idServer} could not be used: ${e.message}`);
}

export interface ThirdPartyInviteDeps {
  rsAPI: Pick<RoomserverInternalAPI, 'queryLatestEventsAndState' | 'queryMembershipForUser' | 'performSendEvent'>;
  userAPI: Pick<ClientUserAPI, 'queryProfile'>;
  fedAPI: Pick<FederationInternalAPI, 'performThirdPartyInvite'>;
  identityServers: Pick<IdentityServerClient, 'lookup' | 'storeInvite' | 'baseUrl'>;
  log: Logger;
}

export class ThirdPartyInvites {
  constructor(private readonly d: ThirdPartyInviteDeps) {}

  /** The user the 3PID is bound to, or undefined. */
  async lookup(inv: ThreePidInvite): Promise<string | undefined> {
    try {
      return await this.d.identityServers.lookup(inv.id_server, inv.id_access_token, inv.medium, inv.address);
    } catch (e) {
      if (e instanceof IdentityServerError) throw identityServerFailure(e, inv.id_server);
      throw e;
    }
  }

  /**
   * POST /invite with a 3PID: the user it is bound to, for the caller to invite as usual; or,
   * for an unbound 3PID, undefined once the m.room.third_party_invite is in the room.
   */
  async invite(sender: string, roomId: string, inv: ThreePidInvite): Promise<string | undefined> {
    const m = await this.d.rsAPI.queryMembershipForUser({ room_id: roomId, user_id: sender });
    if (!m.room_exists) throw notFound('This server does not know that room');
    if (m.membership !== 'join') throw forbidden(`${sender} is not in the room`);
    const bound = await this.lookup(inv);
    if (bound !== undefined) return bound;
    await this.storeAndAnnounce(sender, roomId, inv);
    return undefined;
  }

  /**
   * Has the identity server keep the invite and puts the m.room.third_party_invite in the room.
   * Whether the sender may invite is checked first, so that nothing is stored for a refused invite.
   */
  async storeAndAnnounce(sender: string, roomId: string, inv: ThreePidInvite): Promise<void> {
    const probe = await this.d.rsAPI.performSendEvent({ user_id: sender, room_id: roomId, type: 'm.room.third_party_invite', state_key: 'probe', content: { display_name: '', public_key: '' }, build_only: true });
    if (probe.error === 'forbidden') throw forbidden(probe.message);
    if (probe.error !== undefined) throw new MatrixError(400, 'M_UNKNOWN', probe.message);

    let stored;
    try {
      stored = await this.d.identityServers.storeInvite(inv.id_server, inv.id_access_token, await this.storeInviteRequest(sender, roomId, inv));
    } catch (e) {
      if (e instanceof IdentityServerError) throw identityServerFailure(e, inv.id_server);
      throw e;
    }
    // The top-level key and URL are the older form that clients and servers may still read.
    const keyValidityUrl = `${this.d.identityServers.baseUrl(inv.id_server)}/_matrix/identity/v2/pubkey/isvalid`;
    const publicKeys = stored.public_keys.length > 0 ? stored.public_keys : [{ public_key: stored.public_key as string, key_validity_url: keyValidityUrl }];
    const content: JsonObject = {
      display_name: stored.display_name,
      key_validity_url: keyValidityUrl,
      public_key: stored.public_key ?? publicKeys[0]!.public_key,
      public_keys: publicKeys as unknown as JsonObject[],
    };
    const res = await this.d.rsAPI.performSendEvent({ user_id: sender, room_id: roomId, type: 'm.room.third_party_invite', state_key: stored.token, content });
    if (res.error === 'forbidden') throw forbidden(res.message);
    if (res.error !== undefined) throw new MatrixError(400, 'M_UNKNOWN', res.message);
    this.d.log.info({ room_id: roomId, event_id: res.event_id, id_server: inv.id_server }, 'third-party invite stored');
  }

  /** What the identity server may show the invitee about the room and the inviter. */
  private async storeInviteRequest(sender: string, roomId: string, inv: ThreePidInvite): Promise<StoreInviteRequest> {
    const wanted = ['m.room.canonical_alias', 'm.room.avatar', 'm.room.join_rules', 'm.room.name', 'm.room.create'];
    const { state_events } = await this.d.rsAPI.queryLatestEventsAndState({ room_id: roomId, state_to_fetch: wanted.map((type) => ({ type, state_key: '' })) });
    const contentOf = (type: string): JsonObject => (state_events.find((e) => e.pdu.type === type)?.pdu.content ?? {}) as JsonObject;
    const req: StoreInviteRequest = { medium: inv.medium, address: inv.address, room_id: roomId, sender };
    const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
    const alias = str(contentOf('m.room.canonical_alias')['alias']);
    const avatar = str(contentOf('m.room.avatar')['url']);
    const joinRule = str(contentOf('m.room.join_rules')['join_rule']);
    const name = str(contentOf('m.room.name')['name']);
    const roomType = str(contentOf('m.room.create')['type']);
    if (alias) req.room_alias = alias;
    if (avatar) req.room_avatar_url = avatar;
    if (joinRule) req.room_join_rules = joinRule;
    if (name) req.room_name = name;
    if (roomType) req.room_type = roomType;
    const { profile } = await this.d.userAPI.queryProfile({ userId: sender });
    if (profile?.displayName) req.sender_display_name = profile.displayName;
    if (profile?.avatarUrl) req.sender_avatar_url = profile.avatarUrl;
    return req;
  }

  /**
   * /join with `third_party_signed` {sender, mxid, token, signatures}: the invite it proves is
   * made first (here, or by the room's servers), then the join goes ahead as an invited user's.
   */
  async redeemOnJoin(userId: string, roomId: string, proof: unknown): Promise<void> {
    if (!isObject(proof)) throw badJson('third_party_signed must be an object');
    const sender = proof['sender'];
    if (typeof sender !== 'string') throw missingParam('third_party_signed.sender is required');
    if (typeof proof['token'] !== 'string') throw missingParam('third_party_signed.token is required');
    if (typeof proof['mxid'] !== 'string') throw missingParam('third_party_signed.mxid is required');
    if (proof['mxid'] !== userId) throw forbidden(`third_party_signed is for ${proof['mxid']}, not ${userId}`);
    if (!isObject(proof['signatures'])) throw missingParam('third_party_signed.signatures is required');
    const res = await this.d.fedAPI.performThirdPartyInvite({ room_id: roomId, sender, user_id: userId, signed: proof });
    if (res.error === undefined) return;
    if (res.error === 'forbidden') throw forbidden(res.message);
    if (res.error === 'not_found') throw notFound(res.message);
    if (res.error === 'unreachable') throw new MatrixError(502, 'M_UNKNOWN', res.message);
    throw new MatrixError(400, 'M_UNKNOWN', res.message);
  }
}
