/**
 * Third-party invites redeemed (server-server API "Third-party invites"): an identity server
 * has signed `{mxid, token}` for the user who bound the 3PID, and that becomes an
 * m.room.member invite of the user, with `content.third_party_invite {display_name, signed}`.
 *
 * - A room held here: the invite is built here, sent by the m.room.third_party_invite's sender
 *   (the auth rules require it, and do not require the sender to still be in the room), after
 *   checking the signature and asking the identity server whether its key is still valid. An
 *   invitee of another server must sign the invite too (PUT /invite), as for any invite.
 * - A room held elsewhere, or an inviter of another server: the room's servers (the inviter's,
 *   and the room ID's) are asked to do it (PUT /exchange_third_party_invite). Asking the
 *   inviter's server even when we hold the room means the invite is signed by the sender's
 *   server and goes out to the room from there, like any event of its users.
 */
import type { Logger } from 'pino';
import { checkThirdPartySigned, ThirdPartyInviteRejected, type IdentityServerClient } from '../../../internal/identityserver/index.js';
import { domainOf, type JsonObject } from '../../../internal/matrix/index.js';
import type { HeaderedEvent, RoomserverInternalAPI } from '../../../roomserver/api/index.js';
import type { PerformInviteRequest, PerformInviteResponse, PerformThirdPartyInviteRequest, PerformThirdPartyInviteResponse } from '../../api/index.js';
import { encodePathSegment, type FederationClient } from '../../client/index.js';

type Failure = Extract<PerformThirdPartyInviteResponse, { error: string }>;
const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Stripped state the invitee's server is given with the invite: what clients show of a room one is invited to. */
const STRIPPED_TYPES = ['m.room.create', 'm.room.join_rules', 'm.room.name', 'm.room.avatar', 'm.room.canonical_alias', 'm.room.encryption', 'm.room.topic'];

export interface ThirdPartyInviteDeps {
  serverName: string;
  rsAPI: Pick<RoomserverInternalAPI, 'queryLatestEventsAndState' | 'performSendEvent' | 'inputRoomEvents'>;
  /** Gets an invite of another server's user signed by that server. */
  invite: (req: PerformInviteRequest) => Promise<PerformInviteResponse>;
  /** Absent with federation disabled: only rooms held here can be served. */
  client?: Pick<FederationClient, 'request'>;
  identityServers: Pick<IdentityServerClient, 'isKeyValid'>;
  log: Logger;
}

export class ThirdPartyInviteExchanger {
  constructor(private readonly d: ThirdPartyInviteDeps) {}

  /**
   * `exchanged`: another server asked us (PUT /exchange_third_party_invite); we hold the room
   * or answer not_found, and never pass the request on.
   */
  async perform(req: PerformThirdPartyInviteRequest, opts: { exchanged?: boolean } = {}): Promise<PerformThirdPartyInviteResponse> {
    const token = req.signed['token'];
    if (typeof token !== 'string') return { error: 'forbidden', message: 'The signed third-party invite has no token' };
    if (req.signed['mxid'] !== req.user_id) return { error: 'forbidden', message: `The signed third-party invite is for ${String(req.signed['mxid'])}, not ${req.user_id}` };
    const room = await this.d.rsAPI.queryLatestEventsAndState({
      room_id: req.room_id,
      state_to_fetch: [
        { type: 'm.room.third_party_invite', state_key: token },
        { type: 'm.room.member', state_key: req.user_id },
      ],
    });
    if (!room.room_exists) {
      if (opts.exchanged) return { error: 'not_found', message: `This server is not in ${req.room_id}` };
      return this.exchangeRemotely(req, this.roomServers(req));
    }
    const inviterServer = domainOf(req.sender);
    if (!opts.exchanged && inviterServer !== undefined && inviterServer !== this.d.serverName) {
      const asked = await this.exchangeRemotely(req, [inviterServer]);
      // A refusal stands; an inviter's server that cannot be reached leaves the invite to us.
      if (asked.error === undefined || asked.error === 'forbidden') return asked;
      this.d.log.warn({ room_id: req.room_id, server: inviterServer, reason: asked.message }, 'third-party invite: the inviter\'s server did not take it; building it here');
    }
    return this.buildHere(req, token, room.state_events);
  }

  private roomServers(req: PerformThirdPartyInviteRequest): string[] {
    const servers = [domainOf(req.sender), domainOf(req.room_id)].filter((s): s is string => s !== undefined && s !== this.d.serverName);
    return [...new Set(servers)];
  }

  private async buildHere(req: PerformThirdPartyInviteRequest, token: string, state: HeaderedEvent[]): Promise<PerformThirdPartyInviteResponse> {
    const tpi = state.find((e) => e.pdu.type === 'm.room.third_party_invite' && e.pdu.state_key === token);
    if (!tpi) return { error: 'forbidden', message: `No third-party invite in ${req.room_id} has the token ${token}` };
    if (tpi.pdu.sender !== req.sender) return { error: 'forbidden', message: `The third-party invite was sent by ${String(tpi.pdu.sender)}, not ${req.sender}` };
    const membership = state.find((e) => e.pdu.type === 'm.room.member' && e.pdu.state_key === req.user_id)?.pdu.content?.['membership'];
    // Already in (or invited): the invite has nothing left to do.
    if (membership === 'join' || membership === 'invite') return {};
    const content = (tpi.pdu.content ?? {}) as JsonObject;
    try {
      await checkThirdPartySigned(req.signed, content, this.d.identityServers);
    } catch (e) {
      if (e instanceof ThirdPartyInviteRejected) return { error: 'forbidden', message: e.message };
      throw e;
    }
    const displayName = typeof content['display_name'] === 'string' ? content['display_name'] : (req.display_name ?? '');
    const member: JsonObject = { membership: 'invite', third_party_invite: { display_name: displayName, signed: req.signed } };
    const send = { user_id: req.sender, room_id: req.room_id, type: 'm.room.member', state_key: req.user_id, content: member };
    if (domainOf(req.user_id) === this.d.serverName) {
      const res = await this.d.rsAPI.performSendEvent(send);
      if (res.error !== undefined) return { error: res.error === 'forbidden' ? 'forbidden' : 'failed', message: res.message };
      this.d.log.info({ room_id: req.room_id, user_id: req.user_id, event_id: res.event_id }, 'third-party invite redeemed');
      return {};
    }
    // The invitee's server signs the invite too, as for any invite of its users.
    const built = await this.d.rsAPI.performSendEvent({ ...send, build_only: true });
    if (built.error !== undefined) return { error: built.error === 'forbidden' ? 'forbidden' : 'failed', message: built.message };
    if (built.event === undefined) return {};
    const signed = await this.d.invite({ event: built.event, invite_room_state: await this.strippedState(req.room_id, req.sender) });
    if (signed.error !== undefined) return { error: signed.error === 'forbidden' ? 'forbidden' : signed.error === 'unreachable' ? 'unreachable' : 'failed', message: signed.message };
    const [res] = (await this.d.rsAPI.inputRoomEvents({ events: [{ kind: 'new', event: signed.event, origin: this.d.serverName }] })).results;
    if (!res || (res.status !== 'accepted' && res.status !== 'duplicate')) return { error: 'forbidden', message: res?.error ?? 'The invite was refused' };
    this.d.log.info({ room_id: req.room_id, user_id: req.user_id, event_id: res.event_id }, 'third-party invite redeemed');
    return {};
  }

  private async strippedState(roomId: string, sender: string): Promise<JsonObject[]> {
    const { state_events } = await this.d.rsAPI.queryLatestEventsAndState({
      room_id: roomId,
      state_to_fetch: [...STRIPPED_TYPES.map((type) => ({ type, state_key: '' })), { type: 'm.room.member', state_key: sender }],
    });
    return state_events.map((h) => ({ type: h.pdu.type, state_key: h.pdu.state_key ?? '', sender: h.pdu.sender, content: (h.pdu.content ?? {}) as JsonObject }) as JsonObject);
  }

  /** PUT /exchange_third_party_invite to each server in turn until one takes it. */
  private async exchangeRemotely(req: PerformThirdPartyInviteRequest, servers: string[]): Promise<PerformThirdPartyInviteResponse> {
    if (!this.d.client) return { error: 'unreachable', message: 'Federation is disabled and this server is not in the room' };
    if (servers.length === 0) return { error: 'not_found', message: `No server to ask about ${req.room_id}` };
    const body: JsonObject = {
      type: 'm.room.member',
      room_id: req.room_id,
      sender: req.sender,
      state_key: req.user_id,
      // The room's server puts in the display name of its m.room.third_party_invite.
      content: { membership: 'invite', third_party_invite: { display_name: req.display_name ?? '', signed: req.signed } },
    };
    let failure: Failure = { error: 'unreachable', message: 'no server answered' };
    for (const server of servers) {
      try {
        const res = await this.d.client.request(server, 'PUT', `/_matrix/federation/v1/exchange_third_party_invite/${encodePathSegment(req.room_id)}`, { body });
        if (res.status >= 200 && res.status < 300) return {};
        const b = isObject(res.body) ? res.body : {};
        const message = `${server} answered ${res.status}${typeof b['error'] === 'string' ? `: ${b['error']}` : ''}`;
        if (res.status === 403) failure = { error: 'forbidden', message };
        else if (failure.error !== 'forbidden') failure = { error: res.status === 404 ? 'not_found' : 'failed', message };
      } catch (e) {
        if (failure.error === 'unreachable') failure = { error: 'unreachable', message: `${server}: ${e instanceof Error ? e.message : String(e)}` };
      }
    }
    return failure;
  }
}
