import type { ComponentStatus, EmptyRequest } from '../../internal/componentapi.js';
import type { PerformPeekRequest, PerformPeekResponse, SyncInternalAPI } from '../api/index.js';
import type { PeekStore } from '../storage/peeks.js';
import type { Notifier } from './notifier.js';

export class SyncInternalAPIImpl implements SyncInternalAPI {
  private readonly startedAt = Date.now();

  constructor(
    private readonly serverName: string,
    private readonly peeks?: { store: PeekStore; notifier: Notifier },
  ) {}

  async queryComponentStatus(_req: EmptyRequest): Promise<ComponentStatus> {
    return { component: 'syncapi', serverName: this.serverName, pid: process.pid, startedAt: this.startedAt };
  }

  async performPeek(req: PerformPeekRequest): Promise<PerformPeekResponse> {
    if (!this.peeks) throw new Error('syncapi runs without its consumers here: peeks are not served');
    const { store, notifier } = this.peeks;
    await store.add(req.user_id, req.device_id, req.room_id, notifier.current.pdu);
    // A long-polling /sync of the device wakes to give the room.
    notifier.advance('pdu', notifier.current.pdu, [req.user_id]);
    return {};
  }

  async performUnpeek(req: PerformPeekRequest): Promise<PerformPeekResponse> {
    if (!this.peeks) throw new Error('syncapi runs without its consumers here: peeks are not served');
    await this.peeks.store.remove(req.user_id, req.device_id, req.room_id);
    return {};
  }
}
