import type { ComponentStatus, EmptyRequest } from '../../internal/componentapi.js';
import type { ClientInternalAPI } from '../api/index.js';

export class ClientInternalAPIImpl implements ClientInternalAPI {
  private readonly startedAt = Date.now();

  constructor(private readonly serverName: string) {}

  async queryComponentStatus(_req: EmptyRequest): Promise<ComponentStatus> {
    return { component: 'clientapi', serverName: this.serverName, pid: process.pid, startedAt: this.startedAt };
  }
}
