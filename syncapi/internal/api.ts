import type { ComponentStatus, EmptyRequest } from '../../internal/componentapi.js';
import type { SyncInternalAPI } from '../api/index.js';

export class SyncInternalAPIImpl implements SyncInternalAPI {
  private readonly startedAt = Date.now();

  constructor(private readonly serverName: string) {}

  async queryComponentStatus(_req: EmptyRequest): Promise<ComponentStatus> {
    return { component: 'syncapi', serverName: this.serverName, pid: process.pid, startedAt: this.startedAt };
  }
}
