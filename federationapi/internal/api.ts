import type { ComponentStatus, EmptyRequest } from '../../internal/componentapi.js';
import type { FederationInternalAPI, PerformJoinRequest, PerformJoinResponse } from '../api/index.js';
import type { Joiner } from './perform/join.js';

export class FederationInternalAPIImpl implements FederationInternalAPI {
  private readonly startedAt = Date.now();

  constructor(
    private readonly serverName: string,
    private readonly joiner?: Joiner,
  ) {}

  async queryComponentStatus(_req: EmptyRequest): Promise<ComponentStatus> {
    return { component: 'federationapi', serverName: this.serverName, pid: process.pid, startedAt: this.startedAt };
  }

  async performJoin(req: PerformJoinRequest): Promise<PerformJoinResponse> {
    if (!this.joiner) return { error: 'failed', message: 'federation is disabled' };
    return this.joiner.join(req);
  }
}
