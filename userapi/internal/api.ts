import type { ComponentStatus, EmptyRequest } from '../../internal/componentapi.js';
import type { UserInternalAPI } from '../api/index.js';

export class UserInternalAPIImpl implements UserInternalAPI {
  private readonly startedAt = Date.now();

  constructor(private readonly serverName: string) {}

  async queryComponentStatus(_req: EmptyRequest): Promise<ComponentStatus> {
    return { component: 'userapi', serverName: this.serverName, pid: process.pid, startedAt: this.startedAt };
  }
}
