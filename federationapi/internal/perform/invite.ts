/**
 * Invites across servers: sending our invite of another server's user to that server (which
 * must sign it), and rejecting an invite we received into a room we do not hold (make_leave
 * and send_leave through the inviting server).
 */
import { Event, domainOf, type JsonObject, type PDUJson } from '../../../internal/matrix/index.js';
import type { SigningIdentity } from '../../../internal/signingidentity.js';
import type { HeaderedEvent, RoomserverInternalAPI } from '../../../roomserver/api/index.js';
import type { Logger } from 'pino';
import type { PerformInviteRequest, PerformInviteResponse, PerformLeaveRequest, PerformLeaveResponse } from '../../api/index.js';
import { FederationHttpError, type FederationClient } from '../../client/index.js';
import { checkPDUs, type PDUKeys } from '../pdus.js';

export class Inviter {
  constructor(
    private readonly deps: {
      identity: SigningIdentity;
      client: Pick<FederationClient, 'invite' | 'makeLeave' | 'sendLeave'>;
      keys: PDUKeys;
      rsAPI: Pick<RoomserverInternalAPI, 'queryMembershipForUser' | 'queryEventsById' | 'performStubMembership'>;
      log?: Logger;
    },
  ) {}

  private static failure(err: unknown): { error: 'forbidden' | 'unreachable'; message: string } {
    if (err instanceof FederationHttpError && err.status >= 400 && err.status < 500) return { error: 'forbidden', message: err.message };
    return { error: 'unreachable', message: err instanceof Error ? err.message : String(err) };
  }

  async invite(req: PerformInviteRequest): Promise<PerformInviteResponse> {
    const event = Event.fromPDU(req.event.pdu, req.event.room_version);
    const destination = event.stateKey === undefined ? undefined : domainOf(event.stateKey);
    if (event.type !== 'm.room.member' || destination === undefined) return { error: 'failed', message: 'not an invite of a user' };
    let answer;
    try {
      answer = await this.deps.client.invite(destination, event.roomId, event.eventId, { room_version: req.event.room_version, event: event.json as unknown as JsonObject, invite_room_state: req.invite_room_state });
    } catch (err) {
      return Inviter.failure(err);
    }
    const [checked] = await checkPDUs([answer.event], req.event.room_version, this.deps.keys);
    // A float (or too big an integer) in the signed copy of a v6+ invite: the invite fails as bad JSON, as in Synapse.
    if (checked && !checked.ok && checked.code === 'not_canonical') return { error: 'bad_json', message: `${destination} sent back an invite that is not valid JSON for room version ${req.event.room_version}: ${checked.error}` };
    if (!checked || !checked.ok || checked.event.eventId !== event.eventId) {
      return { error: 'failed', message: `${destination} sent back ${checked && !checked.ok ? `an invalid invite: ${checked.error}` : 'another event'}` };
    }
    // Both servers' signatures must be on it now.
    const sigs = (checked.event.json as { signatures?: Record<string, unknown> }).signatures ?? {};
    if (!(destination in sigs) || !(this.deps.identity.serverName in sigs)) return { error: 'failed', message: `${destination} did not sign the invite` };
    return { event: { room_version: req.event.room_version, pdu: checked.event.json as PDUJson } };
  }

  async leave(req: PerformLeaveRequest): Promise<PerformLeaveResponse> {
    const m = await this.deps.rsAPI.queryMembershipForUser({ room_id: req.room_id, user_id: req.user_id });
    if (m.membership !== 'invite' || m.event_id === undefined) return { error: 'not_invited', message: 'There is no invite to reject' };
    const [invite] = (await this.deps.rsAPI.queryEventsById({ event_ids: [m.event_id] })).events;
    if (!invite) return { error: 'failed', message: 'The invite is gone' };
    const inviter = domainOf(String(invite.pdu.sender));
    if (inviter === undefined) return { error: 'failed', message: 'The invite has no sender' };
    try {
      const made = await this.deps.client.makeLeave(inviter, req.room_id, req.user_id);
      const version = made.room_version ?? invite.room_version;
      const t = made.event;
      const leave = this.deps.identity.buildEvent(
        {
          type: 'm.room.member',
          state_key: req.user_id,
          sender: req.user_id,
          room_id: req.room_id,
          content: { membership: 'leave' },
          prev_events: Array.isArray(t['prev_events']) ? (t['prev_events'] as string[]) : [],
          auth_events: Array.isArray(t['auth_events']) ? (t['auth_events'] as string[]) : [],
          depth: typeof t['depth'] === 'number' ? t['depth'] : 1,
        },
        version,
      );
      await this.deps.client.sendLeave(inviter, req.room_id, leave.eventId, leave.json as unknown as JsonObject);
      const res = await this.deps.rsAPI.performStubMembership({ event: { room_version: version, pdu: leave.json as PDUJson } });
      if (res.error !== undefined) return { error: 'failed', message: res.error };
      return {};
    } catch (err) {
      // The inviting server cannot take the rejection (down, or refusing): the invite is
      // rejected here alone, with a leave of ours that only follows the invite (an out-of-band
      // leave, as Synapse makes), so the user is rid of it and it shows as left.
      this.deps.log?.info({ roomId: req.room_id, userId: req.user_id, inviter, err: err instanceof Error ? err.message : String(err) }, 'federation: the invite is rejected locally, its server did not take the rejection');
      return this.rejectLocally(req, invite);
    }
  }

  private async rejectLocally(req: PerformLeaveRequest, invite: HeaderedEvent): Promise<PerformLeaveResponse> {
    const inviteEvent = Event.fromPDU(invite.pdu, invite.room_version);
    const leave = this.deps.identity.buildEvent(
      {
        type: 'm.room.member',
        state_key: req.user_id,
        sender: req.user_id,
        room_id: req.room_id,
        content: { membership: 'leave' },
        prev_events: [inviteEvent.eventId],
        auth_events: [inviteEvent.eventId],
        depth: inviteEvent.depth + 1,
      },
      invite.room_version,
    );
    const res = await this.deps.rsAPI.performStubMembership({ event: { room_version: invite.room_version, pdu: leave.json as PDUJson } });
    if (res.error !== undefined) return { error: 'failed', message: res.error };
    return {};
  }
}
