import type { ComponentStatus, EmptyRequest } from '../../internal/componentapi.js';
import type { MediaInternalAPI } from '../api/index.js';

export class MediaInternalAPIImpl implements MediaInternalAPI {
  private readonly startedAt = Date.now();

  constructor(private readonly serverName: string) {}

  async queryComponentStatus(_req: EmptyRequest): Promise<ComponentStatus> {
    return { component: 'mediaapi', serverName: this.serverName, pid: process.pid, startedAt: this.startedAt };
  }
}
