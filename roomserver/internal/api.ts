import type { ComponentStatus, EmptyRequest } from '../../internal/componentapi.js';
import type { RoomserverInternalAPI } from '../api/index.js';

export class RoomserverInternalAPIImpl implements RoomserverInternalAPI {
  private readonly startedAt = Date.now();

  constructor(private readonly serverName: string) {}

  async queryComponentStatus(_req: EmptyRequest): Promise<ComponentStatus> {
    return { component: 'roomserver', serverName: this.serverName, pid: process.pid, startedAt: this.startedAt };
  }
}
