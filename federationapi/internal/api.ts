import type { ComponentStatus, EmptyRequest } from '../../internal/componentapi.js';
import type { FederationInternalAPI } from '../api/index.js';

export class FederationInternalAPIImpl implements FederationInternalAPI {
  private readonly startedAt = Date.now();

  constructor(private readonly serverName: string) {}

  async queryComponentStatus(_req: EmptyRequest): Promise<ComponentStatus> {
    return { component: 'federationapi', serverName: this.serverName, pid: process.pid, startedAt: this.startedAt };
  }
}
