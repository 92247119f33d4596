import type { ComponentStatus, EmptyRequest } from '../../internal/componentapi.js';
import type {
  QueryRemoteDirectoryRequest,
  QueryRemoteDirectoryResponse,
  QueryRemoteProfileRequest,
  QueryRemoteProfileResponse,
  FederationInternalAPI,
  PerformInviteRequest, PerformInviteResponse, PerformJoinRequest, PerformJoinResponse, PerformLeaveRequest, PerformLeaveResponse } from '../api/index.js';
import type { Inviter } from './perform/invite.js';
import { FederationHttpError, type FederationClient } from '../client/index.js';
import type { Joiner } from './perform/join.js';

export class FederationInternalAPIImpl implements FederationInternalAPI {
  private readonly startedAt = Date.now();

  constructor(
    private readonly serverName: string,
    private readonly joiner?: Joiner,
    private readonly inviter?: Inviter,
    private readonly client?: Pick<FederationClient, 'queryProfile' | 'queryDirectory'>,
  ) {}

  private static remoteFailure(err: unknown): { error: 'not_found' | 'unreachable'; message: string } {
    if (err instanceof FederationHttpError && err.status >= 400 && err.status < 500) return { error: 'not_found', message: err.error ?? err.message };
    return { error: 'unreachable', message: err instanceof Error ? err.message : String(err) };
  }

  async queryRemoteProfile(req: QueryRemoteProfileRequest): Promise<QueryRemoteProfileResponse> {
    const server = req.user_id.slice(req.user_id.indexOf(':') + 1);
    if (!this.client) return { error: 'unreachable', message: 'federation is disabled' };
    try {
      return { profile: await this.client.queryProfile(server, req.user_id, req.field) };
    } catch (err) {
      return FederationInternalAPIImpl.remoteFailure(err);
    }
  }

  async queryRemoteDirectory(req: QueryRemoteDirectoryRequest): Promise<QueryRemoteDirectoryResponse> {
    const server = req.alias.slice(req.alias.indexOf(':') + 1);
    if (!this.client) return { error: 'unreachable', message: 'federation is disabled' };
    try {
      const res = await this.client.queryDirectory(server, req.alias);
      return { room_id: res.room_id, servers: Array.isArray(res.servers) ? res.servers.filter((x): x is string => typeof x === 'string') : [server] };
    } catch (err) {
      return FederationInternalAPIImpl.remoteFailure(err);
    }
  }

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
