import type { ComponentStatus, EmptyRequest } from '../../internal/componentapi.js';
import type { FederationInternalAPI, PerformInviteRequest, PerformInviteResponse, PerformJoinRequest, PerformJoinResponse, PerformLeaveRequest, PerformLeaveResponse } from '../api/index.js';
import type { Inviter } from './perform/invite.js';
import type { Joiner } from './perform/join.js';

export class FederationInternalAPIImpl implements FederationInternalAPI {
  private readonly startedAt = Date.now();

  constructor(
    private readonly serverName: string,
    private readonly joiner?: Joiner,
    private readonly inviter?: Inviter,
  ) {}

  async queryComponentStatus(_req: EmptyRequest): Promise<ComponentStatus> {
    return { component: 'federationapi', serverName: this.serverName, pid: process.pid, startedAt: this.startedAt };
  }

  async performJoin(req: PerformJoinRequest): Promise<PerformJoinResponse> {
    if (!this.joiner) return { error: 'failed', message: 'federation is disabled' };
    return this.joiner.join(req);
  }

  async performInvite(req: PerformInviteRequest): Promise<PerformInviteResponse> {
    if (!this.inviter) return { error: 'failed', message: 'federation is disabled' };
    return this.inviter.invite(req);
  }

  async performLeave(req: PerformLeaveRequest): Promise<PerformLeaveResponse> {
    if (!this.inviter) return { error: 'failed', message: 'federation is disabled' };
    return this.inviter.leave(req);
  }
}
